"""What the framework integrations share: the guard words and the sudo-window check."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Final, ParamSpec, TypeVar, cast

from clientstate import sudo
from clientstate._core.handler import AnyHandler
from clientstate._core.slot import StateSlot
from clientstate.legacy import LegacyCookie, accept_legacy

__all__ = ["LOGIN_REQUIRED", "SUDO_REQUIRED", "check_window", "elevated", "guarded", "with_legacy"]

P = ParamSpec("P")
R = TypeVar("R")

#: What a guard answers (401) when the request has no state.
LOGIN_REQUIRED: Final = "login_required"
#: What a guard answers (403) when sudo is not active.
SUDO_REQUIRED: Final = "sudo_required"


def check_window(max_window: object) -> float:
    """``sudo_max_window`` as a float if it is a finite number of seconds > 0 (:func:`sudo.check_max_window`).

    Raises:
        ConfigurationError: it is not; the message names ``sudo_max_window``.
    """
    return sudo.check_max_window(max_window, "sudo_max_window")


def elevated(slot: StateSlot[Any], max_window: float) -> bool:
    """Whether the slot's state has sudo active at the slot's ``now`` (see :func:`clientstate.sudo.is_active`)."""
    return sudo.is_active(slot.state, slot.now, max_window=max_window)


def with_legacy(handler: AnyHandler, legacy: LegacyCookie | Sequence[LegacyCookie]) -> AnyHandler:
    """``handler``, wrapped by :func:`clientstate.legacy.accept_legacy` when ``legacy`` names any format.

    Raises:
        ConfigurationError: as :func:`~clientstate.legacy.accept_legacy`.
    """
    sources = (legacy,) if isinstance(legacy, LegacyCookie) else tuple(legacy)
    if not sources:
        return handler
    return accept_legacy(handler, *sources)


def guarded(view: Callable[P, R], deny: Callable[P, Any]) -> Callable[P, R]:
    """``view`` behind ``deny(*args, **kwargs)``: a non-``None`` answer is returned instead of calling the view.

    ``deny`` may also raise (the framework's HTTP exception). An async view
    gets an async wrapper, so frameworks that run coroutine views still see one.
    """
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            denied = deny(*args, **kwargs)
            return denied if denied is not None else await view(*args, **kwargs)

        return cast(Callable[P, R], guarded_async)

    @functools.wraps(view)
    def guarded_sync(*args: P.args, **kwargs: P.kwargs) -> Any:
        denied = deny(*args, **kwargs)
        return denied if denied is not None else view(*args, **kwargs)

    return cast(Callable[P, R], guarded_sync)
