"""The async driver: :class:`AsyncStreams`, for an asyncio event loop (ASGI apps).

The same registry and rules as :class:`~clientstate.batons.Streams`; here the
resource calls the registry asks for are awaited, so an async resource
(``psycopg.AsyncConnection``) never blocks the loop, and the reaper is a task.
A blocking resource is accepted too, and its calls then run inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, TypeVar

import msgspec

from clientstate._core.errors import ConfigurationError
from clientstate.batons.errors import BatonError
from clientstate.batons.front import Front
from clientstate.batons.limits import DEFAULT_REAP_INTERVAL, seconds_or_default
from clientstate.batons.registry import Drained, Ending, Stream, StreamInfo
from clientstate.batons.resources import AsyncResource, Resource
from clientstate.batons.steps import drive

__all__ = ["AsyncStreams"]

R = TypeVar("R", bound=Resource | AsyncResource)
_log: Final = logging.getLogger("clientstate.batons")
_POLL: Final = 0.005


class AsyncStreams(Front[R]):
    """Streams pinned to async resources; every method that may touch a resource is a coroutine.

    Arguments, results and refusals are those of
    :class:`~clientstate.batons.Streams`, method for method; ``acquire`` may
    return an awaitable. Use it from one event loop; ``peek``, ``list`` and
    ``rotate`` are plain methods.
    """

    __slots__ = ()

    async def open(
        self, acquire: Callable[[bool], Awaitable[R] | R], *, principal: str, scope: str, read_only: bool = False
    ) -> Stream[R] | BatonError:
        """Open a stream (see :meth:`Streams.open`); the cap is reserved before ``acquire`` is awaited."""
        return await drive(self._registry.open(acquire, principal, scope, read_only))

    async def resume(self, baton: object, *, scope: str, principal: str) -> Stream[R] | BatonError:
        """Take the stream ``baton`` names (see :meth:`Streams.resume`); awaits only to end an expired stream."""
        taken = self._registry.resume(baton, scope, principal)
        if not isinstance(taken, Ending):
            return taken
        return await drive(taken.steps())

    async def release(self, stream: Stream[R]) -> str | BatonError:
        """Hand back the stream and get its next baton (see :meth:`Streams.release`)."""
        baton = self._registry.release(stream)
        if isinstance(baton, str):
            return baton
        return await drive(baton.steps())

    async def close(self, stream: Stream[R]) -> None:
        """End the held stream, awaiting its rollback and close (see :meth:`Streams.close`)."""
        await drive(self._registry.close(stream).steps())

    async def kill(self, stream_id: str) -> StreamInfo | BatonError:
        """End an idle stream by id (see :meth:`Streams.kill`); a busy one is refused."""
        return await drive(self._registry.kill(stream_id))

    async def reap(self) -> int:
        """One reaper pass (see :meth:`Streams.reap`)."""
        return await drive(self._registry.reap())

    async def close_all(self, timeout: float = 30.0) -> Drained:
        """Shut down and wait for every ending (see :meth:`Streams.close_all`); polls other tasks' endings."""
        wait = seconds_or_default(timeout, "timeout", 30.0)
        await self.stop_reaper()
        drained = await drive(self._registry.close_all())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while self._registry.endings() and loop.time() < deadline:
            await asyncio.sleep(_POLL)  # endings elsewhere are awaiting their resource on this loop
        return msgspec.structs.replace(drained, unfinished=self._registry.endings())

    def start_reaper(
        self, interval: float = DEFAULT_REAP_INTERVAL, on_pass: Callable[[int], object] | None = None
    ) -> asyncio.Task[None]:
        """Start a task on the running loop that reaps every ``interval`` seconds (see :meth:`Streams.start_reaper`).

        Raises:
            ConfigurationError: a bad argument, or the reaper is already running.
            RuntimeError: no event loop is running.
        """
        every = seconds_or_default(interval, "interval", DEFAULT_REAP_INTERVAL)
        if self._reaper:
            raise ConfigurationError("the reaper is already running; await stop_reaper() first")
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._reaper_task(stop, every, on_pass),
                                                      name="clientstate-batons-reaper")
        self._reaper.append((stop, task))
        return task

    async def stop_reaper(self) -> None:
        """Stop the reaper task, letting a pass in progress finish its rollbacks."""
        if not self._reaper:
            return
        stop, task = self._reaper.pop()
        stop.set()
        await task

    async def _reaper_task(self, stop: asyncio.Event, every: float, on_pass: Callable[[int], object] | None) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                count = await self.reap()
                if on_pass is not None:
                    on_pass(count)
            except Exception:  # one bad pass must not end the reaper; logged
                _log.exception("batons reaper: a pass failed")

    async def __aenter__(self) -> AsyncStreams[R]:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close_all()
