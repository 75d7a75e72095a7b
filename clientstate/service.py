"""The plain service form of ``setup()``: ``service(loaded, request) -> (state, response)``.

This is the shape of the seed design: a service is a function of the loaded
state and the request that returns the new state and the response, and
:func:`setup` wraps it so that the cookie is written only when the state
changed. :class:`Request` and :class:`Response` are minimal, framework-free
HTTP messages; :func:`clientstate.wsgi.serve` and :func:`clientstate.asgi.serve`
run a service under a real server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from clientstate.cookies import RequestCookies
from clientstate.handler import Handler, Loaded
from clientstate.session import Binding, Clock, headers_to_add
from clientstate.state import State

__all__ = ["Request", "Response", "Service", "setup"]

T = TypeVar("T")


class Request:
    """An HTTP request, as a service sees it.

    Args:
        method: the request method, upper case (``"GET"``).
        path: the path, percent-decoded, without the query (``"/api/state"``).
        headers: ``(name, value)`` pairs; names are compared case-insensitively.
        body: the request body, bytes.
        query: the raw query string, without ``?``.
    """

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        query: str = "",
    ) -> None:
        self.method = method.upper()
        self.path = path
        self.headers = [(k.lower(), v) for k, v in headers]
        self.body = body
        self.query = query

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lower = name.lower()
        for key, value in self.headers:
            if key == lower:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        lower = name.lower()
        return [value for key, value in self.headers if key == lower]

    @property
    def cookies(self) -> RequestCookies:
        """The request's cookies, from every ``Cookie`` field."""
        return RequestCookies(self.header_values("cookie"))

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


class Response:
    """An HTTP response.

    Args:
        status: the status code (``200``).
        headers: ``(name, value)`` pairs, in order.
        body: the body, bytes.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int = 200, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self.body = body

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        """A JSON response (``application/json``) of ``data``, which must be JSON-encodable."""
        body = json.dumps(data, separators=(",", ":")).encode("utf-8")
        return cls(status, [("Content-Type", "application/json")], body)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        """A text response in UTF-8."""
        return cls(status, [("Content-Type", f"{content_type}; charset=utf-8")], text.encode())

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


#: ``service(loaded, request) -> (new_state, response)``
Service = Callable[[Loaded[T], Request], tuple[T | None, Response]]


def setup(
    state: State[T],
    handler: Handler,
    service: Service[T],
    *,
    clock: Clock = time.time,
) -> Callable[[Request], Response]:
    """Wrap ``service`` so that it gets its loaded state and its new state is saved.

    Args:
        state: the state descriptor.
        handler: where the state is stored (e.g. :func:`~clientstate.handler.client_stored`).
        service: ``service(loaded, request) -> (new_state, response)``.
            ``loaded.state`` is the state or ``None``; ``loaded.error`` the
            :class:`~clientstate.errors.LoadError` or ``None``. Returning
            ``None`` as the new state deletes the cookie.
        clock: seconds since the epoch (default ``time.time``).

    Returns:
        ``handle(request) -> response``: the response carries ``Set-Cookie``
        only when the new state differs from the loaded one, when the token
        must be re-issued, or after a load error; never on a 5xx response.

    The returned function raises what ``service`` raises, and
    :class:`~clientstate.errors.StateEncodeError` or
    :class:`~clientstate.errors.CookieTooLarge` when the new state cannot be
    saved.
    """
    binding = Binding(state, handler, clock)

    def handle(request: Request) -> Response:
        slot = binding.begin_cookies(request.cookies)
        new_state, response = service(slot.loaded, request)
        slot.state = new_state
        headers = response.headers
        set_cookies = binding.finish(slot) if response.status < 500 else []  # a failed request commits nothing
        extra = headers_to_add(headers, set_cookies)
        return Response(response.status, [*headers, *extra], response.body)

    return handle
