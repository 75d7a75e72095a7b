"""MySQLStore beyond the behavioural suite: schema, the sweep's plan and lock, exact principals, errors.

Runs against the machine's MariaDB (127.0.0.1:3306, root, database ``test``), each test on a table of its
own, dropped afterwards. A server that is down fails these tests; they never skip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from clientstate import ConfigurationError, StoreUnavailable
from clientstate._core.flow import perform_async, perform_sync
from clientstate._core.store import CountSessions, Create, DeleteSessions, Get, PutAll, Sweep, Touch
from clientstate.stores import store_from_url
from clientstate.stores.mysql import MySQLStore
from tests.server.kits import MySQLKit, unique_table
from tests.server.pg_cluster import free_port
from tests.server.test_behaviour import T0
from tests.server.test_postgres import EXPECTED_STATEMENTS, record, statements_per_request_kind


@pytest.fixture
def table() -> Iterator[str]:
    name = unique_table("myt")
    yield name
    MySQLKit().drop(name)


@pytest.fixture
def store(table: str) -> Iterator[MySQLStore]:
    made = MySQLStore(table=table)
    yield made
    made.close()


def query(sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    db = MySQLKit().admin()
    try:
        cursor = db.cursor()
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        db.close()


def fill(store: MySQLStore, count: int, expired: int) -> None:
    """``count`` sessions, the first ``expired`` of them past their deadline at T0."""
    for n in range(count):
        assert perform_sync(store, Create(record(n, T0 - 1 if n < expired else T0 + 1000)))


def test_the_schema_is_created_on_demand_as_documented(store: MySQLStore, table: str) -> None:
    assert query("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = %s", (table,)) == [(0,)]
    assert perform_sync(store, Get(b"\0" * 16)) is None
    columns = dict(query(
        "SELECT column_name, column_type FROM information_schema.columns WHERE table_name = %s", (table,)
    ))
    assert columns == {
        "sid": "varbinary(16)", "version": "bigint(20)", "principal": "blob", "created_at": "bigint(20)",
        "absolute_deadline": "bigint(20)", "idle_deadline": "bigint(20)", "last_touch": "bigint(20)",
        "schema_version": "int(11)", "blob": "longblob", "moved_to": "varbinary(16)",
    }
    indexes = {(row[2], row[4], row[7]) for row in query(f"SHOW INDEX FROM {table}")}
    assert indexes == {("PRIMARY", "sid", None), (f"{table}_idle_deadline", "idle_deadline", None),
                       (f"{table}_principal", "principal", 255)}


def test_the_sweep_uses_the_idle_deadline_index(store: MySQLStore, table: str) -> None:
    fill(store, 300, 100)
    query(f"ANALYZE TABLE {table}")
    plan = query(f"EXPLAIN DELETE FROM {table} WHERE idle_deadline <= %s ORDER BY idle_deadline LIMIT 10", (T0,))
    (row,) = plan
    assert row[3] == "range", plan  # an index range, no table scan
    assert row[5] == f"{table}_idle_deadline", plan
    assert perform_sync(store, Sweep(T0, 40)) == 40
    assert perform_sync(store, Sweep(T0, 100)) == 60
    assert perform_sync(store, Sweep(T0, 100)) == 0
    assert MySQLKit().rows(store) == 200


def test_a_sweep_while_another_app_server_sweeps_deletes_nothing(store: MySQLStore) -> None:
    fill(store, 10, 10)
    other = MySQLKit().admin()
    try:
        cursor = other.cursor()
        cursor.execute("SELECT GET_LOCK(%s, 0)", (store._sweep_lock,))  # its sweep, under way
        assert cursor.fetchone() == (1,)
        assert perform_sync(store, Sweep(T0, 100)) == 0
        assert asyncio.run(perform_async(store, Sweep(T0, 100))) == 0
        cursor.execute("DO RELEASE_LOCK(%s)", (store._sweep_lock,))
    finally:
        other.close()
    assert perform_sync(store, Sweep(T0, 100)) == 10


def test_principals_compare_exactly(store: MySQLStore) -> None:
    for n, principal in enumerate(["ada", "ada ", "ADA", "adá"]):
        assert perform_sync(store, Create(record(n, T0 + 100, principal)))
    for principal in ["ada", "ada ", "ADA", "adá"]:
        assert perform_sync(store, CountSessions(principal, T0)) == 1
    assert perform_sync(store, DeleteSessions("ada", None)) == 1
    assert perform_sync(store, Get(record(1, 0).sid)) == record(1, T0 + 100, "ada ")  # read back as text


def test_a_touch_that_changes_nothing_still_finds_its_session(store: MySQLStore) -> None:
    assert perform_sync(store, Create(record(1, T0 + 100)))
    assert perform_sync(store, Touch(record(1, 0).sid, T0 + 100, 0))  # same values: matched, not "gone"


def test_put_all_writes_where_the_version_matches_in_one_transaction(store: MySQLStore) -> None:
    kept, taken, fresh = record(1, T0), record(2, T0), record(3, T0)
    assert perform_sync(store, Create(kept))
    assert perform_sync(store, Create(taken))
    newer = msgspec.structs.replace(kept, version=2, blob=b"newer")
    stale = msgspec.structs.replace(taken, version=5, blob=b"stale")
    assert perform_sync(store, PutAll(((newer, 1), (stale, 4), (fresh, 0), (kept, 0)))) == 2
    assert perform_sync(store, Get(kept.sid)) == newer
    assert perform_sync(store, Get(taken.sid)) == taken
    assert perform_sync(store, Get(fresh.sid)) == fresh


def test_statements_per_request_kind(store: MySQLStore) -> None:
    kinds = statements_per_request_kind(store)
    print(f"\nMariaDB statements per request: {kinds}")
    assert kinds == EXPECTED_STATEMENTS


def test_an_unreachable_server_is_store_unavailable_in_time_and_never_shows_the_password() -> None:
    store = MySQLStore.from_url(f"mariadb://app:s3cr3t-pw@127.0.0.1:{free_port()}/x?connect_timeout=1")
    performers: list[Callable[[], object]] = [
        lambda: perform_sync(store, Get(b"\0" * 16)), lambda: asyncio.run(perform_async(store, Get(b"\0" * 16)))
    ]
    for perform in performers:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            perform()
        assert time.monotonic() - started < 3
        chain = [caught.value, caught.value.__cause__, caught.value.__context__]
        assert all("s3cr3t-pw" not in repr(e) and "s3cr3t-pw" not in str(e) for e in chain)
    assert "s3cr3t-pw" not in repr(store)


def test_a_busy_pool_is_store_unavailable_within_its_timeout(table: str) -> None:
    store = MySQLStore(table=table, max_size=1, timeout=0.3)
    with store._connection():  # the only connection, in use
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            perform_sync(store, Get(b"\0" * 16))
        assert time.monotonic() - started < 1
    assert perform_sync(store, Get(b"\0" * 16)) is None
    store.close()


def test_store_from_url() -> None:
    made = store_from_url("mysql://root@127.0.0.1:3306/test?table=cs_x&max_size=3&read_timeout=2")
    assert isinstance(made, MySQLStore)
    assert (made.table, made.max_size, made.read_timeout, made.database) == ("cs_x", 3, 2.0, "test")
    assert repr(made) == "MySQLStore('127.0.0.1:3306/test', table='cs_x')"
    other = store_from_url("mariadb://u:p%40ss@db.example:3307/app")
    assert isinstance(other, MySQLStore)
    assert (other.host, other.port, other.user, other._password, other.database) == (
        "db.example", 3307, "u", "p@ss", "app")
    with pytest.raises(ConfigurationError):
        store_from_url("mysql://root@127.0.0.1/test?charset=latin1")
