"""The examples under ``examples/<framework>/`` as real server processes, driven over HTTP.

FastAPI and Litestar run under uvicorn, Django and Flask under waitress, each
started with its documented command (plus ``--port 0``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from clientstate import RequestCookies, State, client_stored
from tests.integrations.example_server import KEYRING, ExampleServer

JSON_EXAMPLES = {
    "fastapi": "fastapi/fastapi_example.py",
    "litestar": "litestar/litestar_example.py",
    "django": "django/django_example.py",
}


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None


SESSION = State("session", Session)


def held(client: httpx.Client) -> Session | None:
    """The state in the cookie the client holds, verified with the example's keys."""
    value = client.cookies.get("session")
    if not value:
        return None
    loaded = client_stored(KEYRING, name="session").load(SESSION, RequestCookies([f"session={value}"]), time.time())
    assert loaded.error is None, loaded.error
    return loaded.state


@pytest.fixture(scope="module", params=list(JSON_EXAMPLES))
def json_example(request: pytest.FixtureRequest) -> Iterator[ExampleServer]:
    server = ExampleServer(JSON_EXAMPLES[request.param])
    yield server
    server.stop()


def test_a_json_example_over_http(json_example: ExampleServer) -> None:
    with httpx.Client(base_url=json_example.url, timeout=10) as client:
        assert client.get("/me").json() == {"state": None, "error": None}
        assert client.post("/visit").status_code == 401

        login = client.post("/login", json={"user": "ada"})
        assert login.status_code == 200
        (line,) = login.headers.get_list("set-cookie")
        assert line.startswith("session=")
        assert "; Path=/; HttpOnly; SameSite=Lax" in line
        assert login.headers["cache-control"] == "private"
        assert held(client) == Session("ada")

        assert client.post("/visit").json() == {"visits": 1}
        assert client.post("/visit").json() == {"visits": 2}
        me = client.get("/me")
        assert me.json()["state"]["visits"] == 2
        assert me.headers.get_list("set-cookie") == []  # reading writes nothing
        assert "Cookie" in me.headers["vary"]

        assert client.get("/admin").status_code == 403
        assert client.post("/sudo", json={"password": "correct horse"}).status_code == 200
        assert client.get("/admin").json() == {"admin": "ada"}

        token = client.cookies.get("session") or ""
        forged = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        refused = httpx.get(f"{json_example.url}/me", headers={"Cookie": f"session={forged}"}, timeout=10)
        assert refused.json() == {"state": None, "error": "authentication_failed"}  # a value, not a 500
        assert "Max-Age=0" in refused.headers["set-cookie"]

        client.post("/login", json={"user": "grace"})
        logout = client.post("/logout")
        assert logout.status_code == 200
        assert "Max-Age=0" in logout.headers["set-cookie"]
        assert client.get("/me").json() == {"state": None, "error": None}


@pytest.fixture(scope="module")
def flask_example() -> Iterator[ExampleServer]:
    server = ExampleServer("flask/flask_example.py")
    yield server
    server.stop()


def test_the_flask_example_over_http(flask_example: ExampleServer) -> None:
    with httpx.Client(base_url=flask_example.url, timeout=10, follow_redirects=True) as client:
        home = client.get("/")
        assert 'id="login"' in home.text
        assert client.post("/visit").status_code == 401

        after_login = client.post("/login", data={"user": "ada <b>"})
        assert '<p id="who">ada &lt;b&gt;</p>' in after_login.text
        assert held(client) == Session("ada <b>")
        assert '<p id="visits">1</p>' in client.post("/visit").text

        refused = client.get("/admin")
        assert refused.status_code == 403
        assert 'id="sudo-required"' in refused.text
        elevated = client.post("/sudo", data={"password": "correct horse"})
        assert elevated.status_code == 200
        assert "Admin area of ada &lt;b&gt;" in elevated.text

        logged_out = client.post("/logout")
        assert 'id="login"' in logged_out.text
        assert held(client) is None
