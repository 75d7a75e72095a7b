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
    finish_sync(binding, slot) -> list of Set-Cookie values
    finish_async(binding, slot) -> list of Set-Cookie values  (awaitable)

``Binding.abandon(slot)`` (a failed request) needs no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from clientstate._core.binding import Binding
from clientstate._core.flow import run_async, run_sync
from clientstate._core.slot import StateSlot

__all__ = ["begin_async", "begin_sync", "finish_async", "finish_sync"]

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


def finish_sync(binding: Binding[T], slot: StateSlot[T]) -> list[str]:
    """Close ``slot`` and save its state, with blocking I/O if any; returns the ``Set-Cookie`` values.

    Raises what :meth:`Binding.finish` raises.
    """
    if binding.plans:
        return run_sync(binding.finish_plan(slot), binding.store)
    return binding.finish(slot)


async def finish_async(binding: Binding[T], slot: StateSlot[T]) -> list[str]:
    """Close ``slot`` and save its state, awaiting any store I/O; returns the ``Set-Cookie`` values."""
    if binding.plans:
        return await run_async(binding.finish_plan(slot), binding.store)
    return binding.finish(slot)
