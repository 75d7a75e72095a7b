"""The blocking driver: :class:`Streams`, for threads (WSGI servers, workers, scripts).

Every decision is the registry's (:mod:`clientstate.batons.registry`); this
module only performs the resource calls it asks for, in the calling thread,
and runs the reaper in a daemon thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Final, TypeVar

import msgspec

from clientstate._core.errors import ConfigurationError
from clientstate.batons.errors import BatonError
from clientstate.batons.front import Front
from clientstate.batons.limits import DEFAULT_REAP_INTERVAL, seconds_or_default
from clientstate.batons.registry import Drained, Ending, Stream, StreamInfo
from clientstate.batons.resources import Resource
from clientstate.batons.steps import run

__all__ = ["Streams"]

R = TypeVar("R", bound=Resource)
_log: Final = logging.getLogger("clientstate.batons")


class Streams(Front[R]):
    """Streams pinned to blocking resources: the registry, driven in the calling thread.

    Args:
        keyring: batons are sealed under ``keyring.current`` (its ``baton``
            HKDF subkey) and verified under the key their key id names.
        limits: :class:`~clientstate.batons.Limits` (idle timeout, maximum
            lifetime, per-scope cap, tombstones); default ``Limits()``.
        clock: seconds for every timeout (default ``time.monotonic``).

    Thread-safe. A request's life: ``open`` (or ``resume``) → work on
    ``stream.resource`` → ``release`` (hand the next baton to the client) or
    ``close`` (end the stream). Refusals are returned as
    :class:`~clientstate.batons.BatonError` values, never raised.

    Raises:
        ConfigurationError: an argument of the wrong type.
    """

    __slots__ = ()

    def open(
        self, acquire: Callable[[bool], R], *, principal: str, scope: str, read_only: bool = False
    ) -> Stream[R] | BatonError:
        """Open a stream: reserve a place in ``scope``, then call ``acquire(read_only)``.

        Args:
            acquire: makes the resource (for example
                :func:`~clientstate.batons.sqlite3_acquirer`); called only
                once the place is reserved, so the cap bites before any pool.
            principal: who opens it; every ``resume`` must name the same one.
            scope: what the resource belongs to (a database name, say); the
                cap counts per scope, and the baton is bound to it.
            read_only: passed to ``acquire``, shown by ``list``.

        Returns:
            The busy :class:`Stream` (``release`` it to get its first baton),
            or a ``too_many_streams`` or ``registry_closed`` BatonError.

        Raises:
            ConfigurationError: a bad argument, or ``acquire`` returned no resource.
            Whatever ``acquire`` raises (the reserved place is freed first).
        """
        return run(self._registry.open(acquire, principal, scope, read_only))

    def resume(self, baton: object, *, scope: str, principal: str) -> Stream[R] | BatonError:
        """Take the stream ``baton`` names for one request; the baton is used up.

        Args:
            baton: the client's baton (any value: client input never raises).
            scope: the scope the request is for; must be the stream's.
            principal: who is asking; must be who opened the stream.

        Returns:
            The busy :class:`Stream`, or a BatonError: ``bad_baton``,
            ``baton_reused``, ``stream_busy``, ``stream_expired`` (the stream
            was found past its time and is ended now), ``principal_mismatch``
            or ``scope_mismatch`` (both leave the baton valid), ``registry_closed``.

        Raises:
            ConfigurationError: ``scope`` or ``principal`` is not a str.
        """
        result = self._registry.resume(baton, scope, principal)
        return run(result.steps()) if isinstance(result, Ending) else result

    def release(self, stream: Stream[R]) -> str | BatonError:
        """End the request holding ``stream`` and return the stream's next baton.

        After ``close_all`` the stream is ended instead and the result is a
        ``registry_closed`` BatonError.

        Raises:
            ConfigurationError: ``stream`` is not held (released or closed already).
        """
        result = self._registry.release(stream)
        return result if isinstance(result, str) else run(result.steps())

    def close(self, stream: Stream[R]) -> None:
        """End the stream the request holds: ``rollback()``, then ``close()`` its resource.

        Commit on the resource first to keep its work. Its batons answer
        ``stream_expired`` from now on (for ``Limits.tombstone_ttl``).

        Raises:
            ConfigurationError: ``stream`` is not held (released or closed already).
            The resource's exception, after the stream has been ended anyway.
        """
        run(self._registry.close(stream).steps())

    def kill(self, stream_id: str) -> StreamInfo | BatonError:
        """End the idle stream with id ``stream_id`` (see ``list``), rolling its resource back.

        Returns:
            The ended stream's :class:`StreamInfo`, or a BatonError:
            ``stream_busy`` (a request is in flight: refused, never cut off),
            ``stream_expired``, ``bad_baton`` (no such stream) or ``registry_closed``.

        Raises:
            The resource's exception, after the stream has been ended anyway.
        """
        return run(self._registry.kill(stream_id))

    def reap(self) -> int:
        """One reaper pass: end idle streams past their idle timeout or lifetime; the number ended."""
        return run(self._registry.reap())

    def close_all(self, timeout: float = 30.0) -> Drained:
        """Shut down: stop the reaper, refuse everything, end every idle stream, wait for all endings.

        Returns once every idle stream's resource is rolled back and closed,
        including those the reaper or ``kill`` were ending, or after
        ``timeout`` seconds (then :attr:`Drained.unfinished` counts the rest).
        Busy streams are ended when their request releases them.

        Raises:
            ConfigurationError: ``timeout`` is not a number of seconds.
        """
        wait = seconds_or_default(timeout, "timeout", 30.0)
        self.stop_reaper(wait)
        drained = run(self._registry.close_all())
        if self._registry.wait_endings(wait):
            return drained
        return msgspec.structs.replace(drained, unfinished=self._registry.endings())

    def start_reaper(
        self, interval: float = DEFAULT_REAP_INTERVAL, on_pass: Callable[[int], object] | None = None
    ) -> None:
        """Run :meth:`reap` every ``interval`` seconds in a daemon thread until :meth:`stop_reaper`.

        Args:
            interval: seconds between passes; zero or less means 1 s.
            on_pass: called after each pass with the number of streams ended
                (for metrics, or for tests to wait on).

        Raises:
            ConfigurationError: a bad argument, or the reaper is already running.
        """
        every = seconds_or_default(interval, "interval", DEFAULT_REAP_INTERVAL)
        if self._reaper:
            raise ConfigurationError("the reaper is already running; stop_reaper() first")
        stop = threading.Event()
        thread = threading.Thread(target=self._reap_loop, args=(stop, every, on_pass),
                                  name="clientstate-batons-reaper", daemon=True)
        self._reaper.append((stop, thread))
        thread.start()

    def stop_reaper(self, timeout: float = 10.0) -> bool:
        """Stop the reaper thread and wait up to ``timeout`` seconds for its pass to finish; whether it ended."""
        if not self._reaper:
            return True
        stop, thread = self._reaper.pop()
        stop.set()
        thread.join(seconds_or_default(timeout, "timeout", 10.0))
        return not thread.is_alive()

    def _reap_loop(self, stop: threading.Event, every: float, on_pass: Callable[[int], object] | None) -> None:
        while not stop.wait(every):
            try:
                ended = self.reap()
                if on_pass is not None:
                    on_pass(ended)
            except Exception:  # the reaper must outlive one bad pass; the error is logged
                _log.exception("batons reaper: a pass failed")

    def __enter__(self) -> Streams[R]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close_all()
