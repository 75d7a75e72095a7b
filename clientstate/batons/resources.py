"""Resources a stream can pin, and ready adapters for ``sqlite3`` and psycopg 3.

A **resource** is anything with ``rollback()`` and ``close()``: the registry
ends a stream (closed, killed, reaped, shut down) by calling ``rollback()``
and then, even if that failed, ``close()``. :class:`Resource` is the blocking
form, :class:`AsyncResource` the form whose methods return awaitables.
``sqlite3.Connection``, ``psycopg.Connection`` and ``psycopg.AsyncConnection``
already are resources; a connection borrowed from a pool becomes one by
wrapping it in an object whose ``close()`` gives it back to the pool.

Streams never receive a ready resource: ``open`` takes an **acquirer**, a
callable ``acquire(read_only: bool) -> resource`` (or an awaitable of one, for
the async registry), and calls it only after the scope's cap has been
reserved. The acquirers here:

* :func:`sqlite3_acquirer` → a :class:`SQLiteResource`: a dedicated
  connection inside an open ``BEGIN`` transaction, guarded so that SQL run
  on it cannot end the transaction or reach other files;
* :func:`psycopg_acquirer` / :func:`psycopg_async_acquirer` → a psycopg 3
  connection with autocommit off, whose transactions are ``READ ONLY`` for
  read-only streams (``pip install 'clientstate[postgres]'``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, Final, Protocol

from clientstate._core.config import check_callable, check_type
from clientstate._core.errors import ConfigurationError
from clientstate._core.value import Value

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "AsyncResource",
    "QueryResult",
    "Resource",
    "SQLiteResource",
    "psycopg_acquirer",
    "psycopg_async_acquirer",
    "sqlite3_acquirer",
]


class Resource(Protocol):
    """A blocking resource: ``rollback()`` then ``close()`` end it (return values are ignored)."""

    def rollback(self) -> object: ...

    def close(self) -> object: ...


class AsyncResource(Protocol):
    """An async resource: ``rollback()`` and ``close()`` return awaitables."""

    def rollback(self) -> Awaitable[object]: ...

    def close(self) -> Awaitable[object]: ...


SQLParams = Sequence[object] | Mapping[str, object]

# What the guard refuses: ending the pinned transaction (BEGIN/COMMIT/ROLLBACK),
# other database files (ATTACH/DETACH), and pragmas (query_only, journal modes, ...).
_GUARDED: Final = frozenset({sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH,
                             sqlite3.SQLITE_PRAGMA})
_BEGIN: Final = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")
_PROGRESS_STEPS: Final = 1000


def _guard(action: int, *_args: object) -> int:
    return sqlite3.SQLITE_DENY if action in _GUARDED else sqlite3.SQLITE_OK


class QueryResult(Value, frozen=True):
    """What :meth:`SQLiteResource.query` read. Frozen.

    Attributes:
        columns: the column names (empty for statements without a result).
        rows: the rows, each a tuple of ``int | float | str | bytes | None``.
        truncated: more rows were available than ``max_rows``.
        rowcount: rows changed by an ``INSERT``/``UPDATE``/``DELETE``, else -1.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool
    rowcount: int


class SQLiteResource:
    """A ``sqlite3`` connection pinned inside an open transaction (made by :func:`sqlite3_acquirer`).

    The connection is in autocommit mode at the driver level
    (``isolation_level=None``) with an explicit ``BEGIN``, so what is
    uncommitted is exactly what :meth:`rollback` discards. With ``guard`` the
    connection's authorizer refuses transaction control, ``ATTACH``/``DETACH``
    and pragmas in the SQL it runs; :meth:`commit` lifts it for its own
    ``COMMIT`` only. Read-only streams run with ``PRAGMA query_only = ON``
    (set before the guard, which keeps it from being switched off).

    Attributes:
        connection: the ``sqlite3.Connection`` (usable from any thread, one at
            a time: a stream has one request in flight at most).
        read_only: whether writes are refused.
        guarded: whether the authorizer guard is installed.
        statement_timeout: seconds one :meth:`query` may run before it is
            interrupted (``None``: no limit).
    """

    __slots__ = ("_deadline", "connection", "guarded", "read_only", "statement_timeout")

    def __init__(
        self, connection: sqlite3.Connection, *, read_only: bool, guarded: bool, statement_timeout: float | None
    ) -> None:
        self.connection = connection
        self.read_only = read_only
        self.guarded = guarded
        self.statement_timeout = statement_timeout
        self._deadline = float("inf")
        if statement_timeout is not None:
            connection.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
        if guarded:
            connection.set_authorizer(_guard)

    def _past_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    @property
    def in_transaction(self) -> bool:
        """Whether the pinned transaction is still open (SQLite ends it itself after some errors)."""
        return self.connection.in_transaction

    def query(self, sql: str, params: SQLParams = (), *, max_rows: int = 1000) -> QueryResult:
        """Run one SQL statement and read at most ``max_rows`` rows of its result.

        Args:
            sql: one statement; ``?`` or ``:name`` placeholders.
            params: a sequence (for ``?``) or a mapping (for ``:name``).
            max_rows: rows read at most; :attr:`QueryResult.truncated` says
                whether more were available.

        Raises:
            sqlite3.Error: the statement failed, was refused by the guard
                (``sqlite3.DatabaseError: not authorized``), wrote on a
                read-only stream, or ran past ``statement_timeout``
                (``sqlite3.OperationalError: interrupted``). After some errors
                SQLite ends the transaction itself: check :attr:`in_transaction`.
        """
        if self.statement_timeout is not None:
            self._deadline = time.monotonic() + self.statement_timeout
        try:
            cursor = self.connection.execute(sql, params)
            rows = cursor.fetchmany(max_rows + 1)
        finally:
            self._deadline = float("inf")
        columns = tuple(d[0] for d in cursor.description) if cursor.description else ()
        return QueryResult(columns, tuple(rows[:max_rows]), len(rows) > max_rows, cursor.rowcount)

    def commit(self) -> None:
        """Commit the pinned transaction (the guard is lifted for this ``COMMIT`` only).

        Raises:
            sqlite3.Error: the commit failed (for example ``database is
                locked``); the transaction may still be open, and ending the
                stream rolls it back.
        """
        self._unguarded(self.connection.commit)

    def rollback(self) -> None:
        """Roll back the pinned transaction (nothing happens if it is already over)."""
        self._unguarded(self.connection.rollback)

    def _unguarded(self, end: Callable[[], None]) -> None:
        if not self.guarded:
            end()
            return
        self.connection.set_authorizer(None)
        try:
            end()
        finally:
            self.connection.set_authorizer(_guard)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def sqlite3_acquirer(
    database: str | PathLike[str],
    *,
    timeout: float = 5.0,
    begin: str = "DEFERRED",
    uri: bool = False,
    guard: bool = True,
    statement_timeout: float | None = None,
    setup: Callable[[sqlite3.Connection], object] | None = None,
) -> Callable[[bool], SQLiteResource]:
    """An acquirer of :class:`SQLiteResource`: one new connection per stream, inside ``BEGIN``.

    Args:
        database: the database file (or URI with ``uri=True``). Every stream
            needs its own connection, so a private ``":memory:"`` database is
            refused; use a file (WAL mode lets readers run beside a writer).
        timeout: seconds a statement waits for another connection's lock.
        begin: ``"DEFERRED"`` (locks taken when needed), ``"IMMEDIATE"`` (the
            write lock at once) or ``"EXCLUSIVE"``; read-only streams always
            begin ``DEFERRED``.
        uri: ``database`` is a ``file:`` URI.
        guard: refuse transaction control, ``ATTACH``/``DETACH`` and pragmas
            in the SQL the stream runs (see :class:`SQLiteResource`).
        statement_timeout: seconds a :meth:`SQLiteResource.query` may run
            before it is interrupted, or ``None`` for no limit. A bound
            matters: a stream is busy while a statement runs, and the reaper
            never touches a busy stream.
        setup: called with each new connection before ``BEGIN`` and before
            the guard (register functions, set pragmas).

    Returns:
        ``acquire(read_only) -> SQLiteResource``, for ``Streams.open``.

    Raises:
        ConfigurationError: an argument of the wrong type or value.
    """
    check_type(database, (str, PathLike), "database")
    if str(database) == ":memory:":
        raise ConfigurationError(
            "sqlite3_acquirer: each stream opens its own connection, and a private ':memory:' database "
            "is not shared between connections; use a file path"
        )
    if begin not in _BEGIN:
        raise ConfigurationError(f"begin must be one of {', '.join(_BEGIN)}, got {begin!r}")
    if statement_timeout is not None and (
        isinstance(statement_timeout, bool) or not isinstance(statement_timeout, int | float)
        or not 0 < statement_timeout < float("inf")
    ):
        raise ConfigurationError(f"statement_timeout must be a positive number of seconds or None, "
                                 f"got {statement_timeout!r}")
    if setup is not None:
        check_callable(setup, "setup", "setup(connection)")

    def acquire(read_only: bool) -> SQLiteResource:
        connection = sqlite3.connect(database, timeout=timeout, isolation_level=None, check_same_thread=False,
                                     uri=uri)
        try:
            if setup is not None:
                setup(connection)
            if read_only:
                connection.execute("PRAGMA query_only = ON")
            connection.execute(f"BEGIN {'DEFERRED' if read_only else begin}")
            return SQLiteResource(connection, read_only=read_only, guarded=guard, statement_timeout=statement_timeout)
        except BaseException:
            connection.close()
            raise

    return acquire


def _psycopg_options(conninfo: str, connect: Mapping[str, Any]) -> dict[str, Any]:
    check_type(conninfo, str, "conninfo", "a libpq connection string such as 'host=127.0.0.1 dbname=app'")
    if "autocommit" in connect:
        raise ConfigurationError("a stream's connection must hold a transaction: do not pass autocommit")
    return {"conninfo": conninfo, **connect, "autocommit": False}


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is installed wherever the tests run
        raise ConfigurationError("the psycopg adapter needs psycopg 3: pip install 'clientstate[postgres]'") from None
    return psycopg


def psycopg_acquirer(conninfo: str = "", **connect: Any) -> Callable[[bool], psycopg.Connection[Any]]:
    """An acquirer of blocking psycopg 3 connections: one new connection per stream.

    Each connection has autocommit off, so its first statement opens the
    transaction the stream pins, ``READ ONLY`` when the stream is read-only.
    Commit with ``stream.resource.commit()`` before closing the stream;
    anything not committed is rolled back when the stream ends. A statement
    bound (``options="-c statement_timeout=5000"``) keeps streams from
    staying busy forever.

    Args:
        conninfo: a libpq connection string.
        connect: more keyword arguments for ``psycopg.connect`` (not
            ``autocommit``).

    Returns:
        ``acquire(read_only) -> psycopg.Connection``, for ``Streams.open``.

    Raises:
        ConfigurationError: psycopg is not installed, or a bad argument.
    """
    options = _psycopg_options(conninfo, connect)
    module = _psycopg()

    def acquire(read_only: bool) -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] = module.connect(**options)
        connection.read_only = read_only
        return connection

    return acquire


def psycopg_async_acquirer(
    conninfo: str = "", **connect: Any
) -> Callable[[bool], Awaitable[psycopg.AsyncConnection[Any]]]:
    """An acquirer of ``psycopg.AsyncConnection`` for :class:`~clientstate.batons.AsyncStreams`.

    The async form of :func:`psycopg_acquirer` (same arguments and rules).
    """
    options = _psycopg_options(conninfo, connect)
    module = _psycopg()

    async def acquire(read_only: bool) -> psycopg.AsyncConnection[Any]:
        connection: psycopg.AsyncConnection[Any] = await module.AsyncConnection.connect(**options)
        await connection.set_read_only(read_only)
        return connection

    return acquire
