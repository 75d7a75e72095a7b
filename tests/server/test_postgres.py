"""PostgresStore beyond the behavioural suite: schema, the sweep's plan and lock, statements per request, errors.

Runs against the machine's PostgreSQL (127.0.0.1:5432, database ``test``), each test on a table of its
own, dropped afterwards. A server that is down fails these tests; they never skip.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import psycopg
import pytest

from clientstate import Binding, ErrorKind, StoreUnavailable
from clientstate._core.flow import perform_async, perform_sync
from clientstate._core.store import Create, Get, PutAll, Record, Store, Sweep
from clientstate.stores import store_from_url
from clientstate.stores.postgres import PostgresStore
from clientstate.testing import FrozenClock
from tests.server.conftest import Driver
from tests.server.kits import PG_URL, PostgresKit, unique_table
from tests.server.pg_cluster import free_port
from tests.server.test_behaviour import ACCOUNT, T0, Account, forged_cookies, handler, log_in, visit


@pytest.fixture
def table() -> Iterator[str]:
    name = unique_table("pgt")
    yield name
    PostgresKit().drop(name)


@pytest.fixture
def store(table: str) -> Iterator[PostgresStore]:
    made = PostgresStore(PG_URL, table=table)
    yield made
    made.close()


def admin() -> psycopg.Connection[Any]:
    return PostgresKit().admin()  # type: ignore[no-any-return]


def record(n: int, idle_deadline: int, principal: str | None = None) -> Record:
    sid = n.to_bytes(16, "big")
    return Record(sid, 1, principal, 0, idle_deadline + 1000, idle_deadline, 0, 1, b"state")


def fill(table: str, count: int, deadline: Callable[[int], int]) -> None:
    """``count`` rows straight into ``table`` (created by the store beforehand), deadlines by row number."""
    with admin() as db, db.cursor().copy(
        f"COPY {table} (sid, version, created_at, absolute_deadline, idle_deadline, last_touch, schema_version, "
        '"blob") FROM STDIN'
    ) as copy:
        for n in range(count):
            copy.write_row((n.to_bytes(16, "big"), 1, 0, deadline(n) + 1000, deadline(n), 0, 1, b"x"))


# --- schema ---------------------------------------------------------------------------------------


def test_the_schema_is_created_on_demand_as_documented(store: PostgresStore, table: str) -> None:
    with admin() as db:
        assert db.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)
    assert perform_sync(store, Get(b"\0" * 16)) is None  # the first operation creates it
    with admin() as db:
        columns = dict(db.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall())
        indexes = dict(db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,)))
        options = db.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (table,)).fetchone()
    assert columns == {
        "sid": "bytea", "version": "bigint", "principal": "text", "created_at": "bigint",
        "absolute_deadline": "bigint", "idle_deadline": "bigint", "last_touch": "bigint",
        "schema_version": "integer", "blob": "bytea", "moved_to": "bytea",
    }
    assert indexes[f"{table}_idle_deadline"].endswith("USING btree (idle_deadline)")
    assert indexes[f"{table}_principal"].endswith("USING btree (principal) WHERE (principal IS NOT NULL)")
    assert f"{table}_pkey" in indexes
    assert options == (["fillfactor=80"],)


def test_app_servers_starting_together_create_the_table_once(table: str) -> None:
    stores = [PostgresStore(PG_URL, table=table) for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def first_request(s: PostgresStore, n: int) -> None:
        barrier.wait()
        try:
            assert perform_sync(s, Create(record(n, T0)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_request, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for s in stores:
        s.close()
    assert errors == []
    assert PostgresKit().rows(PostgresStore(PG_URL, table=table)) == 8


# --- the sweep ------------------------------------------------------------------------------------


def test_the_sweep_plan_uses_the_idle_deadline_index(store: PostgresStore, table: str) -> None:
    perform_sync(store, Get(b"\0" * 16))
    fill(table, 50_000, lambda n: T0 - 10_000 + n)  # 10,000 expired at T0, 40,000 not
    with admin() as db:
        db.execute(f"ANALYZE {table}")
        plan = "\n".join(row[0] for row in db.execute(f"EXPLAIN {store.sweep_command(T0, 1000).sql}",
                                                      (store._sweep_key, T0, 1000)))
    assert f"Index Scan using {table}_idle_deadline" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert perform_sync(store, Sweep(T0, 1000)) == 1000


def test_the_sweep_deletes_only_expired_rows_and_skips_rows_in_use(store: PostgresStore, table: str) -> None:
    perform_sync(store, Get(b"\0" * 16))
    fill(table, 30, lambda n: T0 - 100 + n * 10)  # rows 0..10 expired at T0 (deadline <= T0), 11..29 alive
    with admin() as busy:
        busy.autocommit = False
        busy.execute(f"SELECT 1 FROM {table} WHERE sid = %s FOR UPDATE", (record(3, 0).sid,))  # a request in flight
        started = time.monotonic()
        assert perform_sync(store, Sweep(T0, 4)) == 4  # a batch of at most 4, never waiting for row 3
        assert perform_sync(store, Sweep(T0, 100)) == 6
        assert perform_sync(store, Sweep(T0, 100)) == 0
        assert time.monotonic() - started < 2
        busy.rollback()
    assert perform_sync(store, Sweep(T0, 100)) == 1  # row 3, once released
    with admin() as db:
        left = [int.from_bytes(row[0], "big") for row in db.execute(f"SELECT sid FROM {table} ORDER BY sid")]
    assert left == list(range(11, 30))


def test_a_sweep_while_another_app_server_sweeps_deletes_nothing(store: PostgresStore, table: str) -> None:
    perform_sync(store, Get(b"\0" * 16))
    fill(table, 10, lambda n: T0 - 100)
    with admin() as other:
        other.autocommit = False
        other.execute("SELECT pg_advisory_xact_lock(%s)", (store._sweep_key,))  # its sweep, mid-transaction
        assert perform_sync(store, Sweep(T0, 100)) == 0
        other.commit()
    assert perform_sync(store, Sweep(T0, 100)) == 10


ROUNDS = 6
BATCH = 50


def _sweeper(table: str, barrier: Any, results: Any) -> None:
    """One app server: every round, at the barrier, one sweep of at most BATCH rows."""
    store = PostgresStore(PG_URL, table=table)
    perform_sync(store, Get(b"\0" * 16))  # connected, schema checked: the rounds time only the sweeps
    try:
        for _ in range(ROUNDS):
            barrier.wait(60)
            results.put((os.getpid(), perform_sync(store, Sweep(T0, BATCH))))
            barrier.wait(60)
    finally:
        store.close()


def test_two_app_servers_sweeping_at_once_one_sweeps_per_round(store: PostgresStore, table: str) -> None:
    perform_sync(store, Get(b"\0" * 16))
    with admin() as db:  # each sweep holds its lock a little longer, so the two always overlap
        db.execute(
            f"CREATE FUNCTION {table}_slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$"
        )
        db.execute(f"CREATE TRIGGER {table}_slow AFTER DELETE ON {table} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION {table}_slow()")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=_sweeper, args=(table, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for round_ in range(ROUNDS):
            fill_more(table, round_)
            barrier.wait(60)  # both sweep now
            barrier.wait(60)
            counts = sorted(results.get(timeout=30)[1] for _ in workers)
            assert counts == [0, BATCH], (round_, counts)  # exactly one swept; the other found the lock taken
            with admin() as db:
                row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row == (BATCH,)  # the second batch is still there: nobody swept twice
    finally:
        for worker in workers:
            worker.join(60)
        with admin() as db:
            db.execute(f"DROP FUNCTION IF EXISTS {table}_slow() CASCADE")
    assert [worker.exitcode for worker in workers] == [0, 0]


def fill_more(table: str, round_: int) -> None:
    """Reset ``table`` to 2 * BATCH expired rows (new ids each round)."""
    with admin() as db:
        db.execute(f"DELETE FROM {table}")
        for n in range(2 * BATCH):
            db.execute(
                f'INSERT INTO {table} (sid, version, created_at, absolute_deadline, idle_deadline, last_touch, '
                'schema_version, "blob") VALUES (%s, 1, 0, %s, %s, 0, 1, %s)',
                ((round_ * 1000 + n).to_bytes(16, "big"), T0, T0 - 1, b"x"),
            )


# --- statements per request -------------------------------------------------------------------------


def statements_per_request_kind(store: Store) -> dict[str, int]:
    """How many SQL statements each kind of request costs (blocking driver; a transaction counts its statements)."""
    count = 0
    execute = store.execute

    def counting(command: Any) -> Any:
        nonlocal count
        count += len(getattr(command, "statements", (command,)))
        return execute(command)

    perform_sync(store, Get(b"\0" * 16))  # the table exists before counting
    store.execute = counting  # type: ignore[method-assign]
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store, idle_timeout=1000, touch_interval=100), clock)
    driver = Driver("sync")
    kinds: dict[str, int] = {}

    def measure(kind: str, cookie: str | None, act: Callable[[Any], None] | None = None) -> list[str]:
        nonlocal count
        count = 0
        slot, lines = driver.request(binding, cookie, act)
        kinds[kind] = count
        assert slot.error is None or kind == "forged"
        return lines

    measure("anonymous", None)
    measure("forged", forged_cookies(1)[0])
    cookie = log_in(driver, binding, "")  # a pre-login session (principal "")
    count = 0

    def become(slot: Any) -> None:
        slot.state = Account("ada")

    new_cookie = measure("login", cookie, become)[0].split(";", 1)[0]  # a new id, the old one a tombstone
    measure("read-only", new_cookie)
    clock.advance(150)
    measure("touching", new_cookie)
    measure("changing", new_cookie, visit)
    count = 0
    log_in(driver, binding, "bob")
    kinds["first write (new session)"] = count
    return kinds


EXPECTED_STATEMENTS = {
    "anonymous": 0, "forged": 0, "login": 3, "read-only": 1, "touching": 2, "changing": 2,
    "first write (new session)": 1,
}


def test_statements_per_request_kind(store: PostgresStore) -> None:
    kinds = statements_per_request_kind(store)
    print(f"\nPostgreSQL statements per request: {kinds}")
    assert kinds == EXPECTED_STATEMENTS


# --- batches, pools, errors, URLs -----------------------------------------------------------------------


def test_put_all_writes_where_the_version_matches_in_one_transaction(store: PostgresStore) -> None:
    kept, taken, fresh = record(1, T0), record(2, T0), record(3, T0)
    assert perform_sync(store, Create(kept))
    assert perform_sync(store, Create(taken))
    newer = msgspec.structs.replace(kept, version=2, blob=b"newer")
    stale = msgspec.structs.replace(taken, version=5, blob=b"stale")
    assert perform_sync(store, PutAll(((newer, 1), (stale, 4), (fresh, 0)))) == 2
    assert perform_sync(store, Get(kept.sid)) == newer
    assert perform_sync(store, Get(taken.sid)) == taken
    assert perform_sync(store, Get(fresh.sid)) == fresh


def test_async_pools_close_with_their_event_loops(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # psycopg.pool logs each connection attempt cut short by a loop's end; a captured record keeps that
    # half-open attempt alive (its traceback), so quiet the logger for this count.
    monkeypatch.setattr(logging.getLogger("psycopg.pool"), "level", logging.ERROR)
    name = f"cstest-{os.getpid()}-{os.urandom(3).hex()}"
    store = PostgresStore(f"{PG_URL}?application_name={name}", table=table)

    async def one_request() -> None:
        await asyncio.gather(*(perform_async(store, Get(os.urandom(16))) for _ in range(5)))

    def connections() -> int:
        with admin() as db:
            row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
        assert row is not None
        return int(row[0])

    def settles_at_most(bound: int) -> bool:  # a backend leaves pg_stat_activity a moment after its client
        deadline = time.monotonic() + 5
        while connections() > bound and time.monotonic() < deadline:
            time.sleep(0.05)
        return connections() <= bound

    for _ in range(30):
        asyncio.run(one_request())  # as the test drivers do: a new event loop per request
    gc.collect()  # a connection attempt cut short by the end of its loop is closed when collected
    assert settles_at_most(0)  # every loop's pool was closed with its loop, not 30 loops' worth left open
    asyncio.run(one_request())
    store.close()
    gc.collect()
    assert settles_at_most(0)


def test_an_unreachable_server_is_store_unavailable_in_time_and_never_shows_the_password() -> None:
    store = PostgresStore(f"postgresql://app:s3cr3t-pw@127.0.0.1:{free_port()}/x", timeout=1, connect_timeout=2)
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
    store.close()


def test_store_from_url() -> None:
    made = store_from_url("postgres://postgres@127.0.0.1:5432/test?table=cs_x&max_size=3&timeout=2&sslmode=disable")
    assert isinstance(made, PostgresStore)
    assert (made.table, made.max_size, made.timeout) == ("cs_x", 3, 2.0)
    assert made.conninfo == "postgresql://postgres@127.0.0.1:5432/test?sslmode=disable"
    assert repr(made) == "PostgresStore('127.0.0.1:5432/test', table='cs_x')"
    assert isinstance(store_from_url("postgresql://localhost/test"), PostgresStore)


@pytest.mark.parametrize(
    "arguments",
    [{"table": "no-dashes"}, {"max_size": 0}, {"min_size": 5, "max_size": 2}, {"timeout": 0}, {"conninfo": "=bad"}],
)
def test_bad_settings_are_configuration_errors(arguments: dict[str, Any]) -> None:
    from clientstate import ConfigurationError

    with pytest.raises(ConfigurationError):
        PostgresStore(**arguments)


def test_an_error_value_not_an_exception_reaches_the_application(table: str, driver: Driver) -> None:
    store = PostgresStore(PG_URL, table=table, statement_timeout=0.2)
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookie = log_in(driver, binding)
    with admin() as db:  # a statement blocked past statement_timeout is cancelled by the server
        db.autocommit = False
        db.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        slot, lines = driver.request(binding, cookie)
        assert time.monotonic() - started < 2
        db.rollback()
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.STORE_UNAVAILABLE
    assert lines == []
    assert driver.request(binding, cookie)[0].state == Account("ada")
    store.close()
