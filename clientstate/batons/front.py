"""What both stream drivers share: construction and the operations that need no I/O."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from clientstate._core.keys import Keyring
from clientstate._core.value import Immutable
from clientstate.batons.limits import Limits
from clientstate.batons.registry import Registry, Stream, StreamInfo
from clientstate.batons.resources import AsyncResource, Resource

__all__ = ["Front"]

R = TypeVar("R", bound=Resource | AsyncResource)


class Front(Immutable, Generic[R]):
    """Base of :class:`~clientstate.batons.Streams` and :class:`~clientstate.batons.AsyncStreams`.

    Args:
        keyring: the keys batons are sealed with (their ``baton`` subkey);
            share it between processes only if you also want their batons
            to verify there (they are still refused: streams live in one process).
        limits: timeouts, caps and tombstones; default ``Limits()``.
        clock: seconds for timeouts (default ``time.monotonic``); tests inject
            a frozen clock.

    Attributes:
        keyring: the keyring batons are sealed and verified with (see :meth:`rotate`).
        limits: the registry's :class:`Limits`.

    Raises:
        ConfigurationError: an argument of the wrong type.
    """

    __slots__ = ("_reaper", "_registry", "keyring", "limits")

    keyring: Keyring
    limits: Limits
    _registry: Registry[R]
    _reaper: list[tuple[Any, Any]]

    def __init__(
        self, keyring: Keyring, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        registry: Registry[R] = Registry(keyring, Limits() if limits is None else limits, clock)
        self._set(_registry=registry, _reaper=[], keyring=keyring, limits=registry.limits)

    @property
    def closed(self) -> bool:
        """Whether ``close_all`` has run (everything is refused with ``registry_closed``)."""
        return self._registry.closed

    def peek(self, stream: Stream[R]) -> str:
        """The baton ``release`` will return, while the request still holds ``stream``.

        For a streamed response whose first part must carry the next baton.
        ``resume`` refuses that baton with ``stream_busy`` until the request
        calls ``release`` (which returns the same baton).

        Raises:
            ConfigurationError: ``stream`` is not held (released or closed already).
        """
        return self._registry.peek(stream)

    def list(self, where: Callable[[StreamInfo], bool] | None = None) -> tuple[StreamInfo, ...]:
        """Snapshots of the live streams (:class:`StreamInfo`), filtered by ``where(info)`` if given.

        Raises:
            ConfigurationError: ``where`` is not callable.
        """
        return self._registry.list(where)

    def rotate(self, keyring: Keyring) -> None:
        """Seal new batons under ``keyring.current``; batons under its other keys keep resuming.

        A baton verified under an older key is followed by one under the
        current key, as for cookies. A key left out of ``keyring`` stops
        every baton sealed under it (``bad_baton``).

        Raises:
            ConfigurationError: ``keyring`` is not a :class:`~clientstate.Keyring`.
        """
        self._registry.rotate(keyring)
        self._set(keyring=keyring)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._registry.list())} streams"
        return f"{type(self).__name__}({state}, keyring={self.keyring!r})"
