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

A fill never brings back a session that was deleted, retired or rewritten
while the fill was under way (a read that missed, read the primary, and
would otherwise write that now-stale record into the cache after the writer
dropped the copy). With a cache shared by every process (``cache_ttl=None``)
the fill is checked afterwards: the primary is read again, and if the record
changed or is gone the copy just written is dropped and the fresh answer is
returned — so a miss costs two primary reads, a hit none. With a cache local
to each process (``cache_ttl`` set) only this process drops copies, and a fill
is skipped when this process dropped that session's copy after the read began.

A copy that could not be dropped because the cache was down is remembered
(up to 100,000 of them) and dropped before this process reads it again; the
fill times kept for ``cache_ttl`` are bounded the same way (the oldest is
forgotten first, which only makes its copy count as outdated). One window
remains, as with any read-through cache: another process reading a copy this
process could not drop while the cache was down; it is closed by the
session's next write or touch. A stale copy never causes a lost update — the
primary's compare-and-set refuses the write, which drops the copy and is
retried on a fresh read. With a cache local to each process (a
``MemoryStore`` in front of a shared primary), set ``cache_ttl``: a copy older
than that many seconds is not used, which bounds how stale a read can be
after another process's write.

:class:`~clientstate._core.store.PutAll` (the live-session manager's save at
shutdown) is written to the primary in its one atomic step, then each
record's cached copy is dropped.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

from clientstate._core.config import check_duration
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
    PutAll,
    Record,
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
#: Most fill times (``cache_ttl``) and drop marks (local cache) kept; the oldest go first.
_MAX_TRACKED = 100_000


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
        ConfigurationError: ``cache`` or ``primary`` is not a store, or ``cache_ttl``
            is not a number of seconds above 0 and at most 86,400 (a ``bool``, a
            ``str``, NaN and infinity are refused).
    """

    def __init__(self, cache: Store, primary: Store, *, cache_ttl: float | None = None) -> None:
        for label, store in (("cache", cache), ("primary", primary)):
            if not isinstance(store, Store):
                raise ConfigurationError(
                    f"LayeredStore {label} must be a clientstate store, got {type(store).__name__}"
                )
        if cache_ttl is not None:
            cache_ttl = check_duration(cache_ttl, "LayeredStore cache_ttl", 86_400)
        self.cache = cache
        self.primary = primary
        self.cache_ttl = cache_ttl
        self.shared = primary.shared
        self._filled: dict[bytes, float] = {}
        self._undropped: set[bytes] = set()
        # Local cache: the drop sequence number of each session's latest drop in this process; a fill is
        # skipped if its session was dropped after the fill's read began. Bounded: marks forgotten are
        # covered by ``_forgotten`` (the newest sequence number of any forgotten mark).
        self._sequence = itertools.count(1)
        self._dropped: dict[bytes, int] = {}
        self._forgotten = 0
        self._lock = threading.Lock()

    def steps(self, op: Op) -> Steps:
        """The sub-operations of ``op`` on the cache and the primary (see the module docstring)."""
        if isinstance(op, Get):
            return (yield from self._get(op))
        if isinstance(op, _PRIMARY_ONLY):
            return (yield Delegate(self.primary, op))
        if isinstance(op, PutAll):
            written = yield Delegate(self.primary, op)
            for record, _ in op.items:
                yield from self._drop(record.sid)
            return written
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
        began = self._mark()
        record = yield Delegate(self.primary, op)
        if record is not None:
            record = yield from self._fill(op, record, began)
        return record

    def _fill(self, op: Get, record: Record, began: int) -> Steps:
        """Copy ``record`` (read from the primary) into the cache unless that would resurrect or outdate it.

        Returns the record to answer with: ``record``, or for a shared cache the
        primary's newer answer when the session changed while it was being filled.
        """
        if self.cache_ttl is not None and self._dropped_since(op.sid, began):
            return record  # this process dropped the copy after the read began: the record may be outdated
        try:
            filled = yield Delegate(self.cache, Create(record))
        except StoreUnavailable as exc:
            log.warning("clientstate: cache fill failed: %s", exc)
            return record
        if not filled:
            return record  # another request filled it first
        if self.cache_ttl is not None:
            self._remember_fill(op.sid)
            return record
        # A shared cache: a writer elsewhere may have dropped the copy between our read and our fill.
        # Read the primary again: unchanged means any later write drops what we just filled.
        try:
            fresh = yield Delegate(self.primary, op)
        except StoreUnavailable as exc:
            log.warning("clientstate: primary check after a cache fill failed, dropping the copy: %s", exc)
            yield from self._drop(op.sid)
            return record
        if fresh != record:
            yield from self._drop(op.sid)
        return fresh

    def _mark(self) -> int:
        """A new sequence number: drops numbered after it happened after this point."""
        with self._lock:
            return next(self._sequence)

    def _dropped_since(self, sid: bytes, began: int) -> bool:
        with self._lock:
            return max(self._dropped.get(sid, 0), self._forgotten) > began

    def _remember_fill(self, sid: bytes) -> None:
        with self._lock:
            self._filled.pop(sid, None)
            if len(self._filled) >= _MAX_TRACKED:
                del self._filled[next(iter(self._filled))]  # the oldest: its copy now counts as outdated
            self._filled[sid] = time.monotonic()

    def _fresh(self, sid: bytes) -> bool:
        """Whether a cached copy of ``sid`` may be used (always, unless ``cache_ttl`` is set)."""
        if self.cache_ttl is None:
            return True
        filled = self._filled.get(sid)
        return filled is not None and time.monotonic() - filled < self.cache_ttl

    def _drop(self, sid: bytes) -> Steps:
        """Delete the cached copy of ``sid``, best-effort; remember it if the cache is down."""
        with self._lock:
            self._filled.pop(sid, None)
            if self.cache_ttl is not None:
                self._dropped.pop(sid, None)
                if len(self._dropped) >= _MAX_TRACKED:
                    oldest = next(iter(self._dropped))
                    self._forgotten = max(self._forgotten, self._dropped.pop(oldest))
                self._dropped[sid] = next(self._sequence)
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
