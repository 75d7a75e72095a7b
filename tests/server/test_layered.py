"""LayeredStore specifics: reads served by the cache, writes by the primary, a failing cache harmless."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import msgspec
import pytest

from clientstate import Binding, ConfigurationError, Sessions, StoreUnavailable
from clientstate._core.store import Op, Steps
from clientstate.stores import MemoryStore, SQLiteStore
from clientstate.stores.layered import LayeredStore
from clientstate.testing import FrozenClock
from tests.server.conftest import Driver
from tests.server.kits import CountingStore
from tests.server.test_behaviour import ACCOUNT, T0, Account, handler, log_in, visit


class FlakyStore(MemoryStore):
    """A MemoryStore whose server can be switched off."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def execute(self, command: Any) -> Any:
        if self.down:
            raise StoreUnavailable("cache down")
        return super().execute(command)


def layered(cache: Any = None, **options: Any) -> tuple[LayeredStore, CountingStore, CountingStore]:
    counted_cache = CountingStore(cache if cache is not None else MemoryStore())
    primary = CountingStore(SQLiteStore(os.path.join(tempfile.mkdtemp(), "primary.db")))
    return LayeredStore(counted_cache, primary, **options), counted_cache, primary


def test_a_second_read_is_served_by_the_cache(driver: Driver) -> None:
    store, cache, primary = layered()
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookie = log_in(driver, binding)
    assert primary.ops == ["Create"]  # writes go to the primary; nothing cached yet
    primary.ops.clear()
    driver.request(binding, cookie)
    assert primary.ops == ["Get", "Get"]  # a miss: read the primary, fill the cache, check the primary again
    assert cache.ops == ["Get", "Create"]
    primary.ops.clear()
    driver.request(binding, cookie)
    assert primary.ops == []  # a hit


def test_a_write_drops_the_cached_copy_and_a_conflict_reads_fresh(driver: Driver) -> None:
    store, _, _ = layered()
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookie = log_in(driver, binding)
    driver.request(binding, cookie)  # cached now
    first, second = driver.begin(binding, cookie), driver.begin(binding, cookie)
    visit(first)
    assert second.state is not None
    second.state = msgspec.structs.replace(second.state, items=["x"])
    driver.finish(binding, first)
    driver.finish(binding, second)  # conflicts on the primary; the retry must not read a stale copy
    assert driver.request(binding, cookie)[0].state == Account("ada", visits=1, items=["x"])


def test_a_failing_cache_never_fails_a_request(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore()
    store, _, _ = layered(flaky)
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookie = log_in(driver, binding)
    driver.request(binding, cookie)
    flaky.down = True
    slot, lines = driver.request(binding, cookie, visit)
    assert slot.error is None
    assert lines == []
    slot, _ = driver.request(binding, cookie)
    assert slot.state == Account("ada", visits=1)  # from the primary
    assert "cache" in caplog.text
    flaky.down = False
    # Back up, still holding the copy from before the outage: it is dropped before it is read.
    assert driver.request(binding, cookie)[0].state == Account("ada", visits=1)


def test_ending_a_principals_sessions_drops_their_cached_copies(driver: Driver) -> None:
    store, _, _ = layered()
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookies = [log_in(driver, binding) for _ in range(3)]
    for cookie in cookies:
        driver.request(binding, cookie)  # every session cached
    assert Sessions(store).end("ada") == 3
    for cookie in cookies:
        slot = driver.begin(binding, cookie)
        assert slot.state is None
        assert slot.error is not None
        assert slot.error.kind == "unknown_session"


def test_a_process_local_cache_copy_is_used_only_for_cache_ttl(driver: Driver) -> None:
    store, _, primary = layered(cache_ttl=0.2)
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookie = log_in(driver, binding)
    driver.request(binding, cookie)
    primary.ops.clear()
    driver.request(binding, cookie)
    assert primary.ops == []
    time.sleep(0.25)  # the copy ages past cache_ttl on the real clock (monotonic), bounded and short
    driver.request(binding, cookie)
    assert primary.ops == ["Get"]


def test_layered_store_refuses_what_is_not_a_store() -> None:
    with pytest.raises(ConfigurationError, match="cache must be a clientstate store"):
        LayeredStore(object(), MemoryStore())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cache_ttl"):
        LayeredStore(MemoryStore(), MemoryStore(), cache_ttl=0)


class _Unknown(Op, frozen=True):
    pass


def test_an_unknown_operation_is_a_configuration_error() -> None:
    steps: Steps = LayeredStore(MemoryStore(), MemoryStore()).steps(_Unknown())
    with pytest.raises(ConfigurationError, match="cannot perform"):
        next(steps)
