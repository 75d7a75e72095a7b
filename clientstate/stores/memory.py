"""``MemoryStore``: sessions in this process's memory. For tests and single-process applications.

Records live in a dictionary; a min-heap on the deadline makes expiry O(log n)
per write (no rebuild), and a dictionary of sets indexes principals. Every
operation is one command performed under a lock, so the store is safe from
threads and from the event loop alike (it never blocks on I/O). Nothing
survives the process.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from clientstate._core.config import check_int
from clientstate._core.errors import ConfigurationError, StoreUnavailable
from clientstate._core.session_id import handle_of
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

__all__ = ["MemoryStore"]

# Expired records a write removes on its way, at most: expiry costs O(log n) per write, amortised.
_EXPIRE_PER_WRITE: Final = 8


class MemoryStore:
    """Sessions in this process's memory (``shared`` is ``False``).

    Args:
        max_records: refuse to create more than this many records (default
            1,000,000): a create beyond it raises
            :class:`~clientstate.StoreUnavailable` rather than growing without bound.

    Raises:
        ConfigurationError: ``max_records`` is not a positive integer.
    """

    shared = False

    def __init__(self, max_records: int = 1_000_000) -> None:
        self.max_records = check_int(max_records, "max_records", 1, 1 << 40)
        self._records: dict[bytes, Record] = {}
        self._by_principal: dict[str, set[bytes]] = {}
        self._deadlines: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()

    # --- the store protocol --------------------------------------------------------------------

    def steps(self, op: Op) -> Steps:
        """One command: the operation itself, performed under the lock."""
        if not isinstance(op, Op):
            raise ConfigurationError(f"MemoryStore cannot perform {op!r}")
        result = yield op
        return result

    def execute(self, command: Any) -> Any:
        """Perform one operation on the dictionaries (never blocks on I/O)."""
        with self._lock:
            return self._apply(command)

    async def aexecute(self, command: Any) -> Any:
        """As :meth:`execute`: the lock is only ever held for a dictionary update."""
        return self.execute(command)

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def records(self) -> list[Record]:
        """Every record held (sessions and tombstones): what a snapshot file saves."""
        with self._lock:
            return list(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._records)} records)"

    # --- operations ----------------------------------------------------------------------------

    def _apply(self, op: Any) -> Any:
        kind = type(op)
        if kind is Get:
            return self._records.get(op.sid)
        if kind is Create:
            return self._create(op.record)
        if kind is Update:
            return self._update(op.record, op.expected_version)
        if kind is Touch:
            return self._touch(op)
        if kind is Retire:
            return self._retire(op)
        if kind is Delete:
            return self._remove(op.sid)
        if kind is ListSessions:
            return [(sid, _info(self._records[sid])) for sid in self._live(op.principal, op.now)]
        if kind is CountSessions:
            return sum(1 for _ in self._live(op.principal, op.now))
        if kind is DeleteSessions:
            doomed = [sid for sid in self._by_principal.get(op.principal, ()) if sid != op.keep]
            for sid in doomed:
                self._remove(sid)
            return len(doomed)
        if kind is Sweep:
            return self._expire(op.now, op.limit)
        if kind is PutAll:
            return self._put_all(op.items)
        raise ConfigurationError(f"MemoryStore cannot perform {op!r}")

    def _live(self, principal: str, now: int) -> Iterator[bytes]:
        records = sorted(
            (self._records[sid] for sid in self._by_principal.get(principal, ())), key=lambda r: r.created_at
        )
        return (r.sid for r in records if now < r.idle_deadline)

    def _put(self, record: Record) -> None:
        old = self._records.get(record.sid)
        if old is not None and old.principal is not None and old.principal != record.principal:
            self._unindex(old)
        self._records[record.sid] = record
        if record.principal is not None:
            self._by_principal.setdefault(record.principal, set()).add(record.sid)
        if old is None or old.idle_deadline != record.idle_deadline:
            heapq.heappush(self._deadlines, (record.idle_deadline, record.sid))
        self._expire(record.last_touch, _EXPIRE_PER_WRITE)

    def _put_all(self, items: tuple[tuple[Record, int], ...]) -> int:
        """Every item whose expected version holds; atomic because the lock is held throughout."""
        written = 0
        for record, expected in items:
            current = self._records.get(record.sid)
            if (current.version if current is not None else 0) == expected:
                self._put(record)
                written += 1
        return written

    def _create(self, record: Record) -> bool:
        if record.sid in self._records:
            return False
        if len(self._records) >= self.max_records:
            raise StoreUnavailable(f"MemoryStore is full ({self.max_records} records)")
        self._put(record)
        return True

    def _update(self, record: Record, expected: int) -> UpdateResult:
        current = self._records.get(record.sid)
        if current is None or current.moved_to is not None or not record.last_touch < current.idle_deadline:
            return UpdateResult.GONE
        if current.version != expected:
            return UpdateResult.CONFLICT
        self._put(record)
        return UpdateResult.OK

    def _touch(self, op: Touch) -> bool:
        current = self._records.get(op.sid)
        if current is None or current.moved_to is not None or not op.last_touch < current.idle_deadline:
            return False
        self._put(
            msgspec.structs.replace(
                current, last_touch=op.last_touch, idle_deadline=min(op.idle_deadline, current.absolute_deadline)
            )
        )
        return True

    def _retire(self, op: Retire) -> bool:
        current = self._records.get(op.sid)
        if current is None or current.version != op.expected_version or current.moved_to is not None:
            return False
        if current.principal is not None:
            self._unindex(current)
        self._put(
            msgspec.structs.replace(
                current, version=current.version + 1, principal=None, idle_deadline=op.until, blob=op.blob,
                moved_to=op.moved_to,
            )
        )
        return True

    def _unindex(self, record: Record) -> None:
        assert record.principal is not None
        sids = self._by_principal.get(record.principal)
        if sids is not None:
            sids.discard(record.sid)
            if not sids:
                del self._by_principal[record.principal]

    def _remove(self, sid: bytes) -> bool:
        record = self._records.pop(sid, None)
        if record is None:
            return False
        if record.principal is not None:
            self._unindex(record)
        return True

    def _expire(self, now: int, limit: int) -> int:
        """Remove up to ``limit`` records whose deadline is at or before ``now``; stale heap entries are skipped."""
        removed = 0
        heap = self._deadlines
        while heap and heap[0][0] <= now and removed < limit:
            deadline, sid = heapq.heappop(heap)
            record = self._records.get(sid)
            if record is not None and record.idle_deadline == deadline:
                self._remove(sid)
                removed += 1
        if len(heap) > 4 * len(self._records) + 64:  # touches left stale entries: rebuild, O(n) once in a while
            self._deadlines = [(r.idle_deadline, r.sid) for r in self._records.values()]
            heapq.heapify(self._deadlines)
        return removed


def _info(record: Record) -> SessionInfo:
    return SessionInfo(
        handle_of(record.sid), record.created_at, record.last_touch, record.idle_deadline, record.absolute_deadline
    )
