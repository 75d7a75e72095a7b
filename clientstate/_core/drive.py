"""Driving a binding from an adapter: one entry point per I/O style.

Every adapter — WSGI, ASGI, the service form and the framework integrations —
loads and saves through these four functions, never through the handler
directly. For a handler without I/O (``client_stored``) they call the
binding's sans-I/O ``begin``/``finish`` at once. A handler that keeps state in
a store describes its store operations as a *plan* (see
:mod:`clientstate._core.flow`); ``*_sync`` performs it with blocking store
calls (WSGI, Flask, Django), ``*_async`` with ``await`` (ASGI, Starlette,
Litestar), so the logic exists once.

Functions:
    begin_sync(binding, cookie_headers) -> StateSlot
    begin_async(binding, cookie_headers) -> StateSlot  (awaitable)
    finish_sync(binding, slot, status) -> list of Set-Cookie values
    finish_async(binding, slot, status) -> list of Set-Cookie values  (awaitable)

The rule for failed requests lives here, once: :func:`failed` says whether a
response is one, and for those ``finish_*`` call ``Binding.abandon(slot)``
(nothing is saved, no I/O) instead of saving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from clientstate._core.binding import Binding
from clientstate._core.flow import run_async, run_sync
from clientstate._core.slot import StateSlot

__all__ = ["begin_async", "begin_sync", "failed", "finish_async", "finish_sync"]

T = TypeVar("T")


def begin_sync(binding: Binding[T], cookie_headers: Sequence[str]) -> StateSlot[T]:
    """Load ``binding``'s state from a request's ``Cookie`` field values, with blocking I/O if any."""
    if binding.plans:
        return run_sync(binding.begin_plan(cookie_headers), binding.store)
    return binding.begin(cookie_headers)


async def begin_async(binding: Binding[T], cookie_headers: Sequence[str]) -> StateSlot[T]:
    """Load ``binding``'s state from a request's ``Cookie`` field values, awaiting any store I/O."""
    if binding.plans:
        return await run_async(binding.begin_plan(cookie_headers), binding.store)
    return binding.begin(cookie_headers)


def failed(status: int | str, error_page: bool = False) -> bool:
    """Whether a response reports a failed request, which commits no state change.

    Args:
        status: the status code (``int``), or a WSGI status line (``"500 Internal Server Error"``).
        error_page: the response is an error page (WSGI ``start_response`` called with ``exc_info``).

    Returns:
        ``True`` for a 5xx status or an error page.
    """
    if error_page:
        return True
    if isinstance(status, int):
        return status >= 500
    return status[:1] == "5"


def finish_sync(
    binding: Binding[T], slot: StateSlot[T], status: int | str = 200, error_page: bool = False
) -> list[str]:
    """Close ``slot`` and save its state, with blocking I/O if any; returns the ``Set-Cookie`` values.

    Args:
        binding, slot: the request's binding and the slot :func:`begin_sync` gave.
        status: the response's status (``int`` or a WSGI status line); for a
            failed request (see :func:`failed`) nothing is saved and ``[]`` returned.
        error_page: the response is an error page (WSGI ``exc_info``): nothing is saved.

    Raises what :meth:`Binding.finish` raises (never for a failed request).
    """
    if failed(status, error_page):
        return binding.abandon(slot)
    if binding.plans:
        return run_sync(binding.finish_plan(slot), binding.store)
    return binding.finish(slot)


async def finish_async(binding: Binding[T], slot: StateSlot[T], status: int = 200) -> list[str]:
    """Close ``slot`` and save its state, awaiting any store I/O; returns the ``Set-Cookie`` values.

    ``status`` as for :func:`finish_sync`. Raises what :meth:`Binding.finish` raises
    (never for a failed request).
    """
    if failed(status):
        return binding.abandon(slot)
    if binding.plans:
        return await run_async(binding.finish_plan(slot), binding.store)
    return binding.finish(slot)
