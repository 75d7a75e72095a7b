"""``SQLiteStore``: sessions in a SQLite file — the embedded default, standard library only.

Safe for several threads and several processes on one machine: each thread
has its own connection; the database runs in WAL mode (readers never block the
writer) with ``synchronous=NORMAL`` and a ``busy_timeout``, so a writer waits
for another process's write for at most ``timeout`` seconds and then the
operation fails as :class:`~clientstate.StoreUnavailable` (never a hang). The
table and its indexes are created on first use (see :mod:`clientstate.stores.sql`
for the columns)::

    CREATE TABLE IF NOT EXISTS clientstate_sessions (
        sid BLOB PRIMARY KEY, version INTEGER NOT NULL, principal TEXT,
        created_at INTEGER NOT NULL, absolute_deadline INTEGER NOT NULL,
        idle_deadline INTEGER NOT NULL, last_touch INTEGER NOT NULL,
        schema_version INTEGER NOT NULL, blob BLOB NOT NULL, moved_to BLOB
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS clientstate_sessions_idle_deadline ON clientstate_sessions (idle_deadline);
    CREATE INDEX IF NOT EXISTS clientstate_sessions_principal ON clientstate_sessions (principal)
        WHERE principal IS NOT NULL;

A file SQLite cannot write — on a read-only file system, read-only itself,
in a directory this process may not write (WAL mode creates ``<file>-wal``
and ``<file>-shm`` beside it), a directory rather than a file, or in a
directory that does not exist — fails its first operation with a
:class:`~clientstate.StoreUnavailable` that says which of these it is.

Async use (ASGI) performs each command in a worker thread
(``asyncio.to_thread``), so the event loop never blocks on the file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

from clientstate._core.errors import ConfigurationError, StoreUnavailable
from clientstate.stores.sql import DEFAULT_TABLE, Dialect, SQLStore, Statement, Transaction

__all__ = ["SQLITE", "SQLiteStore"]

#: The SQLite dialect of the SQL store core.
SQLITE: Final = Dialect(
    name="sqlite",
    placeholder="?",
    insert_if_absent=("INSERT INTO", " ON CONFLICT (sid) DO NOTHING"),
    least="MIN",
    ddl=(
        "CREATE TABLE IF NOT EXISTS {table} (sid BLOB PRIMARY KEY, version INTEGER NOT NULL, principal TEXT, "
        "created_at INTEGER NOT NULL, absolute_deadline INTEGER NOT NULL, idle_deadline INTEGER NOT NULL, "
        "last_touch INTEGER NOT NULL, schema_version INTEGER NOT NULL, blob BLOB NOT NULL, moved_to BLOB) "
        "WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS {table}_idle_deadline ON {table} (idle_deadline)",
        "CREATE INDEX IF NOT EXISTS {table}_principal ON {table} (principal) WHERE principal IS NOT NULL",
    ),
    sweep=(
        "DELETE FROM {table} WHERE sid IN "
        "(SELECT sid FROM {table} WHERE idle_deadline <= ? ORDER BY idle_deadline LIMIT ?)"
    ),
    put_if_version=(
        "INSERT INTO {table} (sid, version, principal, created_at, absolute_deadline, idle_deadline, last_touch, "
        "schema_version, blob, moved_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO UPDATE SET "
        "version = excluded.version, principal = excluded.principal, created_at = excluded.created_at, "
        "absolute_deadline = excluded.absolute_deadline, idle_deadline = excluded.idle_deadline, "
        "last_touch = excluded.last_touch, schema_version = excluded.schema_version, blob = excluded.blob, "
        "moved_to = excluded.moved_to WHERE {table}.version = ?"
    ),
)


class SQLiteStore(SQLStore):
    """Sessions in the SQLite database file at ``path``.

    Args:
        path: the database file (created with its directory's permissions if missing).
        table: the table name (default ``clientstate_sessions``).
        timeout: seconds a write waits for a lock held by another connection
            or process (``busy_timeout``; default 5).

    Raises:
        ConfigurationError: a bad table name or timeout, a ``path`` that is not a
            str/Path, is empty or ``:memory:``, holds a NUL character, or names a directory.
    """

    def __init__(self, path: str | Path, *, table: str = DEFAULT_TABLE, timeout: float = 5.0) -> None:
        super().__init__(SQLITE, table)
        if not isinstance(path, str | Path) or str(path) in ("", ":memory:"):
            raise ConfigurationError(
                f"SQLiteStore needs a file path (use MemoryStore for memory), got {path!r}"
            )
        if "\x00" in str(path):
            raise ConfigurationError(f"SQLiteStore path holds a NUL character: {str(path)!r}")
        if Path(path).is_dir():
            raise ConfigurationError(f"SQLiteStore path {str(path)!r} is a directory; give a file inside it")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise ConfigurationError(f"timeout must be a number of seconds from 0 to 600, got {timeout!r}")
        self.path = Path(path)
        self.timeout = float(timeout)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._ready = False

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            with self._lock:
                if not self._ready:
                    for statement in self.ddl:
                        connection.execute(statement)
                    self._ready = True
                self._connections.append(connection)
        except BaseException:
            connection.close()  # a half-set-up connection is not kept (the next call tries afresh)
            raise
        self._local.connection = connection
        return connection

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        """A StoreUnavailable for ``exc`` that names the cause when it is the file or its directory."""
        cause = _why_unwritable(self.path)
        name = getattr(exc, "sqlite_errorname", "")
        if cause is None and name.startswith("SQLITE_READONLY"):
            cause = "the database is read-only"
        detail = f"{type(exc).__name__}: {exc}"
        if cause is not None:
            return StoreUnavailable(f"SQLite {str(self.path)!r} cannot be written: {cause} ({detail})")
        return StoreUnavailable(f"SQLite {str(self.path)!r}: {detail}")

    def execute(self, command: Any) -> Any:
        """Perform a :class:`Statement` or :class:`Transaction` on this thread's connection.

        Raises:
            StoreUnavailable: the file is locked past ``timeout``, unreadable, corrupt or
                cannot be written (the message says why: read-only file or file system,
                a directory it may not write, a missing directory).
        """
        try:
            connection = self._connection()
            if isinstance(command, Transaction):
                connection.execute("BEGIN IMMEDIATE")
                try:
                    results = [_run(connection, statement) for statement in command.statements]
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
                return results
            return _run(connection, command)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    async def aexecute(self, command: Any) -> Any:
        """:meth:`execute` in a worker thread, so the event loop never waits on the file."""
        return await asyncio.to_thread(self.execute, command)

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    async def aclose(self) -> None:
        """As :meth:`close`."""
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


def _why_unwritable(path: Path) -> str | None:
    """Why SQLite cannot write ``path`` (and its ``-wal``/``-shm`` files beside it), if the file system tells."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        return f"the directory {str(directory)!r} does not exist"
    if path.is_dir():
        return "it is a directory, not a file"
    try:
        read_only_fs = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_fs = False
    if read_only_fs:
        return f"the file system holding {str(directory)!r} is mounted read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(directory, os.W_OK):
        return f"the directory {str(directory)!r} is not writable (WAL mode needs <file>-wal and <file>-shm beside it)"
    return None


def _run(connection: sqlite3.Connection, statement: Statement) -> Any:
    cursor = connection.execute(statement.sql, statement.params)
    fetch = statement.fetch
    if fetch == "rowcount":
        return cursor.rowcount
    if fetch == "one":
        return cursor.fetchone()
    if fetch == "all":
        return cursor.fetchall()
    return None
