"""The demo as a WSGI app and as an ASGI app: thin byte movers around :mod:`.api`.

Both wrap the same routes with the library's middleware
(``clientstate.wsgi.setup`` / ``clientstate.asgi.setup``) and protect
``/api/admin`` with the sudo guards, so the demo exercises the real adapters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from clientstate import asgi, sudo, wsgi
from clientstate.demo.api import DEMO_STATE, handle_api, page
from clientstate.handler import Handler
from clientstate.session import Clock, get_slot

__all__ = ["make_asgi_app", "make_wsgi_app"]

_MAX_BODY = 64 * 1024
_JSON = ("Content-Type", "application/json")
_HTML = ("Content-Type", "text/html; charset=utf-8")


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def make_wsgi_app(handler: Handler, clock: Clock = time.time) -> wsgi.WSGIApp:
    """The demo as a WSGI application, state handled by ``handler``."""

    def routes(environ: dict[str, Any], start_response: wsgi.StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if path == "/" and method == "GET":
            body = page()
            start_response("200 OK", [_HTML, ("Content-Length", str(len(body)))])
            return [body]
        request = wsgi.read_request(environ, _MAX_BODY)
        if request is None:
            status, data = 413, {"error": "body_too_large"}
        else:
            status, data = handle_api(method, path, request.body, get_slot(environ, DEMO_STATE))
        out = _json(data)
        start_response(wsgi.status_line(status), [_JSON, ("Content-Length", str(len(out)))])
        return [out]

    admin = sudo.require_sudo_wsgi(routes, DEMO_STATE)

    def app(environ: dict[str, Any], start_response: wsgi.StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/api/admin" and environ.get("REQUEST_METHOD") == "GET":
            return admin(environ, start_response)
        return routes(environ, start_response)

    return wsgi.setup(DEMO_STATE, handler, app, clock=clock)


def make_asgi_app(handler: Handler, clock: Clock = time.time) -> asgi.ASGIApp:
    """The demo as an ASGI application, state handled by ``handler``."""

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

    async def routes(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path == "/" and method == "GET":
            await respond(send, 200, _HTML, page())
            return
        body = await asgi.read_body(receive, _MAX_BODY)
        if body is None:
            status, data = 413, {"error": "body_too_large"}
        else:
            status, data = handle_api(method, path, body, get_slot(scope, DEMO_STATE))
        await respond(send, status, _JSON, _json(data))

    admin = sudo.require_sudo_asgi(routes, DEMO_STATE)

    async def app(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/admin" and scope["method"] == "GET":
            await admin(scope, receive, send)
            return
        await routes(scope, receive, send)

    return asgi.setup(DEMO_STATE, handler, app, clock=clock)
