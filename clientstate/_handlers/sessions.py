"""A principal's sessions: list them, count them, end them ("log out everywhere"), and sweep a store.

The logic is a plan per operation (``clientstate._core.flow``), run by
:class:`Sessions` with blocking I/O (WSGI views, scripts, the CLI) or by
:class:`AsyncSessions` with ``await`` (ASGI). Every operation uses the store's
principal index — never a scan of all sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from clientstate._core.config import check_callable, check_finite, check_int, check_type, checked
from clientstate._core.errors import ConfigurationError
from clientstate._core.flow import Plan, run_async, run_sync
from clientstate._core.handler import Handler
from clientstate._core.slot import StateSlot
from clientstate._core.store import CountSessions, DeleteSessions, ListSessions, SessionInfo, Store, Sweep
from clientstate._handlers.server_stored import PRINCIPAL_RULE, principal_problem

__all__ = ["AsyncSessions", "Sessions"]

#: A clock: seconds since the epoch.
Clock = Callable[[], float]


def _store_of(target: object) -> Store:
    if isinstance(target, Store):
        return target
    store = getattr(target, "store", None)
    if isinstance(store, Store):
        return store
    if isinstance(target, Handler):
        raise ConfigurationError(
            f"Sessions needs a server_stored handler or a store; {type(target).__name__} keeps state in "
            f"cookies, which the server cannot list or end"
        )
    raise ConfigurationError(f"Sessions needs a server_stored handler or a store, got {type(target).__name__}")


def _principal(principal: object) -> str:
    """``principal``, checked by the principal rule (:func:`principal_problem`), the one the handler saves by.

    Raises:
        ConfigurationError: ``principal`` is not a str, or is one no session
            can have (empty, a lone surrogate, NUL, over
            :data:`~clientstate._handlers.server_stored.MAX_PRINCIPAL_BYTES` bytes of UTF-8).
    """
    problem = principal_problem(principal)
    if problem is not None:
        raise ConfigurationError(
            f"principal {principal!r:.60} is not one a session can have: {problem} (a principal is {PRINCIPAL_RULE})"
        )
    assert isinstance(principal, str)
    return principal


def _keep_sid(keep: StateSlot[Any] | None) -> bytes | None:
    if keep is None:
        return None
    ref = check_type(keep, StateSlot, "keep", "pass the request's slot to keep its session").loaded.session
    record = getattr(ref, "record", None)
    return None if record is None else record.sid


class _Plans:
    """What :class:`Sessions` and :class:`AsyncSessions` share: arguments checked once, one plan per operation."""

    __slots__ = ("clock", "store")

    store: Store
    clock: Clock

    def __init__(self, target: Any, *, clock: Clock = time.time) -> None:
        self.store = _store_of(target)
        self.clock = check_callable(clock, "Sessions clock", "clock() -> seconds since the epoch")

    def _now(self, now: object) -> int:
        """``now`` (or the clock's reading) as whole seconds; ConfigurationError for NaN, infinity or a non-number."""
        if now is None:
            return int(check_finite(self.clock(), "the Sessions clock's reading"))
        return int(check_finite(now, "now"))

    def _list(self, principal: str, now: float | None) -> Generator[Any, Any, list[SessionInfo]]:
        op = ListSessions(_principal(principal), self._now(now))
        rows = yield op
        return [info for _, info in rows]

    def _count(self, principal: str, now: float | None) -> Plan[int]:
        count: int = yield CountSessions(_principal(principal), self._now(now))
        return count

    def _end(self, principal: str, keep: StateSlot[Any] | None) -> Plan[int]:
        ended: int = yield DeleteSessions(_principal(principal), _keep_sid(keep))
        return ended

    def _sweep(self, limit: int, now: float | None) -> Plan[int]:
        swept: int = yield Sweep(self._now(now), check_int(limit, "limit", 1, 1_000_000))
        return swept

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"


class Sessions(_Plans):
    """A store's sessions by principal, with blocking I/O (WSGI views, scripts, the CLI).

    Args:
        target: a ``server_stored`` handler, or a store.
        clock: ``clock() -> seconds since the epoch`` (default ``time.time``),
            read when a method is not given ``now``.

    Raises:
        ConfigurationError: ``target`` is neither a store nor a ``server_stored``
            handler (a ``client_stored`` one is refused: its cookies cannot be
            listed), ``clock`` is not callable, or an unknown keyword (with a
            "did you mean" suggestion).

    Every method raises :class:`~clientstate.StoreUnavailable` when the store
    does not answer, and ConfigurationError for a ``principal`` that no session
    can have (not a str, empty, holding a lone surrogate or NUL, or over
    ``MAX_PRINCIPAL_BYTES``, 1024 bytes of UTF-8: the rule ``server_stored``
    saves principals by, so every principal it saved can be listed and
    ended), a ``now`` (seconds since the epoch) that is not a finite
    number (NaN, infinity, a ``bool`` or a ``str``), or a clock that reads one.
    The plans are shared with :class:`AsyncSessions`; only the driver differs.
    """

    __slots__ = ()

    @checked
    def __init__(self, target: Any, *, clock: Clock = time.time) -> None:
        super().__init__(target, clock=clock)

    def list(self, principal: str, now: float | None = None) -> list[SessionInfo]:
        """The unexpired sessions of ``principal``, oldest first (``now``: seconds since the epoch)."""
        return run_sync(self._list(principal, now), self.store)

    def count(self, principal: str, now: float | None = None) -> int:
        """How many unexpired sessions ``principal`` has."""
        return run_sync(self._count(principal, now), self.store)

    def end(self, principal: str, keep: StateSlot[Any] | None = None) -> int:
        """Delete every session of ``principal`` ("log out everywhere"), but ``keep``'s; returns how many."""
        return run_sync(self._end(principal, keep), self.store)

    def sweep(self, limit: int = 1000, now: float | None = None) -> int:
        """Delete at most ``limit`` expired sessions; returns how many (loop until it returns less than ``limit``)."""
        return run_sync(self._sweep(limit, now), self.store)


class AsyncSessions(_Plans):
    """:class:`Sessions` for the event loop: the same plans and checks, awaited (same arguments and errors)."""

    __slots__ = ()

    @checked
    def __init__(self, target: Any, *, clock: Clock = time.time) -> None:
        super().__init__(target, clock=clock)

    async def list(self, principal: str, now: float | None = None) -> list[SessionInfo]:
        """See :meth:`Sessions.list`."""
        return await run_async(self._list(principal, now), self.store)

    async def count(self, principal: str, now: float | None = None) -> int:
        """See :meth:`Sessions.count`."""
        return await run_async(self._count(principal, now), self.store)

    async def end(self, principal: str, keep: StateSlot[Any] | None = None) -> int:
        """See :meth:`Sessions.end`."""
        return await run_async(self._end(principal, keep), self.store)

    async def sweep(self, limit: int = 1000, now: float | None = None) -> int:
        """See :meth:`Sessions.sweep`."""
        return await run_async(self._sweep(limit, now), self.store)
