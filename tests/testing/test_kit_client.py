"""clientstate.testing clients: Starlette's TestClient, Werkzeug's Client and Flask's test client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import pytest
from flask import Flask, jsonify, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client

from clientstate import ClientStored, ConfigurationError, CookieAttributes, State, asgi, client_stored, get_slot, wsgi
from clientstate.demo.api import DEMO_STATE, DemoState
from clientstate.demo.apps import make_asgi_app, make_wsgi_app
from clientstate.testing import CookieChange, FrozenClock, StateClient, asgi_client, fixed_keyring, wsgi_client
from clientstate.testing.client import parse_set_cookie


class Counter(msgspec.Struct):
    count: int = 0
    note: Annotated[str, msgspec.Meta(max_length=20)] = ""


COUNTER = State("counter", Counter)


def starlette_app(handler: ClientStored, clock: FrozenClock) -> Any:
    """A Starlette app: /inc adds one, /show reads, /reset deletes."""

    async def inc(req: Request) -> JSONResponse:
        slot = get_slot(req.scope, COUNTER)
        current = slot.state or Counter()
        slot.state = Counter(count=current.count + 1, note=current.note)
        return JSONResponse({"count": slot.state.count})

    async def show(req: Request) -> JSONResponse:
        slot = get_slot(req.scope, COUNTER)
        return JSONResponse({"count": None if slot.state is None else slot.state.count,
                             "error": None if slot.error is None else slot.error.kind.value})

    async def reset(req: Request) -> JSONResponse:
        get_slot(req.scope, COUNTER).state = None
        return JSONResponse({})

    app = Starlette(routes=[Route("/inc", inc, methods=["POST"]), Route("/show", show),
                            Route("/reset", reset, methods=["POST"])])
    return asgi.setup(COUNTER, handler, app, clock=clock)


def flask_app(handler: ClientStored, clock: FrozenClock) -> Flask:
    """The same routes in Flask, wrapped with clientstate.wsgi.setup."""
    app = Flask(__name__)

    @app.post("/inc")
    def inc() -> Any:
        slot = get_slot(request.environ, COUNTER)
        current = slot.state or Counter()
        slot.state = Counter(count=current.count + 1, note=current.note)
        return jsonify(count=slot.state.count)

    @app.get("/show")
    def show() -> Any:
        slot = get_slot(request.environ, COUNTER)
        return jsonify(count=None if slot.state is None else slot.state.count,
                       error=None if slot.error is None else slot.error.kind.value)

    @app.post("/reset")
    def reset() -> Any:
        get_slot(request.environ, COUNTER).state = None
        return jsonify()

    app.wsgi_app = wsgi.setup(COUNTER, handler, app.wsgi_app, clock=clock)  # type: ignore[method-assign]
    return app


def body(response: Any) -> Any:
    """The JSON body of an httpx response (``json()``) or a Werkzeug one (``json``)."""
    return response.json() if callable(response.json) else response.json


Make = Callable[[ClientStored, FrozenClock], StateClient[Counter]]

CLIENTS: dict[str, Make] = {
    "starlette": lambda h, c: asgi_client(starlette_app(h, c), COUNTER, h, c),
    "flask": lambda h, c: StateClient(flask_app(h, c).test_client(), COUNTER, h, c),
    "werkzeug": lambda h, c: wsgi_client(flask_app(h, c), COUNTER, h, c),
}


@pytest.fixture(params=sorted(CLIENTS))
def make(request: pytest.FixtureRequest) -> Make:
    return CLIENTS[request.param]


def test_cookies_are_kept_read_and_asserted_with_default_secure_attributes(make: Make) -> None:
    handler = client_stored(fixed_keyring(), name="__Host-counter")  # Secure is required by __Host-
    clock = FrozenClock()
    client = make(handler, clock)
    assert client.change is None
    assert client.state is None
    assert body(client.get("/show")) == {"count": None, "error": None}
    client.assert_unchanged()
    client.post("/inc")
    assert client.assert_set(Counter(count=1)) == Counter(count=1)
    assert client.change is CookieChange.SET
    client.post("/inc")
    assert client.state == Counter(count=2)
    client.get("/show")
    client.assert_unchanged()
    client.set_state(Counter(count=40, note="given"))
    client.post("/inc")
    assert client.assert_set() == Counter(count=41, note="given")
    client.post("/reset")
    client.assert_deleted()
    assert client.cookie is None
    assert client.state is None


def test_set_cookie_lines_for_the_state_cookie_only(make: Make) -> None:
    client = make(client_stored(fixed_keyring(), name="ctr"), FrozenClock())
    client.post("/inc")
    (line,) = client.set_cookies
    name, value, attributes = parse_set_cookie(line)
    assert name == "ctr"
    assert value == client.cookie
    # The default lifetime (expires_in, 30 days) is the Max-Age of a fresh token.
    assert attributes == {"max-age": "2592000", "path": "/", "secure": "", "httponly": "", "samesite": "Lax"}


def test_assertions_fail_with_what_happened(make: Make) -> None:
    client = make(client_stored(fixed_keyring(), name="ctr"), FrozenClock())
    with pytest.raises(AssertionError, match="no request has been made yet"):
        client.assert_set()
    client.post("/inc")
    with pytest.raises(AssertionError, match=r"leave the cookie alone: POST /inc -> 200; set; Set-Cookie for 'ctr'"):
        client.assert_unchanged()
    with pytest.raises(AssertionError, match=r"holds Counter\(count=1, note=''\), expected Counter\(count=5"):
        client.assert_set(Counter(count=5))
    client.get("/show")
    with pytest.raises(AssertionError, match=r"expected the response to set the cookie: GET /show -> 200; unchanged"):
        client.assert_set()
    with pytest.raises(AssertionError, match="expected the response to delete the cookie"):
        client.assert_deleted()


def test_a_bad_cookie_is_reported_by_state_and_loaded(make: Make) -> None:
    client = make(client_stored(fixed_keyring(), name="ctr"), FrozenClock())
    client.set_cookie("not-a-token")
    assert client.loaded.error is not None
    assert client.loaded.error.kind == "malformed"
    with pytest.raises(AssertionError, match="the client's 'ctr' cookie does not load: malformed"):
        _ = client.state
    assert body(client.get("/show")) == {"count": None, "error": "malformed"}
    client.assert_deleted()  # after a load error the app's "no state" deletes the bad cookie


def test_oversized_raw_cookie_reaches_the_app(make: Make) -> None:
    client = make(client_stored(fixed_keyring(), name="ctr"), FrozenClock())
    client.set_cookie("A" * 5000)
    assert client.loaded.error is not None
    assert client.loaded.error.kind == "too_large"


def test_cookie_expires_on_the_clock_like_a_browser(make: Make) -> None:
    clock = FrozenClock()
    client = make(client_stored(fixed_keyring(), name="ctr", expires_in=60), clock)
    client.post("/inc")
    assert "Max-Age=60" in client.set_cookies[0]
    clock.advance(59)
    assert client.state == Counter(count=1)
    clock.advance(1)
    assert client.cookie is None  # dropped by the client, as a browser would
    assert body(client.get("/show")) == {"count": None, "error": None}
    client.assert_unchanged()


def test_an_expired_token_still_sent_is_rejected_by_the_app(make: Make) -> None:
    """Max-Age never outlives the token, so only a client that ignores it still sends an expired token."""
    clock = FrozenClock()
    handler = client_stored(fixed_keyring(), name="ctr", expires_in=60, attributes=CookieAttributes(max_age=3600))
    client = make(handler, clock)
    client.set_state(Counter(count=9))
    token = client.cookie
    assert token is not None
    clock.advance(59)
    assert client.state == Counter(count=9)
    clock.advance(1)
    assert client.cookie is None  # Max-Age was the token's 60 s, not the attributes' 3600
    client.set_cookie(token)  # a client that kept it anyway
    assert client.loaded.error is not None
    assert client.loaded.error.kind == "expired"
    assert body(client.get("/show")) == {"count": None, "error": "expired"}
    client.assert_deleted()


def test_the_default_lifetime_is_kept_and_refreshed_on_the_clock(make: Make) -> None:
    """30 days by default; an unchanged state older than a day is re-issued with a new Max-Age."""
    clock = FrozenClock()
    client = make(client_stored(fixed_keyring(), name="ctr"), clock)
    client.post("/inc")
    assert parse_set_cookie(client.set_cookies[0])[2]["max-age"] == "2592000"
    clock.advance(2_592_000 - 1)
    assert client.cookie is not None
    clock.advance(1)
    assert client.cookie is None  # 30 days after it was set
    client.post("/inc")
    clock.advance(24 * 3600)  # due for refresh (refresh_after "auto": one day)
    client.get("/show")
    assert client.assert_set() == Counter(count=1)
    assert parse_set_cookie(client.set_cookies[0])[2]["max-age"] == "2592000"
    clock.advance(2_592_000 - 1)
    assert client.state == Counter(count=1)  # 31 days after the first write: the refresh extended it
    clock.advance(1)
    assert client.cookie is None


def test_the_wall_clock_never_expires_a_cookie() -> None:
    """Only the test's clock moves lifetimes: a 1-second Max-Age survives a second of real time."""
    clock = FrozenClock()
    handler = client_stored(fixed_keyring(), name="ctr", expires_in=1)
    clients = {name: make(handler, clock) for name, make in CLIENTS.items()}
    for client in clients.values():
        client.post("/inc")
        assert parse_set_cookie(client.set_cookies[0])[2]["max-age"] == "1"
    time.sleep(1.2)
    for name, client in clients.items():
        assert body(client.get("/show")) == {"count": 1, "error": None}, name
    clock.advance(1)
    for client in clients.values():
        assert client.cookie is None
        assert body(client.get("/show")) == {"count": None, "error": None}


def test_set_state_none_removes_the_cookie(make: Make) -> None:
    client = make(client_stored(fixed_keyring(), name="ctr"), FrozenClock())
    client.set_state(Counter(count=3))
    assert client.cookie is not None
    client.set_state(None)
    assert client.cookie is None
    client.post("/inc")
    assert client.assert_set() == Counter(count=1)


def test_encrypted_handler_round_trips_through_the_client(make: Make) -> None:
    client = make(client_stored(fixed_keyring(), name="ctr", encrypted=True), FrozenClock())
    client.set_state(Counter(count=7, note="secret"))
    client.post("/inc")
    assert client.assert_set() == Counter(count=8, note="secret")
    assert "secret" not in (client.cookie or "")


def test_http_base_url_with_secure_cookies_is_refused() -> None:
    handler = client_stored(fixed_keyring(), name="ctr")
    clock = FrozenClock()
    with pytest.raises(ConfigurationError, match=r"base URL is http://testserver but cookie 'ctr' is Secure"):
        StateClient(TestClient(starlette_app(handler, clock)), COUNTER, handler, clock)
    with pytest.raises(ConfigurationError, match=r"base URL is http://localhost but cookie 'ctr' is Secure"):
        wsgi_client(flask_app(handler, clock), COUNTER, handler, clock, base_url="http://localhost")
    plain = client_stored(fixed_keyring(), name="ctr", attributes=CookieAttributes(secure=False))
    client = StateClient(TestClient(starlette_app(plain, clock)), COUNTER, plain, clock)
    client.post("/inc")
    client.post("/inc")
    assert client.state == Counter(count=2)


def test_duplicate_cookies_are_reported() -> None:
    handler = client_stored(fixed_keyring(), name="ctr")
    client = asgi_client(starlette_app(handler, FrozenClock()), COUNTER, handler, FrozenClock())
    client.set_state(Counter(count=1))
    client.client.cookies.set("ctr", "other", domain="testserver.local", path="/inc")
    with pytest.raises(AssertionError, match="the client holds 2 cookies named 'ctr'"):
        _ = client.cookie
    assert client.loaded.error is not None
    assert client.loaded.error.kind == "ambiguous"


def test_unsupported_clients_and_handlers_are_refused() -> None:
    handler = client_stored(fixed_keyring(), name="ctr")
    with pytest.raises(TypeError, match="unsupported test client object"):
        StateClient(object(), COUNTER, handler)
    with pytest.raises(TypeError, match=r"pass cookie_name=\.\.\.: the handler has no 'name' attribute"):
        StateClient(Client(flask_app(handler, FrozenClock())), COUNTER, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="state must be a clientstate State"):
        StateClient(Client(flask_app(handler, FrozenClock())), "counter", handler)  # type: ignore[arg-type]


def test_demo_app_on_both_interfaces_with_the_same_kit() -> None:
    for make_app, make_client in ((make_asgi_app, asgi_client), (make_wsgi_app, wsgi_client)):
        clock = FrozenClock()
        handler = client_stored(fixed_keyring(), name="demo")
        with make_client(make_app(handler, clock), DEMO_STATE, handler, clock) as client:
            client.post("/api/login", json={"user": "ada"})
            assert client.assert_set() == DemoState(user="ada")
            assert client.get("/api/admin").status_code == 403
            client.post("/api/sudo", json={"password": "pw", "seconds": 30})
            assert client.assert_set().sudo_until == clock() + 30
            clock.advance(29)
            assert client.get("/api/admin").status_code == 200
            clock.advance(1)
            assert client.get("/api/admin").status_code == 403
            client.assert_unchanged()


class Note(msgspec.Struct):
    text: str  # unbounded on purpose: large enough to need several cookies
    edits: int = 0


NOTE = State("note", Note)


def note_apps(handler: ClientStored, clock: FrozenClock) -> dict[str, Any]:
    """/edit appends to the note, /small replaces it with a short one, /drop deletes it; both interfaces."""

    def act(slot: Any, path: str) -> None:
        if path == "/edit":
            slot.state = Note(slot.state.text + "!", slot.state.edits + 1)
        elif path == "/small":
            slot.state = Note("short")
        elif path == "/drop":
            slot.state = None

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        act(get_slot(scope, NOTE), scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        act(get_slot(environ, NOTE), environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    return {
        "asgi": asgi.setup(NOTE, handler, asgi_app, clock=clock),
        "wsgi": wsgi.setup(NOTE, handler, wsgi_app, clock=clock),
    }


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_chunked_handler_state_spans_several_cookies(interface: str) -> None:
    clock = FrozenClock()
    handler = client_stored(fixed_keyring(), name="note", chunked=True, max_chunks=4)
    app = note_apps(handler, clock)[interface]
    client = (asgi_client if interface == "asgi" else wsgi_client)(app, NOTE, handler, clock)
    big = Note("u" * 6000)
    client.set_state(big)
    assert [name for name, _ in client.cookies] == ["note", "note.1"]
    assert client.state == big
    client.get("/read")
    client.assert_unchanged()
    client.post("/edit")
    assert client.assert_set() == Note(big.text + "!", 1)
    assert {parse_set_cookie(line)[0] for line in client.set_cookies} == {"note", "note.1"}
    client.post("/small")  # small again: the stale chunk is deleted
    assert client.assert_set() == Note("short")
    assert [name for name, _ in client.cookies] == ["note"]
    client.set_state(big)
    client.post("/drop")
    client.assert_deleted()
    assert client.cookies == []
