"""Fixtures of the server-stored suite: a store kit per backend, and both drivers (blocking and async)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from clientstate import Binding, StateSlot
from clientstate._core.drive import begin_async, begin_sync, finish_async, finish_sync
from clientstate._core.store import Store
from tests.server.kits import KITS, StoreKit

R = TypeVar("R")


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
    """Loads and saves a binding the way an adapter does: blocking (WSGI) or awaited (ASGI).

    ``loop``: the event loop the awaited calls run on (default: a new one per call,
    ``asyncio.run``); pass one to keep a store's per-loop clients across requests.
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.name = name
        self.loop = loop

    def _run(self, work: Coroutine[Any, Any, R]) -> R:
        return asyncio.run(work) if self.loop is None else self.loop.run_until_complete(work)

    def begin(self, binding: Binding[Any], cookie: str | None) -> StateSlot[Any]:
        headers = [] if cookie is None else [cookie]
        if self.name == "sync":
            return begin_sync(binding, headers)
        return self._run(begin_async(binding, headers))

    def finish(self, binding: Binding[Any], slot: StateSlot[Any]) -> list[str]:
        if self.name == "sync":
            return finish_sync(binding, slot)
        return self._run(finish_async(binding, slot))

    def request(
        self, binding: Binding[Any], cookie: str | None, act: Callable[[StateSlot[Any]], None] | None = None
    ) -> tuple[StateSlot[Any], list[str]]:
        """One request: load, ``act`` on the slot, save (awaited calls in one coroutine, as an ASGI request)."""
        if self.name == "sync":
            slot = self.begin(binding, cookie)
            if act is not None:
                act(slot)
            return slot, self.finish(binding, slot)

        async def whole() -> tuple[StateSlot[Any], list[str]]:
            slot = await begin_async(binding, [] if cookie is None else [cookie])
            if act is not None:
                act(slot)
            return slot, await finish_async(binding, slot)

        return self._run(whole())


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return Driver(request.param)
