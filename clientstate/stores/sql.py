"""The SQL store core: one table, the same statements for SQLite, PostgreSQL and MariaDB/MySQL.

Each store operation becomes SQL :class:`Statement` s (or one
:class:`Transaction` of them) through :class:`SQLStore.steps`, written once; a
dialect (:class:`Dialect`) supplies only what differs between engines — the
placeholder, insert-if-absent, ``LEAST``/``MIN``, the column types, and the
sweep. Each engine's store performs statements with its driver
(``sqlite3``, psycopg, PyMySQL).

The table (``clientstate_sessions`` unless told otherwise), in portable terms::

    sid               binary(16) primary key   -- the raw session id
    version           integer   not null       -- compare-and-set counter
    principal         text      null           -- indexed (partial where supported)
    created_at        integer   not null       -- seconds since the epoch
    absolute_deadline integer   not null
    idle_deadline     integer   not null       -- min(last touch + idle, absolute): indexed, the sweep's key
    last_touch        integer   not null
    schema_version    integer   not null
    blob              binary    not null       -- the authenticated state (clientstate._core.record)
    moved_to          binary(16) null          -- a tombstone's successor

A row read back is checked column by column before it becomes a
:class:`~clientstate._core.store.Record`: a row edited by hand or damaged
(a NULL in a ``not null`` column, text where an integer belongs, an id that
is not 16 bytes, a blob over 16 MiB) raises
:class:`~clientstate.StoreUnavailable` naming the table and the column —
the request gets the ``store_unavailable`` error value, never a 500 with a
``TypeError``.

Timestamps are integers, so the sweep's ``WHERE idle_deadline <= ?`` uses the
index directly (no function around the column). ``idle_deadline`` never
exceeds ``absolute_deadline``, so it is the session's deadline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Literal

from clientstate._core.errors import ConfigurationError, StoreUnavailable
from clientstate._core.session_id import SID_BYTES, handle_of
from clientstate._core.store import (
    CountSessions,
    Create,
    Delete,
    DeleteSessions,
    Get,
    ListSessions,
    Op,
    PutAll,
    Record,
    Retire,
    SessionInfo,
    Steps,
    Sweep,
    Touch,
    Update,
    UpdateResult,
)
from clientstate._core.value import Value

__all__ = ["DEFAULT_TABLE", "Dialect", "SQLStore", "Statement", "Transaction", "check_table_name", "fetched"]

#: The table name unless a store is given another.
DEFAULT_TABLE: Final = "clientstate_sessions"
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

Fetch = Literal["rowcount", "one", "all", "none"]


class Statement(Value, frozen=True):
    """One SQL statement: its text (with the dialect's placeholders), parameters, and what to return.

    ``fetch``: ``"rowcount"`` (rows changed), ``"one"`` (the first row or
    ``None``), ``"all"`` (every row), ``"none"``.
    """

    sql: str
    params: tuple[Any, ...] = ()
    fetch: Fetch = "none"


_FETCHERS: Final = {"one": "fetchone", "all": "fetchall"}


def fetched(cursor: Any, fetch: Fetch) -> Any:
    """What ``fetch`` asks of a DB-API cursor that ran a statement (an awaitable for an async cursor's rows)."""
    if fetch in _FETCHERS:
        return getattr(cursor, _FETCHERS[fetch])()
    return cursor.rowcount if fetch == "rowcount" else None


class Transaction(Value, frozen=True):
    """Statements run in one transaction; the reply is the list of their results."""

    statements: tuple[Statement, ...]


def check_table_name(table: str) -> str:
    """``table`` if it is a plain SQL identifier (letters, digits, ``_``; 1–63 characters), else ConfigurationError."""
    if not isinstance(table, str) or not _IDENTIFIER.fullmatch(table):
        raise ConfigurationError(f"table name must be a plain SQL identifier (letters, digits, _), got {table!r}")
    return table


# "blob" is quoted: a reserved word in MariaDB/MySQL (which run with ANSI_QUOTES), a plain name elsewhere.
_COLUMNS: Final = (
    "sid, version, principal, created_at, absolute_deadline, idle_deadline, last_touch, schema_version, "
    '"blob", moved_to'
)


class Dialect(Value, frozen=True):
    """What differs between SQL engines; the statements of :class:`SQLStore` are built from it.

    Attributes:
        name: the engine (``"sqlite"``, ``"postgresql"``, ``"mysql"``).
        placeholder: the parameter marker (``"?"`` or ``"%s"``).
        insert_if_absent: an INSERT prefix/suffix pair that skips an existing key
            (``("INSERT INTO", " ON CONFLICT (sid) DO NOTHING")`` or ``("INSERT IGNORE INTO", "")``).
        least: the two-argument minimum function (``"MIN"`` or ``"LEAST"``).
        ddl: the statements that create the table and its indexes if missing,
            with ``{table}`` for the table name.
        sweep: the statement deleting up to ``limit`` expired rows, with
            ``{table}`` and two placeholders (now, limit).
        put_if_version: an upsert of all the columns (the ten of ``Create``, in
            order) that updates an existing row only if its version equals an
            eleventh parameter — for :class:`PutAll`; ``None`` if the engine
            has none (then ``PutAll`` raises ConfigurationError).
    """

    name: str
    placeholder: str
    insert_if_absent: tuple[str, str]
    least: str
    ddl: tuple[str, ...]
    sweep: str
    put_if_version: str | None = None


class SQLStore:
    """The statements of every store operation for one dialect and table; engines subclass it.

    Subclasses provide :meth:`execute` / :meth:`aexecute` (performing a
    :class:`Statement` or :class:`Transaction` with their driver, creating the
    table on first use) and ``close``/``aclose``.

    Args:
        dialect: the engine's :class:`Dialect`.
        table: the table name (default ``clientstate_sessions``).

    Raises:
        ConfigurationError: ``table`` is not a plain identifier.
    """

    shared = True

    def __init__(self, dialect: Dialect, table: str = DEFAULT_TABLE) -> None:
        self.dialect = dialect
        self.table = check_table_name(table)
        p = dialect.placeholder
        t = self.table

        def q(sql: str) -> str:
            return sql.replace("?", p).replace("{table}", t)

        insert, conflict = dialect.insert_if_absent
        self._get = q(f"SELECT {_COLUMNS} FROM {{table}} WHERE sid = ?")
        self._create = q(f"{insert} {{table}} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?){conflict}")
        self._update = q(
            "UPDATE {table} SET version = ?, principal = ?, last_touch = ?, idle_deadline = ?, schema_version = ?, "
            '"blob" = ? WHERE sid = ? AND version = ? AND moved_to IS NULL AND idle_deadline > ?'
        )
        self._version = q("SELECT version, moved_to, idle_deadline FROM {table} WHERE sid = ?")
        self._touch = q(
            f"UPDATE {{table}} SET idle_deadline = {dialect.least}(?, absolute_deadline), last_touch = ? "
            f"WHERE sid = ? AND moved_to IS NULL AND idle_deadline > ?"
        )
        self._retire = q(
            'UPDATE {table} SET version = version + 1, principal = NULL, idle_deadline = ?, "blob" = ?, moved_to = ? '
            "WHERE sid = ? AND version = ? AND moved_to IS NULL"
        )
        self._delete = q("DELETE FROM {table} WHERE sid = ?")
        live = "principal = ? AND moved_to IS NULL AND idle_deadline > ?"
        self._list = q(
            f"SELECT sid, created_at, last_touch, idle_deadline, absolute_deadline FROM {{table}} WHERE {live} "
            f"ORDER BY created_at"
        )
        self._count = q(f"SELECT COUNT(*) FROM {{table}} WHERE {live}")
        self._delete_all = q("DELETE FROM {table} WHERE principal = ?")
        self._delete_others = q("DELETE FROM {table} WHERE principal = ? AND sid <> ?")
        self._sweep = q(dialect.sweep)
        self._put = None if dialect.put_if_version is None else q(dialect.put_if_version)
        self.ddl = tuple(q(statement) for statement in dialect.ddl)

    def steps(self, op: Op) -> Steps:
        """The statements of ``op`` (see :mod:`clientstate._core.store` for each operation's contract)."""
        if isinstance(op, Get):
            row = yield Statement(self._get, (op.sid,), "one")
            return None if row is None else _record(row, self.table)
        if isinstance(op, Create):
            return (yield Statement(self._create, _row(op.record), "rowcount")) == 1
        if isinstance(op, Update):
            r = op.record
            params: tuple[Any, ...] = (
                r.version, r.principal, r.last_touch, r.idle_deadline, r.schema_version, r.blob, r.sid,
                op.expected_version, r.last_touch,
            )
            if (yield Statement(self._update, params, "rowcount")) == 1:
                return UpdateResult.OK
            row = yield Statement(self._version, (r.sid,), "one")
            if row is None or row[1] is not None or not r.last_touch < row[2]:
                return UpdateResult.GONE
            return UpdateResult.CONFLICT if row[0] != op.expected_version else UpdateResult.GONE
        if isinstance(op, Touch):
            params = (op.idle_deadline, op.last_touch, op.sid, op.last_touch)
            return (yield Statement(self._touch, params, "rowcount")) == 1
        if isinstance(op, Retire):
            params = (op.until, op.blob, op.moved_to, op.sid, op.expected_version)
            return (yield Statement(self._retire, params, "rowcount")) == 1
        if isinstance(op, Delete):
            return (yield Statement(self._delete, (op.sid,), "rowcount")) == 1
        if isinstance(op, ListSessions):
            rows = yield Statement(self._list, (op.principal, op.now), "all")
            return [_info(row, self.table) for row in rows]
        if isinstance(op, CountSessions):
            row = yield Statement(self._count, (op.principal, op.now), "one")
            return _integer(None if row is None else row[0], self.table, "COUNT(*)")
        if isinstance(op, DeleteSessions):
            if op.keep is None:
                return (yield Statement(self._delete_all, (op.principal,), "rowcount"))
            return (yield Statement(self._delete_others, (op.principal, op.keep), "rowcount"))
        if isinstance(op, Sweep):
            return (yield self.sweep_command(op.now, op.limit))
        if isinstance(op, PutAll):
            if self._put is None:
                raise ConfigurationError(f"{type(self).__name__} has no batch upsert for PutAll")
            statements = tuple(Statement(self._put, (*_row(r), expected), "rowcount") for r, expected in op.items)
            counts = yield Transaction(statements)
            return sum(1 for count in counts if count)
        raise ConfigurationError(f"{type(self).__name__} cannot perform {op!r}")

    def sweep_command(self, now: int, limit: int) -> Statement | Transaction:
        """The command deleting up to ``limit`` expired rows (engines may wrap it, e.g. in a lock)."""
        return Statement(self._sweep, (now, limit), "rowcount")


def _row(r: Record) -> tuple[Any, ...]:
    """The ten column values of ``r``, in table order."""
    return (
        r.sid, r.version, r.principal, r.created_at, r.absolute_deadline, r.idle_deadline, r.last_touch,
        r.schema_version, r.blob, r.moved_to,
    )


#: The largest stored blob accepted back from a row, bytes (a state is far smaller; anything larger is damage).
MAX_BLOB_BYTES: Final = 16 * 1024 * 1024
_INT_RANGE: Final = 2**63


def _corrupt(table: str, column: str, value: Any, expected: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"table {table!r} holds a corrupt row: column {column} should be {expected}, "
        f"got {type(value).__name__} {value!r:.40}"
    )


def _integer(value: Any, table: str, column: str) -> int:
    """An integer column's value (a signed 64-bit ``int``, never ``bool``, text or NULL)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT_RANGE <= value < _INT_RANGE:
        raise _corrupt(table, column, value, "a 64-bit integer")
    return value


def _binary(value: Any, table: str, column: str, low: int, high: int) -> bytes:
    """A binary column's value as ``bytes``, from ``low`` to ``high`` bytes long."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _corrupt(table, column, value, "binary")
    data = bytes(value)
    if not low <= len(data) <= high:
        size = f"{low} bytes" if low == high else f"{low} to {high} bytes"
        raise StoreUnavailable(f"table {table!r} holds a corrupt row: column {column} is {len(data)} bytes, not {size}")
    return data


def _sid(value: Any, table: str, column: str = "sid") -> bytes:
    return _binary(value, table, column, SID_BYTES, SID_BYTES)


def _record(row: Sequence[Any], table: str = DEFAULT_TABLE) -> Record:
    """The :class:`Record` of a row of ``table``, every column checked.

    Raises:
        StoreUnavailable: the row is not what this library writes (naming the table and column).
    """
    if len(row) != 10:
        raise StoreUnavailable(f"table {table!r}: a row has {len(row)} columns, expected 10")
    sid, version, principal, created, absolute, idle, touched, schema, blob, moved = row
    return Record(
        _sid(sid, table), _integer(version, table, "version"), _principal(principal, table),
        _integer(created, table, "created_at"), _integer(absolute, table, "absolute_deadline"),
        _integer(idle, table, "idle_deadline"), _integer(touched, table, "last_touch"),
        _integer(schema, table, "schema_version"), _binary(blob, table, "blob", 0, MAX_BLOB_BYTES),
        None if moved is None else _sid(moved, table, "moved_to"),
    )


def _info(row: Sequence[Any], table: str) -> tuple[bytes, SessionInfo]:
    """``(sid, SessionInfo)`` of a listing row of ``table``, every column checked."""
    sid = _sid(row[0], table)
    created, touched, idle, absolute = (
        _integer(value, table, column)
        for value, column in zip(
            row[1:5], ("created_at", "last_touch", "idle_deadline", "absolute_deadline"), strict=True
        )
    )
    return sid, SessionInfo(handle_of(sid), created, touched, idle, absolute)


def _principal(value: Any, table: str) -> str | None:
    try:
        text = _text(value)
    except UnicodeDecodeError:
        raise _corrupt(table, "principal", value, "UTF-8 text or NULL") from None
    if text is not None and not isinstance(text, str):
        raise _corrupt(table, "principal", value, "text or NULL")
    return text


def _text(value: Any) -> str | None:
    """A text column's value; engines storing it as bytes (MariaDB/MySQL: exact, unpadded comparison) return UTF-8."""
    return bytes(value).decode() if isinstance(value, bytes | bytearray | memoryview) else value
