"""A principal's sessions: list them, count them, end them ("log out everywhere"), and sweep a store.

The logic is a plan per operation (``clientstate._core.flow``), run by
:class:`Sessions` with blocking I/O (WSGI views, scripts, the CLI) or by
:class:`AsyncSessions` with ``await`` (ASGI). Every operation uses the store's
principal index — never a scan of all sessions.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from clientstate._core.config import check_int, check_type
from clientstate._core.errors import ConfigurationError
from clientstate._core.flow import run_async, run_sync
from clientstate._core.slot import StateSlot
from clientstate._core.store import CountSessions, DeleteSessions, ListSessions, SessionInfo, Store, Sweep

__all__ = ["AsyncSessions", "Sessions"]


def _store_of(target: Any) -> Store:
    store = getattr(target, "store", target)
    if not isinstance(store, Store):
        raise ConfigurationError(f"needs a server_stored handler or a store, got {type(target).__name__}")
    return store


def _principal(principal: object) -> str:
    if not isinstance(principal, str):
        raise ConfigurationError(f"principal must be a str, got {type(principal).__name__}")
    return principal


def _keep_sid(keep: StateSlot[Any] | None) -> bytes | None:
    if keep is None:
        return None
    ref = check_type(keep, StateSlot, "keep", "pass the request's slot to keep its session").loaded.session
    record = getattr(ref, "record", None)
    return None if record is None else record.sid


def _list(principal: str, now: float | None) -> Generator[Any, Any, list[SessionInfo]]:
    rows = yield ListSessions(_principal(principal), int(time.time() if now is None else now))
    return [info for _, info in rows]


def _count(principal: str, now: float | None) -> Generator[Any, Any, int]:
    count: int = yield CountSessions(_principal(principal), int(time.time() if now is None else now))
    return count


def _end(principal: str, keep: StateSlot[Any] | None) -> Generator[Any, Any, int]:
    ended: int = yield DeleteSessions(_principal(principal), _keep_sid(keep))
    return ended


def _sweep(limit: int, now: float | None) -> Generator[Any, Any, int]:
    swept: int = yield Sweep(int(time.time() if now is None else now), check_int(limit, "limit", 1, 1_000_000))
    return swept


class Sessions:
    """A store's sessions by principal, with blocking I/O.

    Args:
        target: a ``server_stored`` handler, or a store.

    Every method raises :class:`~clientstate.StoreUnavailable` when the store
    does not answer, and ConfigurationError for a ``principal`` that is not a str.
    """

    __slots__ = ("store",)

    def __init__(self, target: Any) -> None:
        self.store = _store_of(target)

    def list(self, principal: str, now: float | None = None) -> list[SessionInfo]:
        """The unexpired sessions of ``principal``, oldest first (``now``: seconds since the epoch)."""
        return run_sync(_list(principal, now), self.store)

    def count(self, principal: str, now: float | None = None) -> int:
        """How many unexpired sessions ``principal`` has."""
        return run_sync(_count(principal, now), self.store)

    def end(self, principal: str, keep: StateSlot[Any] | None = None) -> int:
        """Delete every session of ``principal`` ("log out everywhere"), but ``keep``'s; returns how many."""
        return run_sync(_end(principal, keep), self.store)

    def sweep(self, limit: int = 1000, now: float | None = None) -> int:
        """Delete at most ``limit`` expired sessions; returns how many (loop until it returns less than ``limit``)."""
        return run_sync(_sweep(limit, now), self.store)


class AsyncSessions:
    """:class:`Sessions` for the event loop: the same operations, awaited."""

    __slots__ = ("store",)

    def __init__(self, target: Any) -> None:
        self.store = _store_of(target)

    async def list(self, principal: str, now: float | None = None) -> list[SessionInfo]:
        """See :meth:`Sessions.list`."""
        return await run_async(_list(principal, now), self.store)

    async def count(self, principal: str, now: float | None = None) -> int:
        """See :meth:`Sessions.count`."""
        return await run_async(_count(principal, now), self.store)

    async def end(self, principal: str, keep: StateSlot[Any] | None = None) -> int:
        """See :meth:`Sessions.end`."""
        return await run_async(_end(principal, keep), self.store)

    async def sweep(self, limit: int = 1000, now: float | None = None) -> int:
        """See :meth:`Sessions.sweep`."""
        return await run_async(_sweep(limit, now), self.store)
