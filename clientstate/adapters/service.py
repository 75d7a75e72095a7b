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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from clientstate._core.binding import Binding, Clock
from clientstate._core.config import check_callable, check_int, check_type, checked
from clientstate._core.cookies import RequestCookies
from clientstate._core.drive import begin_sync, failed, finish_sync
from clientstate._core.errors import ConfigurationError
from clientstate._core.handler import AnyHandler, Loaded
from clientstate._core.headers import headers_to_add
from clientstate._core.state import State

__all__ = ["Service", "ServiceRequest", "ServiceResponse", "setup"]

T = TypeVar("T")


def _check_headers(headers: object, label: str) -> list[tuple[str, str]]:
    """``headers`` as a list of ``(name, value)`` str pairs; else ConfigurationError naming ``label``.

    A pair may be a tuple or a list of two ``str``; ``headers`` any iterable of pairs but a ``str``,
    ``bytes`` or mapping (whose iteration gives characters, bytes or names, not pairs).
    """
    shape = "an iterable of (name, value) pairs of str, such as [('Cookie', 'a=b')]"
    if isinstance(headers, str | bytes | bytearray | Mapping) or not isinstance(headers, Iterable):
        raise ConfigurationError(f"{label} must be {shape}, got {type(headers).__name__} {headers!r:.60}")
    pairs = []
    for n, pair in enumerate(headers):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ConfigurationError(
                f"{label}[{n}] must be a (name, value) pair of str, got {type(pair).__name__} {pair!r:.60}"
            )
        name, value = pair
        for part, given in (("name", name), ("value", value)):
            if not isinstance(given, str):
                raise ConfigurationError(
                    f"{label}[{n}]: the header {part} must be a str, got {type(given).__name__} {given!r:.60}"
                )
        pairs.append((name, value))
    return pairs


def _check_body(body: object, label: str) -> bytes:
    """``body`` as bytes (``bytes``, ``bytearray`` or ``memoryview``); else ConfigurationError naming ``label``."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ConfigurationError(
            f"{label} must be bytes (encode text first), got {type(body).__name__} {body!r:.60}"
        )
    return bytes(body)


class ServiceRequest:
    """An HTTP request, as a service sees it.

    Args:
        method: the request method, a non-empty ``str`` (upper-cased here: ``"GET"``).
        path: the path, a ``str``, percent-decoded, without the query (``"/api/state"``).
        headers: an iterable of ``(name, value)`` pairs (tuples or lists of two
            ``str``); names are compared case-insensitively.
        body: the request body: ``bytes`` (a ``bytearray`` or ``memoryview`` is copied to bytes).
        query: the raw query string, a ``str``, without ``?``.

    Raises:
        ConfigurationError: an argument of the wrong type (``method`` not a
            non-empty ``str``; ``path`` or ``query`` not a ``str``; ``headers``
            not an iterable of ``(str, str)`` pairs; ``body`` not bytes); the
            message names the argument, what it accepts and what was given.
    """

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | bytearray | memoryview = b"",
        query: str = "",
    ) -> None:
        if not isinstance(method, str) or not method:
            raise ConfigurationError(
                f"ServiceRequest method must be a non-empty str such as 'GET', got {type(method).__name__} "
                f"{method!r:.60}"
            )
        check_type(path, str, "ServiceRequest path", "the percent-decoded path, such as '/api/state'")
        check_type(query, str, "ServiceRequest query", "the raw query string without '?', or ''")
        self.method = method.upper()
        self.path = path
        self.headers = [(k.lower(), v) for k, v in _check_headers(headers, "ServiceRequest headers")]
        self.body = _check_body(body, "ServiceRequest body")
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
        status: the status code, an ``int`` from 100 to 599 (``200``).
        headers: an iterable of ``(name, value)`` pairs (tuples or lists of two ``str``), in order.
        body: the body: ``bytes`` (a ``bytearray`` or ``memoryview`` is copied to bytes).

    Raises:
        ConfigurationError: ``status`` is not an ``int`` from 100 to 599,
            ``headers`` not an iterable of ``(str, str)`` pairs, or ``body``
            not bytes; the message names the argument and what was given.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int = 200, headers: Iterable[tuple[str, str]] = (), body: bytes | bytearray | memoryview = b""
    ) -> None:
        self.status = check_int(status, "ServiceResponse status", 100, 599)
        self.headers = _check_headers(headers, "ServiceResponse headers")
        self.body = _check_body(body, "ServiceResponse body")

    @classmethod
    def json(cls, data: Any, status: int = 200) -> ServiceResponse:
        """A JSON response (``application/json``) of ``data``.

        Raises:
            ConfigurationError: ``data`` is not JSON-encodable (``json.dumps`` refuses it), or ``status``
                is not an ``int`` from 100 to 599.
        """
        try:
            body = json.dumps(data, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:  # an unsupported type; a circular reference
            raise ConfigurationError(f"ServiceResponse.json: data is not JSON-encodable: {exc}") from None
        return cls(status, [("Content-Type", "application/json")], body)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> ServiceResponse:
        """A text response (``text`` a ``str``, sent in UTF-8, ``content_type`` a ``str``).

        Raises:
            ConfigurationError: ``text`` or ``content_type`` is not a ``str``, or ``status``
                is not an ``int`` from 100 to 599.
        """
        check_type(text, str, "ServiceResponse.text text")
        check_type(content_type, str, "ServiceResponse.text content_type")
        return cls(status, [("Content-Type", f"{content_type}; charset=utf-8")], text.encode())

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    def __repr__(self) -> str:
        return f"ServiceResponse({self.status}, {len(self.body)} bytes)"


#: ``service(loaded, request) -> (new_state, response)``
Service = Callable[[Loaded[T], ServiceRequest], tuple[T | None, ServiceResponse]]


def _returned(result: object) -> tuple[Any, int, list[tuple[str, str]], bytes]:
    """What a service returned, checked: ``(new_state, status, headers, body)``; else ConfigurationError.

    The state is never echoed in a message (it may hold personal data): only its type and the pair's length.
    """
    shape = "service(loaded, request) must return a (new_state, response) pair with response a ServiceResponse"
    if not isinstance(result, tuple | list) or len(result) != 2:
        if isinstance(result, ServiceResponse):
            got = "a ServiceResponse alone; return (loaded.state, response) to keep the state"
        elif isinstance(result, tuple | list):
            got = f"a {type(result).__name__} of {len(result)} items"
        else:
            got = "None (does every path of the service return?)" if result is None else type(result).__name__
        raise ConfigurationError(f"{shape}, got {got}")
    new_state, response = result
    if not isinstance(response, ServiceResponse):
        raise ConfigurationError(
            f"{shape}, got {type(response).__name__} {response!r:.60} as the response "
            "(build one with ServiceResponse(status, headers, body), .json(data) or .text(text))"
        )
    # Its attributes can be reassigned after construction: checked again before they are read.
    status = check_int(response.status, "the service's ServiceResponse status", 100, 599)
    headers = _check_headers(response.headers, "the service's ServiceResponse headers")
    body = _check_body(response.body, "the service's ServiceResponse body")
    return new_state, status, headers, body


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
    saved; :class:`~clientstate.ConfigurationError` when it is called with
    something other than a :class:`ServiceRequest`, when ``service`` returns
    something other than a ``(new_state, ServiceResponse)`` pair (a tuple or
    list of two; the response's status, headers and body are checked again,
    as they can be reassigned after construction), or when the response sets
    the handler's own cookie.
    """
    binding = Binding(descriptor, handler, clock)
    check_callable(service, "service", "service(loaded, request) -> (new_state, response)")

    def handle(request: ServiceRequest) -> ServiceResponse:
        check_type(request, ServiceRequest, "the request", "build one with ServiceRequest(method, path, headers)")
        cookies = request.header_values("cookie")
        for value in cookies:  # checked at construction; again here, as request.headers can be reassigned
            check_type(value, str, "a Cookie header value of the request")
        slot = begin_sync(binding, cookies)
        new_state, status, headers, body = _returned(service(slot.loaded, request))
        # A failed (5xx) request commits nothing: finish_sync abandons it, so the new state is not assigned.
        if not failed(status) and new_state is not slot.state:
            slot.state = new_state  # an unchanged object is compared when the response starts
        set_cookies = finish_sync(binding, slot, status)
        extra = headers_to_add(headers, set_cookies, binding)
        return ServiceResponse(status, [*headers, *extra], body)

    return handle
