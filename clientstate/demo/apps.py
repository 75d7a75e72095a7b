"""The demo as a WSGI app and as an ASGI app: thin byte movers around :mod:`.api`.

Both wrap the API routes (``/api/...``) with the library's middleware
(``clientstate.wsgi.setup`` / ``clientstate.asgi.setup``) and protect
``/api/admin`` with the sudo guards, so the demo exercises the real adapters.
The page at ``/`` does not depend on the state and is served outside the
middleware: it neither loads the cookie nor clears a bad one, so the page's
own ``/api/state`` call is what reports a load error.

With a server-stored handler, ``/api/sessions`` and ``/api/logout-everywhere``
run :func:`~clientstate.demo.api.sessions_api` against the handler's store:
the WSGI app with blocking :class:`~clientstate.Sessions`, the ASGI app with
:class:`~clientstate.AsyncSessions`, so the event loop never waits on the store.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from clientstate import asgi, sudo, wsgi
from clientstate._core.binding import Clock
from clientstate._core.handler import AnyHandler
from clientstate._core.slot import StateSlot, get_slot
from clientstate._handlers.client_stored import ClientStored
from clientstate._handlers.server_stored import ServerStored
from clientstate._handlers.sessions import AsyncSessions, Sessions
from clientstate.demo.api import (
    DEMO_STATE,
    SESSIONS_ROUTES,
    DemoState,
    handle_api,
    page,
    run_sessions_async,
    run_sessions_sync,
    sessions_api,
)
from clientstate.demo.http import lifespan, read_asgi_body, read_wsgi_body, status_line
from clientstate.demo.live import LIVE_PATH, LiveDemo
from clientstate.demo.transactions import Transactions, is_tx_path

__all__ = ["make_asgi_app", "make_wsgi_app"]

_MAX_BODY = 64 * 1024
_JSON = ("Content-Type", "application/json")
_HTML = ("Content-Type", "text/html; charset=utf-8")
_NOT_FOUND = json.dumps({"error": "not_found"}).encode()


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _transactions(handler: AnyHandler) -> Transactions:
    """The app's transaction API; batons use the cookie keyring's own ``baton`` subkey."""
    return Transactions(handler.keyring if isinstance(handler, ClientStored | ServerStored) else None)


def _user(slot: StateSlot[DemoState]) -> str | None:
    """The principal of the transaction API: the logged-in user, if any."""
    state = slot.state
    return None if state is None else state.user


def _static(method: str, path: str) -> tuple[int, tuple[str, str], bytes]:
    """The answer for anything outside ``/api/``: the page, or 404."""
    if path == "/" and method in ("GET", "HEAD"):
        return 200, _HTML, page()
    return 404, _JSON, _NOT_FOUND


def make_wsgi_app(handler: AnyHandler, clock: Clock = time.time) -> wsgi.WSGIApp:
    """The demo as a WSGI application, state handled by ``handler``."""
    tx = _transactions(handler)  # started by its first request (waitress has no lifespan); reaper in a thread
    sessions = Sessions(handler) if isinstance(handler, ServerStored) else None

    def api(environ: dict[str, Any], start_response: wsgi.StartResponse) -> Iterable[bytes]:
        body = read_wsgi_body(environ, _MAX_BODY)
        if body is None:
            status, data = 413, {"error": "body_too_large"}
        else:
            slot = get_slot(environ, DEMO_STATE)
            method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
            if is_tx_path(path):
                status, data = tx.handle(method, path, body, _user(slot))
            elif path in SESSIONS_ROUTES:
                plan = sessions_api(method, path, slot, has_store=sessions is not None)
                status, data = run_sessions_sync(plan, sessions)
            else:
                status, data = handle_api(method, path, body, slot)
        out = _json(data)
        start_response(status_line(status), [_JSON, ("Content-Length", str(len(out)))])
        return [out]

    admin = sudo.require_sudo_wsgi(api, DEMO_STATE)

    def routes(environ: dict[str, Any], start_response: wsgi.StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/api/admin" and environ.get("REQUEST_METHOD") == "GET":
            return admin(environ, start_response)
        return api(environ, start_response)

    stateful = wsgi.setup(DEMO_STATE, handler, routes, clock=clock)

    def app(environ: dict[str, Any], start_response: wsgi.StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path.startswith("/api/"):
            return stateful(environ, start_response)
        status, header, body = _static(environ.get("REQUEST_METHOD", "GET"), path)
        start_response(status_line(status), [header, ("Content-Length", str(len(body)))])
        return [body]

    return app


def make_asgi_app(
    handler: AnyHandler, clock: Clock = time.time, *, on_shutdown: Callable[[], Awaitable[None]] | None = None,
    live: LiveDemo | None = None,
) -> asgi.ASGIApp:
    """The demo as an ASGI application, state handled by ``handler``.

    ``on_shutdown`` (if given) is awaited at the end of the lifespan, after the
    transactions stop: the demo closes its store's async clients there.
    ``live`` (if given) serves the live panel's WebSocket at ``/ws/live``
    (:mod:`clientstate.demo.live`); the lifespan starts its manager and, at
    shutdown, saves every live session before anything else stops.
    """
    tx = _transactions(handler)  # started and shut down by the lifespan (or started by its first request)
    sessions = AsyncSessions(handler) if isinstance(handler, ServerStored) else None

    async def startup() -> None:
        await tx.startup()
        if live is not None:
            await live.startup()

    async def shutdown() -> None:
        if live is not None:
            await live.shutdown()  # first: the store must still be open
        await tx.shutdown()
        if on_shutdown is not None:
            await on_shutdown()

    async def respond(send: asgi.Send, status: int, header: tuple[str, str], body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (header[0].lower().encode(), header[1].encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def api(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        body = await read_asgi_body(receive, _MAX_BODY)
        if body is None:
            status, data = 413, {"error": "body_too_large"}
        elif is_tx_path(scope["path"]):  # SQLite blocks: off the event loop
            user = _user(get_slot(scope, DEMO_STATE))
            status, data = await asyncio.to_thread(tx.handle, scope["method"], scope["path"], body, user)
        elif scope["path"] in SESSIONS_ROUTES:
            slot = get_slot(scope, DEMO_STATE)
            plan = sessions_api(scope["method"], scope["path"], slot, has_store=sessions is not None)
            status, data = await run_sessions_async(plan, sessions)
        else:
            status, data = handle_api(scope["method"], scope["path"], body, get_slot(scope, DEMO_STATE))
        await respond(send, status, _JSON, _json(data))

    admin = sudo.require_sudo_asgi(api, DEMO_STATE)

    async def routes(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["path"] == "/api/admin" and scope["method"] == "GET":
            await admin(scope, receive, send)
            return
        await api(scope, receive, send)

    stateful = asgi.setup(DEMO_STATE, handler, routes, clock=clock)

    async def app(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, startup, shutdown)
            return
        if scope["type"] == "websocket" and live is not None and scope["path"] == LIVE_PATH:
            await live.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/api/"):
            await stateful(scope, receive, send)
            return
        await respond(send, *_static(scope["method"], scope["path"]))

    return app
