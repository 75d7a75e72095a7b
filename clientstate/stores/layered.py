"""``LayeredStore``: a cache store in front of a primary store.

Reads go to the cache first and fill it from the primary on a miss. Writes
go to the primary first — it alone decides compare-and-set — and then drop
the cache's copy, so the next read refills it; a write that found the
primary's record changed or gone (a conflict) also drops the copy, so the
handler's retry reads fresh. The cache is best-effort everywhere: a cache
failure is logged (``clientstate`` logger, warning), the entry is dropped
when possible, and the request never fails because of it. Aggregates —
listing, counting and ending a principal's sessions, the sweep — go to the
primary; ending sessions also drops their cached copies.

A copy that could not be dropped because the cache was down is remembered
(up to 100,000 of them) and dropped before this process reads it again. Two
windows remain, as with any read-through cache, both closed by the session's
next write or touch (a touch happens at least every ``touch_interval`` while
the session is used): another process reading a copy this process could not
drop, and a read that misses, reads the primary and fills the cache just after
another process wrote and dropped the copy. A stale copy never causes a lost
update — the primary's compare-and-set refuses the write, which drops the copy
and is retried on a fresh read. With a cache local to each process (a
``MemoryStore`` in front of a shared primary), set ``cache_ttl``: a copy older
than that many seconds is not used, which bounds how stale a read can be.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from clientstate._core.config import check_type
from clientstate._core.errors import ConfigurationError, StoreUnavailable
from clientstate._core.store import (
    CountSessions,
    Create,
    Delegate,
    Delete,
    DeleteSessions,
    Get,
    ListSessions,
    Op,
    Retire,
    Steps,
    Store,
    Sweep,
    Touch,
    Update,
)

__all__ = ["LayeredStore"]

log = logging.getLogger("clientstate")

_PRIMARY_ONLY = (Create, CountSessions, ListSessions, Sweep)
_MAX_UNDROPPED = 100_000


class LayeredStore:
    """``cache`` in front of ``primary``; see the module docstring for what goes where.

    Args:
        cache: the store read first (e.g. a ``RedisStore`` or a ``MemoryStore``).
        primary: the store of record (e.g. a ``PostgresStore``).
        cache_ttl: for a cache local to this process, the most seconds a
            cached copy is used after this process filled it (copies this
            process did not fill are not used either); ``None`` (default) for
            a cache shared by every process, whose copies are dropped on writes.

    Raises:
        ConfigurationError: ``cache`` or ``primary`` is not a store, or a bad ``cache_ttl``.
    """

    def __init__(self, cache: Store, primary: Store, *, cache_ttl: float | None = None) -> None:
        for label, store in (("cache", cache), ("primary", primary)):
            if not isinstance(store, Store):
                raise ConfigurationError(
                    f"LayeredStore {label} must be a clientstate store, got {type(store).__name__}"
                )
        if cache_ttl is not None:
            check_type(cache_ttl, (int, float), "cache_ttl")
            if not 0 < cache_ttl <= 86_400:
                raise ConfigurationError(f"cache_ttl must be from 0 to 86400 seconds, got {cache_ttl!r}")
        self.cache = cache
        self.primary = primary
        self.cache_ttl = cache_ttl
        self.shared = primary.shared
        self._filled: dict[bytes, float] = {}
        self._undropped: set[bytes] = set()

    def steps(self, op: Op) -> Steps:
        """The sub-operations of ``op`` on the cache and the primary (see the module docstring)."""
        if isinstance(op, Get):
            return (yield from self._get(op))
        if isinstance(op, _PRIMARY_ONLY):
            return (yield Delegate(self.primary, op))
        if isinstance(op, Update | Touch | Retire | Delete):
            result = yield Delegate(self.primary, op)
            yield from self._drop(op.record.sid if isinstance(op, Update) else op.sid)
            return result
        if isinstance(op, DeleteSessions):
            rows = yield Delegate(self.primary, ListSessions(op.principal, 0))
            result = yield Delegate(self.primary, op)
            for sid, _ in rows:
                if sid != op.keep:
                    yield from self._drop(sid)
            return result
        raise ConfigurationError(f"LayeredStore cannot perform {op!r}")

    def _get(self, op: Get) -> Steps:
        if op.sid in self._undropped:
            yield from self._drop(op.sid)  # a copy this process could not drop when the cache was down
        if op.sid not in self._undropped and self._fresh(op.sid):
            try:
                cached = yield Delegate(self.cache, op)
            except StoreUnavailable as exc:
                log.warning("clientstate: cache read failed, reading the primary: %s", exc)
                cached = None
            if cached is not None:
                return cached
        elif self.cache_ttl is not None:
            yield from self._drop(op.sid)  # an outdated local copy: make room for a fresh one
        record = yield Delegate(self.primary, op)
        if record is not None:
            try:
                if (yield Delegate(self.cache, Create(record))) and self.cache_ttl is not None:
                    self._filled[op.sid] = time.monotonic()
            except StoreUnavailable as exc:
                log.warning("clientstate: cache fill failed: %s", exc)
        return record

    def _fresh(self, sid: bytes) -> bool:
        """Whether a cached copy of ``sid`` may be used (always, unless ``cache_ttl`` is set)."""
        if self.cache_ttl is None:
            return True
        filled = self._filled.get(sid)
        return filled is not None and time.monotonic() - filled < self.cache_ttl

    def _drop(self, sid: bytes) -> Steps:
        """Delete the cached copy of ``sid``, best-effort; remember it if the cache is down."""
        self._filled.pop(sid, None)
        try:
            yield Delegate(self.cache, Delete(sid))
        except StoreUnavailable as exc:
            log.warning("clientstate: cache delete failed, the copy is skipped until it can be dropped: %s", exc)
            if len(self._undropped) < _MAX_UNDROPPED:
                self._undropped.add(sid)
        else:
            self._undropped.discard(sid)

    def execute(self, command: Any) -> Any:
        """Never called: every command of a layered store is delegated to one of its stores."""
        raise ConfigurationError(f"LayeredStore has no commands of its own ({command!r})")

    async def aexecute(self, command: Any) -> Any:
        """Never called: every command of a layered store is delegated to one of its stores."""
        raise ConfigurationError(f"LayeredStore has no commands of its own ({command!r})")

    def close(self) -> None:
        """Close both stores."""
        self.cache.close()
        self.primary.close()

    async def aclose(self) -> None:
        """Close both stores."""
        await self.cache.aclose()
        await self.primary.aclose()

    def __repr__(self) -> str:
        return f"LayeredStore(cache={self.cache!r}, primary={self.primary!r})"
