"""What the integration tests share: one state, one set of routes written once, and a driver per test client.

Every framework app serves the same routes, each a thin wrapper around a
function here that takes the request's slot:

| route | does |
|---|---|
| ``GET /read`` | ``{"state", "error"}``, and the app's own cookie ``theme``, ``X-App`` and ``Vary`` headers |
| ``POST /login`` | ``{"user"}`` → a fresh state |
| ``POST /visit`` | behind the framework's login guard: ``visits + 1`` |
| ``POST /tag`` | appends to ``state.tags`` in place (a nested change) |
| ``POST /same`` | assigns a state equal to the loaded one |
| ``POST /fail`` | assigns a new state, then answers 500 itself |
| ``POST /crash`` | assigns a new state, then raises |
| ``POST /sudo`` | grants sudo for 60 s |
| ``GET /admin`` | behind the framework's sudo guard |
| ``POST /logout`` | deletes the state |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import msgspec

from clientstate import CookieAttributes, State, StateSlot, client_stored, sudo
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock, fixed_keyring

COOKIE = "cs"
OWN_COOKIE_LINE = "theme=dark; Path=/"
T0 = 1_700_000_000.0


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None
    tags: list[str] = []


SESSION = State("session", Session)


def make_handler(**kwargs: Any) -> ClientStored:
    """The contract tests' handler: the fixed test key, plain-HTTP cookies (test clients speak HTTP)."""
    return client_stored(fixed_keyring(1), name=COOKIE, attributes=CookieAttributes(secure=False), **kwargs)


class Crash(RuntimeError):
    """What ``POST /crash`` raises."""


# --- the routes, once --------------------------------------------------------------------------------------


def read(slot: StateSlot[Session]) -> dict[str, Any]:
    return {
        "state": None if slot.state is None else msgspec.to_builtins(slot.state),
        "error": None if slot.error is None else str(slot.error.kind),
    }


def login(slot: StateSlot[Session], body: Any) -> dict[str, Any]:
    slot.state = Session(user=str(body["user"]))
    return {"user": slot.state.user}


def visit(slot: StateSlot[Session]) -> dict[str, Any]:
    state = slot.state
    assert state is not None  # behind the guard
    slot.state = msgspec.structs.replace(state, visits=state.visits + 1)
    return {"visits": state.visits + 1}


def tag(slot: StateSlot[Session]) -> dict[str, Any]:
    assert slot.state is not None
    slot.state.tags.append("t")  # in place: no assignment
    return {"tags": len(slot.state.tags)}


def same(slot: StateSlot[Session]) -> dict[str, Any]:
    assert slot.state is not None
    slot.state = msgspec.convert(msgspec.to_builtins(slot.state), Session)  # an equal, new object
    return {"same": True}


def fail(slot: StateSlot[Session]) -> dict[str, Any]:
    slot.state = Session(user="mallory")
    return {"error": "failed"}


def crash(slot: StateSlot[Session]) -> None:
    slot.state = Session(user="mallory")
    raise Crash("the view failed")


def elevate(slot: StateSlot[Session]) -> dict[str, Any]:
    assert slot.state is not None
    slot.state = sudo.grant(slot.state, 60, slot.now)
    return {"sudo_until": slot.state.sudo_until}


def admin() -> dict[str, Any]:
    return {"ok": True}


def logout(slot: StateSlot[Session]) -> dict[str, Any]:
    slot.state = None
    return {"logged_out": True}


# --- drivers: one interface over the frameworks' own test clients ------------------------------------------


class Reply(msgspec.Struct):
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in order
    body: Any

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def set_cookies(self, name: str | None = None) -> list[str]:
        lines = self.get_all("set-cookie")
        return lines if name is None else [line for line in lines if line.partition("=")[0].strip() == name]


class Driver(Protocol):
    """A framework's own test client, seen through one interface."""

    clock: FrozenClock

    def call(self, method: str, path: str, body: Any = None) -> Reply: ...

    def cookie(self, name: str) -> str | None:
        """The value the client holds for ``name`` (``None``: none, or deleted)."""
        ...

    def put_cookie(self, name: str, value: str) -> None: ...


class HttpxDriver:
    """Starlette's, FastAPI's and Litestar's ``TestClient`` (httpx based)."""

    def __init__(self, client: Any, clock: FrozenClock) -> None:
        self.client = client
        self.clock = clock

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        response = self.client.request(method, path, json=body)
        headers = [(k.decode().lower(), v.decode()) for k, v in response.headers.raw]
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return Reply(response.status_code, headers, payload)

    def cookie(self, name: str) -> str | None:
        values = [c.value for c in self.client.cookies.jar if c.name == name and c.value]
        assert len(values) <= 1, values
        return values[0] if values else None

    def put_cookie(self, name: str, value: str) -> None:
        self.client.cookies.set(name, value, domain="testserver.local")


class WerkzeugDriver:
    """Flask's test client."""

    def __init__(self, client: Any, clock: FrozenClock) -> None:
        self.client = client
        self.clock = clock

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        response = self.client.open(path, method=method, json=body)
        headers = [(k.lower(), v) for k, v in response.headers.items()]
        payload = response.get_json(silent=True)
        return Reply(response.status_code, headers, payload if payload is not None else response.get_data(True))

    def cookie(self, name: str) -> str | None:
        cookie = self.client.get_cookie(name)
        return cookie.value if cookie is not None and cookie.value else None

    def put_cookie(self, name: str, value: str) -> None:
        self.client.set_cookie(name, value)


@contextmanager
def starlette_like_client(app: Any, clock: FrozenClock) -> Iterator[HttpxDriver]:
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://testserver.local", raise_server_exceptions=False) as client:
        yield HttpxDriver(client, clock)


Route = Callable[..., Any]
