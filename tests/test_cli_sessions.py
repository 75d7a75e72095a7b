"""``python -m clientstate sessions``: list, end and sweep a store's sessions (SQLite files and Redis).

Sessions are made the way an application makes them: the demo's WSGI app with
a ``server_stored`` handler on the same store, driven through httpx's WSGI
transport. Redis is shared: principals carry a random suffix and are ended at the end.
"""

from __future__ import annotations

import io
import json
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from clientstate import Keyring, Sessions, generate_key, get_slot, server_stored, wsgi
from clientstate._core.cookies import CookieAttributes
from clientstate.cli import main
from clientstate.demo import COOKIE_NAME, DEMO_STATE, DemoState, build_handler
from clientstate.demo.apps import make_wsgi_app
from clientstate.stores import store_from_url

KEYRING = Keyring(generate_key(5))
REDIS_URL = "redis://127.0.0.1:6379/0"
RUN = secrets.token_hex(4)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.db'}"
        return
    yield REDIS_URL
    store = store_from_url(REDIS_URL)  # end every session this test may have left (never FLUSHDB)
    try:
        for principal in (f"ada-{RUN}", f"bob-{RUN}", f"old-{RUN}", HOSTILE + RUN):
            Sessions(store).end(principal)
    finally:
        store.close()


@contextmanager
def browser(
    url: str, clock: Callable[[], float] = time.time, idle_timeout: int = 7 * 24 * 3600
) -> Iterator[httpx.Client]:
    """A cookie jar talking to the demo's WSGI app over ``url``'s store (in this process)."""
    store = store_from_url(url)
    handler = server_stored(
        store, KEYRING, name=COOKIE_NAME, principal=lambda s: s.user, attributes=CookieAttributes(secure=False),
        idle_timeout=idle_timeout,
    )
    try:
        app = make_wsgi_app(handler, clock)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://demo") as client:
            yield client
    finally:
        store.close()


def login(client: httpx.Client, user: str) -> None:
    assert client.post("/api/login", json={"user": user}).status_code == 200


def test_list_end_and_the_app_agrees(url: str) -> None:
    ada, bob = f"ada-{RUN}", f"bob-{RUN}"
    with browser(url) as one, browser(url) as two, browser(url) as three:
        login(one, ada)
        login(two, ada)
        login(three, bob)
        listed = one.get("/api/sessions").json()["sessions"]
        assert len(listed) == 2

        code, out = run("sessions", "--store", url, "list", ada)
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0] == f"2 session(s) of {ada!r} in {url}"
        assert [line.split()[0] for line in lines[1:]] == [s["handle"] for s in listed]
        assert all(" created 20" in line and " last active 20" in line for line in lines[1:])

        code, out = run("sessions", "--store", url, "list", "--json", ada)
        assert code == 0
        rows = [json.loads(line) for line in out.splitlines()]
        assert rows == [{k: v for k, v in s.items() if k != "current"} for s in listed]

        nobody = f"nobody-{RUN}"
        assert run("sessions", "--store", url, "list", nobody) == (0, f"0 session(s) of {nobody!r} in {url}\n")

        code, out = run("sessions", "--store", url, "end", ada)
        assert (code, out) == (0, f"ended 2 session(s) of {ada!r} in {url}\n")
        assert one.get("/api/state").json() == {"state": None, "error": "unknown_session"}
        assert two.get("/api/state").json() == {"state": None, "error": "unknown_session"}
        assert three.get("/api/state").json()["state"]["user"] == bob  # another principal is untouched
        assert run("sessions", "--store", url, "list", ada)[1].startswith("0 session(s)")
        assert run("sessions", "--store", url, "end", bob)[1].startswith("ended 1 session(s)")


def test_sweep_deletes_only_expired_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    past = time.time() - 3 * 24 * 3600
    for _ in range(5):  # five sessions whose one-day idle timeout ran out two days ago
        with browser(url, clock=lambda: past, idle_timeout=24 * 3600) as old:
            login(old, f"old-{RUN}")
    with browser(url) as fresh:
        login(fresh, f"ada-{RUN}")

    def rows() -> int:
        with sqlite3.connect(tmp_path / "sweep.db") as db:
            return int(db.execute("SELECT COUNT(*) FROM clientstate_sessions").fetchone()[0])

    assert rows() == 6
    assert run("sessions", "--store", url, "sweep", "--limit", "2") == (0, f"swept 2 expired record(s) from {url}\n")
    assert rows() == 4
    assert run("sessions", "--store", url, "sweep") == (0, f"swept 3 expired record(s) from {url}\n")
    assert run("sessions", "--store", url, "sweep") == (0, f"swept 0 expired record(s) from {url}\n")
    assert rows() == 1
    with browser(url) as fresh_again:
        assert fresh_again.get("/api/state").json() == {"state": None, "error": None}
    assert run("sessions", "--store", url, "list", f"ada-{RUN}")[1].startswith("1 session(s)")


def test_sweep_of_a_store_with_nothing_expired(url: str) -> None:
    """Nothing to sweep (Redis drops expired keys itself, and a fresh SQLite file is empty): 0, exit 0."""
    with browser(url) as client:
        login(client, f"ada-{RUN}")
    assert run("sessions", "--store", url, "sweep", "--limit", "10") == (0, f"swept 0 expired record(s) from {url}\n")
    assert run("sessions", "--store", url, "list", f"ada-{RUN}")[1].startswith("1 session(s)")


HOSTILE = "\x1b]0;pwned\x07\u202e"


def _save_session_of(url: str, name: str) -> None:
    """A session of principal ``name``, saved as any application saves one (the demo's login refuses
    control characters; principals in general are whatever the application's users chose)."""
    store = store_from_url(url)
    handler = server_stored(
        store, KEYRING, name=COOKIE_NAME, principal=lambda s: s.user, attributes=CookieAttributes(secure=False),
    )

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        get_slot(environ, DEMO_STATE).state = DemoState(user=name)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"saved"]

    try:
        with httpx.Client(transport=httpx.WSGITransport(app=wsgi.setup(DEMO_STATE, handler, app))) as client:
            response = client.get("http://app/")
        assert response.status_code == 200
        assert any(v.startswith(f"{COOKIE_NAME}=") for v in response.headers.get_list("set-cookie"))
    finally:
        store.close()


def test_a_hostile_principal_cannot_rewrite_the_terminal(url: str) -> None:
    name = HOSTILE + RUN
    _save_session_of(url, name)
    for action in ("list", "end"):
        code, out = run("sessions", "--store", url, action, name)
        assert code == 0, out
        assert out.replace("\n", "").isprintable(), repr(out)
        assert "\\x1b]0;pwned\\x07" in out


def test_store_errors_have_their_own_exit_status(tmp_path: Path) -> None:
    code, out = run("sessions", "--store", "nosuch://x", "list", "ada")
    assert code == 2
    assert "unknown store URL scheme 'nosuch'" in out
    code, out = run("sessions", "--store", "sqlite://", "list", "ada")
    assert code == 2
    assert "sqlite:///relative/file.db" in out
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    code, out = run("sessions", "--store", f"sqlite:///{missing}", "list", "ada")
    assert code == 1
    assert out.startswith("error: store unavailable: SQLite ")
    start = time.monotonic()
    code, out = run("sessions", "--store", "redis://127.0.0.1:1/0?timeout=1", "end", "ada")
    assert code == 1
    assert out.startswith("error: store unavailable")
    assert time.monotonic() - start < 10


def test_a_password_in_the_url_is_never_printed() -> None:
    code, out = run("sessions", "--store", "redis://:s3cret-pw@127.0.0.1:1/0?timeout=1", "list", "ada")
    assert code == 1
    assert "s3cret-pw" not in out
    from clientstate.demo import redact_url

    assert redact_url("postgresql://app:s3cret@db.example:5432/x") == "postgresql://app:***@db.example:5432/x"
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("sqlite:///a.db") == "sqlite:///a.db"
    assert redact_url("redis://h:6379/0?prefix=cs:&password=pw") == "redis://h:6379/0?prefix=cs:&password=***"
    assert redact_url(f"redis://127.0.0.1:6379/0?prefix=bench-{RUN}:x") == f"redis://127.0.0.1:6379/0?prefix=bench-{RUN}:x"


def test_the_demos_words_name_the_demos_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--store sqlite`` in the CLI reads the file the demo keeps in the current directory."""
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    store = store_from_url("sqlite:///clientstate-demo.db")
    handler = build_handler({"CLIENTSTATE_KEYS": KEYRING.to_text()}, "127.0.0.1", lines.append, store=store,
                            store_label="sqlite:///clientstate-demo.db")
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=make_wsgi_app(handler)), base_url="http://x") as client:
            login(client, "ada")
    finally:
        store.close()
    assert (tmp_path / "clientstate-demo.db").exists()
    code, out = run("sessions", "--store", "sqlite", "list", "ada")
    assert code == 0
    assert out.splitlines()[0] == "1 session(s) of 'ada' in sqlite:///clientstate-demo.db"
    assert any("python -m clientstate sessions --store 'sqlite:///clientstate-demo.db' list <user>" in line
               for line in lines)


def test_help_texts() -> None:
    for command in (["sessions"], ["sessions", "list"], ["sessions", "end"], ["sessions", "sweep"]):
        done = subprocess.run(
            [sys.executable, "-m", "clientstate", *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "usage: python -m clientstate sessions" in done.stdout
    done = subprocess.run([sys.executable, "-m", "clientstate", "demo", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert "--store STORE" in done.stdout
    assert "waitress" in done.stdout


def test_errors_go_to_stderr_so_json_lines_stay_parseable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clientstate", "sessions", "--store", "redis://:hunter2@127.0.0.1:1/0",
         "list", "ada", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: store unavailable")
    assert "hunter2" not in done.stderr


def test_a_principal_no_session_can_have_is_a_usage_error(tmp_path: Path) -> None:
    """Exit 2 with one line on stderr, as for a bad store URL; the store is not even opened."""
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    for action in ("list", "end"):
        done = subprocess.run(
            [sys.executable, "-m", "clientstate", "sessions", "--store", url, action, ""],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == "error: PRINCIPAL '' is not one a session can have: it is empty\n"
    # Bytes that are not UTF-8 reach Python's argv as lone surrogates (surrogateescape).
    raw = subprocess.run(
        [sys.executable.encode(), b"-m", b"clientstate", b"sessions", b"--store", url.encode(), b"list", b"ada\xff"],
        capture_output=True, timeout=60, check=False,
    )
    assert (raw.returncode, raw.stdout) == (2, b"")
    assert raw.stderr == (
        b"error: PRINCIPAL 'ada\\udcff' is not one a session can have: it holds a lone surrogate "
        b"(U+DCFF at index 3), which is not valid UTF-8\n"
    )
    assert run("sessions", "--store", url, "end", "a\x00b") == (
        2, "error: PRINCIPAL 'a\\x00b' is not one a session can have: it holds NUL (U+0000 at index 1), which "
        "PostgreSQL cannot store\n",
    )
    code, out = run("sessions", "--store", url, "list", "x" * 1025)
    assert code == 2
    assert out.splitlines() == [
        f"error: PRINCIPAL {'x' * 1025!r:.60} is not one a session can have: it is 1025 characters, over the "
        f"1024-byte limit (MAX_PRINCIPAL_BYTES)"
    ]
    assert not (tmp_path / "sessions.db").exists()
    assert run("sessions", "--store", url, "list", "x" * 1024) == (0, f"0 session(s) of {'x' * 1024!r} in {url}\n")
