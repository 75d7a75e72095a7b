"""WSGI, ASGI and the plain service form agree: same headers in, same headers out."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

import pytest

from clientstate import Loaded, Request, Response, asgi, get_slot, setup, wsgi
from clientstate.handler import ClientStored
from clientstate.testing import FrozenClock
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
    slot.state, status, extra = act(environ["PATH_INFO"], slot.state)
    error = slot.error.kind.value if slot.error else "-"
    start_response(wsgi.status_line(status), [("Content-Type", "text/plain"), *extra])
    return [error.encode()]


async def asgi_app(scope: asgi.Scope, receive: Any, send: Any) -> None:
    slot = get_slot(scope, ACCOUNT)
    slot.state, status, extra = act(scope["path"], slot.state)
    error = slot.error.kind.value if slot.error else "-"
    headers = [(b"content-type", b"text/plain"), *((k.lower().encode(), v.encode()) for k, v in extra)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": error.encode()})


def service(loaded: Loaded[Account], request: Request) -> tuple[Account | None, Response]:
    new, status, extra = act(request.path, loaded.state)
    error = loaded.error.kind.value if loaded.error else "-"
    return new, Response(status, [("Content-Type", "text/plain"), *extra], error.encode())


Result = tuple[int, list[tuple[str, str]], bytes]


def run_wsgi(handler: ClientStored, path: str, cookies: list[str]) -> Result:
    app = wsgi.setup(ACCOUNT, handler, wsgi_app, clock=FrozenClock())
    return call_wsgi(app, "; ".join(cookies) or None, path)  # a WSGI server joins the fields


def run_asgi(handler: ClientStored, path: str, cookies: list[str]) -> Result:
    app = asgi.setup(ACCOUNT, handler, asgi_app, clock=FrozenClock())
    return call_asgi(app, [c.encode("latin-1") for c in cookies], path)


def run_service(handler: ClientStored, path: str, cookies: list[str]) -> Result:
    handle = setup(ACCOUNT, handler, service, clock=FrozenClock())
    response = handle(Request("GET", path, [("Cookie", c) for c in cookies]))
    return response.status, [(k.lower(), v) for k, v in response.headers], response.body


RUNNERS = [run_wsgi, run_asgi, run_service]


def mint(handler: ClientStored, value: Account) -> str:
    """A valid ``name=value`` cookie holding ``value``."""
    handle = setup(ACCOUNT, handler, lambda loaded, request: (value, Response()), clock=FrozenClock())
    (set_cookie,) = handle(Request("GET", "/")).header_values("set-cookie")
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
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        get_slot(environ, ACCOUNT).state = Account("bad", "x")  # type: ignore[arg-type]
        try:
            start_response("200 OK", [])
        except Exception:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"error page"]
        return [b"ok"]

    status, headers, body = call_wsgi(wsgi.setup(ACCOUNT, handler, app, clock=FrozenClock()), None)
    assert (status, body) == (500, b"error page")
    assert [k for k, _ in headers if k == "set-cookie"] == []
