"""Store kits: one per backend, giving the behavioural suite the same handles on every store.

A :class:`StoreKit` builds a fresh, empty store and knows how to look behind
it — count its rows, edit a stored blob, copy a row under another id — the
way an operator with database access (or an attacker with a dump) could.
Backends add themselves to :data:`KITS`; the suite runs against each.
"""

from __future__ import annotations

import atexit
import itertools
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import redis
from redis.crc import key_slot

from clientstate._core.store import Delegate, Op, Record, Steps, Store
from clientstate.stores import MemoryStore, SQLiteStore
from clientstate.stores.layered import LayeredStore
from clientstate.stores.redis import RedisStore
from tests.server.redis_cluster import shared_cluster


class CountingStore:
    """A store that counts the operations asked of it and delegates them to ``inner``."""

    shared = True

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.ops: list[str] = []

    def steps(self, op: Op) -> Steps:
        self.ops.append(type(op).__name__)
        result = yield Delegate(self.inner, op)
        return result

    def execute(self, command: Any) -> Any:  # never called: every command is a Delegate
        raise AssertionError(command)

    async def aexecute(self, command: Any) -> Any:
        raise AssertionError(command)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, name: str) -> int:
        return self.ops.count(name)


class StoreKit:
    """A backend under test: a fresh store, and direct access to what it holds."""

    name = "abstract"

    def make(self) -> Store:
        raise NotImplementedError

    def rows(self, store: Store) -> int:
        """How many records (sessions and tombstones) the store holds."""
        raise NotImplementedError

    def raw(self, store: Store, sid: bytes) -> Record | None:
        raise NotImplementedError

    def put_raw(self, store: Store, record: Record) -> None:
        """Write ``record`` as is, bypassing the protocol (an operator editing the database)."""
        raise NotImplementedError

    def tamper(self, store: Store, sid: bytes, edit: Callable[[Record], Record]) -> None:
        record = self.raw(store, sid)
        assert record is not None
        self.put_raw(store, edit(record))


class MemoryKit(StoreKit):
    name = "memory"

    def make(self) -> Store:
        return MemoryStore()

    def rows(self, store: Store) -> int:
        assert isinstance(store, MemoryStore)
        return len(store)

    def raw(self, store: Store, sid: bytes) -> Record | None:
        assert isinstance(store, MemoryStore)
        return store._records.get(sid)

    def put_raw(self, store: Store, record: Record) -> None:
        assert isinstance(store, MemoryStore)
        store._records[record.sid] = record


class SQLiteKit(StoreKit):
    name = "sqlite"

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="clientstate-tests-")

    def make(self) -> Store:
        return SQLiteStore(os.path.join(self.directory, f"s{len(os.listdir(self.directory))}.db"))

    @contextmanager
    def _db(self, store: Store) -> Iterator[sqlite3.Connection]:
        assert isinstance(store, SQLiteStore)
        connection = sqlite3.connect(store.path)
        try:
            yield connection
            connection.commit()
        finally:
            connection.close()

    def rows(self, store: Store) -> int:
        with self._db(store) as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM clientstate_sessions").fetchone()[0])
            except sqlite3.OperationalError:  # never used: no table yet
                return 0

    def raw(self, store: Store, sid: bytes) -> Record | None:
        with self._db(store) as db:
            row = db.execute(
                "SELECT sid, version, principal, created_at, absolute_deadline, idle_deadline, last_touch, "
                "schema_version, blob, moved_to FROM clientstate_sessions WHERE sid = ?",
                (sid,),
            ).fetchone()
        return None if row is None else Record(*row)

    def put_raw(self, store: Store, record: Record) -> None:
        with self._db(store) as db:
            db.execute(
                "INSERT OR REPLACE INTO clientstate_sessions (sid, version, principal, created_at, absolute_deadline, "
                "idle_deadline, last_touch, schema_version, blob, moved_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                msgspec.structs.astuple(record),
            )


class LayeredKit(StoreKit):
    """A MemoryStore cache in front of a SQLite primary; direct access goes to the primary."""

    name = "layered"

    def __init__(self) -> None:
        self.primary = SQLiteKit()

    def make(self) -> Store:
        return LayeredStore(MemoryStore(), self.primary.make())

    def _parts(self, store: Store) -> tuple[MemoryStore, Store]:
        assert isinstance(store, LayeredStore)
        assert isinstance(store.cache, MemoryStore)
        return store.cache, store.primary

    def rows(self, store: Store) -> int:
        return self.primary.rows(self._parts(store)[1])

    def raw(self, store: Store, sid: bytes) -> Record | None:
        return self.primary.raw(self._parts(store)[1], sid)

    def put_raw(self, store: Store, record: Record) -> None:
        cache, primary = self._parts(store)
        self.primary.put_raw(primary, record)
        cache._records.pop(record.sid, None)  # an operator editing the database flushes the cache entry too


#: Every backend the behavioural suite runs against (others append themselves).
KITS: dict[str, Callable[[], StoreKit]] = {"memory": MemoryKit, "sqlite": SQLiteKit, "layered": LayeredKit}



# --- Redis: the machine's server (127.0.0.1:6379, db 0 is shared: a prefix of our own) and a local cluster ----

_REDIS_RUN = f"cstest:{os.getpid()}-{os.urandom(3).hex()}:"
# The suite's clocks are frozen near 1_700_000_000 (2023): keys must outlive those deadlines in Redis's real
# time, so the kits keep them expiry_margin seconds longer (the handler judges expiry with its own clock).
_REDIS_MARGIN = max(0, int(time.time()) - 1_700_000_000) + 3600
_redis_made = itertools.count()


def standalone_redis() -> redis.Redis:
    """A plain client of 127.0.0.1:6379; runs bin/ensure-services once if it does not answer (never a skip)."""
    admin = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, socket_connect_timeout=5)
    try:
        admin.ping()
    except redis.ConnectionError:
        subprocess.run(["bin/ensure-services"], cwd=Path(__file__).parents[2], check=True, timeout=300)
        admin.ping()  # still down: the test fails here
    return admin


def delete_redis_keys(prefix: str) -> int:
    """Delete every key of 127.0.0.1:6379 starting with ``prefix`` (SCAN, never FLUSHDB); returns how many."""
    admin = standalone_redis()
    doomed = list(admin.scan_iter(match=f"{prefix}*", count=1000))
    for key in doomed:
        admin.delete(key)
    admin.close()
    return len(doomed)


def redis_record(sid: bytes, admin: redis.Redis, key: bytes) -> Record | None:
    """The record stored at ``key``, read with a plain HMGET (field names as documented in the store)."""
    reply: list[Any] = admin.hmget(key, ["v", "p", "c", "a", "i", "t", "s", "b", "m"])
    if reply[0] is None:
        return None
    v, p, c, a, i, t, s, b, m = reply
    return Record(sid, int(v), None if p is None else p.decode(), int(c), int(a), int(i), int(t), int(s), b, m)


class RedisKit(StoreKit):
    """RedisStore on the machine's Redis; every store of the run under its own prefix, all deleted at exit."""

    name = "redis"
    _cleanup = False

    def __init__(self) -> None:
        self._admins: list[redis.Redis] = []

    def make(self) -> Store:
        standalone_redis().close()
        if not RedisKit._cleanup:
            atexit.register(delete_redis_keys, _REDIS_RUN)
            RedisKit._cleanup = True
        return RedisStore(url="redis://127.0.0.1:6379/0", **self.options())

    @staticmethod
    def options() -> dict[str, Any]:
        return {"prefix": f"{_REDIS_RUN}{next(_redis_made)}:", "expiry_margin": _REDIS_MARGIN}

    def admins(self) -> list[redis.Redis]:
        """A plain client per server (per master, for a cluster)."""
        if not self._admins:
            self._admins = [standalone_redis()]
        return self._admins

    def admin_of(self, key: bytes) -> redis.Redis:
        """The plain client of the server holding ``key``."""
        return self.admins()[0]

    def rows(self, store: Store) -> int:
        assert isinstance(store, RedisStore)
        pattern = f"{store.prefix}s:*"
        return sum(sum(1 for _ in admin.scan_iter(match=pattern, count=1000)) for admin in self.admins())

    def raw(self, store: Store, sid: bytes) -> Record | None:
        assert isinstance(store, RedisStore)
        return redis_record(sid, self.admin_of(store.key(sid)), store.key(sid))

    def put_raw(self, store: Store, record: Record) -> None:
        assert isinstance(store, RedisStore)
        key = store.key(record.sid)
        fields: dict[Any, Any] = {
            "v": record.version, "c": record.created_at, "a": record.absolute_deadline, "i": record.idle_deadline,
            "t": record.last_touch, "s": record.schema_version, "b": record.blob,
        }
        if record.principal is not None:
            fields["p"] = record.principal
        if record.moved_to is not None:
            fields["m"] = record.moved_to
        admin = self.admin_of(key)
        admin.delete(key)
        admin.hset(key, mapping=fields)
        admin.pexpireat(key, (record.deadline + store.expiry_margin) * 1000)


class RedisClusterKit(RedisKit):
    """RedisStore on the test run's three-master Redis Cluster (tests.server.redis_cluster.shared_cluster)."""

    name = "redis-cluster"

    def make(self) -> Store:
        return RedisStore(url=f"redis://{shared_cluster().nodes[0].address}", cluster=True, **self.options())

    def admins(self) -> list[redis.Redis]:
        if not self._admins:
            self._admins = [redis.Redis(host=h, port=p, socket_timeout=5) for h, p in shared_cluster().startup]
        return self._admins

    def admin_of(self, key: bytes) -> redis.Redis:
        slot = key_slot(key)
        for admin in self.admins():
            if slot in served_slots(admin):
                return admin
        raise AssertionError(f"no master serves slot {slot}")


def served_slots(admin: redis.Redis) -> set[int]:
    """The slots the cluster master behind ``admin`` serves (its own line of CLUSTER NODES)."""
    slots: set[int] = set()
    nodes: bytes = admin.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
    for line in nodes.decode().splitlines():
        fields = line.split()
        if "myself" in fields[2].split(","):
            for part in fields[8:]:
                start, _, end = part.partition("-")
                if start.isdigit():
                    slots.update(range(int(start), int(end or start) + 1))
    return slots


KITS.update({"redis": RedisKit, "redis-cluster": RedisClusterKit})


# --- PostgreSQL and MariaDB: the machine's servers; a table of our own per store, dropped when it closes ---

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_URL = "mysql://root@127.0.0.1:3306/test"


def unique_table(engine: str) -> str:
    """A table name no other test (or test run) uses."""
    return f"cst_{engine}_{os.getpid()}_{os.urandom(4).hex()}"


class ServerSQLKit(StoreKit):
    """A SQL store on one of the machine's database servers, looked behind through a plain admin connection."""

    def make(self) -> Store:
        import atexit

        table = unique_table(self.name)
        atexit.register(self.drop, table)  # a store the test never closed
        return self.store(table)

    def store(self, table: str) -> Store:
        raise NotImplementedError

    def admin(self) -> Any:
        """A DB-API connection in autocommit mode (``%s`` parameters), starting the services if they are down."""
        raise NotImplementedError

    def drop(self, table: str) -> None:
        with contextlib_closing(self.admin()) as db:
            db.cursor().execute(f"DROP TABLE IF EXISTS {table}")

    def _query(self, store: Store, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        from clientstate.stores.sql import SQLStore

        assert isinstance(store, SQLStore)
        table = store.table
        with contextlib_closing(self.admin()) as db:
            cursor = db.cursor()
            cursor.execute(sql.replace("{table}", table), params)
            return list(cursor.fetchall()) if cursor.description else []

    def rows(self, store: Store) -> int:
        try:
            return int(self._query(store, "SELECT COUNT(*) FROM {table}")[0][0])
        except self.missing_table:  # never used: no table yet
            return 0

    missing_table: type[Exception] = Exception

    def raw(self, store: Store, sid: bytes) -> Record | None:
        from clientstate.stores.sql import _COLUMNS, _record

        rows = self._query(store, f"SELECT {_COLUMNS} FROM {{table}} WHERE sid = %s", (sid,))
        return _record(rows[0]) if rows else None

    def put_raw(self, store: Store, record: Record) -> None:
        self._query(store, "DELETE FROM {table} WHERE sid = %s", (record.sid,))
        from clientstate.stores.sql import _COLUMNS

        values = ", ".join(["%s"] * 10)
        self._query(store, f"INSERT INTO {{table}} ({_COLUMNS}) VALUES ({values})", msgspec.structs.astuple(record))


def contextlib_closing(thing: Any) -> Any:
    import contextlib

    return contextlib.closing(thing)


def ensure_services() -> None:
    """Start the machine's database servers if they are down (bin/ensure-services); a failure fails the test."""
    import subprocess
    from pathlib import Path

    subprocess.run(["bin/ensure-services"], cwd=Path(__file__).parents[2], check=True, timeout=300)


class PostgresKit(ServerSQLKit):
    """PostgresStore on the machine's PostgreSQL (127.0.0.1:5432, database test)."""

    name = "postgres"

    def __init__(self) -> None:
        import psycopg

        self.missing_table = psycopg.errors.UndefinedTable

    def store(self, table: str) -> Store:
        from clientstate.stores.postgres import PostgresStore

        kit = self

        class DroppingPostgresStore(PostgresStore):
            def close(self) -> None:
                super().close()
                kit.drop(self.table)

        return DroppingPostgresStore(PG_URL, table=table)

    def admin(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            ensure_services()
            return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


class MySQLKit(ServerSQLKit):
    """MySQLStore on the machine's MariaDB (127.0.0.1:3306, root, database test)."""

    name = "mysql"

    def __init__(self) -> None:
        import pymysql

        self.missing_table = pymysql.err.ProgrammingError

    def store(self, table: str) -> Store:
        from clientstate.stores.mysql import MySQLStore

        kit = self

        class DroppingMySQLStore(MySQLStore):
            def close(self) -> None:
                super().close()
                kit.drop(self.table)

        return DroppingMySQLStore.from_url(f"{MYSQL_URL}?table={table}")

    def admin(self) -> Any:
        import pymysql

        options: dict[str, Any] = {
            "host": "127.0.0.1", "user": "root", "database": "test", "autocommit": True, "connect_timeout": 5,
            "binary_prefix": True, "sql_mode": "ANSI_QUOTES,STRICT_TRANS_TABLES",
        }
        try:
            return pymysql.connect(**options)
        except pymysql.err.OperationalError:
            ensure_services()
            return pymysql.connect(**options)


KITS.update({"postgres": PostgresKit, "mysql": MySQLKit})
