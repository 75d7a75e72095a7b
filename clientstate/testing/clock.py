"""A frozen, steppable clock for tests: time moves only when the test says so."""

from __future__ import annotations

from clientstate._core.config import finite_number

__all__ = ["FrozenClock"]


class FrozenClock:
    """A clock that returns a fixed instant until advanced.

    Pass it wherever clientstate takes a clock (``setup(..., clock=clock)``);
    calling it returns the current instant in seconds since the Unix epoch.

    Args:
        now: the starting instant, seconds since the epoch (default
            1_700_000_000, 2023-11-14T22:13:20Z).

    Raises:
        ValueError: ``now`` is not finite.
    """

    __slots__ = ("_now",)

    def __init__(self, now: float = 1_700_000_000) -> None:
        self._now = float(self._check(now))

    @staticmethod
    def _check(value: float) -> float:
        if not finite_number(value):
            raise ValueError(f"clock values must be finite numbers of seconds, got {value!r}")
        return value

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        """The current instant, seconds since the epoch."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock by ``seconds`` (may be negative, to model a clock stepped back).

        Returns the new instant.

        Raises:
            ValueError: ``seconds`` is not finite.
        """
        self._now += self._check(seconds)
        return self._now

    def set(self, now: float) -> None:
        """Jump to the instant ``now``.

        Raises:
            ValueError: ``now`` is not finite.
        """
        self._now = float(self._check(now))

    def __repr__(self) -> str:
        return f"FrozenClock({self._now!r})"
