"""The demo as a real server process on a free loopback port, driven by a real HTTP client.

Runs once per interface (ASGI under uvicorn, WSGI under waitress). The
server-stored demo (``--store``) has its own file, ``tests/test_demo_stores_e2e.py``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest

from clientstate import Keyring, RequestCookies, client_stored, generate_key
from clientstate.demo import COOKIE_NAME, DEMO_STATE
from tests.servers import ServerProcess

KEYRING = Keyring(generate_key(3))  # a real key: the demo, like any server, refuses the public test keys
STARTUP_TIMEOUT = 20.0


class DemoServer(ServerProcess):
    """A ``python -m clientstate demo --port 0`` process and its URL.

    ``args`` are more command-line arguments (``["--store", "sqlite"]``);
    ``cwd`` is the process's working directory (where ``--store sqlite`` keeps its file).
    :meth:`stop` sends SIGTERM, then SIGKILL after 10 s, and returns the exit status.
    """

    def __init__(
        self, interface: str, keyring: Keyring, args: Sequence[str] = (), cwd: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(
            [sys.executable, "-m", "clientstate", "demo", "--port", "0", "--interface", interface, *args],
            env={"CLIENTSTATE_KEYS": keyring.to_text()}, cwd=cwd, startup_timeout=STARTUP_TIMEOUT,
        )


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def server(request: pytest.FixtureRequest) -> Iterator[DemoServer]:
    demo = DemoServer(request.param, KEYRING)
    yield demo
    demo.stop()


@pytest.fixture
def client(server: DemoServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_startup_messages_are_honest(server: DemoServer) -> None:
    text = "".join(server.output)
    assert "keys: from CLIENTSTATE_KEYS (current key id 3)" in text
    assert "WITHOUT Secure" in text


def test_page_is_served(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "clientstate demo" in response.text


def test_full_session_over_http(client: httpx.Client) -> None:
    anonymous = client.get("/api/state")
    assert anonymous.json() == {"state": None, "error": None}
    assert set_cookies(anonymous) == []
    assert anonymous.headers["vary"] == "Cookie"

    assert client.post("/api/visit").status_code == 401

    login = client.post("/api/login", json={"user": "ada"})
    assert login.status_code == 200
    assert login.json()["state"] == {"user": "ada", "visits": 0, "sudo_until": None}
    (line,) = set_cookies(login)
    assert line.startswith(f"{COOKIE_NAME}=")
    assert "; Path=/; HttpOnly; SameSite=Lax" in line
    assert "Secure" not in line
    assert login.headers["cache-control"] == "private"

    # The cookie the browser holds verifies with the configured keys.
    value = client.cookies[COOKIE_NAME]
    handler = client_stored(KEYRING, name=COOKIE_NAME)
    loaded = handler.load(DEMO_STATE, RequestCookies([f"{COOKIE_NAME}={value}"]), time.time())
    assert loaded.state is not None
    assert loaded.state.user == "ada"

    read = client.get("/api/state")
    assert read.json() == {"state": {"user": "ada", "visits": 0, "sudo_until": None}, "error": None}
    assert set_cookies(read) == []

    visit = client.post("/api/visit")
    assert visit.json()["state"]["visits"] == 1
    assert len(set_cookies(visit)) == 1
    assert client.get("/api/state").json()["state"]["visits"] == 1

    logout = client.post("/api/logout")
    assert logout.json() == {"state": None}
    (deleted,) = set_cookies(logout)
    assert deleted.startswith(f"{COOKIE_NAME}=; Max-Age=0; Path=/")
    assert COOKIE_NAME not in client.cookies
    assert client.get("/api/state").json() == {"state": None, "error": None}


def test_tampered_cookie_is_an_error_value_not_a_500(client: httpx.Client) -> None:
    client.post("/api/login", json={"user": "eve"})
    value = client.cookies[COOKIE_NAME]
    flipped = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    (stored,) = list(client.cookies.jar)
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, flipped, domain=stored.domain, path=stored.path)
    response = client.get("/api/state")
    assert response.status_code == 200
    assert response.json() == {"state": None, "error": "authentication_failed"}
    (cleared,) = set_cookies(response)
    assert "Max-Age=0" in cleared


def test_bad_bodies_get_400(client: httpx.Client) -> None:
    for body in (b"", b"{", b'{"user": ""}', b'{"user": 5}', b'{"name": "x"}', b'{"user": "a\\u0000b"}',
                 b'{"user": "line\\nbreak"}', ('{"user": "%s"}' % ("x" * 65)).encode()):
        response = client.post("/api/login", content=body)
        assert response.status_code == 400, body
        assert response.json()["error"] == "bad_request"
    client.post("/api/login", json={"user": "ada"})
    for sudo_body in ({"password": "", "seconds": 5}, {"password": "p", "seconds": 0},
                      {"password": "p", "seconds": 3601}, {"seconds": 5}, {"password": "p"}):
        response = client.post("/api/sudo", json=sudo_body)
        assert response.status_code == 400, sudo_body
    assert client.get("/api/nowhere").status_code == 404
    assert client.get("/api/login").status_code == 405


def test_sudo_then_admin_and_expiry(client: httpx.Client) -> None:
    assert client.post("/api/sudo", json={"password": "x", "seconds": 5}).status_code == 401
    client.post("/api/login", json={"user": "root"})
    denied = client.get("/api/admin")
    assert (denied.status_code, denied.json()) == (403, {"error": "sudo_required"})

    before = time.time()
    granted = client.post("/api/sudo", json={"password": "hunter2", "seconds": 3600})
    until = granted.json()["state"]["sudo_until"]
    assert before + 3600 - 1 <= until <= time.time() + 3600 + 1
    assert client.get("/api/admin").json() == {"ok": True}

    short = client.post("/api/sudo", json={"password": "hunter2", "seconds": 1})
    until = short.json()["state"]["sudo_until"]
    deadline = time.monotonic() + 15
    status = client.get("/api/admin").status_code
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the window to pass; the loop, not the sleep, bounds it
        status = client.get("/api/admin").status_code
    assert status == 403
    assert time.time() >= until - 1  # the server's clock, not ours, decides; allow skew of 1 s


def test_sessions_routes_need_a_store(client: httpx.Client) -> None:
    client.post("/api/login", json={"user": "ada"})
    for method, path in (("GET", "/api/sessions"), ("POST", "/api/logout-everywhere")):
        response = client.request(method, path)
        assert response.status_code == 404
        assert response.json()["error"] == "needs_store"
        assert set_cookies(response) == []
    assert client.get("/api/state").json()["state"]["user"] == "ada"  # nothing was ended
    assert client.post("/api/sessions").status_code == 405


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_the_demo_cleanly(interface: str, how: signal.Signals) -> None:
    # The README says either signal stops either server cleanly: a graceful stop, exit 0, no traceback.
    demo = DemoServer(interface, KEYRING)
    with httpx.Client(base_url=demo.url, timeout=10) as http:
        assert http.get("/api/state").status_code == 200
    assert demo.stop((how,)) == 0
    printed = demo.drain()
    assert "Traceback" not in printed, printed
    assert "KeyboardInterrupt" not in printed, printed
