"""Faults: PostgreSQL stopped and restarted in the middle of a test, on a cluster of our own (``initdb``).

During the outage every request gets ``store_unavailable`` within the store's timeout (and keeps its
cookie); after the restart requests work again, and no acknowledged session — nor an acknowledged
write — is lost. The numbers are printed (``pytest -s``) and recorded as test properties.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from clientstate import Binding, ErrorKind
from clientstate.stores.postgres import PostgresStore
from clientstate.testing import FrozenClock
from tests.server.conftest import Driver
from tests.server.kits import unique_table
from tests.server.pg_cluster import PgCluster
from tests.server.test_behaviour import ACCOUNT, T0, Account, handler, log_in, visit

SESSIONS = 20
OUTAGE_REQUESTS = 10
TIMEOUT = 1.0  # the store's wait for a connection, seconds
RECOVERY_BOUND = 15.0  # seconds after the restart by which requests must work again


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as made:
        yield made


def connections(cluster: PgCluster) -> int:
    """Client connections to the cluster other than this one."""
    with psycopg.connect(cluster.url, connect_timeout=5) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_a_restart_mid_test_costs_no_session(
    cluster: PgCluster, driver: Driver, record_property: Callable[[str, object], None]
) -> None:
    store = PostgresStore(cluster.url, table=unique_table("fault"), timeout=TIMEOUT, connect_timeout=2,
                          statement_timeout=2)
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    try:
        cookies = {f"u{n}": log_in(driver, binding, f"u{n}") for n in range(SESSIONS)}
        for cookie in cookies.values():  # an acknowledged write on each session
            assert driver.request(binding, cookie, visit)[1] == []
        assert all(driver.request(binding, c)[0].state == Account(u, visits=1) for u, c in cookies.items())

        cluster.stop()  # fast shutdown: every open connection is ended by the server
        cluster.wait_down()
        waits = []
        for n in range(OUTAGE_REQUESTS):
            started = time.monotonic()
            slot, lines = driver.request(binding, cookies[f"u{n % SESSIONS}"])
            waits.append(time.monotonic() - started)
            assert slot.error is not None
            assert slot.error.kind is ErrorKind.STORE_UNAVAILABLE
            assert lines == []  # the cookie is kept: nobody is logged out by the outage
        assert max(waits) <= TIMEOUT + 2.0, waits

        cluster.start()
        restarted = time.monotonic()
        failures_after = 0
        while True:
            slot, _ = driver.request(binding, cookies["u0"])
            if slot.error is None:
                break
            failures_after += 1
            assert time.monotonic() - restarted < RECOVERY_BOUND, slot.error
            time.sleep(0.05)
        recovery = time.monotonic() - restarted

        lost = sum(driver.request(binding, c)[0].state != Account(u, visits=1) for u, c in cookies.items())
        assert lost == 0
        for cookie in cookies.values():
            assert driver.request(binding, cookie, visit)[1] == []
        assert all(driver.request(binding, c)[0].state == Account(u, visits=2) for u, c in cookies.items())
        numbers = {
            "outage_requests": OUTAGE_REQUESTS,
            "outage_store_unavailable": OUTAGE_REQUESTS,
            "outage_wait_max_s": round(max(waits), 3),
            "outage_wait_mean_s": round(sum(waits) / len(waits), 3),
            "recovery_s": round(recovery, 3),
            "failed_requests_after_restart": failures_after,
            "sessions_lost": lost,
        }
        for key, value in numbers.items():
            record_property(key, value)
        print(f"\nPostgreSQL restart ({driver.name}): {numbers}")
    finally:
        store.close()
    assert connections(cluster) <= store.max_size  # the pools of finished event loops are closed
