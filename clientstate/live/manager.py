"""``SessionManager``: typed state per WebSocket connection, kept in memory, bounded, and never lost.

A *live session* holds one :class:`~clientstate.State` value in this
process's memory for as long as a client is connected. When the connection
ends the session is *detached*: it stays in memory, is persisted to the store,
and a reconnect presenting its token within ``resume_window`` gets the same
state back — from memory, or from the store after an eviction or a restart.
After the window it is gone, and the reconnect gets a fresh session with the
error value ``session_expired`` (or ``unknown_session``) on its slot.

The token is the session id with a MAC (the session-id cookie format of
:mod:`clientstate._core.session_id`, bound to ``"live:<state name>"``). The
manager sends it as the connection's first message, right after the
application accepts: ``{"live_session": "<token>"}``; the client presents it
again as the query parameter ``live_session`` of the WebSocket URL.

Limits, each configurable, a non-positive or missing value meaning the default:

* ``max_sessions`` (10,000): live + detached sessions in memory. At the limit
  a detached session is evicted — anonymous ones before authenticated ones,
  each in the order of ``eviction`` (``"lru"``: least recently active first,
  ``"oldest"``: first created first, ``"random"``) — after its unsaved changes
  are persisted, so it can still be resumed from the store within its window.
  Live sessions are never evicted: with only live sessions left, the new one
  is refused (``max_sessions_reached``).
* ``max_per_ip`` (100): live + detached sessions per client address group
  (:mod:`clientstate.live.address`: IPv6 by /64, forwarding headers only from
  ``trusted_proxies``); the next one is refused (``too_many_sessions_from_ip``).
* ``max_unaddressed`` (default: ``max_sessions``): connections with no client
  address at all (ASGI ``client`` is ``None``, as over a Unix socket) are one
  separate group, ``"unknown"``, with this limit of its own instead of
  ``max_per_ip`` — behind a Unix-socket proxy every client arrives without an
  address, and 100 would cap the whole site. Set it to bound them; over the
  limit they are refused as ``too_many_sessions_from_ip``.
* Refusal kinds are stable: ``too_many_sessions_from_ip``,
  ``max_sessions_reached``, ``manager_stopped``, and ``no_room_to_resume`` —
  a token whose session is only in the store (evicted, or from before a
  restart) arrived at ``max_sessions`` with nobody to evict; the session stays
  in the store, resumable within its window once room is made.
* A refused handshake is accepted and closed at once with code 1013 (try again
  later) and the reason set to the refusal's kind; after :meth:`SessionManager.shutdown`
  every new connection is refused with ``manager_stopped``.

Persistence: every ``persist_interval`` (30 s) the sessions whose state
changed since they were last written are written (so a ``kill -9`` loses at
most the changes of one interval); a session whose state became ``None`` (a
logout, a clear) has its stored record deleted, so the old state never comes
back; an unchanged live session's record is only *touched* (its idle deadline
pushed on, no state written) once per interval, so a long quiet connection
stays resumable after a crash; with a shared store (Redis, PostgreSQL,
MySQL — ``store.shared``) a session is also written through when its
connection ends. Every ``cleanup_interval`` (60 s, ±10 % jitter) detached
sessions past their window leave memory. :meth:`SessionManager.shutdown`
refuses new sessions, then saves every session in one atomic batch
(:class:`~clientstate._core.store.PutAll`: one SQL transaction, one Redis
script — on a Redis Cluster only with ``RedisStore(hash_tag=...)``, else one
per hash slot) and, for a ``MemoryStore`` with a
``snapshot_path``, writes the store's authenticated snapshot file, which
:meth:`SessionManager.startup` restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar
from urllib.parse import unquote_plus

from clientstate._core.binding import Clock
from clientstate._core.config import check_callable, check_type, read_clock, read_clock_or
from clientstate._core.errors import ConfigurationError, ErrorKind, LoadError, StateNotWritable, StoreUnavailable
from clientstate._core.flow import perform_async
from clientstate._core.keys import Keyring
from clientstate._core.record import RecordCodec
from clientstate._core.session_id import SessionIdCodec, handle_of
from clientstate._core.state import State
from clientstate._core.store import Create, Delete, Get, PutAll, Record, Store, Touch, Update, UpdateResult
from clientstate._core.value import Value
from clientstate.live.address import UNKNOWN, client_address, group_of, parse_networks
from clientstate.live.snapshot import SnapshotError, read_snapshot, write_snapshot

__all__ = ["LiveSlot", "ManagerStats", "Refusal", "SessionManager", "get_live"]

T = TypeVar("T")
log = logging.getLogger("clientstate")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Eviction = Literal["lru", "oldest", "random"]
#: How the manager's clock is named when a reading is refused or replaced (see read_clock, read_clock_or).
_CLOCK: Final = "the SessionManager clock"

_DEFAULTS: Final = {
    "max_sessions": 10_000,
    "max_per_ip": 100,
    "resume_window": 300,
    "persist_interval": 30,
    "cleanup_interval": 60,
    "max_lifetime": 7 * 24 * 3600,
    "max_unaddressed": math.nan,  # NaN: max_sessions (only the global cap)
}
#: The WebSocket close code of a refused handshake: 1013, try again later (RFC 6455 §7.4.1, IANA registry).
TRY_AGAIN_LATER: Final = 1013
#: The query parameter a reconnecting client presents its token in.
RESUME_PARAMETER: Final = "live_session"


class Refusal(Value, frozen=True):
    """Why a new live session was refused: ``kind`` is ``too_many_sessions_from_ip``,
    ``max_sessions_reached``, ``no_room_to_resume`` or ``manager_stopped``; ``detail`` says more."""

    kind: str
    detail: str = ""


class ManagerStats(Value, frozen=True):
    """What :meth:`SessionManager.stats` reports. Counters count since the manager was created.

    Attributes:
        total: sessions in memory (live + detached).
        live: sessions with an open connection.
        detached: sessions whose connection ended, kept for ``resume_window``.
        unique_ips: distinct address groups among the sessions in memory (the
            connections without an address, if any, count as one group).
        evictions: evicted detached sessions by kind, ``{"anonymous": n, "authenticated": n}``.
        refusals: refused connections by reason.
        resumed: reconnects that got their session back (from memory or the store).
    """

    total: int
    live: int
    detached: int
    unique_ips: int
    evictions: dict[str, int]
    refusals: dict[str, int]
    resumed: int


class _Session:
    """One live or detached session in memory (the manager's bookkeeping; not for applications)."""

    __slots__ = (
        "binding", "created_at", "deadline", "detached_at", "evicting", "group", "last_active", "principal", "saved",
        "sid", "value", "version",
    )

    def __init__(self, binding: _Bound[Any], sid: bytes, value: Any, group: str, now: float) -> None:
        self.binding = binding
        self.sid = sid
        self.value = value
        self.group = group
        self.created_at = math.floor(now)
        self.last_active = now
        self.detached_at: float | None = None
        self.version = 0  # the stored record's version; 0: never stored
        self.saved: bytes | None = None  # the payload last written
        self.deadline = 0  # the stored record's idle deadline (seconds since the epoch); 0: never stored
        self.principal: str | None = None
        self.evicting: asyncio.Event | None = None


class LiveSlot(Generic[T]):
    """One connection's live session, as the application sees it (``get_live(scope, STATE)``).

    Attributes:
        error: why the token the client presented did not resume a session
            (``session_expired``, ``unknown_session``, ``authentication_failed``,
            ``malformed``...), or ``None``.
        resumed: whether this connection got an earlier session's state back.
        token: the token that resumes this session (also sent as the first message).
        handle: a short public handle of the session (as in server-stored sessions lists).
    """

    __slots__ = ("_session", "error", "handle", "resumed", "token")

    def __init__(self, session: _Session, token: str, error: LoadError | None, resumed: bool) -> None:
        self._session = session
        self.token = token
        self.error = error
        self.resumed = resumed
        self.handle = handle_of(session.sid)

    @property
    def state(self) -> T | None:
        """The session's state. Assign to change it; in-place changes count too (compared at persist time).

        Assigning ``None`` (a logout, a clear) deletes the session's stored
        record at the next write (persist pass, disconnect on a shared store,
        eviction or shutdown): neither a resume nor a restart brings the old state back.

        Raises (on assignment):
            StateEncodeError: the value does not encode as the state's type.
            StateNotWritable: the connection already ended.
        """
        value: T | None = self._session.value
        return value

    @state.setter
    def state(self, value: T | None) -> None:
        session = self._session
        if session.detached_at is not None:
            raise StateNotWritable(session.binding.descriptor.name, "the live session's connection already ended")
        if value is not None:
            session.binding.descriptor.encode(value)  # errors at the application's line
        session.value = value


def get_live(scope: MutableMapping[str, Any], descriptor: State[T]) -> LiveSlot[T]:
    """The :class:`LiveSlot` of ``descriptor`` in a WebSocket scope wrapped by ``SessionManager.websocket``.

    Raises:
        ConfigurationError: no live-session wrapper for ``descriptor`` wraps this application.
    """
    slot = scope.get(f"clientstate.live.{getattr(descriptor, 'name', '?')}")
    if not isinstance(slot, LiveSlot) or slot._session.binding.descriptor is not descriptor:
        raise ConfigurationError(
            f"no live-session manager for state {getattr(descriptor, 'name', descriptor)!r} wraps this application"
        )
    return slot


class _Bound(Generic[T]):
    """A State served by a manager: its codecs, its initial value and its principal function."""

    __slots__ = ("descriptor", "ids", "initial", "key", "principal", "records")

    def __init__(
        self,
        descriptor: State[T],
        keyring: Keyring,
        initial: Callable[[], T | None],
        principal: Callable[[T], str | None] | None,
    ) -> None:
        self.descriptor = descriptor
        self.ids = SessionIdCodec(keyring, f"live:{descriptor.name}")
        self.records = RecordCodec(keyring, descriptor)
        self.initial = initial
        self.principal = principal
        self.key = f"clientstate.live.{descriptor.name}"


def _setting(value: object, name: str, *, integer: bool = False) -> float:
    """A positive setting, or its safe default when unset (``None``) or non-positive.

    Raises:
        ConfigurationError: ``value`` is of the wrong type (a ``bool``, a ``str``,
            a float for a count) or is NaN or infinite.
    """
    if value is None:
        return float(_DEFAULTS[name])
    wanted = "an int" if integer else "a number of seconds (int or float)"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigurationError(f"{name} must be {wanted}, got {type(value).__name__} {value!r:.60}")
    if not math.isfinite(value):
        raise ConfigurationError(f"{name} must be finite, got {value!r}")
    if not value > 0:
        return float(_DEFAULTS[name])
    return float(value)


class SessionManager:
    """Live sessions for ASGI WebSocket applications; see the module docstring for every rule.

    Args:
        store: where detached sessions are persisted (any store of :mod:`clientstate.stores`).
        keyring: keys for the tokens (subkey ``sid``), the stored state (``record``) and the snapshot.
        max_sessions, max_per_ip: limits (defaults 10,000 and 100).
        max_unaddressed: the limit of the ``"unknown"`` group, the connections
            with no client address (a Unix socket, no ASGI ``client``); by
            default only ``max_sessions`` bounds them (see the module docstring).
        resume_window: seconds a detached session can be resumed (default 300).
        persist_interval: seconds between writes of changed sessions (default 30).
        cleanup_interval: seconds between removals of expired detached sessions (default 60).
        max_lifetime: seconds after creation when a session ends whatever its activity (default 7 days).
        eviction: ``"lru"`` (default), ``"oldest"`` or ``"random"``.
        trusted_proxies: addresses or networks whose ``Forwarded``/``X-Forwarded-For`` are believed.
        snapshot_path: for a ``MemoryStore``, the file :meth:`shutdown` writes and :meth:`startup` restores.
        clock: seconds since the epoch (default ``time.time``).

    Every limit and interval left unset (``None``) or set to zero or less takes
    its default (above).

    Raises:
        ConfigurationError: a store that is not a store, a keyring that is not
            a :class:`~clientstate.Keyring`; a setting of the wrong type (a
            ``bool`` or ``str`` or a float where a count is expected, NaN or
            infinity); an eviction policy other than the three; a bad proxy
            entry; a ``snapshot_path`` that is not a path; a clock that is not callable. Later,
            wherever the manager reads its clock: a reading that is not a finite number (NaN would
            stop expiry and eviction).
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        *,
        max_sessions: int | None = None,
        max_per_ip: int | None = None,
        max_unaddressed: int | None = None,
        resume_window: float | None = None,
        persist_interval: float | None = None,
        cleanup_interval: float | None = None,
        max_lifetime: float | None = None,
        eviction: Eviction = "lru",
        trusted_proxies: tuple[str, ...] | list[str] = (),
        snapshot_path: str | Path | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not isinstance(store, Store):
            raise ConfigurationError(f"SessionManager needs a clientstate store, got {type(store).__name__}")
        check_type(keyring, Keyring, "keyring")
        if not isinstance(eviction, str) or eviction not in ("lru", "oldest", "random"):
            raise ConfigurationError(f"eviction must be 'lru', 'oldest' or 'random', got {eviction!r:.60}")
        if snapshot_path is not None and not isinstance(snapshot_path, str | Path):
            raise ConfigurationError(
                f"snapshot_path must be a str or a Path, got {type(snapshot_path).__name__} {snapshot_path!r:.60}"
            )
        check_callable(clock, "clock", "clock() -> seconds since the epoch")
        self.store = store
        self.keyring = keyring
        self.max_sessions = int(_setting(max_sessions, "max_sessions", integer=True))
        self.max_per_ip = int(_setting(max_per_ip, "max_per_ip", integer=True))
        unaddressed = _setting(max_unaddressed, "max_unaddressed", integer=True)
        self.max_unaddressed = self.max_sessions if math.isnan(unaddressed) else int(unaddressed)
        self.resume_window = _setting(resume_window, "resume_window")
        self.persist_interval = _setting(persist_interval, "persist_interval")
        self.cleanup_interval = _setting(cleanup_interval, "cleanup_interval")
        self.max_lifetime = _setting(max_lifetime, "max_lifetime")
        self.eviction: Eviction = eviction
        self.trusted_proxies = parse_networks(trusted_proxies)
        self.snapshot_path = None if snapshot_path is None else Path(snapshot_path)
        self.clock = clock
        self._sessions: dict[bytes, _Session] = {}
        # Detached sessions in detach order, anonymous (True) and authenticated (False), and by age.
        self._detached: dict[bool, dict[bytes, _Session]] = {True: {}, False: {}}
        # (created_at, detached_at, sid) of detached sessions, for "oldest"; entries of sessions since
        # resumed or forgotten are stale, skipped when met and compacted away (see _push_age).
        self._by_age: list[tuple[int, float, bytes]] = []
        self._groups: Counter[str] = Counter()
        self._bound: dict[str, _Bound[Any]] = {}
        self._evictions: Counter[str] = Counter()
        self._refusals: Counter[str] = Counter()
        self._resumed = 0
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []
        self._random = secrets.SystemRandom()

    # --- wiring ----------------------------------------------------------------------------------------

    def websocket(
        self,
        descriptor: State[T],
        app: ASGIApp,
        *,
        initial: Callable[[], T | None] = lambda: None,
        principal: Callable[[T], str | None] | None = None,
        announce: bool = True,
    ) -> ASGIApp:
        """Wrap the WebSocket ``app``: each connection gets a live session of ``descriptor``.

        Args:
            descriptor: the state every session of this app holds.
            app: an ASGI application (``websocket`` scopes get a slot, others pass through).
            initial: the state of a new session (default ``None``).
            principal: ``principal(state) -> str | None``; sessions with a
                principal count as authenticated for eviction.
            announce: send ``{"live_session": token}`` right after the application accepts.

        Raises:
            ConfigurationError: the manager already serves another State of that name.
        """
        check_type(descriptor, State, "descriptor")
        check_callable(app, "app", "ASGI application app(scope, receive, send)")
        known = self._bound.get(descriptor.name)
        if known is not None and known.descriptor is not descriptor:
            raise ConfigurationError(f"this manager already serves another State named {descriptor.name!r}")
        bound: _Bound[T] = _Bound(descriptor, self.keyring, initial, principal)
        self._bound[descriptor.name] = bound

        async def live_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                await app(scope, receive, send)
                return
            await self._connection(bound, app, scope, receive, send, announce)

        return live_app

    def lifespan(self, app: ASGIApp) -> ASGIApp:
        """Wrap ``app`` so the ASGI lifespan runs :meth:`startup` and :meth:`shutdown` around it."""

        async def with_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "lifespan":
                await app(scope, receive, send)
                return
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

        return with_lifespan

    # --- connections -----------------------------------------------------------------------------------

    async def _connection(
        self, bound: _Bound[Any], app: ASGIApp, scope: Scope, receive: Receive, send: Send, announce: bool
    ) -> None:
        now = read_clock(self.clock, _CLOCK)
        group = group_of(client_address(scope, self.trusted_proxies))
        session, error, resumed = await self._open(bound, scope, group, now)
        if isinstance(session, Refusal):
            self._refusals[session.kind] += 1
            await _refuse(receive, send, session)
            return
        token = bound.ids.sign(session.sid)
        slot: LiveSlot[Any] = LiveSlot(session, token, error, resumed)

        async def send_announced(message: Message) -> None:
            await send(message)
            if announce and message["type"] == "websocket.accept":
                await send({"type": "websocket.send", "text": json.dumps({RESUME_PARAMETER: token})})
            session.last_active = read_clock_or(self.clock, time.time, _CLOCK)

        async def receive_active() -> Message:
            message = await receive()
            session.last_active = read_clock_or(self.clock, time.time, _CLOCK)
            return message

        closed = False
        try:
            await app({**scope, bound.key: slot}, receive_active, send_announced)
        except GeneratorExit:
            # Closed, not run: a task garbage-collected while pending. Awaiting here would run store I/O from
            # inside whatever the collector interrupted (it deadlocked inside ThreadPoolExecutor.submit); the
            # session is detached and dirty, and the periodic pass writes it.
            closed = True
            raise
        finally:
            self._detach(session, read_clock_or(self.clock, time.time, _CLOCK))
            if self.store.shared and not closed:
                with contextlib.suppress(StoreUnavailable):  # logged by _write; the periodic pass retries
                    await self._write(session)

    async def _open(
        self, bound: _Bound[Any], scope: Scope, group: str, now: float
    ) -> tuple[_Session | Refusal, LoadError | None, bool]:
        """The session for a new connection: resumed from its token, or new; or the refusal."""
        if self._stopped:
            return Refusal("manager_stopped", "the server is shutting down"), None, False
        error: LoadError | None = None
        token = _token(scope)
        if token is not None:
            opened = bound.ids.open(token)
            if isinstance(opened, LoadError):
                error = opened
            else:
                found = await self._resume(bound, opened[0], group, now)
                if isinstance(found, _Session):
                    self._resumed += 1
                    return found, None, True
                if isinstance(found, Refusal):
                    return found, None, False
                error = found
        refusal = await self._make_room(group)
        if refusal is not None:
            return refusal, None, False
        session = _Session(bound, secrets.token_bytes(16), bound.initial(), group, now)
        self._admit(session)
        return session, error, False

    async def _resume(self, bound: _Bound[Any], sid: bytes, group: str, now: float) -> _Session | LoadError | Refusal:
        """The session ``sid`` back from memory or the store; why not (a LoadError); or a refusal.

        A session found only in the store needs room in memory: at ``max_sessions``
        with nobody to evict it is refused as ``no_room_to_resume`` (the client
        may retry later and still get it back within its window).
        """
        session = self._sessions.get(sid)
        if session is not None and session.evicting is not None:
            await session.evicting.wait()  # a reconnect racing its eviction: take it from the store
            session = self._sessions.get(sid)
        if session is not None:
            if session.detached_at is None:
                return LoadError(ErrorKind.UNKNOWN_SESSION, "that session is live on another connection")
            if not now - session.detached_at < self.resume_window:
                self._forget(session)
                return LoadError(ErrorKind.SESSION_EXPIRED, "past the resume window")
            self._detached[self._principal(session) is None].pop(session.sid, None)
            session.detached_at = None
            session.last_active = now
            return session
        try:
            record = await perform_async(self.store, Get(sid))
        except StoreUnavailable as exc:
            return LoadError(ErrorKind.STORE_UNAVAILABLE, str(exc))
        if record is None or record.moved_to is not None:
            return LoadError(ErrorKind.UNKNOWN_SESSION, "no such live session (never saved, or swept)")
        if not now < record.deadline:
            return LoadError(ErrorKind.SESSION_EXPIRED, "past the resume window")
        opened = bound.records.open(record)
        if isinstance(opened, LoadError):
            return opened
        value = bound.descriptor.decode(opened[0], record.schema_version)
        if isinstance(value, LoadError):
            return value
        refusal = await self._make_room(group)
        if refusal is not None:
            if refusal.kind == "max_sessions_reached":
                return Refusal("no_room_to_resume", f"{refusal.detail}; the session stays resumable from the store")
            return refusal
        session = _Session(bound, sid, value, group, now)
        session.created_at = record.created_at
        session.version = record.version
        session.deadline = record.idle_deadline
        session.saved = opened[0] if record.schema_version == bound.descriptor.version else None
        session.principal = record.principal
        self._admit(session)
        return session

    def _admit(self, session: _Session) -> None:
        self._sessions[session.sid] = session
        self._groups[session.group] += 1

    def _detach(self, session: _Session, now: float) -> None:
        """The connection ended: the session joins its eviction queue (anonymous or authenticated)."""
        if session.detached_at is None and session.sid in self._sessions:
            session.detached_at = now
            session.last_active = now
            self._detached[self._principal(session) is None][session.sid] = session
            if self.eviction == "oldest":
                self._push_age(session)

    def _push_age(self, session: _Session) -> None:
        """Index a detached session by age; compact the heap once stale entries outnumber live ones.

        An entry goes stale when its session is resumed or forgotten; stale
        entries are dropped when met at the top, and all at once here when they
        exceed the detached sessions (+16): the heap stays under
        ``2 × detached + 17`` entries, at O(1) amortised cost per detach.
        """
        assert session.detached_at is not None
        heapq.heappush(self._by_age, (session.created_at, session.detached_at, session.sid))
        detached = len(self._detached[True]) + len(self._detached[False])
        if len(self._by_age) > 2 * detached + 16:
            self._by_age = [entry for entry in self._by_age if self._current_age(entry)]
            heapq.heapify(self._by_age)

    def _current_age(self, entry: tuple[int, float, bytes]) -> bool:
        """Whether a ``_by_age`` entry still describes a detached session in memory."""
        session = self._sessions.get(entry[2])
        return session is not None and session.detached_at == entry[1] and session.created_at == entry[0]

    def _forget(self, session: _Session) -> None:
        for queue in self._detached.values():
            queue.pop(session.sid, None)
        if self._sessions.pop(session.sid, None) is not None:
            self._groups[session.group] -= 1
            if self._groups[session.group] <= 0:
                del self._groups[session.group]

    async def _make_room(self, group: str | None) -> Refusal | None:
        """Check the per-address limit for ``group`` and make room under ``max_sessions`` (evicting)."""
        if group == UNKNOWN:
            if self._groups[group] >= self.max_unaddressed:
                return Refusal(
                    "too_many_sessions_from_ip", f"{self.max_unaddressed} sessions without a client address already"
                )
        elif group is not None and self._groups[group] >= self.max_per_ip:
            return Refusal("too_many_sessions_from_ip", f"{self.max_per_ip} sessions from {group} already")
        while len(self._sessions) >= self.max_sessions:
            victim = self._victim()
            if victim is None:
                return Refusal("max_sessions_reached", f"{self.max_sessions} live sessions in memory")
            await self._evict(victim)
        return None

    def _victim(self) -> _Session | None:
        """The detached session to evict next: anonymous before authenticated, then by the policy.

        ``lru`` takes the one detached longest ago (its last activity was its
        disconnect) in O(1); ``oldest`` the first created, from a heap, in
        O(log n); ``random`` picks uniformly, in O(n).
        """
        for anonymous in (True, False):
            queue = self._detached[anonymous]
            candidates = (s for s in queue.values() if s.evicting is None)
            if self.eviction == "lru":
                victim = next(candidates, None)
            elif self.eviction == "random":
                pool = list(candidates)
                victim = self._random.choice(pool) if pool else None
            else:
                victim = self._oldest(queue)
            if victim is not None:
                return victim
        return None

    def _oldest(self, queue: dict[bytes, _Session]) -> _Session | None:
        """The first-created session of ``queue``, from the age heap (stale entries dropped on the way)."""
        heap = self._by_age
        skipped: list[tuple[int, float, bytes]] = []
        victim = None
        while heap:
            entry = heap[0]
            session = self._sessions.get(entry[2])
            if session is None or not self._current_age(entry):
                heapq.heappop(heap)  # gone, resumed, or replaced: stale
                continue
            if entry[2] in queue and session.evicting is None:
                victim = session
                break
            skipped.append(heapq.heappop(heap))  # the other queue's, or being evicted: keep it
        for entry in skipped:
            heapq.heappush(heap, entry)
        return victim

    async def _evict(self, session: _Session) -> None:
        session.evicting = asyncio.Event()
        try:
            await self._write(session)  # unsaved changes first: it stays resumable from the store
        except StoreUnavailable:
            log.warning("clientstate: evicted live session %s unsaved: the store is down", handle_of(session.sid))
        finally:
            kind = "anonymous" if self._principal(session) is None else "authenticated"
            self._evictions[kind] += 1
            self._forget(session)
            session.evicting.set()

    def _principal(self, session: _Session) -> str | None:
        function = session.binding.principal
        if function is None or session.value is None:
            return None
        principal = function(session.value)
        return principal if isinstance(principal, str) else None

    # --- persistence -----------------------------------------------------------------------------------

    def _deadline(self, session: _Session, now: float) -> int:
        """The idle deadline the stored record of ``session`` should have at ``now``.

        A detached session's record ends ``resume_window`` after the disconnect.
        A live session's ends ``resume_window + 2 × persist_interval`` from now,
        and is pushed on (touched) by every persist pass once less than
        ``resume_window + persist_interval`` is left, so a connection whose state
        never changes stays resumable from the store after a crash or restart.
        Never past the absolute deadline (``created_at + max_lifetime``).
        """
        if session.detached_at is None:
            end = math.floor(now) + math.ceil(self.resume_window) + math.ceil(2 * self.persist_interval)
        else:
            end = math.floor(session.detached_at) + math.ceil(self.resume_window)
        return min(end, session.created_at + math.ceil(self.max_lifetime))

    def _record(self, session: _Session, payload: bytes, now: float) -> Record:
        moment = math.floor(now)
        descriptor = session.binding.descriptor
        absolute = session.created_at + math.ceil(self.max_lifetime)
        principal = self._principal(session)
        blob = session.binding.records.seal(
            session.sid, descriptor.version, payload, principal, session.created_at, absolute
        )
        return Record(
            session.sid, session.version + 1, principal, session.created_at, absolute,
            self._deadline(session, now), moment, descriptor.version, blob,
        )

    async def _write(self, session: _Session) -> bool:
        """Bring the stored record of ``session`` up to date; ``True`` if a record was written or deleted.

        * state ``None`` (a logout or clear): the stored record is deleted, so
          neither a resume nor a restart brings the old state back;
        * state changed since the last write: the record is written (created
          the first time, then compare-and-set on its version);
        * state unchanged: the record is only touched, when its idle deadline
          falls due (:meth:`_deadline`), and not written again.

        Raises:
            StoreUnavailable: the store did not answer (logged).
        """
        now = read_clock_or(self.clock, time.time, _CLOCK)  # a save completes whatever the clock says
        try:
            if session.value is None:
                if session.version == 0:
                    return False
                await perform_async(self.store, Delete(session.sid))  # False (already gone) is as good
                session.version, session.saved, session.deadline = 0, None, 0
                return True
            payload = session.binding.descriptor.encode(session.value)
            if payload == session.saved and session.version > 0:
                wanted = self._deadline(session, now)
                if session.detached_at is None:
                    due = session.deadline - now < self.resume_window + self.persist_interval
                else:
                    due = session.deadline != wanted
                if not due:
                    return False
                if await perform_async(self.store, Touch(session.sid, wanted, math.floor(now))):
                    session.deadline = wanted
                    return False
                # Expired (a process that stood still past the deadline) or swept: write it anew.
                await perform_async(self.store, Delete(session.sid))
                session.version, session.saved = 0, None
            record = self._record(session, payload, now)
            if session.version == 0:
                written = await perform_async(self.store, Create(record))
            else:
                written = await perform_async(self.store, Update(record, session.version)) is UpdateResult.OK
        except StoreUnavailable as exc:
            log.warning("clientstate: live session %s not saved: %s", handle_of(session.sid), exc)
            raise
        if not written:  # another process resumed it meanwhile: the store's copy wins
            log.info("clientstate: live session %s was taken over elsewhere; dropped here", handle_of(session.sid))
            self._forget(session)
            return False
        session.version = record.version
        session.saved = payload
        session.deadline = record.idle_deadline
        return True

    async def persist(self) -> int:
        """Write every session whose state changed since it was last written; returns how many were written.

        Sessions whose state became ``None`` have their stored record deleted
        (counted); unchanged ones are at most touched (not counted), see :meth:`_write`.
        A store that does not answer is logged and retried at the next pass.
        """
        written = 0
        for session in list(self._sessions.values()):
            with contextlib.suppress(StoreUnavailable):  # logged; the next pass retries
                written += await self._write(session)
        return written

    def cleanup(self) -> int:
        """Remove detached sessions past their resume window from memory; returns how many."""
        now = read_clock(self.clock, _CLOCK)
        expired = [
            s for s in self._sessions.values()
            if s.detached_at is not None and s.evicting is None and not now - s.detached_at < self.resume_window
        ]
        for session in expired:
            self._forget(session)
        return len(expired)

    async def _every(self, interval: float, job: Callable[[], Awaitable[Any]], jitter: float = 0.0) -> None:
        while not self._stopped:
            await asyncio.sleep(interval * (1 + self._random.uniform(-jitter, jitter)))
            try:
                await job()
            except Exception:  # a background pass must never die; the next one retries
                log.exception("clientstate: live-session background pass failed")

    async def startup(self) -> int:
        """Restore the snapshot (``MemoryStore`` with ``snapshot_path``) and start the background passes.

        Returns how many records the snapshot restored (0 without one). A
        tampered, truncated or foreign snapshot is refused with an error log
        line, and nothing is loaded from it.
        """
        restored = 0
        if self.snapshot_path is not None and self.snapshot_path.exists():
            try:
                records = read_snapshot(self.snapshot_path, self.keyring)
            except (SnapshotError, OSError) as exc:
                log.error("clientstate: snapshot not restored, nothing loaded from it: %s", exc)
            else:
                restored = await perform_async(self.store, PutAll(tuple((r, 0) for r in records)))
                log.info("clientstate: restored %d sessions from %s", restored, self.snapshot_path)

        async def cleanup() -> None:
            self.cleanup()

        self._tasks = [
            asyncio.ensure_future(self._every(self.persist_interval, self.persist)),
            asyncio.ensure_future(self._every(self.cleanup_interval, cleanup, jitter=0.1)),
        ]
        return restored

    async def shutdown(self, timeout: float = 10.0) -> int:
        """Refuse new sessions, then save every session in one atomic batch (and the snapshot); returns how many.

        Args:
            timeout: seconds the save may take; after it, the save is abandoned
                (logged) rather than holding up the process's exit.
        """
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        try:
            return await asyncio.wait_for(self._save_all(), timeout)
        except (TimeoutError, StoreUnavailable) as exc:
            log.error("clientstate: live sessions not saved at shutdown: %s", exc or "timed out")
            return 0

    async def _save_all(self) -> int:
        now = read_clock_or(self.clock, time.time, _CLOCK)  # so does the shutdown save
        items = []
        for session in list(self._sessions.values()):
            self._detach(session, now)
            if session.value is None:
                with contextlib.suppress(StoreUnavailable):  # logged; then the batch below fails or not
                    await self._write(session)  # cleared: its stored record (if any) is deleted, not saved
                continue
            payload = session.binding.descriptor.encode(session.value)
            items.append((self._record(session, payload, now), session.version))
        saved = await perform_async(self.store, PutAll(tuple(items))) if items else 0
        if self.snapshot_path is not None:
            records = getattr(self.store, "records", None)
            if callable(records):
                size = await asyncio.to_thread(write_snapshot, self.snapshot_path, records(), self.keyring)
                log.info("clientstate: %d sessions saved to %s (%d bytes)", saved, self.snapshot_path, size)
        return saved

    # --- observation -----------------------------------------------------------------------------------

    def stats(self) -> ManagerStats:
        """Counts of the sessions in memory and of evictions and refusals so far."""
        live = sum(1 for s in self._sessions.values() if s.detached_at is None)
        return ManagerStats(
            total=len(self._sessions),
            live=live,
            detached=len(self._sessions) - live,
            unique_ips=len(self._groups),
            evictions={"anonymous": self._evictions["anonymous"], "authenticated": self._evictions["authenticated"]},
            refusals=dict(self._refusals),
            resumed=self._resumed,
        )


def _token(scope: Scope) -> str | None:
    """The ``live_session`` query parameter (its first occurrence), or ``None``.

    The query string is split on ``&`` in one linear pass, without a limit on
    the number of fields: other parameters, however many, are ignored rather
    than refused (the server already bounds the request line's length).
    """
    query = scope.get("query_string", b"")
    if not query:
        return None
    prefix = RESUME_PARAMETER.encode() + b"="
    for field in bytes(query).split(b"&"):
        if field.startswith(prefix):
            return unquote_plus(field[len(prefix):].decode("latin-1"))
    return None


async def _refuse(receive: Receive, send: Send, refusal: Refusal) -> None:
    """Complete the handshake and close at once with 1013, the reason naming the refusal."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": refusal.kind})
