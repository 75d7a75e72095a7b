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
* A refused handshake is accepted and closed at once with code 1013 (try again
  later) and the reason set to the refusal's kind; after :meth:`SessionManager.shutdown`
  every new connection is refused with ``manager_stopped``.

Persistence: every ``persist_interval`` (30 s) the sessions whose state
changed since they were last written are written (so a ``kill -9`` loses at
most the changes of one interval); with a shared store (Redis, PostgreSQL,
MySQL — ``store.shared``) a session is also written through when its
connection ends. Every ``cleanup_interval`` (60 s, ±10 % jitter) detached
sessions past their window leave memory. :meth:`SessionManager.shutdown`
refuses new sessions, then saves every session in one atomic batch
(:class:`~clientstate._core.store.PutAll`: one SQL transaction, one Redis
script over one hash slot) and, for a ``MemoryStore`` with a
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
from urllib.parse import parse_qs

from clientstate._core.binding import Clock
from clientstate._core.config import check_callable, check_type
from clientstate._core.errors import ConfigurationError, ErrorKind, LoadError, StateNotWritable, StoreUnavailable
from clientstate._core.flow import perform_async
from clientstate._core.keys import Keyring
from clientstate._core.record import RecordCodec
from clientstate._core.session_id import SessionIdCodec, handle_of
from clientstate._core.state import State
from clientstate._core.store import Create, Get, PutAll, Record, Store, Update, UpdateResult
from clientstate._core.value import Value
from clientstate.live.address import client_address, group_of, parse_networks
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
_DEFAULTS: Final = {
    "max_sessions": 10_000,
    "max_per_ip": 100,
    "resume_window": 300,
    "persist_interval": 30,
    "cleanup_interval": 60,
    "max_lifetime": 7 * 24 * 3600,
}
#: The WebSocket close code of a refused handshake: 1013, try again later (RFC 6455 §7.4.1, IANA registry).
TRY_AGAIN_LATER: Final = 1013
#: The query parameter a reconnecting client presents its token in.
RESUME_PARAMETER: Final = "live_session"


class Refusal(Value, frozen=True):
    """Why a new live session was refused: ``kind`` is ``too_many_sessions_from_ip``,
    ``max_sessions_reached`` or ``manager_stopped``."""

    kind: str
    detail: str = ""


class ManagerStats(Value, frozen=True):
    """What :meth:`SessionManager.stats` reports. Counters count since the manager was created.

    Attributes:
        total: sessions in memory (live + detached).
        live: sessions with an open connection.
        detached: sessions whose connection ended, kept for ``resume_window``.
        unique_ips: distinct address groups among the sessions in memory.
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
        "binding", "created_at", "detached_at", "evicting", "group", "last_active", "principal", "saved", "sid",
        "value", "version",
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


def _setting(value: int | float | None, name: str) -> float:
    """A positive setting, or its safe default when unset or non-positive."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return float(_DEFAULTS[name])
    return float(value)


class SessionManager:
    """Live sessions for ASGI WebSocket applications; see the module docstring for every rule.

    Args:
        store: where detached sessions are persisted (any store of :mod:`clientstate.stores`).
        keyring: keys for the tokens (subkey ``sid``), the stored state (``record``) and the snapshot.
        max_sessions, max_per_ip: limits (defaults 10,000 and 100).
        resume_window: seconds a detached session can be resumed (default 300).
        persist_interval: seconds between writes of changed sessions (default 30).
        cleanup_interval: seconds between removals of expired detached sessions (default 60).
        max_lifetime: seconds after creation when a session ends whatever its activity (default 7 days).
        eviction: ``"lru"`` (default), ``"oldest"`` or ``"random"``.
        trusted_proxies: addresses or networks whose ``Forwarded``/``X-Forwarded-For`` are believed.
        snapshot_path: for a ``MemoryStore``, the file :meth:`shutdown` writes and :meth:`startup` restores.
        clock: seconds since the epoch (default ``time.time``).

    Raises:
        ConfigurationError: a store that is not a store, a bad eviction policy or proxy entry.
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        *,
        max_sessions: int | None = None,
        max_per_ip: int | None = None,
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
        if eviction not in ("lru", "oldest", "random"):
            raise ConfigurationError(f"eviction must be 'lru', 'oldest' or 'random', got {eviction!r}")
        check_callable(clock, "clock", "clock() -> seconds since the epoch")
        self.store = store
        self.keyring = keyring
        self.max_sessions = int(_setting(max_sessions, "max_sessions"))
        self.max_per_ip = int(_setting(max_per_ip, "max_per_ip"))
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
        self._by_age: list[tuple[int, bytes]] = []
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
        now = self.clock()
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
            session.last_active = self.clock()

        async def receive_active() -> Message:
            message = await receive()
            session.last_active = self.clock()
            return message

        try:
            await app({**scope, bound.key: slot}, receive_active, send_announced)
        finally:
            self._detach(session, self.clock())
            if self.store.shared:
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
                error = found
        refusal = await self._make_room(group)
        if refusal is not None:
            return refusal, None, False
        session = _Session(bound, secrets.token_bytes(16), bound.initial(), group, now)
        self._admit(session)
        return session, error, False

    async def _resume(self, bound: _Bound[Any], sid: bytes, group: str, now: float) -> _Session | LoadError:
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
            return LoadError(ErrorKind.STORE_UNAVAILABLE, f"no room to resume it: {refusal.kind}")
        session = _Session(bound, sid, value, group, now)
        session.created_at = record.created_at
        session.version = record.version
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
            heapq.heappush(self._by_age, (session.created_at, session.sid))

    def _forget(self, session: _Session) -> None:
        for queue in self._detached.values():
            queue.pop(session.sid, None)
        if self._sessions.pop(session.sid, None) is not None:
            self._groups[session.group] -= 1
            if self._groups[session.group] <= 0:
                del self._groups[session.group]

    async def _make_room(self, group: str | None) -> Refusal | None:
        """Check the per-address limit for ``group`` and make room under ``max_sessions`` (evicting)."""
        if group is not None and self._groups[group] >= self.max_per_ip:
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
        skipped = []
        victim = None
        while heap:
            created, sid = heap[0]
            session = self._sessions.get(sid)
            if session is None or session.detached_at is None or session.created_at != created:
                heapq.heappop(heap)  # gone, resumed, or replaced: stale
                continue
            if sid in queue and session.evicting is None:
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

    def _record(self, session: _Session, payload: bytes, now: float) -> Record:
        moment = math.floor(now)
        descriptor = session.binding.descriptor
        end = moment + math.ceil(self.resume_window)
        if session.detached_at is None:  # live: stays resumable until the next persist pass has passed
            end += math.ceil(2 * self.persist_interval)
        absolute = session.created_at + math.ceil(self.max_lifetime)
        principal = self._principal(session)
        blob = session.binding.records.seal(
            session.sid, descriptor.version, payload, principal, session.created_at, absolute
        )
        return Record(
            session.sid, session.version + 1, principal, session.created_at, absolute,
            min(end, absolute), moment, descriptor.version, blob,
        )

    async def _write(self, session: _Session) -> bool:
        """Write ``session`` if its state changed since it was last written; ``True`` if it was written.

        Raises:
            StoreUnavailable: the store did not answer (logged).
        """
        if session.value is None:
            return False
        payload = session.binding.descriptor.encode(session.value)
        if payload == session.saved:
            return False
        record = self._record(session, payload, self.clock())
        try:
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
        return True

    async def persist(self) -> int:
        """Write every session whose state changed since it was last written; returns how many were written."""
        written = 0
        for session in list(self._sessions.values()):
            with contextlib.suppress(StoreUnavailable):  # logged; the next pass retries
                written += await self._write(session)
        return written

    def cleanup(self) -> int:
        """Remove detached sessions past their resume window from memory; returns how many."""
        now = self.clock()
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
        now = self.clock()
        items = []
        for session in self._sessions.values():
            if session.value is None:
                continue
            payload = session.binding.descriptor.encode(session.value)
            self._detach(session, now)
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
    query = scope.get("query_string", b"")
    values = parse_qs(query.decode("latin-1"), max_num_fields=16).get(RESUME_PARAMETER) if query else None
    return values[0] if values else None


async def _refuse(receive: Receive, send: Send, refusal: Refusal) -> None:
    """Complete the handshake and close at once with 1013, the reason naming the refusal."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": refusal.kind})
