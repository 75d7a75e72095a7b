"""sudo-until: elevated authentication that expires, kept in the state itself.

After the user re-enters their password, the application *grants* elevation
for a number of seconds: the state gets an absolute instant ``sudo_until``
(seconds since the epoch). Elevation is *active* while ``now < sudo_until``,
so a grant of ``W`` seconds at ``t0`` is active at ``t0 + W - 1`` and not at
``t0 + W``. Expiry lives in the authenticated state, not in the cookie's
lifetime, so the client cannot extend it.

The state type needs a field (default name ``sudo_until``) typed
``float | None``: :func:`grant` writes a float. Values may be
``msgspec.Struct`` s, dataclasses or dicts.

Replay: a client-stored state cannot be revoked. A client that kept an older
cookie with an unexpired ``sudo_until`` can present it again until that
instant (or the token's ``expires_in``/``max_age``) passes, even after the
application revoked elevation in a newer cookie. Keep windows short (minutes),
and for revocation pass ``validate=`` to the handler: it runs after every load
and can reject tokens issued before a server-side instant (for example the
user's last logout or password change).

Guards answer ``403 {"error": "sudo_required"}`` (or a response of your choice)
when elevation is not active, for WSGI apps, ASGI apps (HTTP and WebSocket) and
plain services. The WSGI and ASGI guards read the time from the request's slot,
so they use the binding's clock; the plain-service guard takes the clock.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

import msgspec

from clientstate.handler import Loaded
from clientstate.service import Request, Response
from clientstate.session import Clock, get_slot
from clientstate.state import State

__all__ = [
    "DEFAULT_FIELD",
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
DEFAULT_FIELD = "sudo_until"

_DENY_BODY = json.dumps({"error": "sudo_required"}).encode()


def _read(value: Any, field: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(field)
    return getattr(value, field, None)


def _replace(value: T, field: str, new: float | None) -> T:
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(value, **{field: new})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{field: new})
    if isinstance(value, Mapping):
        return cast(T, {**value, field: new})
    raise TypeError(
        f"sudo-until needs a msgspec.Struct, a dataclass or a dict, got {type(value).__name__}"
    )


def grant(value: T, seconds: float, now: float, *, field: str = DEFAULT_FIELD) -> T:
    """Return a copy of ``value`` elevated until ``now + seconds``.

    Args:
        value: the current state.
        seconds: length of the window, seconds, finite and > 0.
        now: the current time, seconds since the epoch (from your clock,
            e.g. ``slot.now``).
        field: the state field that holds the instant.

    Raises:
        ValueError: ``seconds`` is not finite and positive.
        TypeError: ``value`` is not a Struct, dataclass or dict.
    """
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"sudo window must be a finite number of seconds > 0, got {seconds!r}")
    return _replace(value, field, now + seconds)


def revoke(value: T, *, field: str = DEFAULT_FIELD) -> T:
    """Return a copy of ``value`` with elevation removed (``sudo_until = None``).

    Raises:
        TypeError: ``value`` is not a Struct, dataclass or dict.
    """
    return _replace(value, field, None)


def is_active(value: Any, now: float, *, field: str = DEFAULT_FIELD) -> bool:
    """Whether ``value`` is elevated at ``now``: ``now < value.sudo_until``.

    ``None`` (no state) and a ``None``/missing field are never elevated;
    a non-number is treated as not elevated.
    """
    if value is None:
        return False
    until = _read(value, field)
    if isinstance(until, bool) or not isinstance(until, int | float):
        return False
    return now < until


def remaining(value: Any, now: float, *, field: str = DEFAULT_FIELD) -> float:
    """Seconds of elevation left at ``now`` (0 when not elevated)."""
    if not is_active(value, now, field=field):
        return 0.0
    return float(_read(value, field)) - now


def require_sudo(
    service: Callable[[Loaded[T], Request], tuple[T | None, Response]],
    *,
    clock: Clock,
    field: str = DEFAULT_FIELD,
    deny: Callable[[Loaded[T], Request], Response] | None = None,
) -> Callable[[Loaded[T], Request], tuple[T | None, Response]]:
    """Guard a plain service (see :func:`clientstate.setup`): run it only while elevated.

    Args:
        service: ``service(loaded, request) -> (state, response)``.
        clock: seconds since the epoch; pass the clock given to ``setup()``
            (``time.time`` by default there), since a plain service does not
            see the binding.
        field: the state field holding the instant.
        deny: ``deny(loaded, request) -> response`` when not elevated;
            default ``403 {"error": "sudo_required"}``. The state is left unchanged.
    """

    def guarded(loaded: Loaded[T], request: Request) -> tuple[T | None, Response]:
        if is_active(loaded.state, clock(), field=field):
            return service(loaded, request)
        if deny is not None:
            return loaded.state, deny(loaded, request)
        return loaded.state, Response(403, [("Content-Type", "application/json")], _DENY_BODY)

    return guarded


WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def require_sudo_wsgi(
    app: WSGIApp, state: State[Any], *, field: str = DEFAULT_FIELD, deny: WSGIApp | None = None
) -> WSGIApp:
    """Guard a WSGI app (inside ``clientstate.wsgi.setup`` for ``state``).

    Args:
        app: the WSGI app to protect.
        state: the state descriptor whose slot holds the instant.
        field: the state field holding the instant.
        deny: a WSGI app answering when not elevated; default
            ``403 {"error": "sudo_required"}``.

    The guarded app raises :class:`~clientstate.errors.ConfigurationError`
    if no clientstate middleware for ``state`` wraps it.
    """

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        slot = get_slot(environ, state)
        if is_active(slot.state, slot.now, field=field):
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


def require_sudo_asgi(
    app: ASGIApp, state: State[Any], *, field: str = DEFAULT_FIELD, deny: ASGIApp | None = None
) -> ASGIApp:
    """Guard an ASGI app (inside ``clientstate.asgi.setup`` for ``state``).

    Args:
        app: the ASGI app to protect.
        state: the state descriptor whose slot holds the instant.
        field: the state field holding the instant.
        deny: an ASGI app answering when not elevated; default
            ``403 {"error": "sudo_required"}``.

    WebSocket connections are guarded too: when not elevated the handshake is
    refused with ``websocket.close`` (code 1008, policy violation), which the
    server answers with HTTP 403. Other scopes (``lifespan``) pass through. The
    guarded app raises :class:`~clientstate.errors.ConfigurationError` if no
    clientstate middleware for ``state`` wraps it.
    """

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await app(scope, receive, send)
            return
        slot = get_slot(scope, state)
        if is_active(slot.state, slot.now, field=field):
            await app(scope, receive, send)
            return
        if deny is not None:
            await deny(scope, receive, send)
            return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "sudo_required"})
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
