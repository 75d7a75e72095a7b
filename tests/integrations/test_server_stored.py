"""The Django session engine and Flask's SessionInterface backed by server-stored sessions.

``cycle_key()`` (Django's ``login()``) rotates the server-side id, ``flush()`` (``logout()``) deletes the
row, and Flask's dict session lives in the store behind a session-id cookie.
"""

from __future__ import annotations

from typing import Any

import flask
import pytest

from clientstate import CookieAttributes, server_stored
from clientstate.integrations import flask as cs_flask
from clientstate.stores import MemoryStore
from clientstate.testing import fixed_keyring
from tests.integrations import django_project
from tests.integrations.support import T0

STORE = MemoryStore()
#: The engine's handler in these tests (named by CLIENTSTATE_SESSION_HANDLER). The engine runs on the real
#: clock, so the rotation grace is 0: an old id is dead as soon as it is rotated away.
SERVER_HANDLER = server_stored(
    STORE, fixed_keyring(1), name="sessionid", attributes=CookieAttributes(secure=False), rotation_grace=0
)


@pytest.fixture
def server_client(django_ready: None) -> Any:
    from django.test import Client, override_settings

    django_project.CLOCK.set(T0)
    STORE._records.clear()
    with override_settings(CLIENTSTATE_SESSION_HANDLER="tests.integrations.test_server_stored.SERVER_HANDLER"):
        yield Client(raise_request_exception=False)


def session_cookie(response: Any) -> str | None:
    morsel = response.cookies.get("sessionid")
    return None if morsel is None else morsel.OutputString()


def test_django_login_rotates_the_id_and_logout_deletes_the_row(server_client: Any) -> None:
    client = server_client
    client.post("/session/put", {"cart": [1]}, content_type="application/json")  # an anonymous session
    anonymous = client.cookies["sessionid"].value
    assert anonymous.startswith("Aw")  # a session-id cookie (version 3), not a state token
    assert len(STORE) == 1

    login = client.post("/auth/login", {"username": "ada", "password": "pw"}, content_type="application/json")
    assert login.status_code == 200
    logged_in = client.cookies["sessionid"].value
    assert logged_in != anonymous  # cycle_key(): a new server-side id (session fixation)
    data = client.get("/session").json()
    assert data["user"] == "ada"
    assert data["data"]["cart"] == [1]  # the data kept under the new id

    client.cookies["sessionid"] = anonymous  # the old id, past its (zero) grace period
    assert client.get("/session").json() == {"data": {}, "user": None}
    client.cookies["sessionid"] = logged_in

    rows = len(STORE)
    logout = client.post("/auth/logout")
    line = session_cookie(logout)
    assert line is not None
    assert line.startswith("sessionid=; Max-Age=0")
    assert len(STORE) < rows  # flush(): the row is gone...
    client.cookies["sessionid"] = logged_in
    assert client.get("/session").json() == {"data": {}, "user": None}  # ...so a copied cookie is dead too


def test_exists_and_clearsessions_use_the_store(server_client: Any) -> None:
    import time

    from clientstate._core.flow import perform_sync
    from clientstate._core.store import Touch
    from clientstate.integrations.django import SessionStore

    client = server_client
    client.post("/session/put", {"cart": [1]}, content_type="application/json")
    key = client.cookies["sessionid"].value
    assert SessionStore().exists(key)
    assert not SessionStore().exists("sessionid-that-is-not-ours")
    for sid in list(STORE._records):  # every session past its deadline (a touch may only shorten it here)
        assert perform_sync(STORE, Touch(sid, 1, int(time.time())))
    SessionStore.clear_expired()  # what `manage.py clearsessions` calls
    assert len(STORE) == 0


def test_djangos_test_client_helpers_work_with_server_stored_sessions(server_client: Any) -> None:
    from django.contrib.auth.models import User

    client = server_client
    client.force_login(User.objects.get(username="ada"))
    assert client.get("/session").json()["user"] == "ada"
    session = client.session
    session["note"] = "from the test"
    session.save()
    client.cookies["sessionid"] = session.session_key
    assert client.get("/session").json()["data"]["note"] == "from the test"
    client.logout()
    assert client.get("/session").json() == {"data": {}, "user": None}


def flask_app(store: Any = None) -> flask.Flask:
    app = flask.Flask("server_stored_flask")
    app.session_interface = cs_flask.SessionInterface(
        server_stored(MemoryStore() if store is None else store, fixed_keyring(1), name="session",
                      attributes=CookieAttributes(secure=False))
    )

    @app.get("/")
    def read() -> Any:
        return dict(flask.session)

    @app.post("/add")
    def add() -> Any:
        flask.session.setdefault("items", []).append(len(flask.session.get("items", [])))
        return {"ok": True}

    @app.post("/clear")
    def clear() -> Any:
        flask.session.clear()
        return {"ok": True}

    return app


def test_flask_session_in_a_store() -> None:
    client = flask_app().test_client()
    assert client.get("/").get_json() == {}
    first = client.post("/add")
    (line,) = first.headers.getlist("Set-Cookie")
    assert line.startswith("session=Aw")  # a session id, the dict is in the store
    assert client.post("/add").headers.getlist("Set-Cookie") == []  # later writes change the row, not the cookie
    assert client.get("/").get_json() == {"items": [0, 1]}
    (deletion,) = client.post("/clear").headers.getlist("Set-Cookie")
    assert "Max-Age=0" in deletion
    assert client.get("/").get_json() == {}


def test_a_signed_cookies_session_migrates_into_a_server_stored_session(server_client: Any) -> None:
    """Django's signed_cookies engine → clientstate's engine on a store: the user stays logged in."""
    from django.contrib.auth.models import User
    from django.test import override_settings

    import tests.integrations.django_project as project
    from clientstate.integrations.django import legacy_signed_cookies
    from clientstate.legacy import accept_legacy
    from tests.integrations.test_legacy import NOW, mint_django

    user = User.objects.get(username="ada")
    legacy = mint_django(
        {"_auth_user_id": str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
         "_auth_user_hash": user.get_session_auth_hash()},
        at=NOW,
    )
    project.MIGRATING_TO_STORE = accept_legacy(SERVER_HANDLER, legacy_signed_cookies())  # type: ignore[attr-defined]
    with override_settings(CLIENTSTATE_SESSION_HANDLER="tests.integrations.django_project.MIGRATING_TO_STORE"):
        client = server_client
        client.cookies["sessionid"] = legacy
        first = client.get("/session")
        assert first.json()["user"] == "ada"
        line = session_cookie(first)
        assert line is not None
        assert line.startswith("sessionid=Aw")  # replaced in place by a session id
        assert len(STORE) == 1  # the session now lives in the store
        again = client.get("/session")
        assert again.json()["user"] == "ada"
        assert session_cookie(again) is None


def test_flask_session_keeps_its_cookie_while_the_store_is_down() -> None:
    # A view that leaves the session alone must not log anyone out because of a store blip; a clear() still does.
    from clientstate.stores import RedisStore

    up = flask_app().test_client()
    (line,) = up.post("/add").headers.getlist("Set-Cookie")
    cookie = line.split(";", 1)[0]
    down = flask_app(RedisStore.from_url("redis://127.0.0.1:1/0?timeout=0.5")).test_client(use_cookies=False)
    read = down.get("/", headers={"Cookie": cookie})
    assert read.status_code == 200
    assert read.get_json() == {}
    assert read.headers.getlist("Set-Cookie") == []
    (deletion,) = down.post("/clear", headers={"Cookie": cookie}).headers.getlist("Set-Cookie")
    assert deletion.startswith("session=; Max-Age=0")
