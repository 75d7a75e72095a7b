"""``PostgresStore``: sessions in PostgreSQL through psycopg 3, blocking and async, over connection pools.

Install with ``pip install 'clientstate[postgres]'`` (``psycopg[binary]`` and
``psycopg-pool``). The statements are the SQL store core's
(:mod:`clientstate.stores.sql`) in the PostgreSQL dialect; this module adds
the pools, the timeouts and the sweep's lock.

**Schema.** Created on first use, in one transaction under an advisory lock
(so app servers starting together do not race on ``CREATE TABLE``); every
statement is ``IF NOT EXISTS``, so an existing table is left alone. With the
default table name::

    CREATE TABLE IF NOT EXISTS clientstate_sessions (
        sid bytea PRIMARY KEY, version bigint NOT NULL, principal text,
        created_at bigint NOT NULL, absolute_deadline bigint NOT NULL,
        idle_deadline bigint NOT NULL, last_touch bigint NOT NULL,
        schema_version integer NOT NULL, "blob" bytea NOT NULL, moved_to bytea
    ) WITH (fillfactor = 80);
    CREATE INDEX IF NOT EXISTS clientstate_sessions_idle_deadline
        ON clientstate_sessions (idle_deadline);
    CREATE INDEX IF NOT EXISTS clientstate_sessions_principal
        ON clientstate_sessions (principal) WHERE principal IS NOT NULL;

Times are seconds since the Unix epoch (``bigint``), so the sweep's range on
``idle_deadline`` is a plain index scan. To create the table ahead of time
(an application role without ``CREATE``), run these statements yourself.

**Operations.** Each is one statement in autocommit mode: a create is
``INSERT … ON CONFLICT (sid) DO NOTHING``; an update is compare-and-set,
``UPDATE … WHERE sid = %s AND version = %s …`` (zero rows: one ``SELECT`` tells
a conflict from a session gone); a touch is ``UPDATE … SET idle_deadline =
LEAST(%s, absolute_deadline) …`` and never rewrites the state.

**Sweep.** One statement, so one transaction::

    WITH sweeper AS (SELECT pg_try_advisory_xact_lock(<key>) AS locked)
    DELETE FROM clientstate_sessions WHERE (SELECT locked FROM sweeper) AND sid = ANY(ARRAY(
        SELECT sid FROM clientstate_sessions WHERE idle_deadline <= <now>
        ORDER BY idle_deadline LIMIT <limit> FOR UPDATE SKIP LOCKED))

The transaction-scoped advisory lock (``<key>``: a 64-bit number derived
from the table name) is taken without waiting: while one app server sweeps,
another's sweep deletes nothing and returns 0, and the lock ends with the
statement. The batch is chosen on the ``idle_deadline`` index and deleted
through the primary key; rows locked by a request in flight are skipped
(``SKIP LOCKED``), never waited for.

**Pools and timeouts.** A ``psycopg_pool.ConnectionPool`` for blocking use
(WSGI) and an ``AsyncConnectionPool`` for ``await`` (ASGI), each opened on first
use, so a WSGI app never opens the async pool and vice versa. An async pool
belongs to the event loop that opened it; the store keeps one per running loop
and closes it when that loop finishes (``asyncio.run`` cancelling its tasks) or
on :meth:`PostgresStore.aclose` (a connection attempt still under way when its
loop ends is closed when garbage-collected). Every wait is
bounded: ``connect_timeout`` (libpq, whole seconds), the pool's ``timeout``
for a free connection, ``statement_timeout`` (set on every connection). A
connection the server closed while it was idle (a restart) is noticed before
use, without a round trip, and the pool's other idle connections are checked
then, so the first requests after a restart do not fail. Any psycopg error —
refused, timed out, reset — is raised as :class:`~clientstate.StoreUnavailable`,
never echoing the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from clientstate._core.errors import ConfigurationError
from clientstate.stores._server import closed_by_server, seconds, size, unavailable, url_options
from clientstate.stores.sql import DEFAULT_TABLE, Dialect, SQLStore, Statement, Transaction, fetched

__all__ = ["POSTGRESQL", "PostgresStore"]

_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS {table} (sid bytea PRIMARY KEY, version bigint NOT NULL, principal text, "
    "created_at bigint NOT NULL, absolute_deadline bigint NOT NULL, idle_deadline bigint NOT NULL, "
    'last_touch bigint NOT NULL, schema_version integer NOT NULL, "blob" bytea NOT NULL, moved_to bytea) '
    "WITH (fillfactor = 80)"
)
_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS {table}_idle_deadline ON {table} (idle_deadline)",
    "CREATE INDEX IF NOT EXISTS {table}_principal ON {table} (principal) WHERE principal IS NOT NULL",
)
_SWEEP: Final = (
    "WITH sweeper AS (SELECT pg_try_advisory_xact_lock(?) AS locked) "
    "DELETE FROM {table} WHERE (SELECT locked FROM sweeper) AND sid = ANY(ARRAY("
    "SELECT sid FROM {table} WHERE idle_deadline <= ? ORDER BY idle_deadline LIMIT ? FOR UPDATE SKIP LOCKED))"
)
_PUT: Final = (
    "INSERT INTO {table} (sid, version, principal, created_at, absolute_deadline, idle_deadline, last_touch, "
    'schema_version, "blob", moved_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO UPDATE '

    "SET version = excluded.version, principal = excluded.principal, created_at = excluded.created_at, "
    "absolute_deadline = excluded.absolute_deadline, idle_deadline = excluded.idle_deadline, "
    'last_touch = excluded.last_touch, schema_version = excluded.schema_version, "blob" = excluded."blob", '
    "moved_to = excluded.moved_to WHERE {table}.version = ?"
)

#: The PostgreSQL dialect of the SQL store core. The sweep's placeholders: lock key, now, limit.
POSTGRESQL: Final = Dialect(
    name="postgresql", placeholder="%s", insert_if_absent=("INSERT INTO", " ON CONFLICT (sid) DO NOTHING"),
    least="LEAST", ddl=(_TABLE, *_INDEXES), sweep=_SWEEP, put_if_version=_PUT,
)

_BEGIN: Final = Statement("BEGIN")
_COMMIT: Final = Statement("COMMIT")
_SET_TIMEOUT: Final = "SELECT set_config('statement_timeout', %s, false)"
_STORE_OPTIONS: Final = ("table", "min_size", "max_size", "timeout", "connect_timeout", "statement_timeout")


def lock_key(purpose: str, table: str) -> int:
    """The advisory-lock key (a signed 64-bit number) for ``purpose`` (``"sweep"``, ``"schema"``) on ``table``."""
    digest = hashlib.sha256(f"clientstate.{purpose}:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore(SQLStore):
    """Sessions in a PostgreSQL table, through psycopg 3 connection pools (see the module docstring).

    Args:
        conninfo: a libpq connection string or URI (``"host=… dbname=…"`` or
            ``"postgresql://user@host:5432/db"``); empty: libpq's defaults and
            ``PG*`` environment variables.
        table: the table name (default ``clientstate_sessions``), created on first use.
        min_size: connections each pool keeps open even when idle (default 0: opened on demand).
        max_size: the most connections each pool opens (default 10); at
            least ``min_size`` and at least 1.
        timeout: seconds a request waits for a free connection, including
            while the server is unreachable, before ``StoreUnavailable`` (default 5).
        connect_timeout: seconds one connection attempt may take (libpq's
            ``connect_timeout``, rounded to whole seconds, at least 2; default 5).
        statement_timeout: seconds one statement may run on the server
            (PostgreSQL's ``statement_timeout``, set on each connection; default 5).

    Raises:
        ConfigurationError: a bad table name, size or timeout, or a
            connection string libpq cannot parse.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        table: str = DEFAULT_TABLE,
        min_size: int = 0,
        max_size: int = 10,
        timeout: float = 5.0,
        connect_timeout: float = 5.0,
        statement_timeout: float = 5.0,
    ) -> None:
        super().__init__(POSTGRESQL, table)
        if not isinstance(conninfo, str):
            raise ConfigurationError(f"conninfo must be a str, got {type(conninfo).__name__}")
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error:
            raise ConfigurationError("PostgresStore: libpq cannot parse the connection string") from None
        self.min_size = size(min_size, "min_size")
        self.max_size = size(max_size, "max_size")
        if self.max_size < max(1, self.min_size):
            raise ConfigurationError(f"max_size ({max_size}) must be at least 1 and at least min_size ({min_size})")
        self.timeout = seconds(timeout, "timeout", 0.1, 600)
        self.connect_timeout = seconds(connect_timeout, "connect_timeout", 1, 600)
        self.statement_timeout = seconds(statement_timeout, "statement_timeout", 0.001, 3600)
        self.conninfo = conninfo
        self._password = str(params.get("password") or "")
        self._where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
        self._kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": max(2, round(self.connect_timeout))}
        self._sweep_key = lock_key("sweep", self.table)
        self._schema = (_BEGIN, Statement("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema", self.table),)),
                        *(Statement(sql) for sql in self.ddl), _COMMIT)
        self._ready = False
        self._lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._apools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[psycopg.AsyncConnection[Any]]] = {}
        self._aconnections: dict[asyncio.AbstractEventLoop, weakref.WeakSet[psycopg.AsyncConnection[Any]]] = {}
        self._guards: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """The store a ``postgresql://`` (or ``postgres://``) URL names, for :func:`~clientstate.stores.store_from_url`.

        ``postgresql://user:password@host:port/dbname?table=…&max_size=…``: the
        query may set ``table``, ``min_size``, ``max_size``, ``timeout``,
        ``connect_timeout`` and ``statement_timeout`` (as the constructor's
        arguments); any other query parameter is libpq's (``sslmode=require``…).

        Raises:
            ConfigurationError: another scheme, or a bad option (as the constructor).
        """
        conninfo, options = url_options(url, ("postgresql", "postgres"), _STORE_OPTIONS)
        return cls(conninfo, **options)

    # --- commands -----------------------------------------------------------------------------

    def sweep_command(self, now: int, limit: int) -> Statement:
        """The sweep statement: one transaction under this table's advisory lock (see the module docstring)."""
        return Statement(self._sweep, (self._sweep_key, now, limit), "rowcount")

    def _plan(self, command: Statement | Transaction) -> tuple[tuple[Statement, ...], Callable[[list[Any]], Any]]:
        """The statements to run on one connection for ``command``, and what makes its reply of their results."""
        body = (_BEGIN, *command.statements, _COMMIT) if isinstance(command, Transaction) else (command,)
        schema = () if self._ready else self._schema
        start = len(schema) + (1 if isinstance(command, Transaction) else 0)

        def reply(results: list[Any]) -> Any:
            self._ready = True
            return results[start:-1] if isinstance(command, Transaction) else results[-1]

        return (*schema, *body), reply

    def execute(self, command: Any) -> Any:
        """Perform a :class:`Statement` or :class:`Transaction` on a connection of the blocking pool.

        Raises:
            StoreUnavailable: no connection within ``timeout``, the server
                refused, dropped the connection or cancelled a statement past
                ``statement_timeout`` — any psycopg error.
        """
        with self._failures(), self._sync_pool().connection() as connection:
            statements, reply = self._plan(command)
            return reply([fetched(connection.execute(s.sql, s.params or None), s.fetch) for s in statements])

    async def aexecute(self, command: Any) -> Any:
        """Perform a :class:`Statement` or :class:`Transaction` on a connection of this event loop's async pool.

        Raises:
            StoreUnavailable: as :meth:`execute`.
        """
        with self._failures():
            async with (await self._async_pool()).connection() as connection:
                statements, reply = self._plan(command)
                return reply([await _awaited(fetched(await connection.execute(s.sql, s.params or None), s.fetch))
                              for s in statements])

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            error = unavailable(f"PostgreSQL {self._where}", exc, self._password)
            raise error from error.__cause__

    # --- pools --------------------------------------------------------------------------------

    def _pool_options(self) -> dict[str, Any]:
        return {
            "kwargs": self._kwargs,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.timeout,
            "reconnect_timeout": max(self.timeout, 2 * self.connect_timeout),
            "name": f"clientstate-{self.table}",
        }

    def _sync_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        self.conninfo, open=True, configure=self._configure, check=self._check, **self._pool_options()
                    )
                pool = self._pool
        return pool

    async def _async_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is None:
            with self._lock:
                self._forget_ended_loops()
                pool = self._apools.get(loop)
                if pool is None:
                    pool = AsyncConnectionPool(
                        self.conninfo, open=False, configure=self._aconfigure, check=self._acheck,
                        **self._pool_options(),
                    )
                    self._apools[loop] = pool
                    self._aconnections[loop] = weakref.WeakSet()
                    self._guards[loop] = loop.create_task(self._guard(loop, pool), name=f"{pool.name}-closer")
        if pool.closed:
            await pool.open()  # idempotent: a concurrent first request may be opening it too
        return pool

    async def _guard(self, loop: asyncio.AbstractEventLoop, pool: AsyncConnectionPool[Any]) -> None:
        """Wait until cancelled — by :meth:`aclose`, or when the event loop finishes (``asyncio.run``) — then close.

        The pool's own tasks must stop before their loop does; this task closes
        the pool at the loop's end, so an application that never calls
        :meth:`aclose` still shuts down cleanly.
        """
        try:
            await loop.create_future()
        finally:
            with self._lock:
                if self._apools.get(loop) is pool:
                    del self._apools[loop]
                    self._aconnections.pop(loop, None)
                    self._guards.pop(loop, None)
            await pool.close()

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(_SET_TIMEOUT, (f"{round(self.statement_timeout * 1000)}ms",))

    async def _aconfigure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._aconnections[asyncio.get_running_loop()].add(connection)
        await connection.execute(_SET_TIMEOUT, (f"{round(self.statement_timeout * 1000)}ms",))

    def _check(self, connection: psycopg.Connection[Any]) -> None:
        """Before a connection is handed out: if the server closed it, check every idle one, then fail this one."""
        if closed_by_server(connection.fileno()):
            self._sync_pool().check()
            ConnectionPool.check_connection(connection)

    async def _acheck(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if closed_by_server(connection.fileno()):
            await (await self._async_pool()).check()
            await AsyncConnectionPool.check_connection(connection)

    def _forget_ended_loops(self) -> None:
        """Drop the async pools of event loops that have closed, closing their connections (caller holds the lock)."""
        for loop in [loop for loop in self._apools if loop.is_closed()]:
            del self._apools[loop]
            self._guards.pop(loop, None)
            for connection in list(self._aconnections.pop(loop, ())):
                if not connection.closed:
                    connection.pgconn.finish()  # libpq's close: synchronous, needs no event loop

    def close(self) -> None:
        """Close the blocking pool, and the connections of async pools whose event loop has ended.

        The store stays usable: a later operation opens a new pool.
        """
        with self._lock:
            pool, self._pool = self._pool, None
            self._forget_ended_loops()
        if pool is not None:
            pool.close()

    async def aclose(self) -> None:
        """Close this event loop's async pool (and what :meth:`close` closes)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._apools.pop(loop, None)
            self._aconnections.pop(loop, None)
            guard = self._guards.pop(loop, None)
        if guard is not None:
            guard.cancel()
        if pool is not None:
            await pool.close()
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r}, table={self.table!r})"


async def _awaited(reply: Any) -> Any:
    return await reply if inspect.isawaitable(reply) else reply
