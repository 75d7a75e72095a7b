"""Fixtures of the server-stored suite: a store kit per backend, and both drivers (blocking and async)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clientstate import Binding, StateSlot
from clientstate._core.drive import begin_async, begin_sync, finish_async, finish_sync
from clientstate._core.store import Store
from tests.server.kits import KITS, StoreKit


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> StoreKit:
    """Each backend in turn."""
    return KITS[request.param]()


@pytest.fixture
def store(kit: StoreKit) -> Iterator[Store]:
    made = kit.make()
    yield made
    made.close()


class Driver:
    """Loads and saves a binding the way an adapter does: blocking (WSGI) or awaited (ASGI)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def begin(self, binding: Binding[Any], cookie: str | None) -> StateSlot[Any]:
        headers = [] if cookie is None else [cookie]
        if self.name == "sync":
            return begin_sync(binding, headers)
        return asyncio.run(begin_async(binding, headers))

    def finish(self, binding: Binding[Any], slot: StateSlot[Any]) -> list[str]:
        if self.name == "sync":
            return finish_sync(binding, slot)
        return asyncio.run(finish_async(binding, slot))

    def request(
        self, binding: Binding[Any], cookie: str | None, act: Callable[[StateSlot[Any]], None] | None = None
    ) -> tuple[StateSlot[Any], list[str]]:
        slot = self.begin(binding, cookie)
        if act is not None:
            act(slot)
        return slot, self.finish(binding, slot)


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return Driver(request.param)
