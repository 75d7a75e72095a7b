"""Checks of configuration arguments: one function per kind of check.

Every public constructor and ``setup()`` form validates its arguments with
these, so a bad value is a :class:`~clientstate.ConfigurationError` with a
message naming the argument, the accepted range and the value given, raised at
the caller's line — never a bare ``TypeError`` or ``AttributeError`` later.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any, Final, ParamSpec, TypeGuard, TypeVar

from clientstate._core.errors import ConfigurationError

__all__ = [
    "MAX_SECONDS",
    "check_callable",
    "check_duration",
    "check_finite",
    "check_int",
    "check_seconds",
    "check_type",
    "checked",
    "closest",
    "did_you_mean",
    "finite_number",
    "read_clock",
    "read_clock_or",
    "signature_error",
    "unknown_arguments",
]

#: The longest time setting accepted, in seconds: 2**32 (about 136 years).
MAX_SECONDS: Final = 2**32

_log: Final = logging.getLogger("clientstate")

P = ParamSpec("P")
R = TypeVar("R")
V = TypeVar("V")


def check_int(value: object, label: str, low: int, high: int, unit: str = "") -> int:
    """``value`` if it is an ``int`` (not ``bool``) from ``low`` to ``high``; else ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = f"an integer number of {unit}" if unit else "an integer"
        raise ConfigurationError(f"{label} must be {what} from {low} to {high}, got {value!r}")
    return value


def check_seconds(value: object, label: str, low: int = 1, high: int = MAX_SECONDS) -> int:
    """``value`` if it is a whole number of seconds from ``low`` to ``high``; else ConfigurationError."""
    return check_int(value, label, low, high, "seconds")


def finite_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a finite ``int`` or ``float``: not a ``bool`` (an ``int`` to Python), NaN or an infinity."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def check_finite(value: object, label: str) -> float:
    """``value`` as a float if it is a finite ``int`` or ``float`` (see :func:`finite_number`).

    Raises:
        ConfigurationError: ``value`` is not a number, is a ``bool``, or is NaN or infinite.
    """
    if not finite_number(value):
        raise ConfigurationError(f"{label} must be a finite number, got {type(value).__name__} {value!r:.60}")
    return float(value)


def read_clock(
    clock: Callable[[], float], label: str = "the clock", unit: str = "seconds since the Unix epoch (like time.time())"
) -> float:
    """One reading of ``clock``: seconds (since the Unix epoch, unless ``unit`` says otherwise), a finite number.

    Every component that keeps deadlines (``setup()``'s binding, the live
    session manager, the baton registry) reads its clock through this: a NaN
    compares false with every deadline and would stop expiry, an infinity
    would expire everything at once, and a non-number would fail later with a
    bare ``TypeError``.

    Raises:
        ConfigurationError: the reading is NaN, an infinity, a ``bool`` or not a number;
            the message names ``label``, the value and ``unit``.
    """
    now = clock()
    if type(now) is float and math.isfinite(now):  # time.time(): one type check, one isfinite
        return now
    if not finite_number(now):
        raise ConfigurationError(
            f"{label} returned {now!r:.60}: it must return {unit} as a finite number"
        )
    return now


def read_clock_or(
    clock: Callable[[], float],
    standby: Callable[[], float],
    label: str = "the clock",
    unit: str = "seconds since the Unix epoch (like time.time())",
) -> float:
    """:func:`read_clock` for work that must complete whatever the clock says: closing a resource, a save.

    A reading that is not a finite number is logged as an error (logger
    ``clientstate``) and ``standby()`` — the default clock of the component,
    ``time.time`` or ``time.monotonic`` — stands in, so that a broken clock
    never leaves a stream busy, a resource open or a session unsaved. Where
    nothing is yet held (a new connection, opening a stream), components call
    :func:`read_clock` and refuse instead.

    Raises:
        nothing for a bad reading; whatever ``clock`` or ``standby`` raise.
    """
    try:
        return read_clock(clock, label, unit)
    except ConfigurationError as exc:
        _log.error("clientstate: %s; going on with the default clock for this step", exc)
        return standby()


def check_duration(value: object, label: str, high: float) -> float:
    """``value`` as a float if it is a number of seconds above 0 and at most ``high``.

    Raises:
        ConfigurationError: not an ``int``/``float`` (``bool`` and ``str`` included), NaN,
            infinite, zero or negative, or above ``high``.
    """
    seconds = check_finite(value, label)
    if not 0 < seconds <= high:
        raise ConfigurationError(f"{label} must be a number of seconds above 0 and at most {high:g}, got {value!r}")
    return seconds


def check_type(value: V, expected: type | tuple[type, ...], label: str, hint: str = "") -> V:
    """``value`` if it is an instance of ``expected``; else ConfigurationError (with ``hint``)."""
    if not isinstance(value, expected):
        names = (
            " or ".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
        )
        extra = f"; {hint}" if hint else ""
        raise ConfigurationError(f"{label} must be a {names}, got {type(value).__name__} {value!r:.60}{extra}")
    return value


def check_callable(value: V, label: str, shape: str) -> V:
    """``value`` if it is callable; else ConfigurationError describing the expected ``shape``."""
    if not callable(value):
        raise ConfigurationError(f"{label} must be a callable {shape}, got {type(value).__name__}")
    return value


def signature_error(
    target: Callable[..., Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ConfigurationError | None:
    """A ConfigurationError if ``args``/``kwargs`` do not fit ``target``'s signature, else ``None``.

    Unknown keywords get a "did you mean" suggestion and the list of accepted ones.
    """
    try:
        spec = inspect.signature(target)
    except (TypeError, ValueError):  # no introspectable signature: leave the error as it was
        return None
    try:
        spec.bind(*args, **kwargs)
    except TypeError as exc:
        accepted = [
            p.name for p in spec.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            and not p.name.startswith("_") and p.name not in ("self", "cls")
        ]
        unknown = [word for word in kwargs if word not in spec.parameters]
        if unknown:
            return unknown_arguments(name, unknown, accepted)
        return ConfigurationError(f"{name}(): {exc}; it accepts {', '.join(accepted)}")
    return None


def closest(word: str, known: Iterable[str]) -> str | None:
    """The entry of ``known`` closest to a misspelt ``word`` (``difflib``, similarity 0.6 or more), or ``None``."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return close[0] if close else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the entry of ``known`` closest to ``word`` (see :func:`closest`), else ``""``."""
    close = closest(word, known)
    return "" if close is None else f" (did you mean {close!r}?)"


def unknown_arguments(name: str, unknown: list[str], accepted: list[str]) -> ConfigurationError:
    """The ConfigurationError for keywords ``unknown`` given to ``name()``, with "did you mean" suggestions."""
    parts = [f"{word!r}{did_you_mean(word, accepted)}" for word in unknown]
    return ConfigurationError(f"{name}() got unknown argument {', '.join(parts)}; it accepts {', '.join(accepted)}")


def checked(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a public function so that a call not matching its signature raises ConfigurationError.

    Costs nothing on a good call (the signature is only consulted after a
    ``TypeError``); a ``TypeError`` raised inside the function is re-raised unchanged.
    """

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except TypeError as exc:
            name = function.__qualname__.split(".")[-2] if function.__name__ == "__init__" else function.__name__
            error = signature_error(function, name, args, kwargs)
            if error is None:
                raise
            raise error from exc

    return call
