"""sudo-until: grant, revoke, activity at the boundary, and the three guards."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Iterable
from typing import Any

import pytest

from clientstate import ConfigurationError, Loaded, ServiceRequest, ServiceResponse, asgi, setup, sudo, wsgi
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock
from tests.conftest import ACCOUNT, Account

T0 = 1_700_000_000.0


def test_grant_sets_an_absolute_instant_and_is_active_until_it() -> None:
    granted = sudo.grant(Account(1, "a"), 300, T0)
    assert granted.sudo_until == T0 + 300
    assert sudo.is_active(granted, T0 + 299)
    assert sudo.is_active(granted, T0 + 299.999)
    assert not sudo.is_active(granted, T0 + 300)
    assert sudo.remaining(granted, T0 + 100) == 200
    assert sudo.remaining(granted, T0 + 400) == 0
    assert not sudo.is_active(sudo.revoke(granted), T0)
    assert not sudo.is_active(None, T0)
    assert not sudo.is_active(Account(1, "a"), T0)


def test_grant_works_for_dataclasses_and_dicts() -> None:
    @dataclasses.dataclass
    class D:
        sudo_until: float | None = None

    assert sudo.grant(D(), 10, T0).sudo_until == T0 + 10
    assert sudo.grant({"sudo_until": None, "u": 1}, 10, T0) == {"sudo_until": T0 + 10, "u": 1}
    assert sudo.is_active({"elevated": T0 + 5}, T0, field="elevated")
    assert not sudo.is_active({"sudo_until": "soon"}, T0)


@pytest.mark.parametrize("seconds", [0, -1, float("inf"), float("nan")])
def test_grant_refuses_bad_windows(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds > 0"):
        sudo.grant(Account(1, "a"), seconds, T0)


def test_grant_refuses_unsupported_values() -> None:
    with pytest.raises(TypeError, match=r"msgspec\.Struct, a dataclass or a dict"):
        sudo.grant([1, 2], 10, T0)


def admin_service(loaded: Loaded[Account], request: ServiceRequest) -> tuple[Account | None, ServiceResponse]:
    return loaded.state, ServiceResponse.json({"ok": True})


def test_service_guard_with_injected_clock(handler: ClientStored) -> None:
    clock = FrozenClock(T0)
    elevated = sudo.grant(Account(1, "a"), 60, T0)
    minted = setup(ACCOUNT, handler, lambda loaded, request: (elevated, ServiceResponse()), clock=clock)
    cookie = minted(ServiceRequest("GET", "/")).header_values("set-cookie")[0].split(";", 1)[0]
    guarded = setup(ACCOUNT, handler, sudo.require_sudo(admin_service, clock=clock), clock=clock)
    clock.set(T0 + 59)
    ok = guarded(ServiceRequest("GET", "/admin", [("Cookie", cookie)]))
    assert (ok.status, ok.body) == (200, b'{"ok":true}')
    clock.set(T0 + 60)
    denied = guarded(ServiceRequest("GET", "/admin", [("Cookie", cookie)]))
    assert (denied.status, json.loads(denied.body)) == (403, {"error": "sudo_required"})
    assert denied.header_values("set-cookie") == []  # state untouched by the guard

    custom = sudo.require_sudo(admin_service, clock=clock, deny=lambda loaded, request: ServiceResponse.text("no", 401))
    assert setup(ACCOUNT, handler, custom, clock=clock)(ServiceRequest("GET", "/")).status == 401


def wsgi_ok(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def call_wsgi(app: Any, cookie: str) -> tuple[str, bytes]:
    status: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": cookie, "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return status[0], body


def call_asgi(app: Any, cookie: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", cookie.encode())]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


async def asgi_ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_wsgi_and_asgi_guards_use_the_bindings_clock(handler: ClientStored) -> None:
    clock = FrozenClock(T0)
    minted = setup(
        ACCOUNT, handler, lambda loaded, request: (sudo.grant(Account(1, "a"), 30, T0), ServiceResponse()), clock=clock
    )
    cookie = minted(ServiceRequest("GET", "/")).header_values("set-cookie")[0].split(";", 1)[0]
    w = wsgi.setup(ACCOUNT, handler, sudo.require_sudo_wsgi(wsgi_ok, ACCOUNT), clock=clock)
    a = asgi.setup(ACCOUNT, handler, sudo.require_sudo_asgi(asgi_ok, ACCOUNT), clock=clock)
    clock.set(T0 + 29)
    assert call_wsgi(w, cookie) == ("200 OK", b"ok")
    assert call_asgi(a, cookie) == (200, b"ok")
    clock.set(T0 + 30)
    assert call_wsgi(w, cookie) == ("403 Forbidden", b'{"error": "sudo_required"}')
    assert call_asgi(a, cookie) == (403, b'{"error": "sudo_required"}')
    assert call_wsgi(w, "") == ("403 Forbidden", b'{"error": "sudo_required"}')


def test_guard_without_middleware_explains() -> None:
    guarded = sudo.require_sudo_wsgi(wsgi_ok, ACCOUNT)
    with pytest.raises(Exception, match="no clientstate middleware for state 'account'"):
        call_wsgi(guarded, "")


def test_asgi_guard_refuses_websocket_handshakes_without_elevation(handler: ClientStored) -> None:
    clock = FrozenClock(T0)
    reached: list[str] = []

    async def shell(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])
        await send({"type": "websocket.accept"})

    app = asgi.setup(ACCOUNT, handler, sudo.require_sudo_asgi(shell, ACCOUNT), clock=clock)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: asgi.Message) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "websocket", "path": "/ws", "headers": []}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "sudo_required"}]
    assert reached == []


def test_grant_refuses_a_window_longer_than_max_window() -> None:
    assert sudo.grant(Account(1, "a"), 3600, T0).sudo_until == T0 + 3600  # the default maximum, one hour
    with pytest.raises(ConfigurationError, match="longer than max_window"):
        sudo.grant(Account(1, "a"), 3601, T0)
    assert sudo.grant(Account(1, "a"), 7200, T0, max_window=7200).sudo_until == T0 + 7200
    with pytest.raises(ConfigurationError, match="max_window must be"):
        sudo.grant(Account(1, "a"), 10, T0, max_window=0)


@pytest.mark.parametrize(("ahead", "active"), [(1, True), (3600, True), (3600.5, False), (10**9, False)])
def test_an_instant_beyond_the_maximum_window_is_not_elevated(ahead: float, active: bool) -> None:
    """A state written under a laxer policy (or forged by a writer holding the key) cannot grant more."""
    value = Account(1, "a", sudo_until=T0 + ahead)
    assert sudo.is_active(value, T0) is active
    assert sudo.remaining(value, T0) == (ahead if active else 0)
    assert sudo.is_active(value, T0, max_window=10**10)
    assert not sudo.is_active(Account(1, "a", sudo_until=float("nan")), T0)


def test_every_guard_enforces_the_maximum_window(handler: ClientStored) -> None:
    clock = FrozenClock(T0)
    far = Account(1, "a", sudo_until=T0 + 86_400)  # a day ahead: over the one-hour default
    minted = setup(ACCOUNT, handler, lambda loaded, request: (far, ServiceResponse()), clock=clock)
    cookie = minted(ServiceRequest("GET", "/")).header_values("set-cookie")[0].split(";", 1)[0]
    w = wsgi.setup(ACCOUNT, handler, sudo.require_sudo_wsgi(wsgi_ok, ACCOUNT), clock=clock)
    a = asgi.setup(ACCOUNT, handler, sudo.require_sudo_asgi(asgi_ok, ACCOUNT), clock=clock)
    service = setup(ACCOUNT, handler, sudo.require_sudo(admin_service, clock=clock), clock=clock)
    assert call_wsgi(w, cookie)[0] == "403 Forbidden"
    assert call_asgi(a, cookie)[0] == 403
    assert service(ServiceRequest("GET", "/", [("Cookie", cookie)])).status == 403
    lax_w = wsgi.setup(ACCOUNT, handler, sudo.require_sudo_wsgi(wsgi_ok, ACCOUNT, max_window=86_400), clock=clock)
    assert call_wsgi(lax_w, cookie)[0] == "200 OK"
    with pytest.raises(ConfigurationError, match="max_window"):
        sudo.require_sudo_asgi(asgi_ok, ACCOUNT, max_window=-5)
