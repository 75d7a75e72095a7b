"""The limits of a stream registry: timeouts, lifetimes, caps and tombstones.

Every setting has a safe default, and a non-positive value (``0``, ``-1``)
means that default: a zero idle timeout never means "reap every stream at the
next tick", a zero cap never means "unlimited".
"""

from __future__ import annotations

import math
from typing import Final

from clientstate._core.config import MAX_SECONDS
from clientstate._core.errors import ConfigurationError
from clientstate._core.value import ConfigValue, Value

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_LIFETIME",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_MAX_TOMBSTONES",
    "DEFAULT_REAP_INTERVAL",
    "DEFAULT_TOMBSTONE_TTL",
    "Limits",
    "seconds_or_default",
]

#: Seconds a stream may sit unused between two requests.
DEFAULT_IDLE_TIMEOUT: Final = 10.0
#: Seconds a stream may live in all, however often it is used.
DEFAULT_MAX_LIFETIME: Final = 300.0
#: Streams open (or opening) at once in one scope.
DEFAULT_MAX_STREAMS: Final = 64
#: Seconds an ended stream's tombstone is kept (its baton answers ``stream_expired``).
DEFAULT_TOMBSTONE_TTL: Final = 300.0
#: Tombstones kept at most; the oldest go first.
DEFAULT_MAX_TOMBSTONES: Final = 10_000
#: Seconds between two passes of the reaper.
DEFAULT_REAP_INTERVAL: Final = 1.0
_MAX_COUNT: Final = 10_000_000


def seconds_or_default(value: object, label: str, default: float) -> float:
    """``value`` as seconds (a float), or ``default`` when it is zero or negative.

    Raises:
        ConfigurationError: not an ``int`` or ``float`` (``bool`` is refused),
            NaN or infinite, or over 2**32 seconds.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value > MAX_SECONDS:
        raise ConfigurationError(
            f"{label} must be a number of seconds up to {MAX_SECONDS} (zero or less means the default "
            f"{default:g} s), got {value!r}"
        )
    return float(value) if value > 0 else default


def _count_or_default(value: object, label: str, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value > _MAX_COUNT:
        raise ConfigurationError(
            f"{label} must be an integer up to {_MAX_COUNT} (zero or less means the default {default}), got {value!r}"
        )
    return value if value > 0 else default


class Limits(ConfigValue, frozen=True):
    """How long streams live and how many there may be. Frozen.

    Args:
        idle_timeout: seconds a stream may sit unused between requests before
            the reaper (or the next ``resume``) ends it; default 10.
        max_lifetime: seconds from ``open`` after which a stream ends however
            often it is used, so keep-alives cannot hold a resource forever;
            default 300.
        max_streams: streams open or being opened at once **per scope**; the
            place is reserved before the resource is acquired; default 64.
        tombstone_ttl: seconds an ended stream is remembered, so its baton
            answers ``stream_expired`` rather than ``bad_baton``; default 300.
        max_tombstones: tombstones kept at most (the oldest are dropped
            first); default 10,000.

    Every non-positive value means the default.

    Raises:
        ConfigurationError: a value of the wrong type, NaN, or out of range.
    """

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_lifetime: float = DEFAULT_MAX_LIFETIME
    max_streams: int = DEFAULT_MAX_STREAMS
    tombstone_ttl: float = DEFAULT_TOMBSTONE_TTL
    max_tombstones: int = DEFAULT_MAX_TOMBSTONES

    def __post_init__(self) -> None:
        Value.force(self, "idle_timeout", seconds_or_default(self.idle_timeout, "idle_timeout", DEFAULT_IDLE_TIMEOUT))
        Value.force(self, "max_lifetime", seconds_or_default(self.max_lifetime, "max_lifetime", DEFAULT_MAX_LIFETIME))
        Value.force(self, "max_streams", _count_or_default(self.max_streams, "max_streams", DEFAULT_MAX_STREAMS))
        Value.force(
            self, "tombstone_ttl", seconds_or_default(self.tombstone_ttl, "tombstone_ttl", DEFAULT_TOMBSTONE_TTL)
        )
        Value.force(
            self, "max_tombstones", _count_or_default(self.max_tombstones, "max_tombstones", DEFAULT_MAX_TOMBSTONES)
        )
