"""The server-stored demo (``--store sqlite`` and ``--store redis``) as a real server process, over real HTTP.

Each store runs under both interfaces (ASGI under uvicorn, WSGI under
waitress): login, visits, logout, the sessions list, "log out everywhere" with
two cookie jars of one user, a forged cookie, the transaction routes, and a
session that survives a restart of the demo (same keys, same store).

Redis at 127.0.0.1:6379 is shared with other suites: every principal here has
a random suffix, and the module ends every session it made (never FLUSHDB).
A store server that does not answer is a failure, not a skip
(``bin/ensure-services`` starts them).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clientstate import Keyring, RequestCookies, Sessions, client_stored, generate_key
from clientstate.demo import COOKIE_NAME, DEMO_STATE, SQLITE_FILE
from clientstate.stores import store_from_url
from tests.test_demo_e2e import DemoServer, set_cookies

KEYRING = Keyring(generate_key(3))  # a real key: the demo refuses the public test keys
REDIS_URL = "redis://127.0.0.1:6379/0"  # what --store redis stands for
RUN = secrets.token_hex(4)  # this run's suffix for every principal
USED: set[str] = set()  # principals to clean up on Redis
# Exit status after SIGTERM: uvicorn shuts down (lifespan, store closed) and re-raises the signal, which the
# demo turns into KeyboardInterrupt and ends quietly; the WSGI demo closes waitress and the store. Both exit 0.
STOPPED = {"asgi": 0, "wsgi": 0}


def user(name: str) -> str:
    """A principal unique to this run (the Redis database is shared)."""
    principal = f"{name}-{RUN}"
    USED.add(principal)
    return principal


@pytest.fixture(scope="module", autouse=True)
def _clean_redis() -> Iterator[None]:
    yield
    store = store_from_url(REDIS_URL)
    try:
        admin = Sessions(store)
        for principal in sorted(USED):
            admin.end(principal)
            assert admin.count(principal) == 0
    finally:
        store.close()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def interface(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, store_name: str, interface: str) -> Path:
    return tmp_path_factory.mktemp(f"demo-{store_name}-{interface}")


@pytest.fixture(scope="module")
def server(store_name: str, interface: str, workdir: Path) -> Iterator[DemoServer]:
    demo = DemoServer(interface, KEYRING, ["--store", store_name], cwd=workdir)
    yield demo
    assert demo.stop() == STOPPED[interface]


@pytest.fixture(scope="module")
def store_url(store_name: str, workdir: Path) -> str:
    """The URL of the store the demo process uses, for looking behind it from here."""
    return f"sqlite:///{workdir / SQLITE_FILE}" if store_name == "sqlite" else REDIS_URL


@pytest.fixture
def admin(store_url: str) -> Iterator[Sessions]:
    store = store_from_url(store_url)
    yield Sessions(store)
    store.close()


def client_for(server: DemoServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


@pytest.fixture
def client(server: DemoServer) -> Iterator[httpx.Client]:
    with client_for(server) as http:
        yield http


@pytest.fixture
def other(server: DemoServer) -> Iterator[httpx.Client]:
    """A second browser: its own cookie jar."""
    with client_for(server) as http:
        yield http


def login(client: httpx.Client, name: str) -> str:
    response = client.post("/api/login", json={"user": name})
    assert response.status_code == 200
    assert response.json() == {"state": {"user": name, "visits": 0, "sudo_until": None}}
    (line,) = set_cookies(response)
    assert line.startswith(f"{COOKIE_NAME}=")
    return client.cookies[COOKIE_NAME]


def test_startup_announces_the_store(server: DemoServer, store_name: str) -> None:
    text = "".join(server.output)
    assert "keys: from CLIENTSTATE_KEYS (current key id 3)" in text
    assert "WITHOUT Secure" in text
    expected = {"sqlite": f"store: sqlite:///{SQLITE_FILE} (SQLiteStore", "redis": f"store: {REDIS_URL} (RedisStore"}
    assert expected[store_name] in text
    assert "in the store, cookie 'clientstate_demo' holds a signed session id" in text


def test_page_shows_the_sessions_box(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="sessions-box"' in page.text
    assert 'id="logout-everywhere"' in page.text


def test_full_session_over_http(client: httpx.Client, admin: Sessions, store_name: str, workdir: Path) -> None:
    anonymous = client.get("/api/state")
    assert anonymous.json() == {"state": None, "error": None}
    assert set_cookies(anonymous) == []
    assert client.post("/api/visit").status_code == 401

    ada = user("ada")
    value = login(client, ada)
    login_line = set_cookies(client.post("/api/login", json={"user": ada}))[0]  # a fresh login: a new id
    assert "; Path=/; HttpOnly; SameSite=Lax" in login_line
    assert "Secure" not in login_line
    assert client.cookies[COOKIE_NAME] != value
    # The cookie is a signed session id, not the state: it is no client-stored token.
    loaded = client_stored(KEYRING, name=COOKIE_NAME).load(
        DEMO_STATE, RequestCookies([f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}"]), time.time()
    )
    assert loaded.state is None
    assert loaded.error is not None

    read = client.get("/api/state")
    assert read.json() == {"state": {"user": ada, "visits": 0, "sudo_until": None}, "error": None}
    assert set_cookies(read) == []  # a read-only request writes no cookie

    for expected in (1, 2, 3):
        visit = client.post("/api/visit")
        assert visit.json()["state"]["visits"] == expected
        assert set_cookies(visit) == []  # the state changed in the store; the session id did not
    assert client.get("/api/state").json()["state"]["visits"] == 3
    assert admin.count(ada) == 1  # the first login's session moved to the second's id: one session
    if store_name == "sqlite":
        with sqlite3.connect(workdir / SQLITE_FILE) as db:
            rows = db.execute("SELECT COUNT(*) FROM clientstate_sessions WHERE principal = ?", (ada,)).fetchone()
        assert rows == (1,)

    held = client.cookies[COOKIE_NAME]
    logout = client.post("/api/logout")
    assert logout.json() == {"state": None}
    (deleted,) = set_cookies(logout)
    assert deleted.startswith(f"{COOKIE_NAME}=; Max-Age=0; Path=/")
    assert client.get("/api/state").json() == {"state": None, "error": None}
    assert admin.count(ada) == 0
    # The old cookie, replayed, finds nothing: a logout on the server is for good.
    with httpx.Client(base_url=str(client.base_url), timeout=10, cookies={COOKIE_NAME: held}) as replay:
        response = replay.get("/api/state")
        assert response.json() == {"state": None, "error": "unknown_session"}
        assert "Max-Age=0" in set_cookies(response)[0]
        assert replay.post("/api/visit").status_code == 401


def test_sessions_list_and_logout_everywhere(
    client: httpx.Client, other: httpx.Client, server: DemoServer, admin: Sessions
) -> None:
    grace, bob = user("grace"), user("bob")
    login(client, grace)
    login(other, grace)
    with client_for(server) as third:
        login(third, bob)

        mine = client.get("/api/sessions")
        assert mine.status_code == 200
        assert set_cookies(mine) == []
        sessions = mine.json()["sessions"]
        assert len(sessions) == 2
        assert [s["current"] for s in sessions].count(True) == 1
        now = time.time()
        for entry in sessions:
            assert set(entry) == {"handle", "created_at", "last_touch", "idle_deadline", "absolute_deadline", "current"}
            assert len(entry["handle"]) == 16
            assert now - 60 <= entry["created_at"] <= entry["last_touch"] <= now + 1
            assert entry["last_touch"] < entry["idle_deadline"] <= entry["absolute_deadline"]
            assert entry["idle_deadline"] - entry["last_touch"] == 7 * 24 * 3600  # the default idle timeout
        theirs = other.get("/api/sessions").json()["sessions"]
        assert {s["handle"] for s in theirs} == {s["handle"] for s in sessions}
        current = [s["handle"] for s in sessions if s["current"]]
        assert current != [s["handle"] for s in theirs if s["current"]]  # each jar sees itself as current
        # The store agrees, through the admin API of another process.
        assert [info.handle for info in admin.list(grace)] == [s["handle"] for s in sessions]

        bobs = third.get("/api/sessions").json()["sessions"]
        assert [s["current"] for s in bobs] == [True]

        ended = client.post("/api/logout-everywhere")
        assert ended.status_code == 200
        assert ended.json() == {"state": None, "ended": 2}
        assert "Max-Age=0" in set_cookies(ended)[0]
        assert client.get("/api/state").json() == {"state": None, "error": None}
        gone = other.get("/api/state")  # the other browser's session was deleted too
        assert gone.json() == {"state": None, "error": "unknown_session"}
        assert "Max-Age=0" in set_cookies(gone)[0]
        assert admin.count(grace) == 0
        # Another user is untouched.
        assert third.get("/api/state").json()["state"]["user"] == bob
        assert admin.count(bob) == 1
        assert third.post("/api/logout").status_code == 200


def test_sessions_routes_need_a_login(client: httpx.Client) -> None:
    for method, path in (("GET", "/api/sessions"), ("POST", "/api/logout-everywhere")):
        response = client.request(method, path)
        assert (response.status_code, response.json()) == (401, {"error": "login_required"})
    assert client.post("/api/sessions").status_code == 405
    assert client.get("/api/logout-everywhere").status_code == 405


def test_forged_cookie_is_an_error_value(client: httpx.Client) -> None:
    login(client, user("eve"))
    value = client.cookies[COOKIE_NAME]
    flipped = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    (stored,) = list(client.cookies.jar)
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, flipped, domain=stored.domain, path=stored.path)
    response = client.get("/api/state")
    assert response.status_code == 200
    assert response.json() == {"state": None, "error": "authentication_failed"}
    assert "Max-Age=0" in set_cookies(response)[0]
    assert client.get("/api/sessions").status_code == 401


def test_sudo_moves_the_session_to_a_new_id(client: httpx.Client, admin: Sessions, server: DemoServer) -> None:
    root = user("root")
    before = login(client, root)
    assert client.get("/api/admin").status_code == 403
    granted = client.post("/api/sudo", json={"password": "x", "seconds": 600})
    assert granted.status_code == 200
    (line,) = set_cookies(granted)  # a change of privilege: a new session id (no session fixation)
    after = client.cookies[COOKIE_NAME]
    assert after != before
    assert line.startswith(f"{COOKIE_NAME}={after};")
    assert client.get("/api/admin").json() == {"ok": True}
    assert admin.count(root) == 1  # moved, not copied
    # The old id answers for the rotation grace (10 s) with the moved session, so requests in flight still work.
    with httpx.Client(base_url=server.url, timeout=10, cookies={COOKIE_NAME: before}) as in_flight:
        assert in_flight.get("/api/state").json()["state"]["user"] == root
    assert client.post("/api/logout").status_code == 200
    assert admin.count(root) == 0


def test_transactions_still_work_with_a_store(client: httpx.Client) -> None:
    login(client, user("tx"))
    begun = client.post("/api/tx", json={"read_only": True})
    assert begun.status_code == 200, begun.text
    baton = begun.json()["baton"]
    done = client.post("/api/tx/exec", json={"baton": baton, "sql": "SELECT 1 + 1", "params": []})
    assert done.status_code == 200, done.text
    assert done.json()["rows"] == [[2]]
    assert client.post("/api/tx/rollback", json={"baton": done.json()["baton"]}).json() == {"rolled_back": True}
    assert client.post("/api/logout").status_code == 200


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.parametrize("iface", ["asgi", "wsgi"])
def test_a_session_survives_a_restart(kind: str, iface: str, tmp_path: Path) -> None:
    keyring = Keyring(generate_key(7))
    url = f"sqlite:///{tmp_path / 'restart.db'}" if kind == "sqlite" else REDIS_URL
    name = user(f"restart-{kind}-{iface}")  # its own principal: a failure here cannot spill into another case
    first = DemoServer(iface, keyring, ["--store", url], cwd=tmp_path)
    try:
        with client_for(first) as http:
            login(http, name)
            for _ in range(2):
                http.post("/api/visit")
            cookie = http.cookies[COOKIE_NAME]
            sessions = http.get("/api/sessions").json()["sessions"]
    finally:
        assert first.stop() == STOPPED[iface]
    if kind == "sqlite":
        assert (tmp_path / "restart.db").exists()

    second = DemoServer(iface, keyring, ["--store", url], cwd=tmp_path)
    try:
        with httpx.Client(base_url=second.url, timeout=10, cookies={COOKIE_NAME: cookie}) as http:
            read = http.get("/api/state")
            assert read.json() == {"state": {"user": name, "visits": 2, "sudo_until": None}, "error": None}
            assert set_cookies(read) == []
            assert http.get("/api/sessions").json()["sessions"] == sessions
            assert http.post("/api/visit").json()["state"]["visits"] == 3
            assert http.post("/api/logout").status_code == 200
    finally:
        assert second.stop() == STOPPED[iface]

    # Another secret under the same key id, same store: the cookie is refused (its MAC), not loaded.
    third = DemoServer(iface, Keyring(generate_key(7)), ["--store", url], cwd=tmp_path)
    try:
        with httpx.Client(base_url=third.url, timeout=10, cookies={COOKIE_NAME: cookie}) as http:
            assert http.get("/api/state").json() == {"state": None, "error": "authentication_failed"}
    finally:
        third.stop()


def test_the_demo_refuses_encrypted_with_a_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "clientstate", "demo", "--port", "0", "--store", "memory", "--encrypted"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "CLIENTSTATE_KEYS": KEYRING.to_text()},
    )
    assert done.returncode == 2
    assert "--encrypted applies to client-stored cookies" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "clientstate", "demo", "--port", "0", "--store", "nosuch://x"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "CLIENTSTATE_KEYS": KEYRING.to_text()},
    )
    assert done.returncode == 2
    assert "unknown store URL scheme 'nosuch'" in done.stderr
