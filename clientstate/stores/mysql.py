"""``MySQLStore``: sessions in MariaDB or MySQL through PyMySQL, over a small connection pool.

Install with ``pip install 'clientstate[mysql]'`` (PyMySQL). The statements
are the SQL store core's (:mod:`clientstate.stores.sql`) in the MariaDB/MySQL
dialect; this module adds the pool, the timeouts and the sweep's lock. Tested
against MariaDB 10.11; the SQL is also valid on MySQL 8.

**Schema.** Created on first use with one ``CREATE TABLE IF NOT EXISTS``
(indexes inline, since MySQL has no ``CREATE INDEX IF NOT EXISTS``). With the
default table name::

    CREATE TABLE IF NOT EXISTS clientstate_sessions (
        sid VARBINARY(16) NOT NULL, version BIGINT NOT NULL, principal BLOB NULL,
        created_at BIGINT NOT NULL, absolute_deadline BIGINT NOT NULL,
        idle_deadline BIGINT NOT NULL, last_touch BIGINT NOT NULL,
        schema_version INT NOT NULL, "blob" LONGBLOB NOT NULL, moved_to VARBINARY(16) NULL,
        PRIMARY KEY (sid),
        INDEX clientstate_sessions_idle_deadline (idle_deadline),
        INDEX clientstate_sessions_principal (principal(255))
    ) ENGINE = InnoDB

``principal`` is binary, so principals compare exactly (no case folding, no
ignored trailing spaces, as text collations would); it is stored as UTF-8
and read back as text. MariaDB and MySQL have no partial indexes, so the
principal index also holds the anonymous sessions' NULLs. Connections run
with ``ANSI_QUOTES`` (``"blob"`` is a reserved word, quoted the standard way),
``READ COMMITTED`` (no gap locks between the sweep and new sessions) and
``CLIENT_FOUND_ROWS`` (an ``UPDATE`` reports the rows it matched, so a touch
that changes nothing still finds its session).

**Operations.** Each is one statement in autocommit mode: a create is
``INSERT IGNORE``; an update is compare-and-set, ``UPDATE … WHERE sid = %s AND
version = %s …``; a touch is ``UPDATE … SET idle_deadline = LEAST(%s,
absolute_deadline) …``. A batch save (``PutAll``) is one transaction of an
``INSERT IGNORE`` or a versioned ``UPDATE`` per record.

**Sweep.** One app server at a time::

    SELECT GET_LOCK('clientstate.sweep.<hash of database and table>', 0)
    DELETE FROM clientstate_sessions WHERE idle_deadline <= <now> ORDER BY idle_deadline LIMIT <limit>
    DO RELEASE_LOCK('clientstate.sweep.<…>')

``GET_LOCK`` does not wait: while another session holds the lock, the sweep
deletes nothing and returns 0. The ``DELETE`` walks the ``idle_deadline``
index; the lock is released right after it (or by the server, should the
connection die).

**Blocking and async.** PyMySQL is blocking; async use (ASGI) performs each
command in a worker thread (``asyncio.to_thread``), sharing one pool — no
event-loop-bound state, and the same code path for WSGI and ASGI. The pool
keeps up to ``max_size`` connections; a request waits at most ``timeout`` for
one. Every wait is bounded: ``connect_timeout``, ``read_timeout`` and
``write_timeout`` (seconds, on the socket) and ``lock_wait_timeout`` (InnoDB's
row-lock wait). A connection the server closed while idle is noticed before
use, without a round trip. Any driver or socket error is raised as
:class:`~clientstate.StoreUnavailable`, never echoing the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import pymysql
from pymysql.constants import CLIENT
from pymysql.cursors import Cursor

from clientstate._core.errors import ConfigurationError, StoreUnavailable
from clientstate._core.store import Op, PutAll, Steps
from clientstate.stores._server import closed_by_server, seconds, size, unavailable, url_options
from clientstate.stores.sql import DEFAULT_TABLE, Dialect, SQLStore, Statement, Transaction, _row, fetched

__all__ = ["MYSQL", "MySQLStore"]

_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS {table} (sid VARBINARY(16) NOT NULL, version BIGINT NOT NULL, "
    "principal BLOB NULL, created_at BIGINT NOT NULL, absolute_deadline BIGINT NOT NULL, "
    "idle_deadline BIGINT NOT NULL, last_touch BIGINT NOT NULL, schema_version INT NOT NULL, "
    '"blob" LONGBLOB NOT NULL, moved_to VARBINARY(16) NULL, PRIMARY KEY (sid), '
    "INDEX {table}_idle_deadline (idle_deadline), INDEX {table}_principal (principal(255))) ENGINE = InnoDB"
)

#: The MariaDB/MySQL dialect of the SQL store core (its sweep runs under GET_LOCK: :meth:`MySQLStore.sweep_command`).
MYSQL: Final = Dialect(
    name="mysql", placeholder="%s", insert_if_absent=("INSERT IGNORE INTO", ""), least="LEAST", ddl=(_TABLE,),
    sweep="DELETE FROM {table} WHERE idle_deadline <= ? ORDER BY idle_deadline LIMIT ?",
)

_STORE_OPTIONS: Final = (
    "table", "max_size", "timeout", "connect_timeout", "read_timeout", "write_timeout", "lock_wait_timeout",
)


class LockedStatement(Statement, frozen=True):
    """A statement performed only while this session holds the server lock ``lock`` (``GET_LOCK(lock, 0)``).

    Its reply is the statement's, or ``0`` if another session holds the lock.
    """

    lock: str = ""


class MySQLStore(SQLStore):
    """Sessions in a MariaDB or MySQL table, through PyMySQL (see the module docstring).

    Args:
        host: the server's host name or address (default ``127.0.0.1``).
        port: its TCP port (default 3306).
        user: the user name (default ``root``).
        password: the password (default empty).
        database: the database (schema) holding the table (default ``test``).
        table: the table name (default ``clientstate_sessions``), created on first use.
        max_size: the most connections the pool opens (default 10, at least 1).
        timeout: seconds a request waits for a free connection before
            ``StoreUnavailable`` (default 5).
        connect_timeout: seconds to connect and log in (default 5).
        read_timeout: seconds to wait for a reply (default 10).
        write_timeout: seconds to wait for a send (default 10).
        lock_wait_timeout: seconds a statement waits for a row lock held by
            another (InnoDB's ``innodb_lock_wait_timeout``, whole seconds; default 5).

    Raises:
        ConfigurationError: a bad table name, size, timeout, port, or a
            non-text host, user, password or database.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3306,
        *,
        user: str = "root",
        password: str = "",
        database: str = "test",
        table: str = DEFAULT_TABLE,
        max_size: int = 10,
        timeout: float = 5.0,
        connect_timeout: float = 5.0, read_timeout: float = 10.0, write_timeout: float = 10.0,
        lock_wait_timeout: float = 5.0,
    ) -> None:
        super().__init__(MYSQL, table)
        for name, value in (("host", host), ("user", user), ("password", password), ("database", database)):
            if not isinstance(value, str):
                raise ConfigurationError(f"MySQLStore {name} must be a str, got {type(value).__name__}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port must be a TCP port number, got {port!r}")
        self.host, self.port, self.user, self.database = host, port, user, database
        self._password = password
        self.max_size = size(max_size, "max_size")
        if self.max_size < 1:
            raise ConfigurationError("max_size must be at least 1")
        self.timeout = seconds(timeout, "timeout", 0.1, 600)
        self.connect_timeout = seconds(connect_timeout, "connect_timeout", 0.1, 600)
        self.read_timeout = seconds(read_timeout, "read_timeout", 0.1, 3600)
        self.write_timeout = seconds(write_timeout, "write_timeout", 0.1, 3600)
        self.lock_wait_timeout = max(1, round(seconds(lock_wait_timeout, "lock_wait_timeout", 1, 3600)))
        self._where = f"MySQL {host}:{port}/{database}"
        digest = hashlib.sha256(f"{database}.{self.table}".encode()).hexdigest()[:32]
        self._sweep_lock = f"clientstate.sweep.{digest}"
        # The table name is a checked identifier (check_table_name); values are always parameters.
        self._put_update = (
            f"UPDATE {self.table} SET version = %s, principal = %s, created_at = %s, absolute_deadline = %s, "  # noqa: S608
            'idle_deadline = %s, last_touch = %s, schema_version = %s, "blob" = %s, moved_to = %s '
            "WHERE sid = %s AND version = %s"
        )
        self._ready = False
        self._idle: list[tuple[pymysql.Connection[Cursor], int]] = []
        self._slots = threading.BoundedSemaphore(self.max_size)
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MySQLStore:
        """The store a ``mysql://`` (or ``mariadb://``) URL names, for :func:`~clientstate.stores.store_from_url`.

        ``mysql://user:password@host:port/database?table=…&max_size=…``
        (defaults: ``root``, no password, ``127.0.0.1``, 3306, ``test``); the
        query may set ``table``, ``max_size``, ``timeout``, ``connect_timeout``,
        ``read_timeout``, ``write_timeout`` and ``lock_wait_timeout``, as the
        constructor's arguments.

        Raises:
            ConfigurationError: another scheme, an unknown query parameter, or a bad option.
        """
        rest, options = url_options(url, ("mysql", "mariadb"), _STORE_OPTIONS)
        parts = urlsplit(rest)
        if parts.query:
            raise ConfigurationError(f"unknown MySQL store URL options: {parts.query.split('=')[0]!r}…")
        try:
            port = parts.port or 3306
        except ValueError:
            raise ConfigurationError("the MySQL store URL's port is not a number") from None
        return cls(
            unquote(parts.hostname or "127.0.0.1"),
            port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or "test",
            **options,
        )

    # --- commands -----------------------------------------------------------------------------

    def steps(self, op: Op) -> Steps:
        """As :meth:`SQLStore.steps`; a ``PutAll`` is an ``INSERT IGNORE`` or versioned ``UPDATE`` per record.

        (MySQL's upsert cannot report a skipped row apart from a written one
        when ``UPDATE`` counts matched rows, so the batch picks the statement
        by each record's expected version, in one transaction.)
        """
        if isinstance(op, PutAll):
            statements = tuple(
                Statement(self._create, _row(record), "rowcount") if expected == 0
                else Statement(self._put_update, (*_row(record)[1:], record.sid, expected), "rowcount")
                for record, expected in op.items
            )
            counts = yield Transaction(statements)
            return sum(1 for count in counts if count)
        return (yield from super().steps(op))

    def sweep_command(self, now: int, limit: int) -> Statement:
        """The sweep: the bounded ``DELETE``, performed only under this table's ``GET_LOCK``."""
        return LockedStatement(self._sweep, (now, limit), "rowcount", lock=self._sweep_lock)

    def execute(self, command: Any) -> Any:
        """Perform a :class:`Statement`, :class:`LockedStatement` or :class:`Transaction` on a pooled connection.

        Raises:
            StoreUnavailable: no free connection within ``timeout``, or the
                server refused, timed out or dropped the connection — any
                PyMySQL or socket error. The connection is then discarded.
        """
        with self._connection() as connection, connection.cursor() as cursor:
            if not self._ready:
                for statement in self.ddl:
                    cursor.execute(statement)
                self._ready = True
            if isinstance(command, Transaction):
                connection.begin()
                results = [_run(cursor, statement) for statement in command.statements]
                connection.commit()
                return results
            if isinstance(command, LockedStatement):
                return _locked(cursor, command)
            return _run(cursor, command)

    async def aexecute(self, command: Any) -> Any:
        """:meth:`execute` in a worker thread, so the event loop never waits on the server.

        Raises:
            StoreUnavailable: as :meth:`execute`.
        """
        return await asyncio.to_thread(self.execute, command)

    # --- the pool -----------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[pymysql.Connection[Cursor]]:
        """A pooled connection for one command; returned to the pool after it, discarded if it failed."""
        if not self._slots.acquire(timeout=self.timeout):
            raise StoreUnavailable(f"{self._where}: no free connection within {self.timeout:g} s")
        entry = None
        try:
            try:
                entry = self._take()
                yield entry[0]
            except (pymysql.MySQLError, OSError) as exc:
                if entry is not None:
                    _discard(entry[0])  # in an unknown state (a transaction, a lock): the server cleans up
                    entry = None
                error = unavailable(self._where, exc, self._password)
                raise error from error.__cause__
            except BaseException:
                if entry is not None:
                    _discard(entry[0])
                    entry = None
                raise
            if entry is not None:
                with self._lock:
                    self._idle.append(entry)
        finally:
            self._slots.release()

    def _take(self) -> tuple[pymysql.Connection[Cursor], int]:
        """An idle connection the server has not closed, else a new one."""
        while True:
            with self._lock:
                entry = self._idle.pop() if self._idle else None
            if entry is None:
                return self._connect()
            if not closed_by_server(entry[1]):
                return entry
            _discard(entry[0])

    def _connect(self) -> tuple[pymysql.Connection[Cursor], int]:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        fd = sock.fileno()
        connection: pymysql.Connection[Cursor] = pymysql.Connection(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self._password,
            database=self.database,
            charset="utf8mb4",
            autocommit=True,
            client_flag=CLIENT.FOUND_ROWS,
            binary_prefix=True,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            write_timeout=self.write_timeout,
            init_command=(
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'ANSI_QUOTES'), "
                f"innodb_lock_wait_timeout = {self.lock_wait_timeout}"
            ),
            defer_connect=True,
        )
        try:
            connection.connect(sock)
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        except BaseException:
            sock.close()
            raise
        return connection, fd

    def close(self) -> None:
        """Close the idle connections. The store stays usable: later operations connect again."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            _discard(connection)

    async def aclose(self) -> None:
        """As :meth:`close`."""
        self.close()

    def __repr__(self) -> str:
        return f"MySQLStore({self._where.removeprefix('MySQL ')!r}, table={self.table!r})"


def _run(cursor: Cursor, statement: Statement) -> Any:
    cursor.execute(statement.sql, statement.params or None)
    return fetched(cursor, statement.fetch)


def _locked(cursor: Cursor, statement: LockedStatement) -> Any:
    cursor.execute("SELECT GET_LOCK(%s, 0)", (statement.lock,))
    row = cursor.fetchone()
    if row is None or row[0] != 1:
        return 0  # another app server is sweeping
    try:
        return _run(cursor, statement)
    finally:
        cursor.execute("DO RELEASE_LOCK(%s)", (statement.lock,))


def _discard(connection: pymysql.Connection[Cursor]) -> None:
    with suppress(pymysql.MySQLError, OSError):
        connection.close()
