"""Steps: the I/O a registry operation needs, written once for blocking and async drivers.

An operation that touches a resource (acquire it, roll it back, close it) is a
generator that *yields* zero-argument calls and receives each call's result
(or has its exception thrown in), returning the operation's result at the
end. The registry decides what happens; the drivers only perform the calls:

* :func:`drive` performs them in a coroutine, awaiting results that are
  awaitable (the async driver, :mod:`clientstate.batons.aio`);
* :func:`run` performs them in the calling thread (the blocking driver,
  :mod:`clientstate.batons.sync`) by running :func:`drive` with awaiting
  refused, so the coroutine never suspends.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any, TypeVar, cast

from clientstate._core.errors import ConfigurationError

__all__ = ["Steps", "drive", "run"]

T = TypeVar("T")

#: A registry operation: yields calls, is sent their results, returns ``T``.
Steps = Generator[Callable[[], Any], Any, T]


def _name(call: Callable[[], Any]) -> str:
    return getattr(call, "__qualname__", None) or type(call).__name__


async def drive(steps: Steps[T], *, awaits: bool = True) -> T:
    """Perform every call ``steps`` yields, in order, and return its result.

    Args:
        steps: the operation.
        awaits: await a call's result when it is awaitable. When false, such a
            result is refused: the coroutine it may be is closed, and a
            :class:`~clientstate.ConfigurationError` is thrown into ``steps``
            (so its clean-up still runs) and then raised.

    Raises:
        Whatever a call raises and ``steps`` does not handle (a resource's own
        exception); ConfigurationError as described for ``awaits``.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            call = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return cast(T, stop.value)
        error = None
        try:
            value = call()
            if inspect.isawaitable(value):
                if not awaits:
                    close = getattr(value, "close", None)
                    if callable(close):
                        close()
                    raise ConfigurationError(
                        f"{_name(call)}() returned an awaitable: the blocking Streams cannot await it; "
                        f"use clientstate.batons.AsyncStreams for async resources"
                    )
                value = await value
        except BaseException as exc:  # handed to the operation, which cleans up and re-raises
            value, error = None, exc


def run(steps: Steps[T]) -> T:
    """Perform ``steps`` in the calling thread, blocking; see :func:`drive` (with ``awaits=False``)."""
    coroutine = drive(steps, awaits=False)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()  # pragma: no cover - drive(awaits=False) has no suspension point
    raise RuntimeError("the blocking step runner suspended")  # pragma: no cover
