"""LayeredStore: a cache fill racing a write never resurrects or outdates a session; PutAll; bounded bookkeeping."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from clientstate import ConfigurationError
from clientstate._core.flow import perform_sync
from clientstate._core.store import Create, Delete, Get, PutAll, Record, Retire, Touch, Update, UpdateResult
from clientstate.stores import MemoryStore
from clientstate.stores import layered as layered_module
from clientstate.stores.layered import LayeredStore

T0 = 1_700_000_000


def record(sid: bytes = b"s" * 16, version: int = 1, principal: str | None = "ada") -> Record:
    return Record(sid, version, principal, T0, T0 + 86_400, T0 + 3600, T0, 1, b"blob-%d" % version)


class HookedPrimary(MemoryStore):
    """A MemoryStore that runs ``hook`` once, right after it answers a Get (outside its lock)."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[], None] | None = None
        self.gets = 0

    def execute(self, command: Any) -> Any:
        result = super().execute(command)
        if isinstance(command, Get):
            self.gets += 1
            hook, self.hook = self.hook, None
            if hook is not None:
                hook()
        return result


def race(cache_ttl: float | None, write: Callable[[LayeredStore], None]) -> tuple[LayeredStore, MemoryStore, Any]:
    """A read misses the cache and reads the primary; ``write`` lands before the read fills the cache."""
    cache, primary = MemoryStore(), HookedPrimary()
    store = LayeredStore(cache, primary, cache_ttl=cache_ttl)
    assert perform_sync(primary, Create(record()))
    primary.hook = lambda: write(store)
    answer = perform_sync(store, Get(record().sid))
    return store, cache, answer


def delete(store: LayeredStore) -> None:
    assert perform_sync(store, Delete(record().sid)) is True


def retire(store: LayeredStore) -> None:
    assert perform_sync(store, Retire(record().sid, 1, b"n" * 16, T0 + 10, b"tomb")) is True


def update(store: LayeredStore) -> None:
    assert perform_sync(store, Update(record(version=2), 1)) is UpdateResult.OK


def touch(store: LayeredStore) -> None:
    assert perform_sync(store, Touch(record().sid, T0 + 7200, T0 + 60)) is True


@pytest.mark.parametrize("cache_ttl", [None, 60.0])
def test_a_delete_racing_a_fill_does_not_resurrect_the_session(cache_ttl: float | None) -> None:
    store, cache, answer = race(cache_ttl, delete)
    assert perform_sync(cache, Get(record().sid)) is None  # no stale copy left behind
    assert perform_sync(store, Get(record().sid)) is None  # and no read brings it back
    if cache_ttl is None:
        assert answer is None  # the check after the fill saw the deletion


@pytest.mark.parametrize("cache_ttl", [None, 60.0])
def test_a_retire_racing_a_fill_leaves_no_live_copy(cache_ttl: float | None) -> None:
    store, cache, _ = race(cache_ttl, retire)
    assert perform_sync(cache, Get(record().sid)) is None
    after = perform_sync(store, Get(record().sid))
    assert after is not None
    assert after.moved_to == b"n" * 16
    assert after.version == 2


@pytest.mark.parametrize("cache_ttl", [None, 60.0])
@pytest.mark.parametrize("write", [update, touch])
def test_an_update_or_touch_racing_a_fill_leaves_no_outdated_copy(
    cache_ttl: float | None, write: Callable[[LayeredStore], None]
) -> None:
    store, cache, _ = race(cache_ttl, write)
    assert perform_sync(cache, Get(record().sid)) is None
    after = perform_sync(store, Get(record().sid))
    expected = perform_sync(store.primary, Get(record().sid))
    assert after == expected
    assert after is not None
    assert (after.version, after.last_touch) != (1, T0)  # the write's result, not the pre-write copy


def test_a_fill_without_a_race_is_used_and_checked_once() -> None:
    cache, primary = MemoryStore(), HookedPrimary()
    store = LayeredStore(cache, primary)
    perform_sync(primary, Create(record()))
    assert perform_sync(store, Get(record().sid)) == record()
    assert primary.gets == 2  # the read and the check after the fill
    assert perform_sync(cache, Get(record().sid)) == record()
    assert perform_sync(store, Get(record().sid)) == record()
    assert primary.gets == 2  # a hit: no primary read


@pytest.mark.parametrize("cache_ttl", [None, 60.0])
def test_put_all_writes_the_primary_atomically_and_drops_cached_copies(cache_ttl: float | None) -> None:
    cache, primary = MemoryStore(), MemoryStore()
    store = LayeredStore(cache, primary, cache_ttl=cache_ttl)
    old, new = record(b"a" * 16), record(b"b" * 16)
    perform_sync(store, Create(old))
    assert perform_sync(store, Get(old.sid)) == old  # cached now
    assert perform_sync(cache, Get(old.sid)) == old
    written = perform_sync(store, PutAll(((record(b"a" * 16, version=2), 1), (new, 0), (record(b"c" * 16), 5))))
    assert written == 2  # the third expected a version that is not stored: skipped
    assert perform_sync(cache, Get(old.sid)) is None
    assert perform_sync(store, Get(old.sid)) == record(b"a" * 16, version=2)
    assert perform_sync(store, Get(new.sid)) == new
    assert perform_sync(primary, Get(b"c" * 16)) is None


def test_fill_and_drop_bookkeeping_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered_module, "_MAX_TRACKED", 10)
    cache, primary = MemoryStore(), MemoryStore()
    store = LayeredStore(cache, primary, cache_ttl=60)
    sids = [bytes([i]) * 16 for i in range(50)]
    for sid in sids:
        perform_sync(primary, Create(record(sid)))
        assert perform_sync(store, Get(sid)) == record(sid)
        perform_sync(store, Delete(sid))
        perform_sync(primary, Create(record(sid)))
        assert perform_sync(store, Get(sid)) == record(sid)
    assert len(store._filled) <= 10
    assert len(store._dropped) <= 10
    # A forgotten fill time only makes the copy count as outdated: the read still answers correctly.
    assert perform_sync(store, Get(sids[0])) == record(sids[0])


@pytest.mark.parametrize("bad", [True, False, "60", math.nan, math.inf, -1, 0, 86_401, [60]])
def test_cache_ttl_must_be_a_number_of_seconds(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="cache_ttl must be a"):
        LayeredStore(MemoryStore(), MemoryStore(), cache_ttl=bad)  # type: ignore[arg-type]
