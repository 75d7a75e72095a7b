"""ASGI adapter (ASGI 3.0): ``setup()`` as middleware. Public as ``clientstate.asgi``.

The middleware loads the state for ``http`` and ``websocket`` scopes and passes
the application a copy of the scope holding a :class:`~clientstate.StateSlot`
under ``"clientstate.<state name>"`` (read it with
:func:`clientstate.get_slot`). For ``http``, the application assigns
``slot.state`` **before sending** ``http.response.start``; the ``Set-Cookie``
values are added to that message, and a later assignment raises
:class:`~clientstate.StateNotWritable`. WebSocket connections see the loaded
state read-only (assigning raises): a handshake response cannot be relied on
to set cookies. ``lifespan`` and other scopes pass through untouched.

Cookie field values are decoded as latin-1, like WSGI's ``HTTP_COOKIE``, so
both adapters give the same cookies for the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, TypeVar

from clientstate._core.binding import Binding, Clock
from clientstate._core.config import checked
from clientstate._core.drive import begin_async, finish_async
from clientstate._core.handler import AnyHandler
from clientstate._core.headers import VARY_COOKIE, VARY_ONLY, headers_to_add
from clientstate._core.state import State
from clientstate.adapters.middleware import Middleware

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "StateMiddleware", "setup"]

T = TypeVar("T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WEBSOCKET: Final = (
    "a WebSocket connection sees the state read-only: its handshake response cannot be relied on "
    "to set cookies; change the state in an HTTP request"
)
_RETURNED: Final = "the application had already returned"
_VARY_COOKIE: Final = (b"vary", b"Cookie")
_ENCODED: Final = {VARY_COOKIE: _VARY_COOKIE, ("Cache-Control", "private"): (b"cache-control", b"private")}


def _encode_header(header: tuple[str, str]) -> tuple[bytes, bytes]:
    encoded = _ENCODED.get(header)
    if encoded is None:
        return header[0].lower().encode("latin-1"), header[1].encode("latin-1")
    return encoded


class StateMiddleware(Middleware[ASGIApp]):
    """ASGI middleware that loads and saves one state around ``app`` (any ASGI 3 application).

    Sending ``http.response.start`` raises
    :class:`~clientstate.ConfigurationError` when the application sets the
    handler's own cookie, and :class:`~clientstate.StateEncodeError` or
    :class:`~clientstate.CookieTooLarge` when a state changed in place after
    its assignment can no longer be saved.
    """

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        binding = self.binding
        cookies = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
        slot = await begin_async(binding, cookies)
        scope = binding.attached(scope, slot)
        if kind == "websocket":
            slot.close(_WEBSOCKET)
            await self.app(scope, receive, send)
            return

        async def send_with_state(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A failed (5xx) request commits no state change: finish_async abandons it.
                set_cookies = await finish_async(binding, slot, message.get("status", 200))
                headers = list(message.get("headers", ()))
                extra = headers_to_add(headers, set_cookies, binding)
                if extra is VARY_ONLY:
                    headers.append(_VARY_COOKIE)
                elif extra:
                    headers.extend(map(_encode_header, extra))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_state)
        finally:
            slot.close(_RETURNED)


@checked
def setup(
    descriptor: State[T], handler: AnyHandler, app: ASGIApp, *, clock: Clock = time.time
) -> StateMiddleware:
    """Wrap an ASGI 3 ``app``: the middleware puts the slot at ``scope["clientstate.<state name>"]``.

    ``descriptor`` is the :class:`~clientstate.State`, ``handler`` where it is
    kept (e.g. :func:`~clientstate.client_stored`), ``clock`` returns seconds
    since the epoch (default ``time.time``). ``lifespan`` scopes pass through;
    WebSocket scopes get a read-only slot.

    Raises:
        ConfigurationError: as :func:`clientstate.wsgi.setup` does.
    """
    shape = "ASGI application app(scope, receive, send)"
    return StateMiddleware(app, Binding.around(app, descriptor, handler, clock, shape))
