"""ASGI adapter (ASGI 3.0): ``setup()`` as middleware, and serving a plain service.

The middleware loads the state for ``http`` and ``websocket`` scopes and passes
the application a copy of the scope holding a
:class:`~clientstate.session.StateSlot` under ``"clientstate.<state name>"``
(read it with :func:`clientstate.get_slot`). For ``http``, the application
assigns ``slot.state`` **before sending** ``http.response.start``; the
``Set-Cookie`` values are added to that message. WebSocket connections see the
loaded state read-only: a handshake response cannot be relied on to set
cookies. ``lifespan`` and other scopes pass through untouched.

Cookie field values are decoded as latin-1, like WSGI's ``HTTP_COOKIE``, so
both adapters give the same cookies for the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from clientstate.handler import Handler
from clientstate.service import Request, Response
from clientstate.session import Binding, Clock, state_headers
from clientstate.state import State

__all__ = ["StateMiddleware", "lifespan", "read_body", "serve", "setup"]

T = TypeVar("T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_VARY_COOKIE = (b"vary", b"Cookie")
_ENCODED: dict[tuple[str, str], tuple[bytes, bytes]] = {
    ("Vary", "Cookie"): _VARY_COOKIE,
    ("Cache-Control", "private"): (b"cache-control", b"private"),
}


def _encode_header(header: tuple[str, str]) -> tuple[bytes, bytes]:
    encoded = _ENCODED.get(header)
    if encoded is None:
        return header[0].lower().encode("latin-1"), header[1].encode("latin-1")
    return encoded


class StateMiddleware:
    """ASGI middleware that loads and saves one state around ``app``.

    Args:
        app: any ASGI 3 application.
        binding: the :class:`~clientstate.session.Binding` (state, handler, clock).

    Sending ``http.response.start`` raises
    :class:`~clientstate.errors.StateEncodeError` or
    :class:`~clientstate.errors.CookieTooLarge` when the new state cannot be
    saved (a programming error, reported to the server like any exception).
    """

    __slots__ = ("app", "binding", "key")

    def __init__(self, app: ASGIApp, binding: Binding[Any]) -> None:
        self.app = app
        self.binding = binding
        self.key = binding.key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        binding = self.binding
        slot = binding.begin([value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"])
        scope = {**scope, self.key: slot}
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_state(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A failed request commits no state change (the cookie stays as it was).
                set_cookies = binding.finish(slot) if message.get("status", 200) < 500 else []
                headers = list(message.get("headers", ()))
                vary: list[str] = []
                has_cache_control = False
                for name, value in headers:  # ASGI response header names are lower case
                    if name == b"vary":
                        vary.append(value.decode("latin-1"))
                    elif name == b"cache-control":
                        has_cache_control = True
                if set_cookies or vary:
                    extra = [*map(_encode_header, state_headers(vary, has_cache_control, set_cookies))]
                else:
                    extra = [_VARY_COOKIE]
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_state)


def setup(
    state: State[T], handler: Handler, app: ASGIApp, *, clock: Clock = time.time
) -> StateMiddleware:
    """Wrap an ASGI ``app`` so it gets ``state`` loaded and saved by ``handler``.

    Args:
        state: the state descriptor.
        handler: the handler (e.g. :func:`~clientstate.handler.client_stored`).
        app: the ASGI 3 application.
        clock: seconds since the epoch (default ``time.time``).

    Returns:
        the ASGI middleware; the slot is at ``scope["clientstate.<state name>"]``.
    """
    return StateMiddleware(app, Binding(state, handler, clock))


async def lifespan(receive: Receive, send: Send) -> None:
    """Serve an ASGI ``lifespan`` scope for an app with nothing to start or stop: acknowledge both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive, max_body: int) -> bytes | None:
    """Read an ``http`` request body; ``None`` if it exceeds ``max_body`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def serve(handle: Callable[[Request], Response], *, max_body: int = 1 << 20) -> ASGIApp:
    """Run a plain ``handle(request) -> response`` function (e.g. from :func:`clientstate.setup`) as an ASGI app.

    ``handle`` runs on the event loop; it should not block. Bodies over
    ``max_body`` bytes (default 1 MiB) get 413. Non-``http`` scopes are refused
    (``lifespan`` is acknowledged).
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive, max_body)
        if body is None:
            response = Response.text("request body too large", 413)
        else:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            request = Request(
                scope["method"], scope["path"], headers, body,
                scope.get("query_string", b"").decode("latin-1"),
            )
            response = handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers),
                    (b"content-length", str(len(response.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    return app
