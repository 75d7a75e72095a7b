"""The plain service form of ``setup()``: ``service(loaded, request) -> (state, response)``.

This is the shape of the seed design: a service is a function of the loaded
state and the request that returns the new state and the response, and
:func:`setup` wraps it so that the cookie is written only when the state
changed. :class:`ServiceRequest` and :class:`ServiceResponse` are minimal,
framework-free HTTP messages; running a service under a server is the
caller's business (``examples/service_quickstart.py`` shows a WSGI bridge).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from clientstate._core.binding import Binding, Clock
from clientstate._core.config import check_callable, checked
from clientstate._core.cookies import RequestCookies
from clientstate._core.drive import begin_sync, failed, finish_sync
from clientstate._core.handler import AnyHandler, Loaded
from clientstate._core.headers import headers_to_add
from clientstate._core.state import State

__all__ = ["Service", "ServiceRequest", "ServiceResponse", "setup"]

T = TypeVar("T")


class ServiceRequest:
    """An HTTP request, as a service sees it.

    Args:
        method: the request method (upper-cased here: ``"GET"``).
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
        return f"ServiceRequest({self.method} {self.path})"


class ServiceResponse:
    """An HTTP response from a service.

    Args:
        status: the status code (``200``).
        headers: ``(name, value)`` pairs, in order.
        body: the body, bytes.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int = 200, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> None:
        self.status = status
        self.headers = list(headers)
        self.body = body

    @classmethod
    def json(cls, data: Any, status: int = 200) -> ServiceResponse:
        """A JSON response (``application/json``) of ``data``, which must be JSON-encodable."""
        body = json.dumps(data, separators=(",", ":")).encode("utf-8")
        return cls(status, [("Content-Type", "application/json")], body)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> ServiceResponse:
        """A text response in UTF-8."""
        return cls(status, [("Content-Type", f"{content_type}; charset=utf-8")], text.encode())

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    def __repr__(self) -> str:
        return f"ServiceResponse({self.status}, {len(self.body)} bytes)"


#: ``service(loaded, request) -> (new_state, response)``
Service = Callable[[Loaded[T], ServiceRequest], tuple[T | None, ServiceResponse]]


@checked
def setup(
    descriptor: State[T],
    handler: AnyHandler,
    service: Service[T],
    *,
    clock: Clock = time.time,
) -> Callable[[ServiceRequest], ServiceResponse]:
    """Wrap ``service`` so that it gets its loaded state and its new state is saved.

    Args:
        descriptor: the :class:`~clientstate.State` descriptor.
        handler: where the state is stored (e.g. :func:`~clientstate.client_stored`).
        service: ``service(loaded, request) -> (new_state, response)``.
            ``loaded.state`` is the state or ``None``; ``loaded.error`` the
            :class:`~clientstate.LoadError` or ``None``. Returning
            ``None`` as the new state deletes the cookie.
        clock: seconds since the epoch (default ``time.time``).

    Returns:
        ``handle(request) -> response``: the response carries ``Set-Cookie``
        only when the new state differs from the loaded one, when the token
        must be re-issued, or after a load error; never on a 5xx response.

    Raises:
        ConfigurationError: an unknown argument or one of the wrong kind.

    The returned function raises what ``service`` raises;
    :class:`~clientstate.StateEncodeError` or
    :class:`~clientstate.CookieTooLarge` when the returned state cannot be
    saved; :class:`~clientstate.ConfigurationError` when the response sets the
    handler's own cookie.
    """
    binding = Binding(descriptor, handler, clock)
    check_callable(service, "service", "service(loaded, request) -> (new_state, response)")

    def handle(request: ServiceRequest) -> ServiceResponse:
        slot = begin_sync(binding, request.header_values("cookie"))
        new_state, response = service(slot.loaded, request)
        # A failed (5xx) request commits nothing: finish_sync abandons it, so the new state is not assigned.
        if not failed(response.status) and new_state is not slot.state:
            slot.state = new_state  # an unchanged object is compared when the response starts
        set_cookies = finish_sync(binding, slot, response.status)
        headers = response.headers
        extra = headers_to_add(headers, set_cookies, binding)
        return ServiceResponse(response.status, [*headers, *extra], response.body)

    return handle
