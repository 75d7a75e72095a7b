"""sudo-until: elevated authentication that expires, kept in the state itself.

After the user re-enters their password, the application *grants* elevation
for a number of seconds: the state gets an absolute instant ``sudo_until``
(seconds since the epoch). Elevation is *active* while ``now < sudo_until``,
so a grant of ``W`` seconds at ``t0`` is active at ``t0 + W - 1`` and not at
``t0 + W``. Expiry lives in the authenticated state, not in the cookie's
lifetime, so the client cannot extend it.

A maximum window bounds every check: :func:`grant` refuses a window longer
than ``max_window`` (default :data:`DEFAULT_MAX_WINDOW`, one hour), and
:func:`is_active` and the guards treat a ``sudo_until`` more than
``max_window`` seconds ahead of now as *not* elevated — a state written under
a laxer policy (or by a bug) cannot grant more than the configured maximum.

The state type needs a field (default name ``sudo_until``) typed
``float | None``: :func:`grant` writes a float. Values may be
``msgspec.Struct`` s, dataclasses or dicts.

Replay: a client-stored state cannot be revoked. A client that kept an older
cookie with an unexpired ``sudo_until`` can present it again until that
instant (or the token's ``expires_in``) passes, even after the application
revoked elevation in a newer cookie. Keep windows short (minutes), and for
revocation pass ``validate=`` to the handler: it runs after every load and can
reject tokens issued before a server-side instant (for example the user's last
logout or password change).

Guards answer ``403 {"error": "sudo_required"}`` (or a response of your choice)
when elevation is not active, for WSGI apps, ASGI apps (HTTP and WebSocket) and
plain services. The WSGI and ASGI guards read the time from the request's slot,
so they use the binding's clock; the plain-service guard takes the clock.

WebSocket connections are checked at the handshake *and* for as long as they
stay open: when the window ends, the ASGI guard closes the connection with
code 1008 (policy violation, reason ``sudo_expired``). From then on the
application's ``receive`` returns ``websocket.disconnect`` (code 1008) and its
``send`` raises :class:`SudoExpired` (an ``OSError``, as ASGI servers raise for
a closed connection).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, cast

import msgspec

from clientstate._core.binding import Clock
from clientstate._core.config import check_callable, check_type, finite_number
from clientstate._core.errors import ClientStateError, ConfigurationError
from clientstate._core.handler import Loaded
from clientstate._core.slot import StateSlot, get_slot
from clientstate._core.state import State
from clientstate.adapters.service import ServiceRequest, ServiceResponse

__all__ = [
    "DEFAULT_FIELD",
    "DEFAULT_MAX_WINDOW",
    "SudoExpired",
    "SudoStateError",
    "grant",
    "is_active",
    "remaining",
    "require_sudo",
    "require_sudo_asgi",
    "require_sudo_wsgi",
    "revoke",
]

T = TypeVar("T")

#: The default name of the state field holding the sudo-until instant.
DEFAULT_FIELD: Final = "sudo_until"
#: The default maximum window, seconds: one hour.
DEFAULT_MAX_WINDOW: Final = 3600.0
#: The WebSocket close code for an ended window: 1008, policy violation (RFC 6455 §7.4.1).
CLOSE_POLICY_VIOLATION: Final = 1008

_DENY_BODY: Final = json.dumps({"error": "sudo_required"}).encode()


class SudoExpired(ClientStateError, OSError):
    """The sudo window of a guarded WebSocket connection ended and the guard closed the connection."""


class SudoStateError(ConfigurationError, TypeError):
    """A state :func:`grant` or :func:`revoke` cannot elevate: not a Struct, dataclass or dict, or no such field.

    A :class:`~clientstate.ConfigurationError` (and a ``TypeError``, as a wrong argument type is).
    """


def _check_field(field: object) -> str:
    if not isinstance(field, str) or not field:
        raise ConfigurationError(f"sudo field must be a non-empty str, got {type(field).__name__} {field!r:.40}")
    return field


def _check_now(now: object) -> float:
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise ConfigurationError(
            f"now must be a number of seconds since the epoch, got {type(now).__name__} {now!r:.40}"
        )
    return float(now)


def _read(value: Any, field: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(field)
    return getattr(value, field, None)


def _replace(value: T, field: str, new: float | None) -> T:
    _check_field(field)
    if isinstance(value, msgspec.Struct) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        names = value.__struct_fields__ if isinstance(value, msgspec.Struct) else [
            f.name for f in dataclasses.fields(value)
        ]
        if field not in names:
            raise SudoStateError(
                f"sudo-until: {type(value).__name__} has no field {field!r} (add `{field}: float | None = None`)"
            )
        if isinstance(value, msgspec.Struct):
            return msgspec.structs.replace(value, **{field: new})
        return cast(T, dataclasses.replace(value, **{field: new}))
    if isinstance(value, Mapping):
        return cast(T, {**value, field: new})
    raise SudoStateError(f"sudo-until needs a msgspec.Struct, a dataclass or a dict, got {type(value).__name__}")


def check_max_window(max_window: object, label: str = "max_window") -> float:
    """``max_window`` as a float if it is a finite number of seconds above 0; the integrations' check too.

    Raises:
        ConfigurationError: not an ``int``/``float`` (a ``bool`` included), NaN, infinite, zero or negative;
            the message names ``label``.
    """
    if not finite_number(max_window) or max_window <= 0:
        raise ConfigurationError(f"{label} must be a finite number of seconds > 0, got {max_window!r}")
    return float(max_window)


def _check_guard(
    target: object, label: str, shape: str, field: object, max_window: float, deny: object, deny_shape: str = ""
) -> None:
    """A guard factory's arguments, checked when it wraps (not on every request); else ConfigurationError.

    ``deny`` must be ``None`` or callable as ``deny_shape`` (default: ``shape``, the guarded target's).
    """
    check_callable(target, label, shape)
    _check_field(field)
    check_max_window(max_window)
    if deny is not None:
        check_callable(deny, "deny", f"{deny_shape or shape} or None")


def _check_descriptor(descriptor: object) -> None:
    check_type(
        descriptor, State, "descriptor",
        "pass the State descriptor given to setup(), e.g. State('session', Session), not its name",
    )


def grant(
    value: T, seconds: float, now: float, *, field: str = DEFAULT_FIELD, max_window: float = DEFAULT_MAX_WINDOW
) -> T:
    """Return a copy of ``value`` elevated until ``now + seconds``.

    Args:
        value: the current state.
        seconds: length of the window, seconds, finite, > 0 and at most ``max_window``.
        now: the current time, seconds since the epoch (from your clock,
            e.g. ``slot.now``).
        field: the state field that holds the instant.
        max_window: the longest window allowed, seconds (default one hour).

    Raises:
        ConfigurationError: ``seconds`` is not finite and positive, or longer
            than ``max_window``; ``max_window`` is not a positive number;
            ``now`` is not a finite number; ``field`` is not a non-empty str.
        SudoStateError: ``value`` is not a Struct, dataclass or dict, or has no ``field``.
    """
    check_max_window(max_window)
    if not math.isfinite(_check_now(now)):
        raise ConfigurationError(f"now must be a finite number of seconds since the epoch, got {now!r}")
    if not finite_number(seconds) or seconds <= 0:
        raise ConfigurationError(f"sudo window must be a finite number of seconds > 0, got {seconds!r}")
    if seconds > max_window:
        raise ConfigurationError(f"sudo window of {seconds} s is longer than max_window ({max_window} s)")
    return _replace(value, field, now + seconds)


def revoke(value: T, *, field: str = DEFAULT_FIELD) -> T:
    """Return a copy of ``value`` with elevation removed (``sudo_until = None``).

    Raises:
        ConfigurationError: ``field`` is not a non-empty str.
        SudoStateError: ``value`` is not a Struct, dataclass or dict, or has no ``field``.
    """
    return _replace(value, field, None)


def _until(value: Any, now: float, field: str, max_window: float) -> float | None:
    """The instant elevation ends, if ``value`` is elevated at ``now`` within ``max_window``; else ``None``."""
    _check_now(now)
    _check_field(field)
    check_max_window(max_window)
    if value is None:
        return None
    until = _read(value, field)
    if isinstance(until, bool) or not isinstance(until, int | float):
        return None
    # Written as "not (ok)" so that NaN is never elevated.
    if not (now < until and until - now <= max_window):
        return None
    return float(until)


def is_active(value: Any, now: float, *, field: str = DEFAULT_FIELD, max_window: float = DEFAULT_MAX_WINDOW) -> bool:
    """Whether ``value`` is elevated at ``now``: ``now < value.sudo_until <= now + max_window``.

    ``None`` (no state), a ``None``/missing/non-number field, and an instant
    more than ``max_window`` seconds ahead are never elevated; nor is anything
    at a NaN ``now``.

    Raises:
        ConfigurationError: ``now`` is not a number (a ``bool`` or ``str``),
            ``field`` is not a non-empty str, or ``max_window`` is not a positive number.
    """
    return _until(value, now, field, max_window) is not None


def remaining(value: Any, now: float, *, field: str = DEFAULT_FIELD, max_window: float = DEFAULT_MAX_WINDOW) -> float:
    """Seconds of elevation left at ``now`` (0 when not elevated).

    Raises:
        ConfigurationError: as :func:`is_active`.
    """
    until = _until(value, now, field, max_window)
    return 0.0 if until is None else until - now


def require_sudo(
    service: Callable[[Loaded[T], ServiceRequest], tuple[T | None, ServiceResponse]],
    *,
    clock: Clock,
    field: str = DEFAULT_FIELD,
    max_window: float = DEFAULT_MAX_WINDOW,
    deny: Callable[[Loaded[T], ServiceRequest], ServiceResponse] | None = None,
) -> Callable[[Loaded[T], ServiceRequest], tuple[T | None, ServiceResponse]]:
    """Guard a plain service (see :func:`clientstate.setup`): run it only while elevated.

    Args:
        service: ``service(loaded, request) -> (state, response)``.
        clock: seconds since the epoch; pass the clock given to ``setup()``
            (``time.time`` by default there), since a plain service does not
            see the binding.
        field: the state field holding the instant.
        max_window: the longest window honoured, seconds (default one hour).
        deny: ``deny(loaded, request) -> response`` when not elevated;
            default ``403 {"error": "sudo_required"}``. The state is left unchanged.

    Raises:
        ConfigurationError: ``service`` or ``clock`` is not callable, ``deny``
            is neither callable nor ``None``, ``field`` is not a non-empty
            str, or ``max_window`` is not a positive number.
    """
    _check_guard(service, "service", "service(loaded, request) -> (state, response)", field, max_window, deny,
                 "deny(loaded, request) -> response")
    check_callable(clock, "clock", "clock() -> seconds since the epoch")

    def guarded(loaded: Loaded[T], request: ServiceRequest) -> tuple[T | None, ServiceResponse]:
        if is_active(loaded.state, clock(), field=field, max_window=max_window):
            return service(loaded, request)
        if deny is not None:
            return loaded.state, deny(loaded, request)
        return loaded.state, ServiceResponse(403, [("Content-Type", "application/json")], _DENY_BODY)

    return guarded


WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def require_sudo_wsgi(app: WSGIApp, descriptor: State[Any], *, field: str = DEFAULT_FIELD,
                      max_window: float = DEFAULT_MAX_WINDOW, deny: WSGIApp | None = None) -> WSGIApp:
    """Guard the WSGI ``app``, which runs inside ``clientstate.wsgi.setup`` for ``descriptor``.

    ``descriptor`` is the :class:`~clientstate.State` given to ``setup()``;
    ``field`` and ``max_window`` are as for :func:`is_active`; ``deny`` is a
    WSGI app that answers when elevation is not active (default
    ``403 {"error": "sudo_required"}``).

    Raises:
        ConfigurationError: here, when ``app`` is not callable, ``descriptor``
            is not a :class:`~clientstate.State` (a state's name is not
            enough), ``field`` is not a non-empty str, ``max_window`` is not a
            positive number or ``deny`` is neither callable nor ``None``. The
            guarded app raises it when no middleware for ``descriptor`` wraps it.
    """
    _check_guard(app, "app", "WSGI app(environ, start_response)", field, max_window, deny)
    _check_descriptor(descriptor)

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        slot = get_slot(environ, descriptor)
        if is_active(slot.state, slot.now, field=field, max_window=max_window):
            return app(environ, start_response)
        if deny is not None:
            return deny(environ, start_response)
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(_DENY_BODY)))],
        )
        return [_DENY_BODY]

    return guarded


ASGIApp = Callable[[Any, Any, Any], Any]


def require_sudo_asgi(app: ASGIApp, descriptor: State[Any], *, field: str = DEFAULT_FIELD,
                      max_window: float = DEFAULT_MAX_WINDOW, deny: ASGIApp | None = None) -> ASGIApp:
    """Guard the ASGI ``app`` (HTTP and WebSocket), which runs inside ``clientstate.asgi.setup``.

    Arguments as for :func:`require_sudo_wsgi`, with ``deny`` an ASGI app.
    Without elevation an HTTP request gets 403 and a WebSocket handshake is
    refused with ``websocket.close`` code 1008 (the server answers 403); an
    open WebSocket is closed with code 1008 when its window ends (see the
    module docstring). Other scopes (``lifespan``) pass through.

    Raises:
        ConfigurationError: as :func:`require_sudo_wsgi`, here for the
            arguments and from the guarded app when no middleware for
            ``descriptor`` wraps it.
    """
    _check_guard(app, "app", "ASGI app(scope, receive, send)", field, max_window, deny)
    _check_descriptor(descriptor)

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await app(scope, receive, send)
            return
        slot = get_slot(scope, descriptor)
        until = _until(slot.state, slot.now, field, max_window)
        if until is not None:
            if kind == "websocket":
                await _WindowedWebSocket(slot, until, field, max_window, receive, send).run(app, scope)
            else:
                await app(scope, receive, send)
            return
        if deny is not None:
            await deny(scope, receive, send)
            return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION, "reason": "sudo_required"})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_DENY_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _DENY_BODY})

    return guarded


_DISCONNECT: Final = {"type": "websocket.disconnect", "code": CLOSE_POLICY_VIOLATION}


class _WindowedWebSocket:
    """One guarded WebSocket connection: closed with 1008 when its sudo window ends."""

    __slots__ = ("_closed", "_field", "_lock", "_max_window", "_receive", "_send", "_slot", "_until")

    def __init__(
        self, slot: StateSlot[Any], until: float, field: str, max_window: float, receive: Any, send: Any
    ) -> None:
        self._slot = slot
        self._until = until
        self._field = field
        self._max_window = max_window
        self._receive = receive
        self._send = send
        self._closed = asyncio.Event()
        self._lock = asyncio.Lock()

    def _left(self) -> float:
        """Seconds of the window left, on the binding's clock."""
        return self._until - self._slot.clock()

    async def run(self, app: ASGIApp, scope: Any) -> None:
        timer = asyncio.ensure_future(self._expire())
        try:
            await app(scope, self.receive, self.send)
        finally:
            timer.cancel()

    async def _expire(self) -> None:
        while (left := self._left()) > 0:
            await asyncio.sleep(left)
        await self._close()

    async def _close(self) -> None:
        async with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            await self._send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION, "reason": "sudo_expired"})

    async def receive(self) -> Any:
        if self._closed.is_set():
            return dict(_DISCONNECT)
        incoming = asyncio.ensure_future(self._receive())
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((incoming, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if self._closed.is_set() or not incoming.done():
            incoming.cancel()  # the window ended: whatever the client sent meanwhile is not served
            return dict(_DISCONNECT)
        message = incoming.result()
        if message.get("type") != "websocket.disconnect" and self._left() <= 0:
            await self._close()
            return dict(_DISCONNECT)
        return message

    async def send(self, message: Any) -> None:
        if not self._closed.is_set() and self._left() <= 0:
            await self._close()
        async with self._lock:
            if self._closed.is_set():
                raise SudoExpired("the sudo window ended; the connection was closed with code 1008")
            await self._send(message)
