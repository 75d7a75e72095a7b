"""WSGI adapter (PEP 3333): ``setup()`` as middleware, and serving a plain service.

The middleware loads the state before the application runs and puts a
:class:`~clientstate.session.StateSlot` in the environ under
``"clientstate.<state name>"`` (read it with :func:`clientstate.get_slot`).
The application reads ``slot.state`` / ``slot.error`` and assigns
``slot.state`` to change it, **before calling** ``start_response``: the
``Set-Cookie`` values are computed when the application calls
``start_response``, and a change made afterwards is not saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_to_bytes
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from clientstate.handler import Handler
from clientstate.service import Request, Response
from clientstate.session import Binding, Clock, headers_to_add
from clientstate.state import State

__all__ = ["Environ", "StartResponse", "StateMiddleware", "WSGIApp", "serve", "setup"]

T = TypeVar("T")

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

WSGIApp = WSGIApplication
Environ = WSGIEnvironment


class StateMiddleware:
    """WSGI middleware that loads and saves one state around ``app``.

    Args:
        app: any WSGI application.
        binding: the :class:`~clientstate.session.Binding` (state, handler, clock).

    ``start_response`` raises :class:`~clientstate.errors.StateEncodeError` or
    :class:`~clientstate.errors.CookieTooLarge` when the new state cannot be
    saved (a programming error, reported to the server like any exception).
    """

    __slots__ = ("app", "binding", "key")

    def __init__(self, app: WSGIApp, binding: Binding[Any]) -> None:
        self.app = app
        self.binding = binding
        self.key = binding.key

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        binding = self.binding
        header = environ.get("HTTP_COOKIE")
        slot = binding.begin((header,) if header else ())
        environ[self.key] = slot

        def start_with_state(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: OptExcInfo | None = None,
            /,
        ) -> Callable[[bytes], object]:
            # A failed request commits no state change: on an error response
            # (5xx, or start_response called again with exc_info) nothing is
            # saved, and nothing here can raise over the application's own error.
            failed = exc_info is not None or status[:1] == "5"
            extra = headers_to_add(headers, [] if failed else binding.finish(slot))
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start_with_state)


def setup(
    state: State[T], handler: Handler, app: WSGIApp, *, clock: Clock = time.time
) -> StateMiddleware:
    """Wrap a WSGI ``app`` so it gets ``state`` loaded and saved by ``handler``.

    Args:
        state: the state descriptor.
        handler: the handler (e.g. :func:`~clientstate.handler.client_stored`).
        app: the WSGI application.
        clock: seconds since the epoch (default ``time.time``).

    Returns:
        the WSGI middleware; the slot is at ``environ["clientstate.<state name>"]``.
    """
    return StateMiddleware(app, Binding(state, handler, clock))


_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error",
}


def status_line(status: int) -> str:
    """``"200 OK"`` for ``200``; the reason phrase is empty for unlisted codes."""
    return f"{status} {_REASONS.get(status, '')}".rstrip()


def read_request(environ: Environ, max_body: int) -> Request | None:
    """Build a :class:`~clientstate.service.Request` from a WSGI environ.

    Returns ``None`` when the declared body is longer than ``max_body`` bytes.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_body:
        return None
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = [
        (key[5:].replace("_", "-").lower(), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    # PEP 3333: PATH_INFO is latin-1-decoded bytes; recover the UTF-8 path.
    raw_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = unquote_to_bytes(raw_path.encode("latin-1", "replace")).decode("utf-8", "replace")
    return Request(
        environ.get("REQUEST_METHOD", "GET"), path or "/", headers, body,
        environ.get("QUERY_STRING", ""),
    )


def serve(handle: Callable[[Request], Response], *, max_body: int = 1 << 20) -> WSGIApp:
    """Run a plain ``handle(request) -> response`` function (e.g. from :func:`clientstate.setup`) as a WSGI app.

    Args:
        handle: the function.
        max_body: longest request body read, in bytes (default 1 MiB);
            longer bodies get 413.
    """

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = read_request(environ, max_body)
        response = Response.text("request body too large", 413) if request is None else handle(request)
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(status_line(response.status), headers)
        return [response.body]

    return app
