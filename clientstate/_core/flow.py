"""Plans, and the two small drivers that perform them: blocking and ``await``.

A *plan* is a generator: a server-stored handler's load or save logic yields
store operations (:mod:`clientstate._core.store`) and receives their results;
its return value is the result of the whole plan. A store's
:meth:`~clientstate._core.store.Store.steps` is a plan of the same kind one
level down: it yields the store's own commands. The logic in those
generators is written once; performing a request is the only part that
differs between WSGI (:func:`run_sync`) and ASGI (:func:`run_async`).

A request that fails with :class:`~clientstate.StoreUnavailable` is thrown
into the generator at its ``yield``, so the logic decides what a store outage
means (for a load: the ``store_unavailable`` error value, cookie kept).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from clientstate._core.errors import StoreUnavailable
from clientstate._core.store import Delegate, Op, Store

__all__ = ["Plan", "perform_async", "perform_sync", "run_async", "run_sync"]

R = TypeVar("R")

#: A plan: yields store operations, receives their results, returns ``R``.
Plan = Generator[Op, Any, R]


class _Step(Generic[R]):
    """A generator being stepped: its pending request, or its result once done."""

    __slots__ = ("done", "gen", "request", "result")

    def __init__(self, gen: Generator[Any, Any, R]) -> None:
        self.gen = gen
        self.done = False
        self.request: Any = None
        self.result: Any = None
        self._resume(None, None)

    def _resume(self, reply: Any, error: BaseException | None) -> None:
        try:
            self.request = self.gen.send(reply) if error is None else self.gen.throw(error)
        except StopIteration as stop:
            self.done = True
            self.result = stop.value

    def settle(self, perform: Callable[[Any], Any]) -> None:
        """Perform the pending request (blocking) and resume the generator with its reply or failure."""
        try:
            reply = perform(self.request)
        except StoreUnavailable as exc:
            self._resume(None, exc)
        else:
            self._resume(reply, None)

    async def asettle(self, perform: Callable[[Any], Awaitable[Any]]) -> None:
        """Perform the pending request (awaiting it) and resume the generator with its reply or failure."""
        try:
            reply = await perform(self.request)
        except StoreUnavailable as exc:
            self._resume(None, exc)
        else:
            self._resume(reply, None)


def perform_sync(store: Store, op: Op) -> Any:
    """Perform ``op`` on ``store`` with blocking I/O; returns the operation's result.

    Raises:
        StoreUnavailable: the store failed and its steps did not handle it.
    """
    step: _Step[Any] = _Step(store.steps(op))

    def command(request: Any) -> Any:
        return perform_sync(request.store, request.op) if type(request) is Delegate else store.execute(request)

    while not step.done:
        step.settle(command)
    return step.result


async def perform_async(store: Store, op: Op) -> Any:
    """Perform ``op`` on ``store`` without blocking the event loop; returns the operation's result.

    Raises:
        StoreUnavailable: the store failed and its steps did not handle it.
    """
    step: _Step[Any] = _Step(store.steps(op))

    async def command(request: Any) -> Any:
        if type(request) is Delegate:
            return await perform_async(request.store, request.op)
        return await store.aexecute(request)

    while not step.done:
        await step.asettle(command)
    return step.result


def run_sync(plan: Plan[R], store: Store) -> R:
    """Run a handler's ``plan`` against ``store`` with blocking I/O; returns the plan's result."""
    step = _Step(plan)
    while not step.done:
        step.settle(lambda op: perform_sync(store, op))
    result: R = step.result
    return result


async def run_async(plan: Plan[R], store: Store) -> R:
    """Run a handler's ``plan`` against ``store``, awaiting its I/O; returns the plan's result."""
    step = _Step(plan)
    while not step.done:
        await step.asettle(lambda op: perform_async(store, op))
    result: R = step.result
    return result
