"""WSGI, ASGI and the plain service form agree: same headers in, same headers out."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

import pytest

from clientstate import (
    ConfigurationError,
    Loaded,
    ServiceRequest,
    ServiceResponse,
    State,
    StateEncodeError,
    StateNotWritable,
    asgi,
    client_stored,
    get_slot,
    setup,
    wsgi,
)
from clientstate._handlers.client_stored import ClientStored
from clientstate.demo.http import status_line
from clientstate.testing import FrozenClock, fixed_keyring
from tests.conftest import ACCOUNT, Account
from tests.security.support import call_asgi, call_wsgi


def act(path: str, slot_state: Account | None) -> tuple[Account | None, int, list[tuple[str, str]]]:
    """What the test app does for ``path``: (new state, status, extra response headers)."""
    extra: list[tuple[str, str]] = []
    if path == "/set":
        return Account(9, "set"), 200, extra
    if path == "/bump" and slot_state is not None:
        slot_state.roles.append("bumped")
        return slot_state, 200, extra
    if path == "/clear":
        return None, 200, extra
    if path == "/own":
        extra = [("Set-Cookie", "theme=dark; Path=/"), ("Vary", "Accept-Encoding"), ("Cache-Control", "no-store")]
    if path == "/vary":
        extra = [("Vary", "Cookie")]
    if path == "/fail":  # changes the state, then fails
        return Account(666, "half-done"), 500, extra
    return slot_state, 200, extra


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    slot = get_slot(environ, ACCOUNT)
    new, status, extra = act(environ["PATH_INFO"], slot.state)
    if new is not slot.state:  # assigning None, even over None, is an explicit logout (clears a kept cookie)
        slot.state = new
    error = slot.error.kind.value if slot.error else "-"
    start_response(status_line(status), [("Content-Type", "text/plain"), *extra])
    return [error.encode()]


async def asgi_app(scope: asgi.Scope, receive: Any, send: Any) -> None:
    slot = get_slot(scope, ACCOUNT)
    new, status, extra = act(scope["path"], slot.state)
    if new is not slot.state:
        slot.state = new
    error = slot.error.kind.value if slot.error else "-"
    headers = [(b"content-type", b"text/plain"), *((k.lower().encode(), v.encode()) for k, v in extra)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": error.encode()})


def service(loaded: Loaded[Account], request: ServiceRequest) -> tuple[Account | None, ServiceResponse]:
    new, status, extra = act(request.path, loaded.state)
    error = loaded.error.kind.value if loaded.error else "-"
    return new, ServiceResponse(status, [("Content-Type", "text/plain"), *extra], error.encode())


Result = tuple[int, list[tuple[str, str]], bytes]


def run_wsgi(handler: ClientStored, path: str, cookies: list[str]) -> Result:
    app = wsgi.setup(ACCOUNT, handler, wsgi_app, clock=FrozenClock())
    return call_wsgi(app, "; ".join(cookies) or None, path)  # a WSGI server joins the fields


def run_asgi(handler: ClientStored, path: str, cookies: list[str]) -> Result:
    app = asgi.setup(ACCOUNT, handler, asgi_app, clock=FrozenClock())
    return call_asgi(app, [c.encode("latin-1") for c in cookies], path)


def run_service(handler: ClientStored, path: str, cookies: list[str]) -> Result:
    handle = setup(ACCOUNT, handler, service, clock=FrozenClock())
    response = handle(ServiceRequest("GET", path, [("Cookie", c) for c in cookies]))
    return response.status, [(k.lower(), v) for k, v in response.headers], response.body


RUNNERS = [run_wsgi, run_asgi, run_service]


def mint(handler: ClientStored, value: Account) -> str:
    """A valid ``name=value`` cookie holding ``value``."""
    handle = setup(ACCOUNT, handler, lambda loaded, request: (value, ServiceResponse()), clock=FrozenClock())
    (set_cookie,) = handle(ServiceRequest("GET", "/")).header_values("set-cookie")
    return set_cookie.split(";", 1)[0]


CASES = [
    ("/read", "none"),
    ("/read", "valid"),
    ("/set", "none"),
    ("/set", "valid"),
    ("/bump", "valid"),
    ("/clear", "valid"),
    ("/clear", "none"),
    ("/read", "tampered"),
    ("/set", "tampered"),
    ("/read", "duplicate"),
    ("/read", "two-fields"),
    ("/read", "others"),
    ("/own", "valid"),
    ("/own", "none"),
    ("/vary", "valid"),
    ("/read", "quoted"),
]


def cookies_for(kind: str, cookie: str) -> list[str]:
    name, value = cookie.split("=", 1)
    return {
        "none": [],
        "valid": [f"a=1; {cookie}; b=2"],
        "tampered": [f"{name}={value[:-2]}AA"],
        "duplicate": [f"{cookie}; {cookie}"],
        "two-fields": [cookie, f"x=1; {cookie}"],
        "others": ["a=1; junk; =x; b=2"],
        "quoted": [f'{name}="{value}"'],
    }[kind]


@pytest.mark.parametrize(("path", "kind"), CASES)
def test_all_forms_answer_identically(handler: ClientStored, path: str, kind: str) -> None:
    cookie = mint(handler, Account(1, "ada", ["x"]))
    cookies = cookies_for(kind, cookie)
    results = [runner(handler, path, cookies) for runner in RUNNERS]
    if handler.mode == 2:  # encrypted tokens differ each time: compare without the token
        results = [
            (s, [(k, v.split(";", 1)[1] if k == "set-cookie" and "Max-Age=0" not in v else v) for k, v in h], b)
            for s, h, b in results
        ]
    assert results[0] == results[1] == results[2]


def test_expected_headers_for_each_case(handler: ClientStored) -> None:
    cookie = mint(handler, Account(1, "ada"))

    def headers(path: str, kind: str) -> list[tuple[str, str]]:
        return run_wsgi(handler, path, cookies_for(kind, cookie))[1]

    assert headers("/read", "valid") == [("content-type", "text/plain"), ("vary", "Cookie")]
    assert [k for k, _ in headers("/set", "none")] == ["content-type", "vary", "set-cookie", "cache-control"]
    own = headers("/own", "none")
    assert ("set-cookie", "theme=dark; Path=/") in own
    assert ("cache-control", "no-store") in own
    assert own.count(("vary", "Cookie")) == 1
    assert [k for k, _ in headers("/vary", "valid")] == ["content-type", "vary"]
    cleared = headers("/read", "tampered")
    assert ("set-cookie", "cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax") in cleared
    status, _, body = run_wsgi(handler, "/read", cookies_for("tampered", cookie))
    assert (status, body) == (200, b"authentication_failed")
    assert run_wsgi(handler, "/read", cookies_for("duplicate", cookie))[2] == b"ambiguous"
    assert run_wsgi(handler, "/read", cookies_for("two-fields", cookie))[2] == b"ambiguous"


def test_own_set_cookie_is_never_replaced_even_when_ours_is_added(handler: ClientStored) -> None:
    _, headers, _ = run_asgi(handler, "/own", [])
    assert headers.count(("set-cookie", "theme=dark; Path=/")) == 1


def test_asgi_passes_lifespan_through_and_loads_for_websockets(handler: ClientStored) -> None:
    seen: list[Any] = []

    async def app(scope: asgi.Scope, receive: Any, send: Any) -> None:
        seen.append((scope["type"], scope.get("clientstate.account")))

    middleware = asgi.setup(ACCOUNT, handler, app)

    async def nothing() -> dict[str, Any]:
        return {}

    async def drop(message: Any) -> None:
        return None

    asyncio.run(middleware({"type": "lifespan"}, nothing, drop))
    asyncio.run(middleware({"type": "websocket", "headers": []}, nothing, drop))
    assert seen[0] == ("lifespan", None)
    assert seen[1][0] == "websocket"
    assert seen[1][1].state is None


def test_asgi_keeps_app_headers_given_as_a_generator(handler: ClientStored) -> None:
    async def app(scope: asgi.Scope, receive: Any, send: Any) -> None:
        get_slot(scope, ACCOUNT).state = Account(1, "gen")
        headers = ((k, v) for k, v in [(b"content-type", b"text/plain"), (b"set-cookie", b"own=1")])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    _, headers, _ = call_asgi(asgi.setup(ACCOUNT, handler, app, clock=FrozenClock()), [])
    names = [k for k, _ in headers]
    assert names == ["content-type", "set-cookie", "vary", "set-cookie", "cache-control"]
    assert ("set-cookie", "own=1") in headers


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_failed_request_commits_no_state(handler: ClientStored, runner: Any) -> None:
    cookie = mint(handler, Account(1, "ada"))
    status, headers, _ = runner(handler, "/fail", [cookie])
    assert status == 500
    assert [k for k, _ in headers if k == "set-cookie"] == []


def test_wsgi_error_page_after_a_state_error_is_not_masked(handler: ClientStored) -> None:
    """The bad assignment raises at the application's line; its error page goes out unchanged."""
    raised: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            get_slot(environ, ACCOUNT).state = Account("bad", "x")  # type: ignore[arg-type]
        except StateEncodeError as exc:
            raised.append(exc)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"error page"]
        start_response("200 OK", [])
        return [b"ok"]

    status, headers, body = call_wsgi(wsgi.setup(ACCOUNT, handler, app, clock=FrozenClock()), None)
    assert (status, body) == (500, b"error page")
    assert [k for k, _ in headers if k == "set-cookie"] == []
    assert len(raised) == 1
    assert "user_id" in str(raised[0])


# --- an assignment too late to reach the client raises ---------------------------------------


def test_wsgi_assignment_after_start_response_raises(handler: ClientStored) -> None:
    outcome: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        slot = get_slot(environ, ACCOUNT)
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            slot.state = Account(1, "late")
        except StateNotWritable as exc:
            outcome.append(str(exc))
        return [b"ok"]

    status, headers, _ = call_wsgi(wsgi.setup(ACCOUNT, handler, app, clock=FrozenClock()), None)
    assert status == 200
    assert [k for k, _ in headers if k == "set-cookie"] == []
    assert len(outcome) == 1
    assert "headers were already sent" in outcome[0]


def test_wsgi_assignment_inside_a_streaming_body_raises_to_the_server(handler: ClientStored) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        slot = get_slot(environ, ACCOUNT)
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk"
        slot.state = Account(1, "late")  # after the headers went out
        yield b"never"

    middleware = wsgi.setup(ACCOUNT, handler, app, clock=FrozenClock())
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None, /) -> Any:
        return None

    body = iter(middleware(environ, start_response))
    assert next(body) == b"first chunk"
    with pytest.raises(StateNotWritable, match="headers were already sent"):
        next(body)


def test_wsgi_start_response_called_lazily_from_the_body_still_sees_the_state(handler: ClientStored) -> None:
    """PEP 3333 allows start_response at the first iteration: an assignment before it counts."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        get_slot(environ, ACCOUNT).state = Account(1, "lazy")
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"ok"

    _, headers, _ = call_wsgi(wsgi.setup(ACCOUNT, handler, app, clock=FrozenClock()), None)
    assert len([k for k, _ in headers if k == "set-cookie"]) == 1


def test_asgi_assignment_after_the_response_started_raises(handler: ClientStored) -> None:
    outcome: list[str] = []

    async def app(scope: asgi.Scope, receive: Any, send: Any) -> None:
        slot = get_slot(scope, ACCOUNT)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            slot.state = Account(1, "late")
        except StateNotWritable as exc:
            outcome.append(str(exc))
        await send({"type": "http.response.body", "body": b""})

    _, headers, _ = call_asgi(asgi.setup(ACCOUNT, handler, app, clock=FrozenClock()), [])
    assert [k for k, _ in headers if k == "set-cookie"] == []
    assert outcome
    assert "headers were already sent" in outcome[0]


def test_asgi_websocket_state_is_read_only(handler: ClientStored) -> None:
    outcome: list[str] = []

    async def app(scope: asgi.Scope, receive: Any, send: Any) -> None:
        try:
            get_slot(scope, ACCOUNT).state = Account(1, "ws")
        except StateNotWritable as exc:
            outcome.append(str(exc))

    async def nothing() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def drop(message: Any) -> None:
        return None

    asyncio.run(asgi.setup(ACCOUNT, handler, app)({"type": "websocket", "headers": []}, nothing, drop))
    assert outcome
    assert "WebSocket" in outcome[0]


# --- collisions between layers and with the application's cookies -----------------------------


PREFS = State("prefs", dict[str, int])


def plain_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b""]


async def plain_asgi(scope: asgi.Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("adapter", [wsgi, asgi])
def test_nesting_two_layers_with_one_cookie_name_fails_at_setup(handler: ClientStored, adapter: Any) -> None:
    app = plain_wsgi if adapter is wsgi else plain_asgi
    inner = adapter.setup(ACCOUNT, handler, app)
    with pytest.raises(ConfigurationError, match="same cookie"):
        adapter.setup(PREFS, client_stored(fixed_keyring(1), name="cs"), inner)
    with pytest.raises(ConfigurationError, match="state named 'account'"):
        adapter.setup(ACCOUNT, client_stored(fixed_keyring(1), name="other"), inner)


def test_layers_apart_behind_a_foreign_wrapper_fail_on_the_first_request(handler: ClientStored) -> None:
    inner = wsgi.setup(ACCOUNT, handler, plain_wsgi)

    def framework(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return inner(environ, start_response)  # something between the two layers

    outer = wsgi.setup(State("account", dict[str, int]), client_stored(fixed_keyring(1), name="x"), framework)
    with pytest.raises(ConfigurationError, match="state named 'account'"):
        call_wsgi(outer, None)

    async def asgi_framework(scope: asgi.Scope, receive: Any, send: Any) -> None:
        await asgi_inner(scope, receive, send)

    asgi_inner = asgi.setup(ACCOUNT, handler, plain_asgi)
    asgi_outer = asgi.setup(PREFS, client_stored(fixed_keyring(1), name="cs"), asgi_framework)
    with pytest.raises(ConfigurationError, match="same cookie"):
        call_asgi(asgi_outer, [])


def test_the_applications_set_cookie_for_our_cookie_is_refused_in_every_form(handler: ClientStored) -> None:
    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Set-Cookie", "cs=mine; Path=/")])
        return [b""]

    async def asgi_app(scope: asgi.Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"cs=mine")]})

    def service(loaded: Loaded[Account], request: ServiceRequest) -> tuple[Account | None, ServiceResponse]:
        return None, ServiceResponse(200, [("Set-Cookie", "cs=mine")])

    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'cs'"):
        call_wsgi(wsgi.setup(ACCOUNT, handler, wsgi_app), None)
    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'cs'"):
        call_asgi(asgi.setup(ACCOUNT, handler, asgi_app), [])
    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'cs'"):
        setup(ACCOUNT, handler, service)(ServiceRequest("GET", "/"))
