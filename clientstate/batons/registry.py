"""The registry of streams: every rule of batons, written once, sans-I/O.

A **stream** pins one resource (a database connection inside a transaction,
say) to work that spans several requests. Each request presents the stream's
latest baton, gets the stream, does its work on the resource and hands back
the next baton. :class:`Registry` decides everything; it performs no I/O. What
touches a resource (acquiring it, rolling it back, closing it) is returned as
:mod:`~clientstate.batons.steps` for a driver to perform:
:class:`~clientstate.batons.Streams` (blocking) or
:class:`~clientstate.batons.AsyncStreams` (``await``).

The rules:

* **Rotation.** ``resume`` consumes the presented generation at once: the
  stream's next baton carries the next generation, so the previous baton no
  longer resumes (``baton_reused``), and of two concurrent requests with one
  baton exactly one proceeds.
* **Bindings first.** The baton's tag is checked against the stream's own
  binding; then the presented scope (``scope_mismatch``) and principal
  (``principal_mismatch``, compared in constant time), and only then the
  generation. A request with the wrong principal or scope consumes nothing.
* **One request at a time.** A resumed (or just opened) stream is *busy* until
  ``release`` or ``close``. ``peek`` hands out the next baton early (for a
  streamed response); ``resume`` refuses it (``stream_busy``) until the
  request is over. The reaper, ``kill`` and ``close_all`` never touch a busy
  stream.
* **Timeouts.** A stream idle for longer than ``Limits.idle_timeout``, or older
  than ``Limits.max_lifetime`` however active, is ended by the reaper or by
  the ``resume`` that finds it so (``stream_expired``).
* **Caps.** ``open`` reserves a place among the scope's ``Limits.max_streams``
  *before* it acquires the resource (``too_many_streams``), and the place is
  freed only once the resource is closed.
* **Tombstones.** An ended stream (closed, killed, reaped, shut down) is
  remembered for ``Limits.tombstone_ttl``: its batons answer
  ``stream_expired``, not ``bad_baton``.
* **Shutdown.** ``close_all`` refuses everything from then on
  (``registry_closed``), ends every idle stream, and leaves busy ones to end
  when their request releases them.

Thread safety: every method may be called from any thread; the registry's
state is guarded by one lock, held only for dictionary work, never during I/O
or a MAC. The async driver calls the same methods on its event loop.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from hmac import compare_digest
from typing import Any, Final, Generic, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hmac

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.config import check_callable, check_type, read_clock, read_clock_or
from clientstate._core.errors import ConfigurationError
from clientstate._core.keys import Keyring
from clientstate._core.value import Immutable, Value
from clientstate.batons import errors
from clientstate.batons.baton import (
    BATON_CHARS,
    BOOT_BYTES,
    GENERATION_MAX,
    STREAM_ID_CHARS,
    VERSION,
    BatonKeys,
    authentic,
    binding,
    seal,
)
from clientstate.batons.errors import BatonError, BatonErrorKind
from clientstate.batons.limits import Limits
from clientstate.batons.resources import AsyncResource, Resource
from clientstate.batons.steps import Steps

__all__ = ["Drained", "Ending", "Registry", "Stream", "StreamInfo"]

R = TypeVar("R", bound=Resource | AsyncResource)
T = TypeVar("T")

_log: Final = logging.getLogger("clientstate.batons")
_MAX_TEXT: Final = 4096
#: How the registry's clock is named when a reading is refused or replaced, and what it must return (see read_clock).
_CLOCK: Final = "the baton registry clock"
_CLOCK_UNIT: Final = "seconds (like time.monotonic())"


class StreamInfo(Value, frozen=True):
    """A snapshot of one live stream, for ``list`` and ``kill``. Frozen.

    Attributes:
        id: the stream id (22 characters of base64url), what ``kill`` takes.
        scope: the stream's scope.
        principal: who opened it.
        read_only: whether it was opened read-only.
        busy: a request is in flight on it.
        generation: the generation its next baton carries.
        age: seconds since it was opened.
        idle_for: seconds since its last request ended (0 while busy).
    """

    id: str
    scope: str
    principal: str
    read_only: bool
    busy: bool
    generation: int
    age: float
    idle_for: float


class Drained(Value, frozen=True):
    """What ``close_all`` did. Frozen.

    Attributes:
        closed: idle streams whose resource was rolled back and closed.
        failed: idle streams whose rollback or close raised (logged on the
            ``clientstate.batons`` logger; the resource was still closed if
            only the rollback failed).
        busy: streams left alone because a request was in flight; each is
            ended when its request releases it.
        unfinished: streams ended elsewhere (the reaper, ``kill``) still
            closing when the wait ran out (0 unless the timeout passed).
    """

    closed: int
    failed: int
    busy: int
    unfinished: int = 0


class _Entry:
    """One live stream (guarded by the registry lock)."""

    __slots__ = ("binding", "busy", "deadline", "ends_at", "fed", "generation", "holder", "id", "last_used", "live",
                 "opened_at", "principal", "principal_bytes", "read_only", "resource", "scope", "wire_generation")

    def __init__(self, scope: str, principal: str, read_only: bool, resource: Any, now: float, limits: Limits) -> None:
        self.scope = scope
        self.principal = principal
        self.principal_bytes = principal.encode("utf-8")
        self.read_only = read_only
        self.resource = resource
        self.binding = binding(scope, principal)
        # (keys, HMAC under the current key fed with the binding, version ‖ key id ‖ stream id)
        self.fed: tuple[BatonKeys, hmac.HMAC, bytes] | None = None
        self.id = b""
        self.generation = 0
        self.wire_generation = bytes(8)  # the generation as the baton carries it
        self.live = False  # in the registry's table
        self.busy = True
        self.holder: Stream[Any] | None = None
        self.opened_at = now
        self.last_used = now
        self.ends_at = now + limits.max_lifetime  # -inf once every generation is used
        self.deadline = min(now + limits.idle_timeout, self.ends_at)  # when an idle stream is over


class _Tombstone:
    __slots__ = ("binding", "ended_at", "why")

    def __init__(self, bound: bytes, ended_at: float, why: str) -> None:
        self.binding = bound
        self.ended_at = ended_at
        self.why = why


class _Table:
    """The registry's mutable state, replaced wholesale in a forked child."""

    __slots__ = ("boot", "closed", "condition", "counts", "ending", "entries", "keys", "lock", "tombstones")

    def __init__(self, keys: BatonKeys) -> None:
        self.lock = threading.Lock()
        self.condition = threading.Condition(self.lock)
        self.keys = keys
        self.boot = secrets.token_bytes(BOOT_BYTES)
        self.entries: dict[bytes, _Entry] = {}
        self.tombstones: OrderedDict[bytes, _Tombstone] = OrderedDict()
        self.counts: dict[str, int] = {}
        self.closed = False
        self.ending = 0


class Stream(Value, Generic[R], frozen=True, eq=False):
    """A stream as one request holds it: returned by ``open`` and ``resume``. Frozen; compares by identity.

    The handle is valid until ``release`` or ``close`` is called with it;
    using it after that raises :class:`~clientstate.ConfigurationError` (it
    never reaches a stream another request holds).

    Attributes:
        resource: the pinned resource.
        scope: the scope the stream was opened in.
        principal: who opened it.
        read_only: whether it was opened read-only.
    """

    resource: R
    scope: str
    principal: str
    read_only: bool
    _entry: _Entry

    @property
    def id(self) -> str:
        """The stream id (22 characters of base64url), as ``list`` shows it and ``kill`` takes it."""
        return b64url_encode(self._entry.id)

    def __repr__(self) -> str:
        return f"Stream(id={self.id!r}, scope={self.scope!r}, read_only={self.read_only})"


def _hold(entry: _Entry) -> Stream[Any]:
    """A new handle for ``entry``, made its holder (lock held)."""
    holder: Stream[Any] = Stream(entry.resource, entry.scope, entry.principal, entry.read_only, entry)
    entry.holder = holder
    return holder


class Ending(Generic[T]):
    """A stream taken out of the registry whose resource must now be ended; ``steps()`` does it.

    Attributes:
        result: what the operation returns once the resource is ended.
    """

    __slots__ = ("_quiet", "_registry", "_scope", "_text_id", "resource", "result")

    def __init__(self, registry: Registry[Any], entry: _Entry, result: T, quiet: bool) -> None:
        self._registry = registry
        self._scope = entry.scope
        self._text_id = b64url_encode(entry.id) if entry.id else "(not admitted)"
        self._quiet = quiet
        self.resource = entry.resource
        self.result = result

    def steps(self) -> Steps[T]:
        """Roll the resource back, then close it even if that failed, then free the scope's place.

        Raises:
            The resource's exception, unless the ending is *quiet* (an
            expired stream found by ``resume``, a release after shutdown):
            then it is logged on ``clientstate.batons`` and ``result`` is returned.
        """
        try:
            try:
                try:
                    yield self.resource.rollback
                finally:
                    yield self.resource.close
            finally:
                self._registry._ended(self._scope)
        except Exception:
            if not self._quiet:
                raise
            _log.warning("stream %s: ending its resource failed", self._text_id, exc_info=True)
        return self.result


def _end_each(endings: list[Ending[Any]]) -> Steps[tuple[int, int]]:
    """End every resource, logging and counting failures: ``(closed, failed)``."""
    closed = failed = 0
    for ending in endings:
        try:
            yield from ending.steps()
        except Exception:
            failed += 1
            _log.warning("stream %s: ending its resource failed", ending._text_id, exc_info=True)
        else:
            closed += 1
    return closed, failed


def _text(value: object, label: str) -> str:
    if type(value) is not str or not value or len(value) > _MAX_TEXT:
        raise ConfigurationError(f"{label} must be a non-empty str of at most {_MAX_TEXT} characters, "
                                 f"got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{label} must be encodable as UTF-8 (it holds a lone surrogate)") from None
    return value


def _stale(operation: str) -> ConfigurationError:
    return ConfigurationError(
        f"{operation}(): this Stream handle is no longer held (it was already released or closed); "
        f"use the handle the latest open() or resume() returned"
    )


def _not_a_stream(operation: str, value: object) -> ConfigurationError:
    return ConfigurationError(f"{operation}() takes the Stream that open() or resume() returned, "
                              f"got {type(value).__name__}")


def _check_holder(entry: _Entry, stream: Stream[Any], operation: str) -> None:
    """Raise unless ``stream`` is the handle holding ``entry`` (call with the lock held)."""
    if entry.holder is not stream:
        raise _stale(operation)


_REGISTRIES: Final[weakref.WeakSet[Registry[Any]]] = weakref.WeakSet()


def _after_fork() -> None:
    # A child must not touch its parent's resources (closing a sqlite3 connection
    # inherited across fork can release the parent's locks): forget them, draw a new boot.
    for registry in list(_REGISTRIES):
        registry._set(_t=_Table(registry._t.keys))


os.register_at_fork(after_in_child=_after_fork)


class Registry(Immutable, Generic[R]):
    """The sans-I/O registry of streams. Use it through ``Streams`` or ``AsyncStreams``.

    Args:
        keyring: batons are sealed under ``keyring.current`` (its ``baton``
            subkey) and verified under the key their key id names.
        limits: timeouts, caps and tombstones (:class:`~clientstate.batons.Limits`).
        clock: returns seconds (default ``time.monotonic``); tests inject a
            frozen clock. Every reading must be a finite number: ``open``,
            ``resume`` and ``list`` raise :class:`~clientstate.ConfigurationError`
            for NaN or an infinity; the steps that free streams (release, close,
            kill, reap, close_all) log it and go on with ``time.monotonic``.

    Raises:
        ConfigurationError: an argument of the wrong type.
    """

    __slots__ = ("__weakref__", "_idle", "_t", "clock", "limits")

    limits: Limits
    clock: Callable[[], float]
    _idle: float
    _t: _Table

    def __init__(self, keyring: Keyring, limits: Limits, clock: Callable[[], float]) -> None:
        check_type(keyring, Keyring, "keyring", "read one with Keyring.from_env() or Keyring.from_text(...)")
        check_type(limits, Limits, "limits", "build one with clientstate.batons.Limits(...)")
        check_callable(clock, "clock", "clock() -> seconds")
        self._set(limits=limits, clock=clock, _idle=limits.idle_timeout, _t=_Table(BatonKeys(keyring)))
        _REGISTRIES.add(self)

    @property
    def closed(self) -> bool:
        """Whether ``close_all`` has run."""
        return self._t.closed

    def rotate(self, keyring: Keyring) -> None:
        """Use ``keyring`` from now on: new batons under its current key; batons under its other keys still resume.

        Raises:
            ConfigurationError: ``keyring`` is not a :class:`~clientstate.Keyring`.
        """
        check_type(keyring, Keyring, "keyring")
        self._t.keys = BatonKeys(keyring)

    # ------------------------------------------------------------------ opening

    def open(
        self, acquire: Callable[[bool], Any], principal: str, scope: str, read_only: bool
    ) -> Steps[Stream[R] | BatonError]:
        """Reserve a place in ``scope``, acquire a resource, admit it as a busy stream.

        Steps returning a :class:`Stream`, or a :class:`BatonError` of kind
        ``too_many_streams`` or ``registry_closed``. The acquirer's exception
        propagates (the reservation is released first).

        Raises:
            ConfigurationError: a bad argument, or ``acquire`` returned
                something without ``rollback()`` and ``close()``.
        """
        check_callable(acquire, "acquire", "acquire(read_only) -> resource")
        _text(principal, "principal")
        _text(scope, "scope")
        check_type(read_only, bool, "read_only")
        # Read before anything is reserved or acquired: a broken clock raises with nothing to give back.
        now = read_clock(self.clock, _CLOCK, _CLOCK_UNIT)
        t = self._t
        with t.lock:
            if t.closed:
                return errors.CLOSED
            count = t.counts.get(scope, 0)
            if count >= self.limits.max_streams:
                return BatonError(
                    BatonErrorKind.TOO_MANY_STREAMS,
                    f"the scope has {count} streams open or opening (max_streams={self.limits.max_streams})",
                )
            t.counts[scope] = count + 1
        try:
            resource = yield partial(acquire, read_only)
            if not (callable(getattr(resource, "rollback", None)) and callable(getattr(resource, "close", None))):
                raise ConfigurationError(
                    f"acquire() returned a {type(resource).__name__}, which has no rollback() and close(): "
                    f"a stream's resource must have both"
                )
        except BaseException:
            self._ended(scope, ending=False)
            raise
        entry = _Entry(scope, principal, read_only, resource, now, self.limits)
        with t.lock:
            if t.closed:
                t.ending += 1
                late: Ending[BatonError] | None = Ending(self, entry, errors.CLOSED, quiet=True)
            else:
                late = None
                sid = t.boot + secrets.token_bytes(8)
                while sid in t.entries or sid in t.tombstones:
                    sid = t.boot + secrets.token_bytes(8)  # pragma: no cover - 2**-64 per stream
                entry.id = sid
                entry.live = True
                holder: Stream[R] = _hold(entry)
                t.entries[sid] = entry
        if late is not None:
            return (yield from late.steps())
        return holder

    # ------------------------------------------------------------------ the request path

    def resume(self, baton: object, scope: str, principal: str) -> Stream[R] | BatonError | Ending[BatonError]:
        """Check ``baton`` and take its stream for one request (the stream becomes busy).

        Returns the :class:`Stream`; a :class:`BatonError` (``bad_baton``,
        ``baton_reused``, ``stream_busy``, ``stream_expired``,
        ``principal_mismatch``, ``scope_mismatch``, ``registry_closed``); or an
        :class:`Ending` whose steps end a stream found expired and then give
        ``stream_expired``. ``baton`` is client input and may be anything.
        """
        if type(baton) is not str or len(baton) != BATON_CHARS:  # the size, before any decoding
            return errors.WRONG_LENGTH
        raw = b64url_decode(baton)
        if raw is None:
            return errors.NOT_BASE64
        if raw[0] != VERSION:
            return errors.BAD_VERSION
        if type(scope) is not str or type(principal) is not str:
            _text(scope, "scope")
            _text(principal, "principal")
        t = self._t
        if t.closed:
            return errors.CLOSED
        sid = raw[2:18]
        entry = t.entries.get(sid)  # the stream id selects the binding, as the key id selects the key
        if entry is None:
            return self._gone(t, raw)
        keys = t.keys
        cached = entry.fed
        if raw[1] == keys.current_id and cached is not None and cached[0] is keys:
            mac = cached[1].copy()
        else:
            fed = keys.fed(raw[1], entry.binding)
            if fed is None:
                return errors.UNKNOWN_KEY
            mac = fed.copy()
        mac.update(raw[:26])
        try:
            mac.verify(raw[26:])  # constant time, inside cryptography
        except InvalidSignature:
            return errors.FORGED
        if scope != entry.scope:
            return errors.SCOPE
        try:
            presented = principal.encode()
        except UnicodeEncodeError:
            return errors.PRINCIPAL
        if not compare_digest(presented, entry.principal_bytes):  # constant time (what cryptography's bytes_eq runs)
            return errors.PRINCIPAL
        wire_generation = raw[18:26]
        now = read_clock(self.clock, _CLOCK, _CLOCK_UNIT)
        with t.lock:
            if not entry.live:  # ended since the lookup
                return self._gone(t, raw, locked=True)
            if wire_generation != entry.wire_generation:
                return errors.REUSED
            if entry.busy:
                return errors.BUSY
            if now > entry.deadline:
                why = self._why_over(entry, now)
                return self._take(t, entry, now, why, BatonError(BatonErrorKind.STREAM_EXPIRED, why), quiet=True)
            entry.generation = generation = entry.generation + 1
            entry.wire_generation = generation.to_bytes(8, "big")
            if generation >= GENERATION_MAX:  # pragma: no cover - 2**64 requests
                entry.ends_at = -math.inf
            entry.busy = True
            holder: Stream[R] = Stream(entry.resource, entry.scope, entry.principal, entry.read_only, entry)
            entry.holder = holder
        return holder

    def peek(self, stream: Stream[R]) -> str:
        """The baton ``release`` will return, while the request still holds the stream.

        ``resume`` refuses it (``stream_busy``) until ``release``. A handle
        no longer held raises ConfigurationError.
        """
        entry = self._held(stream, "peek")
        t = self._t
        with t.lock:
            _check_holder(entry, stream, "peek")
            generation = entry.generation
            keys = t.keys
        cached = self._cache(entry, keys)
        return seal(cached[1], keys.current_id, entry.id, generation)

    def release(self, stream: Stream[R]) -> str | Ending[BatonError]:
        """End the request: the stream is idle again; returns its next baton.

        After ``close_all`` returns an :class:`Ending` instead (the stream is
        ended, and the result is ``registry_closed``).

        Raises:
            ConfigurationError: ``stream`` was released or closed already.
        """
        if type(stream) is not Stream:
            raise _not_a_stream("release", stream)
        entry = stream._entry
        now = self._ending_now()
        t = self._t
        with t.lock:
            if entry.holder is not stream:
                raise _stale("release")
            entry.holder = None
            entry.busy = False
            entry.last_used = now
            idle_end = now + self._idle
            entry.deadline = idle_end if idle_end < entry.ends_at else entry.ends_at
            if t.closed:
                return self._take(t, entry, now, "shut down", errors.CLOSED, quiet=True)
            wire_generation = entry.wire_generation
            keys = t.keys
        cached = entry.fed
        if cached is None or cached[0] is not keys:
            cached = self._cache(entry, keys)
        head = cached[2] + wire_generation
        mac = cached[1].copy()
        mac.update(head)
        return b64url_encode(head + mac.finalize())

    def close(self, stream: Stream[R]) -> Ending[None]:
        """Take the held stream out: the returned :class:`Ending` rolls back and closes its resource.

        A handle no longer held raises ConfigurationError.
        """
        t = self._t
        entry = self._held(stream, "close")
        now = self._ending_now()
        with t.lock:
            _check_holder(entry, stream, "close")
            return self._take(t, entry, now, "closed", None, quiet=False)

    # ------------------------------------------------------------------ administration

    def list(self, where: Callable[[StreamInfo], bool] | None = None) -> tuple[StreamInfo, ...]:
        """Snapshots of the live streams, those for which ``where(info)`` is true if given.

        Raises:
            ConfigurationError: ``where`` is not callable.
        """
        if where is not None:
            check_callable(where, "where", "where(info) -> bool")
        now = read_clock(self.clock, _CLOCK, _CLOCK_UNIT)
        t = self._t
        with t.lock:
            infos = [self._info(entry, now) for entry in t.entries.values()]
        return tuple(info for info in infos if where is None or where(info))

    def kill(self, stream_id: object) -> Steps[StreamInfo | BatonError]:
        """End the idle stream ``stream_id`` (an administrator's kill).

        Steps returning the :class:`StreamInfo` of the ended stream, or a
        :class:`BatonError`: ``stream_busy`` (a request is in flight: refused,
        never interrupted), ``stream_expired`` (already ended), ``bad_baton``
        (no such stream, or not a stream id) or ``registry_closed``. The
        resource's exception propagates (the stream is ended all the same).
        """
        raw = b64url_decode(stream_id) if type(stream_id) is str and len(stream_id) == STREAM_ID_CHARS else None
        if raw is None:
            return BatonError(BatonErrorKind.BAD_BATON, "not a stream id")
        now = self._ending_now()
        t = self._t
        with t.lock:
            if t.closed:
                return errors.CLOSED
            entry = t.entries.get(raw)
            if entry is None:
                tomb = t.tombstones.get(raw)
                if tomb is not None and now - tomb.ended_at <= self.limits.tombstone_ttl:
                    return BatonError(BatonErrorKind.STREAM_EXPIRED, f"the stream already ended ({tomb.why})")
                return errors.UNKNOWN_STREAM
            if entry.busy:
                return errors.BUSY
            ending = self._take(t, entry, now, "killed", self._info(entry, now), quiet=False)
        return (yield from ending.steps())

    def reap(self) -> Steps[int]:
        """End every idle stream past its idle timeout or maximum lifetime; drop old tombstones.

        Steps returning the number of streams ended. Busy streams are never
        touched. A resource that fails to end is logged and counted all the same.
        """
        now = self._ending_now()
        t = self._t
        with t.lock:
            self._prune(t, now)
            endings: list[Ending[Any]] = []
            for entry in list(t.entries.values()):
                if not entry.busy and now > entry.deadline:
                    endings.append(self._take(t, entry, now, self._why_over(entry, now), None, quiet=False))
        yield from _end_each(endings)
        return len(endings)

    def close_all(self) -> Steps[Drained]:
        """Shut the registry: refuse everything from now on and end every idle stream.

        Steps returning :class:`Drained`. Busy streams are left to their
        request; each is ended when released. The driver then waits for
        endings started elsewhere (see :meth:`wait_endings`).
        """
        now = self._ending_now()
        t = self._t
        with t.lock:
            t.closed = True
            idle = [entry for entry in t.entries.values() if not entry.busy]
            busy = len(t.entries) - len(idle)
            endings: list[Ending[Any]] = [self._take(t, entry, now, "shut down", None, quiet=False) for entry in idle]
        closed, failed = yield from _end_each(endings)
        return Drained(closed=closed, failed=failed, busy=busy)

    def endings(self) -> int:
        """How many streams are taken out of the registry with their resource not yet closed."""
        return self._t.ending

    def wait_endings(self, timeout: float) -> bool:
        """Block until no stream is being ended anywhere, or ``timeout`` seconds pass; whether none is."""
        t = self._t
        with t.condition:
            return t.condition.wait_for(lambda: t.ending == 0, timeout)

    # ------------------------------------------------------------------ internals

    def _ending_now(self) -> float:
        """The clock for a step that frees or ends streams (release, close, kill, reap, close_all).

        Such a step completes whatever the clock says: a reading that is not a
        finite number is logged and ``time.monotonic`` stands in, so no stream
        stays busy and no resource open because of it. ``open``, ``resume`` and
        ``list``, which hold nothing yet, refuse such a reading instead.
        """
        return read_clock_or(self.clock, time.monotonic, _CLOCK, _CLOCK_UNIT)

    @staticmethod
    def _held(stream: object, operation: str) -> _Entry:
        if type(stream) is not Stream:
            raise _not_a_stream(operation, stream)
        return stream._entry

    def _why_over(self, entry: _Entry, now: float) -> str:
        """Why an idle stream past its deadline is over."""
        idle = now - entry.last_used
        if idle > self.limits.idle_timeout:
            return f"idle for {idle:.3g} s, over the idle timeout of {self.limits.idle_timeout:g} s"
        if entry.ends_at == -math.inf:  # pragma: no cover - 2**64 requests
            return "every generation has been used"
        age = now - entry.opened_at
        return f"open for {age:.3g} s, over the maximum lifetime of {self.limits.max_lifetime:g} s"

    def _take(self, t: _Table, entry: _Entry, now: float, why: str, result: T, *, quiet: bool) -> Ending[T]:
        """Remove ``entry`` (lock held), leave its tombstone, count it as ending."""
        del t.entries[entry.id]
        entry.live = False
        entry.busy = False
        t.tombstones[entry.id] = _Tombstone(entry.binding, now, why)
        t.tombstones.move_to_end(entry.id)
        while len(t.tombstones) > self.limits.max_tombstones:
            t.tombstones.popitem(last=False)
        t.ending += 1
        return Ending(self, entry, result, quiet)

    def _ended(self, scope: str, *, ending: bool = True) -> None:
        """A resource is closed (or was never acquired): free the scope's place."""
        t = self._t
        with t.condition:
            left = t.counts.get(scope, 0) - 1
            if left > 0:
                t.counts[scope] = left
            else:
                t.counts.pop(scope, None)
            if ending:
                t.ending -= 1
                t.condition.notify_all()

    def _prune(self, t: _Table, now: float) -> None:
        ttl = self.limits.tombstone_ttl
        while t.tombstones:
            sid, tomb = next(iter(t.tombstones.items()))
            if now - tomb.ended_at <= ttl:
                break
            del t.tombstones[sid]

    @staticmethod
    def _cache(entry: _Entry, keys: BatonKeys) -> tuple[BatonKeys, hmac.HMAC, bytes]:
        """The entry's cached sealing state for ``keys``, made anew after a rotation."""
        cached = entry.fed
        if cached is None or cached[0] is not keys:
            fed = keys.fed(keys.current_id, entry.binding)
            assert fed is not None  # the current key is always in its keyring
            cached = entry.fed = (keys, fed, bytes((VERSION, keys.current_id)) + entry.id)
        return cached

    def _gone(self, t: _Table, raw: bytes, *, locked: bool = False) -> BatonError:
        """The answer for a baton whose stream is not live: another registry's, a tombstone's, or none."""
        if raw[2:2 + BOOT_BYTES] != t.boot:
            return errors.FOREIGN
        keys = t.keys
        if locked:
            tomb = t.tombstones.get(raw[2:18])
        else:
            with t.lock:
                tomb = t.tombstones.get(raw[2:18])
        if tomb is None or read_clock(self.clock, _CLOCK, _CLOCK_UNIT) - tomb.ended_at > self.limits.tombstone_ttl:
            return errors.UNKNOWN_STREAM
        fed = keys.fed(raw[1], tomb.binding)
        if fed is None:
            return errors.UNKNOWN_KEY
        if not authentic(fed, raw):
            return errors.FORGED
        return BatonError(BatonErrorKind.STREAM_EXPIRED, f"the stream ended ({tomb.why})")

    @staticmethod
    def _info(entry: _Entry, now: float) -> StreamInfo:
        return StreamInfo(
            id=b64url_encode(entry.id),
            scope=entry.scope,
            principal=entry.principal,
            read_only=entry.read_only,
            busy=entry.busy,
            generation=entry.generation,
            age=now - entry.opened_at,
            idle_for=0.0 if entry.busy else now - entry.last_used,
        )
