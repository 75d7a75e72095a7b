"""The store protocol: what a server-stored handler asks of a store, as values. No I/O.

A server-stored session is one :class:`Record` per session id. The handler's
logic never calls a store: it *yields* operations — :class:`Get`,
:class:`Create`, :class:`Update`, :class:`Touch`, :class:`Retire`,
:class:`Delete`, and the principal-index and maintenance operations — and
receives their results (see :mod:`clientstate._core.flow`). A store turns each
operation into its own commands (SQL statements, Redis scripts, dictionary
updates) with :meth:`Store.steps`, and performs those commands with a blocking
client (:meth:`Store.execute`) or an async one (:meth:`Store.aexecute`). So the
session logic and each store's logic are written once, and only the last
step — one command against one client — differs between WSGI and ASGI.

Every operation's contract, for every store:

* :class:`Get` returns the record (expired ones included: the handler judges
  deadlines with its own clock) or ``None``.
* :class:`Create` inserts only: it returns ``False`` and changes nothing if
  the session id exists (the handler retries with a new id).
* :class:`Update` is compare-and-set on ``version`` and update-only: it never
  inserts, so a session deleted meanwhile is not resurrected
  (:attr:`UpdateResult.GONE`); a concurrent write gives
  :attr:`UpdateResult.CONFLICT`.
* :class:`Touch` moves the idle deadline and last touch only — never the
  state — clamped to the absolute deadline; ``False`` if the session is gone.
* :class:`Retire` replaces a session by a *tombstone* naming its successor
  (id rotation), which expires at ``until``; compare-and-set on ``version``
  like :class:`Update`, so a session deleted or written meanwhile is not retired.
* :class:`ListSessions`, :class:`CountSessions`, :class:`DeleteSessions` use
  a principal index (never a scan of all sessions).
* :class:`Sweep` deletes at most ``limit`` expired records and returns how many.
* :class:`PutAll` writes a batch of records in one atomic step (one SQL
  transaction, one Redis script over keys of one hash slot, one locked update).

Times are whole seconds since the Unix epoch. A store that cannot reach its
server raises :class:`~clientstate.StoreUnavailable`, within a bounded time.
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from typing import Any, Protocol, runtime_checkable

from clientstate._core.value import Value

__all__ = [
    "Command",
    "CountSessions",
    "Create",
    "Delegate",
    "Delete",
    "DeleteSessions",
    "Get",
    "ListSessions",
    "Op",
    "PutAll",
    "Record",
    "Retire",
    "SessionInfo",
    "Steps",
    "Store",
    "Sweep",
    "Touch",
    "Update",
    "UpdateResult",
]


class Record(Value, frozen=True):
    """One server-stored session. Frozen.

    Attributes:
        sid: the session id, 16 random bytes (the cookie carries it with a MAC).
        version: starts at 1 and grows by one with every :class:`Update`.
        principal: who the session belongs to (the application's user id), or ``None``.
        created_at: when the session was created, seconds since the epoch.
        absolute_deadline: the session ends here whatever its activity.
        idle_deadline: the session ends here unless touched:
            ``min(last_touch + idle_timeout, absolute_deadline)``.
        last_touch: the last write or touch.
        schema_version: the state's schema version in ``blob``.
        blob: the state, authenticated and bound to ``sid``
            (:mod:`clientstate._core.record`); empty in a tombstone.
        moved_to: for a tombstone left by id rotation, the successor's id; else ``None``.
    """

    sid: bytes
    version: int
    principal: str | None
    created_at: int
    absolute_deadline: int
    idle_deadline: int
    last_touch: int
    schema_version: int
    blob: bytes
    moved_to: bytes | None = None

    @property
    def deadline(self) -> int:
        """When the session ends: the earlier of its idle and absolute deadlines."""
        return min(self.idle_deadline, self.absolute_deadline)


class SessionInfo(Value, frozen=True):
    """What listing a principal's sessions shows about one of them. Frozen.

    Attributes:
        handle: a short public handle of the session (hex of the first 8 bytes
            of SHA-256 of its id): enough to tell sessions apart and to name
            the current one, useless as a cookie.
        created_at, last_touch, idle_deadline, absolute_deadline: as in :class:`Record`.
    """

    handle: str
    created_at: int
    last_touch: int
    idle_deadline: int
    absolute_deadline: int


class UpdateResult(enum.Enum):
    """The outcome of an :class:`Update`."""

    #: Written: the record had the expected version.
    OK = "ok"
    #: Not written: another request wrote the session since it was read.
    CONFLICT = "conflict"
    #: Not written: the session no longer exists (deleted, expired, rotated away).
    GONE = "gone"


class Op(Value, frozen=True):
    """Base of the operations a handler asks of a store."""


class Get(Op, frozen=True):
    """Read the record of ``sid`` → :class:`Record` or ``None``."""

    sid: bytes


class Create(Op, frozen=True):
    """Insert ``record`` if no record has its id → ``True``; else ``False`` and nothing changes."""

    record: Record


class Update(Op, frozen=True):
    """Replace the record of ``record.sid`` if its version is ``expected_version`` → :class:`UpdateResult`.

    ``record.version`` is ``expected_version + 1``. Update-only: never inserts.
    """

    record: Record
    expected_version: int


class Touch(Op, frozen=True):
    """Set ``last_touch`` and ``idle_deadline`` (at most the absolute deadline) of ``sid``.

    Returns ``True``, or ``False`` if the session is gone. The state and the version are not changed.
    """

    sid: bytes
    idle_deadline: int
    last_touch: int


class Retire(Op, frozen=True):
    """Replace the session of ``sid`` by a tombstone pointing to ``moved_to``, kept until ``until``.

    Compare-and-set like :class:`Update`: only a session (not a tombstone)
    whose version is ``expected_version`` is retired → ``True``; otherwise
    nothing changes → ``False`` (deleted, written or rotated meanwhile). The
    tombstone has version ``expected_version + 1``, no principal, ``idle_deadline
    = until`` and ``blob`` (the handler's authenticated tombstone,
    :meth:`clientstate._core.record.RecordCodec.seal_tombstone`).
    """

    sid: bytes
    expected_version: int
    moved_to: bytes
    until: int
    blob: bytes


class Delete(Op, frozen=True):
    """Delete the record of ``sid`` (a session or a tombstone) → ``True`` if it existed."""

    sid: bytes


class ListSessions(Op, frozen=True):
    """The unexpired sessions of ``principal`` at ``now``, oldest first → ``list[tuple[bytes, SessionInfo]]``."""

    principal: str
    now: int


class CountSessions(Op, frozen=True):
    """How many unexpired sessions ``principal`` has at ``now`` → ``int``."""

    principal: str
    now: int


class DeleteSessions(Op, frozen=True):
    """Delete every session of ``principal`` but ``keep`` (a sid, or ``None``) → how many were deleted."""

    principal: str
    keep: bytes | None


class Sweep(Op, frozen=True):
    """Delete at most ``limit`` records whose deadline is at or before ``now`` → how many were deleted."""

    now: int
    limit: int


class PutAll(Op, frozen=True):
    """Write many records at once, atomically → how many were written.

    Each item is ``(record, expected_version)``: the record is written if the
    stored version is ``expected_version`` (``0``: no record with its id
    exists), and skipped otherwise (another process took the session over).
    Either every write that applies happens, or — when the store fails — none.
    Used by the live-session manager to save every session at shutdown.
    """

    items: tuple[tuple[Record, int], ...]


class Delegate(Value, frozen=True):
    """A command that asks another store to perform ``op`` (a store built on stores, like a layered one)."""

    store: Any
    op: Op


#: A store command: anything its own executor understands, or a :class:`Delegate`.
Command = Any
#: What :meth:`Store.steps` returns: a generator yielding commands, receiving their results.
Steps = Generator[Command, Any, Any]


@runtime_checkable
class Store(Protocol):
    """A place for server-stored sessions; see the module docstring for each operation's contract.

    Attributes:
        shared: whether several processes (or machines) can use the store at
            once (Redis, PostgreSQL, a SQLite file) rather than one process
            only (memory).
    """

    shared: bool

    def steps(self, op: Op) -> Steps:
        """The commands that perform ``op``; returns the operation's result.

        Raises:
            ConfigurationError: ``op`` is not an operation this store knows.
        """
        ...

    def execute(self, command: Command) -> Any:
        """Perform one command with the store's blocking client and return its reply.

        Raises:
            StoreUnavailable: the server did not answer (within the store's timeout).
        """
        ...

    async def aexecute(self, command: Command) -> Any:
        """Perform one command without blocking the event loop and return its reply.

        Raises:
            StoreUnavailable: the server did not answer (within the store's timeout).
        """
        ...

    def close(self) -> None:
        """Release the store's connections (blocking clients)."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections (async clients)."""
        ...
