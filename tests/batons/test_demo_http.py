"""The demo's transaction API over real HTTP: the demo runs as a subprocess on a free port, ASGI and WSGI.

Two demo processes per interface: one with the default idle timeout and a cap
of 3 streams, one with a 1-second idle timeout for the reaper (and to play
"another process" for batons of the first).
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from clientstate import Keyring, generate_key
from tests.servers import ServerProcess

KEYRING = Keyring(generate_key(4))  # a real key: the demo refuses the public test keys
STARTUP_TIMEOUT = 20.0
CAP = 3


class DemoServer(ServerProcess):
    """A ``python -m clientstate demo --port 0`` process with the given environment, and its URL."""

    def __init__(self, interface: str, **env: str) -> None:
        super().__init__(
            [sys.executable, "-m", "clientstate", "demo", "--port", "0", "--interface", interface],
            env={"CLIENTSTATE_KEYS": KEYRING.to_text(), **env}, startup_timeout=STARTUP_TIMEOUT,
        )

    def stop(self, signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM), timeout: float = 10.0) -> int:
        """Ctrl+C first (both servers then shut down cleanly and remove the demo database), then harder."""
        return super().stop(signals, timeout)


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[DemoServer, DemoServer]]:
    main = DemoServer(request.param, CLIENTSTATE_DEMO_TX_MAX_STREAMS=str(CAP))
    try:
        quick = DemoServer(request.param, CLIENTSTATE_DEMO_TX_IDLE_TIMEOUT="1")
    except BaseException:
        main.stop()
        raise
    yield main, quick
    quick.stop()
    main.stop()


@contextlib.contextmanager
def _client(server: DemoServer, user: str | None) -> Iterator[httpx.Client]:
    """An HTTP client of ``server``, logged in as ``user`` unless ``None``."""
    with httpx.Client(base_url=server.url, timeout=15) as client:
        if user is not None:
            assert client.post("/api/login", json={"user": user}).status_code == 200
        yield client


@pytest.fixture
def ada(servers: tuple[DemoServer, DemoServer]) -> Iterator[httpx.Client]:
    with _client(servers[0], "ada") as client:
        yield client


@pytest.fixture
def eve(servers: tuple[DemoServer, DemoServer]) -> Iterator[httpx.Client]:
    with _client(servers[0], "eve") as client:
        yield client


def _begin(client: httpx.Client, read_only: bool = False) -> str:
    response = client.post("/api/tx", json={"read_only": read_only})
    assert response.status_code == 200, response.text
    baton = response.json()["baton"]
    assert isinstance(baton, str)
    assert len(baton) == 78
    return baton


def _exec(client: httpx.Client, baton: str, sql: str, params: Any = ()) -> httpx.Response:
    return client.post("/api/tx/exec", json={"baton": baton, "sql": sql, "params": list(params)})


def _ok(client: httpx.Client, baton: str, sql: str, params: Any = ()) -> dict[str, Any]:
    response = _exec(client, baton, sql, params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    assert data["baton"] != baton
    return data


def _bodies(client: httpx.Client, marker: str) -> list[list[Any]]:
    """What a new transaction sees of notes with ``marker``; the transaction is rolled back."""
    baton = _begin(client, read_only=True)
    data = _ok(client, baton, "SELECT author, body FROM notes WHERE body = ?", [marker])
    assert client.post("/api/tx/rollback", json={"baton": data["baton"]}).json() == {"rolled_back": True}
    rows: list[list[Any]] = data["rows"]
    return rows


def test_begin_exec_replay_and_commit_visible_to_a_new_transaction(ada: httpx.Client) -> None:
    marker = secrets.token_hex(8)
    first = _begin(ada)
    inserted = _ok(ada, first, "INSERT INTO notes (author, body) VALUES (?, ?)", ["ada", marker])
    assert inserted["rows"] == []
    assert inserted["columns"] == []
    replay = _exec(ada, first, "SELECT 1")
    assert (replay.status_code, replay.json()["error"]) == (409, "baton_reused")
    seen = _ok(ada, inserted["baton"], "SELECT author, body FROM notes WHERE body = ?", [marker])
    assert seen["rows"] == [["ada", marker]]
    assert seen["columns"] == ["author", "body"]
    assert _bodies(ada, marker) == []  # not committed yet: invisible elsewhere
    commit = ada.post("/api/tx/commit", json={"baton": seen["baton"]})
    assert (commit.status_code, commit.json()) == (200, {"committed": True})
    again = ada.post("/api/tx/commit", json={"baton": seen["baton"]})
    assert (again.status_code, again.json()["error"]) == (410, "stream_expired")
    assert _bodies(ada, marker) == [["ada", marker]]


def test_rollback_is_not_visible(ada: httpx.Client) -> None:
    marker = secrets.token_hex(8)
    baton = _begin(ada)
    data = _ok(ada, baton, "INSERT INTO notes (author, body) VALUES ('ada', ?)", [marker])
    rolled = ada.post("/api/tx/rollback", json={"baton": data["baton"]})
    assert (rolled.status_code, rolled.json()) == (200, {"rolled_back": True})
    assert _bodies(ada, marker) == []


def test_a_stolen_baton_fails_for_the_thief_and_keeps_working_for_the_owner(ada: httpx.Client,
                                                                              eve: httpx.Client) -> None:
    baton = _begin(ada)
    for path, body in (("/api/tx/exec", {"baton": baton, "sql": "SELECT 1"}), ("/api/tx/commit", {"baton": baton}),
                       ("/api/tx/rollback", {"baton": baton})):
        stolen = eve.post(path, json=body)
        assert (stolen.status_code, stolen.json()["error"]) == (403, "principal_mismatch")
    assert eve.get("/api/tx").json()["streams"] == []
    data = _ok(ada, baton, "SELECT 2")
    assert data["rows"] == [[2]]
    assert ada.post("/api/tx/rollback", json={"baton": data["baton"]}).status_code == 200


def test_the_cap_refuses_the_next_begin(ada: httpx.Client, eve: httpx.Client) -> None:
    batons = [(_begin(ada), ada), (_begin(eve), eve), (_begin(ada, read_only=True), ada)]
    listed = ada.get("/api/tx").json()
    assert [s["read_only"] for s in listed["streams"]] == [False, True]
    assert listed["limits"]["max_streams"] == CAP
    refused = eve.post("/api/tx", json={})
    assert (refused.status_code, refused.json()["error"]) == (429, "too_many_streams")
    first, owner = batons.pop(0)
    assert owner.post("/api/tx/rollback", json={"baton": first}).status_code == 200
    batons.append((_begin(eve), eve))  # a place is free again
    for baton, client in batons:
        assert client.post("/api/tx/rollback", json={"baton": baton}).status_code == 200
    assert ada.get("/api/tx").json()["streams"] == []


def test_read_only_and_sql_errors_keep_the_transaction(ada: httpx.Client) -> None:
    baton = _begin(ada, read_only=True)
    write = _exec(ada, baton, "INSERT INTO notes (author, body) VALUES ('x', 'y')")
    assert (write.status_code, write.json()["error"]) == (400, "sql_error")
    assert "readonly" in write.json()["detail"]
    guarded = _exec(ada, write.json()["baton"], "COMMIT")
    assert (guarded.status_code, guarded.json()["error"], guarded.json()["detail"]) == (400, "sql_error",
                                                                                         "not authorized")
    data = _ok(ada, guarded.json()["baton"], "SELECT count(*) >= 1 FROM notes")
    assert data["rows"] == [[1]]
    assert ada.post("/api/tx/rollback", json={"baton": data["baton"]}).status_code == 200


def test_requests_need_a_login_and_good_bodies(servers: tuple[DemoServer, DemoServer], ada: httpx.Client) -> None:
    with _client(servers[0], None) as anonymous:
        for method, path in (("POST", "/api/tx"), ("GET", "/api/tx"), ("POST", "/api/tx/exec")):
            response = anonymous.request(method, path, json={})
            assert (response.status_code, response.json()) == (401, {"error": "login_required"})
    for body in (b"{", b'{"read_only": "yes"}', b'{"other": 1}'):
        assert ada.post("/api/tx", content=body).json()["error"] == "bad_request"
    assert ada.post("/api/tx/exec", json={"baton": 5, "sql": "SELECT 1"}).status_code == 400
    bad = ada.post("/api/tx/exec", json={"baton": "A" * 78, "sql": "SELECT 1"})
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_baton")
    assert ada.get("/api/tx/exec").status_code == 405
    assert ada.post("/api/tx/nowhere", json={}).status_code == 404
    page = ada.get("/")
    assert "SQL console" in page.text
    assert "/api/tx/exec" in page.text


def test_idle_reap_rolls_back(servers: tuple[DemoServer, DemoServer]) -> None:
    marker = secrets.token_hex(8)
    with _client(servers[1], "ada") as ada:
        baton = _ok(ada, _begin(ada), "INSERT INTO notes (author, body) VALUES ('ada', ?)", [marker])["baton"]
        assert len(ada.get("/api/tx").json()["streams"]) == 1
        deadline = time.monotonic() + 20
        while ada.get("/api/tx").json()["streams"] and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the reaper's work; the deadline, not the sleep, bounds the wait
        assert ada.get("/api/tx").json()["streams"] == []
        late = _exec(ada, baton, "SELECT 1")
        assert (late.status_code, late.json()["error"]) == (410, "stream_expired")
        assert "idle timeout of 1 s" in late.json()["detail"]
        assert _bodies(ada, marker) == []


def test_a_baton_presented_to_another_process_is_a_bad_baton(servers: tuple[DemoServer, DemoServer],
                                                              ada: httpx.Client) -> None:
    baton = _begin(ada)
    with _client(servers[1], "ada") as elsewhere:  # the same keys: the cookie and the baton's MAC verify there
        refused = _exec(elsewhere, baton, "SELECT 1")
        assert (refused.status_code, refused.json()["error"]) == (400, "bad_baton")
        assert "another process" in refused.json()["detail"]
    data = _ok(ada, baton, "SELECT 3")  # unharmed where it lives
    assert ada.post("/api/tx/rollback", json={"baton": data["baton"]}).status_code == 200
