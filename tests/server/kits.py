"""Store kits: one per backend, giving the behavioural suite the same handles on every store.

A :class:`StoreKit` builds a fresh, empty store and knows how to look behind
it — count its rows, edit a stored blob, copy a row under another id — the
way an operator with database access (or an attacker with a dump) could.
Backends add themselves to :data:`KITS`; the suite runs against each.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from clientstate._core.store import Delegate, Op, Record, Steps, Store
from clientstate.stores import MemoryStore, SQLiteStore
from clientstate.stores.layered import LayeredStore


class CountingStore:
    """A store that counts the operations asked of it and delegates them to ``inner``."""

    shared = True

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.ops: list[str] = []

    def steps(self, op: Op) -> Steps:
        self.ops.append(type(op).__name__)
        result = yield Delegate(self.inner, op)
        return result

    def execute(self, command: Any) -> Any:  # never called: every command is a Delegate
        raise AssertionError(command)

    async def aexecute(self, command: Any) -> Any:
        raise AssertionError(command)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, name: str) -> int:
        return self.ops.count(name)


class StoreKit:
    """A backend under test: a fresh store, and direct access to what it holds."""

    name = "abstract"

    def make(self) -> Store:
        raise NotImplementedError

    def rows(self, store: Store) -> int:
        """How many records (sessions and tombstones) the store holds."""
        raise NotImplementedError

    def raw(self, store: Store, sid: bytes) -> Record | None:
        raise NotImplementedError

    def put_raw(self, store: Store, record: Record) -> None:
        """Write ``record`` as is, bypassing the protocol (an operator editing the database)."""
        raise NotImplementedError

    def tamper(self, store: Store, sid: bytes, edit: Callable[[Record], Record]) -> None:
        record = self.raw(store, sid)
        assert record is not None
        self.put_raw(store, edit(record))


class MemoryKit(StoreKit):
    name = "memory"

    def make(self) -> Store:
        return MemoryStore()

    def rows(self, store: Store) -> int:
        assert isinstance(store, MemoryStore)
        return len(store)

    def raw(self, store: Store, sid: bytes) -> Record | None:
        assert isinstance(store, MemoryStore)
        return store._records.get(sid)

    def put_raw(self, store: Store, record: Record) -> None:
        assert isinstance(store, MemoryStore)
        store._records[record.sid] = record


class SQLiteKit(StoreKit):
    name = "sqlite"

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="clientstate-tests-")

    def make(self) -> Store:
        return SQLiteStore(os.path.join(self.directory, f"s{len(os.listdir(self.directory))}.db"))

    @contextmanager
    def _db(self, store: Store) -> Iterator[sqlite3.Connection]:
        assert isinstance(store, SQLiteStore)
        connection = sqlite3.connect(store.path)
        try:
            yield connection
            connection.commit()
        finally:
            connection.close()

    def rows(self, store: Store) -> int:
        with self._db(store) as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM clientstate_sessions").fetchone()[0])
            except sqlite3.OperationalError:  # never used: no table yet
                return 0

    def raw(self, store: Store, sid: bytes) -> Record | None:
        with self._db(store) as db:
            row = db.execute(
                "SELECT sid, version, principal, created_at, absolute_deadline, idle_deadline, last_touch, "
                "schema_version, blob, moved_to FROM clientstate_sessions WHERE sid = ?",
                (sid,),
            ).fetchone()
        return None if row is None else Record(*row)

    def put_raw(self, store: Store, record: Record) -> None:
        with self._db(store) as db:
            db.execute(
                "INSERT OR REPLACE INTO clientstate_sessions (sid, version, principal, created_at, absolute_deadline, "
                "idle_deadline, last_touch, schema_version, blob, moved_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                msgspec.structs.astuple(record),
            )


class LayeredKit(StoreKit):
    """A MemoryStore cache in front of a SQLite primary; direct access goes to the primary."""

    name = "layered"

    def __init__(self) -> None:
        self.primary = SQLiteKit()

    def make(self) -> Store:
        return LayeredStore(MemoryStore(), self.primary.make())

    def _parts(self, store: Store) -> tuple[MemoryStore, Store]:
        assert isinstance(store, LayeredStore)
        assert isinstance(store.cache, MemoryStore)
        return store.cache, store.primary

    def rows(self, store: Store) -> int:
        return self.primary.rows(self._parts(store)[1])

    def raw(self, store: Store, sid: bytes) -> Record | None:
        return self.primary.raw(self._parts(store)[1], sid)

    def put_raw(self, store: Store, record: Record) -> None:
        cache, primary = self._parts(store)
        self.primary.put_raw(primary, record)
        cache._records.pop(record.sid, None)  # an operator editing the database flushes the cache entry too


#: Every backend the behavioural suite runs against (others append themselves).
KITS: dict[str, Callable[[], StoreKit]] = {"memory": MemoryKit, "sqlite": SQLiteKit, "layered": LayeredKit}
