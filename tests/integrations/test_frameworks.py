"""What each integration adds beyond the shared contract: FastAPI's OpenAPI scheme, Flask's SessionInterface,
Django's session engine with django.contrib.auth, configuration errors, and migration through each integration."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import flask
import msgspec
import pytest
from starlette.testclient import TestClient

from clientstate import ClientStored, ConfigurationError, CookieAttributes, client_stored
from clientstate.integrations import django as cs_django
from clientstate.integrations import fastapi as cs_fastapi
from clientstate.integrations import flask as cs_flask
from clientstate.integrations import litestar as cs_litestar
from clientstate.integrations import starlette as cs_starlette
from clientstate.legacy import starlette_cookie
from clientstate.testing import FrozenClock, fixed_keyring
from tests.integrations import apps, django_project, support
from tests.integrations.support import SESSION, T0, Session, make_handler
from tests.integrations.test_legacy import FLASK_SECRET, STARLETTE_SECRET, mint_django, mint_starlette

# --- FastAPI: the OpenAPI document ----------------------------------------------------------------------------


def test_fastapi_shows_the_cookie_as_an_api_key_scheme_without_its_format() -> None:
    document = apps.fastapi_app(make_handler(), FrozenClock(T0)).openapi()
    scheme = document["components"]["securitySchemes"]["sessionCookie"]
    assert {key: scheme[key] for key in ("type", "in", "name")} == {"type": "apiKey", "in": "cookie", "name": "cs"}
    text = json.dumps(document)
    for leaked in ("base64", "HMAC", "msgpack", "MessagePack", "AES", "token format"):
        assert leaked not in text
    operations = document["paths"]
    assert operations["/admin"]["get"]["security"] == [{"sessionCookie": []}]
    assert operations["/visit"]["post"]["security"] == [{"sessionCookie": []}]
    assert "security" not in operations["/login"]["post"]  # logging in needs no cookie
    assert "security" not in operations["/read"]["get"]


def test_starlette_and_fastapi_refuse_bad_configuration() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'clock'"):
        cs_starlette.ClientState(SESSION, make_handler(), clok=lambda: 0.0)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="sudo_max_window"):
        cs_fastapi.ClientState(SESSION, make_handler(), sudo_max_window=0)
    with pytest.raises(ConfigurationError, match="handler must be a Handler"):
        cs_starlette.ClientState(SESSION, "cs")  # type: ignore[arg-type]
    # Two layers of one state: refused when Starlette builds its middleware stack (its first ASGI call).
    session = cs_starlette.ClientState(SESSION, make_handler())
    from starlette.applications import Starlette

    app = Starlette(middleware=[session.middleware, session.middleware])
    with pytest.raises(ConfigurationError, match="two clientstate layers"), TestClient(app) as client:
        client.get("/")


def test_litestar_refuses_bad_configuration() -> None:
    with pytest.raises(ConfigurationError, match="reserved names"):
        cs_litestar.ClientStatePlugin(SESSION, make_handler(), dependency="request")
    from litestar import Litestar
    from litestar.di import Provide

    plugin = cs_litestar.ClientStatePlugin(SESSION, make_handler())
    with pytest.raises(ConfigurationError, match="already has a dependency"):
        Litestar([], plugins=[plugin], dependencies={"session_slot": Provide(lambda: 1, sync_to_thread=False)})


# --- Flask: the extension and flask.session ----------------------------------------------------------------


def test_flask_extension_refuses_a_second_init_and_lets_an_errorhandler_render_403() -> None:
    clock = FrozenClock(T0)
    app = apps.flask_app(make_handler(), clock)
    extension = app.extensions[SESSION.slot_key]
    with pytest.raises(ConfigurationError, match="two clientstate layers"):
        extension.init_app(app)

    @app.errorhandler(403)
    def forbidden(error: Exception) -> tuple[str, int]:
        return "<p>please confirm your password</p>", 403

    client = app.test_client()
    client.post("/login", json={"user": "ada"})
    refused = client.get("/admin")
    assert (refused.status_code, refused.get_data(True)) == (403, "<p>please confirm your password</p>")


def flask_dict_app(**options: Any) -> flask.Flask:
    app = flask.Flask("dict_session")
    app.secret_key = FLASK_SECRET  # unused by clientstate; kept to show the legacy option reads it
    handler = client_stored(fixed_keyring(1), name=options.pop("name", "session"),
                            attributes=CookieAttributes(secure=False))
    app.session_interface = cs_flask.SessionInterface(handler, **options)

    @app.get("/")
    def read() -> Any:
        session = flask.session
        assert isinstance(session, cs_flask.ClientStateSession)
        return {"session": dict(session), "error": session.slot.error and session.slot.error.kind}

    @app.post("/put")
    def put() -> Any:
        flask.session.update(flask.request.get_json())
        return {"ok": True}

    @app.post("/append")
    def append() -> Any:
        flask.session.setdefault("items", []).append(1)  # nested: Flask's own interface would miss it
        return {"ok": True}

    @app.post("/clear")
    def clear() -> Any:
        flask.session.clear()
        return {"ok": True}

    @app.post("/fail")
    def fail() -> Any:
        flask.session["failed"] = True
        return {"error": "failed"}, 500

    @app.get("/own")
    def own() -> Any:
        response = flask.jsonify(ok=True)
        response.set_cookie("session", "mine")
        return response

    return app


def session_lines(response: Any, name: str = "session") -> list[str]:
    return [line for line in response.headers.getlist("Set-Cookie") if line.startswith(f"{name}=")]


def test_flask_session_is_a_dict_saved_by_value() -> None:
    client = flask_dict_app().test_client()
    first = client.get("/")
    assert first.get_json() == {"session": {}, "error": None}
    assert session_lines(first) == []
    assert first.headers["Vary"] == "Cookie"

    put = client.post("/put", json={"user": "ada", "n": 1})
    (line,) = session_lines(put)
    assert line.startswith("session=AQ")
    assert put.headers["Cache-Control"] == "private"
    assert session_lines(client.post("/put", json={"n": 1})) == []  # the same value again: no write
    assert len(session_lines(client.post("/append"))) == 1  # a nested change is saved
    assert client.get("/").get_json()["session"] == {"user": "ada", "n": 1, "items": [1]}

    assert session_lines(client.post("/fail")) == []  # a 5xx commits nothing
    assert "failed" not in client.get("/").get_json()["session"]

    with client.session_transaction() as session:  # Flask's own test-client helper
        session["from_test"] = True
    assert client.get("/").get_json()["session"]["from_test"] is True

    (deletion,) = session_lines(client.post("/clear"))  # an empty dict deletes the cookie
    assert "Max-Age=0" in deletion
    client.set_cookie("session", "garbage")
    assert client.get("/").get_json() == {"session": {}, "error": "malformed"}


def test_flask_session_left_alone_keeps_a_cookie_that_loaded_ambiguous() -> None:
    # Deleting one of two copies would hand the next request to the other (perhaps planted) one.
    app = flask_dict_app()
    (line,) = session_lines(app.test_client().post("/put", json={"user": "ada"}))
    both = f"{line.split(';', 1)[0]}; session=planted"
    client = app.test_client(use_cookies=False)
    read = client.get("/", headers={"Cookie": both})
    assert read.get_json() == {"session": {}, "error": "ambiguous"}
    assert session_lines(read) == []
    (deletion,) = session_lines(client.post("/clear", headers={"Cookie": both}))  # an explicit logout clears it
    assert "Max-Age=0" in deletion


def test_flask_session_refuses_the_apps_own_cookie_of_that_name() -> None:
    app = flask_dict_app()
    app.testing = True  # let the ConfigurationError reach the test
    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'session'"):
        app.test_client().get("/own")


def test_flask_session_takes_over_flasks_own_cookies() -> None:
    old = flask.Flask("old_site")
    old.secret_key = FLASK_SECRET

    @old.post("/login")
    def old_login() -> str:
        flask.session["user"] = "ada"
        return "ok"

    old_client = old.test_client()
    old_client.post("/login")
    legacy_cookie = old_client.get_cookie("session")
    assert legacy_cookie is not None

    app = flask.Flask("new_site")
    app.secret_key = FLASK_SECRET
    app.session_interface = cs_flask.SessionInterface(
        client_stored(fixed_keyring(1), name="session", attributes=CookieAttributes(secure=False)),
        legacy=cs_flask.legacy_session_cookie(app),
    )

    @app.get("/")
    def read() -> Any:
        return dict(flask.session)

    client = app.test_client()
    client.set_cookie("session", legacy_cookie.value)
    migrated = client.get("/")
    assert migrated.get_json() == {"user": "ada"}
    (line,) = session_lines(migrated)  # the same name: replaced in place by a clientstate token
    assert line.startswith("session=AQ")
    again = client.get("/")
    assert again.get_json() == {"user": "ada"}
    assert session_lines(again) == []


# --- Django: the session engine, django.contrib.auth, the test client ------------------------------------------


@pytest.fixture
def django_client(django_ready: None) -> Any:
    from django.test import Client

    django_project.CLOCK.set(T0)
    return Client(raise_request_exception=False)


def cookie_lines(response: Any, name: str = "sessionid") -> list[str]:
    return [morsel.OutputString() for key, morsel in response.cookies.items() if key == name]


def test_django_login_logout_with_the_session_engine(django_client: Any) -> None:
    client = django_client
    assert client.get("/session").json() == {"data": {}, "user": None}
    bad = client.post("/auth/login", {"username": "ada", "password": "wrong"}, content_type="application/json")
    assert bad.status_code == 400
    assert cookie_lines(bad) == []  # nothing to keep: no cookie

    login = client.post("/auth/login", {"username": "ada", "password": "pw"}, content_type="application/json")
    (line,) = cookie_lines(login)
    assert line.startswith("sessionid=Ag")  # an encrypted clientstate token, Django's cookie name
    assert "; Path=/; HttpOnly; SameSite=Lax" in line
    assert login["Cache-Control"] == "private"
    session = client.get("/session")
    assert session.json()["user"] == "ada"
    assert set(session.json()["data"]) == {"_auth_user_id", "_auth_user_backend", "_auth_user_hash"}
    assert cookie_lines(session) == []  # reading writes nothing

    # Logging in as another user flushes the session (a new one), as Django does.
    grace = client.post("/auth/login", {"username": "grace", "password": "pw"}, content_type="application/json")
    assert len(cookie_lines(grace)) == 1
    assert client.get("/session").json()["user"] == "grace"

    logout = client.post("/auth/logout")
    (deletion,) = cookie_lines(logout)
    assert deletion.startswith("sessionid=; Max-Age=0; Path=/")
    assert client.get("/session").json() == {"data": {}, "user": None}


def test_django_session_left_alone_keeps_a_cookie_that_loaded_ambiguous(django_client: Any) -> None:
    from django.test import Client

    login = django_client.post("/auth/login", {"username": "ada", "password": "pw"}, content_type="application/json")
    (line,) = cookie_lines(login)
    both = f"{line.split(';', 1)[0]}; sessionid=planted"
    fresh = Client(raise_request_exception=False)
    read = fresh.get("/session", HTTP_COOKIE=both)
    assert read.json() == {"data": {}, "user": None}
    assert cookie_lines(read) == []  # ambiguous: neither copy is used, neither is deleted
    logout = fresh.post("/auth/logout", HTTP_COOKIE=both)
    (deletion,) = cookie_lines(logout)
    assert deletion.startswith("sessionid=; Max-Age=0")


def test_django_session_is_saved_by_value_and_cycle_key_keeps_the_data(django_client: Any) -> None:
    client = django_client
    client.post("/session/put", {"cart": [1]}, content_type="application/json")
    assert cookie_lines(client.post("/session/put", {"cart": [1]}, content_type="application/json")) == []
    assert len(cookie_lines(client.post("/session/append"))) == 1  # nested, and modified reset: still saved
    assert client.get("/session").json()["data"] == {"cart": [1], "items": [1]}

    cycled = client.post("/session/cycle")  # client-stored: no id to rotate, the data is unchanged
    assert cookie_lines(cycled) == []
    assert client.get("/session").json()["data"] == {"cart": [1], "items": [1]}

    failed = client.post("/session/fail")
    assert failed.status_code == 500
    assert cookie_lines(failed) == []
    assert "failed" not in client.get("/session").json()["data"]

    client.cookies["sessionid"] = "garbage"
    assert client.get("/session").json() == {"data": {}, "user": None}


def test_djangos_test_client_helpers_go_through_the_engine(django_client: Any) -> None:
    from django.contrib.auth.models import User

    client = django_client
    client.force_login(User.objects.get(username="ada"))
    assert client.get("/session").json()["user"] == "ada"
    assert client.session["_auth_user_id"] == str(User.objects.get(username="ada").pk)
    session = client.session
    session["note"] = "from the test"
    session.save()
    client.cookies["sessionid"] = session.session_key
    assert client.get("/session").json()["data"]["note"] == "from the test"
    assert client.login(username="grace", password="pw")
    assert client.get("/session").json()["user"] == "grace"
    client.logout()
    assert client.get("/session").json() == {"data": {}, "user": None}


def test_djangos_own_session_middleware_also_works_with_the_engine(django_client: Any) -> None:
    from django.test import override_settings

    middleware = ["django.contrib.sessions.middleware.SessionMiddleware",
                  "django.contrib.auth.middleware.AuthenticationMiddleware"]
    with override_settings(MIDDLEWARE=middleware):
        client = django_client
        client.post("/auth/login", {"username": "ada", "password": "pw"}, content_type="application/json")
        assert client.get("/session").json()["user"] == "ada"
        client.post("/auth/logout")
        assert client.get("/session").json()["user"] is None


def test_django_configuration_errors(django_ready: None) -> None:
    from django.test import override_settings

    engine = override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
    with engine, pytest.raises(ConfigurationError, match="SESSION_ENGINE"):
        cs_django.SessionMiddleware(lambda request: None)
    not_a_handler = override_settings(CLIENTSTATE_SESSION_HANDLER="tests.integrations.support.COOKIE")
    with not_a_handler, pytest.raises(ConfigurationError, match="not a clientstate handler"):
        cs_django.engine_binding()
    for keys in ("not a keyring", "*3:" + msgspec.json.encode(b"").decode(), ""):
        with override_settings(CLIENTSTATE_SESSION_HANDLER=None, CLIENTSTATE_KEYS=keys), mock.patch.dict(
            "os.environ", {"CLIENTSTATE_KEYS": ""}
        ), pytest.raises(ConfigurationError):
            cs_django.engine_binding()
    with pytest.raises(ConfigurationError, match="login_url"):
        cs_django.ClientState(SESSION, make_handler(), login_url=3)  # type: ignore[arg-type]


def test_django_handler_from_settings(django_ready: None) -> None:
    from django.test import override_settings

    from clientstate import Keyring, generate_key

    keys = Keyring(generate_key(5)).to_text()
    with override_settings(CLIENTSTATE_SESSION_HANDLER=None, CLIENTSTATE_KEYS=keys, SESSION_COOKIE_SECURE=True,
                           SESSION_COOKIE_AGE=3600):
        handler = cs_django.engine_binding().handler
        assert isinstance(handler, ClientStored)
        assert handler.name == "sessionid"
        assert handler.attributes == CookieAttributes(secure=True)
        assert handler.expires_in == 3600
    assert cs_django.engine_binding().handler is django_project.SESSION_HANDLER  # back to the project's


def test_a_django_view_setting_the_session_cookie_itself_is_refused(django_ready: None) -> None:
    from django.http import HttpResponse

    from clientstate import Binding, StateSlot

    binding = Binding(SESSION, make_handler())
    response = HttpResponse()
    response.set_cookie(support.COOKIE, "mine")
    slot: StateSlot[Session] = binding.begin(())
    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'cs'"):
        cs_django._finish(binding, slot, response)


def test_django_users_stay_logged_in_across_the_switch_from_signed_cookies(django_ready: None) -> None:
    """A session of Django's signed_cookies engine (a logged-in user) keeps working under clientstate's."""
    from django.contrib.auth.models import User
    from django.test import Client, override_settings

    from tests.integrations.test_legacy import NOW

    user = User.objects.get(username="ada")
    legacy = mint_django({"_auth_user_id": str(user.pk), "_auth_user_backend":
                          "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": user.get_session_auth_hash()},
                         at=NOW)
    from clientstate.legacy import accept_legacy

    migrating = accept_legacy(django_project.SESSION_HANDLER, cs_django.legacy_signed_cookies())
    import tests.integrations.django_project as project

    project.MIGRATING = migrating  # type: ignore[attr-defined]
    with override_settings(CLIENTSTATE_SESSION_HANDLER="tests.integrations.django_project.MIGRATING"):
        client = Client()
        client.cookies["sessionid"] = legacy
        first = client.get("/session")
        assert first.json()["user"] == "ada"  # still logged in
        (line,) = cookie_lines(first)  # and the cookie is now clientstate's (same name, replaced in place)
        assert line.startswith("sessionid=Ag")
        again = client.get("/session")
        assert again.json()["user"] == "ada"
        assert cookie_lines(again) == []


# --- migration through the ASGI integrations ---------------------------------------------------------------------


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
def test_starlette_session_cookies_are_taken_over(framework: str) -> None:
    """Cookies of Starlette's SessionMiddleware (another name) load, convert, are replaced and deleted."""

    def convert(old: dict[str, Any]) -> Session | None:
        return Session(user=old["user"], visits=old.get("visits", 0)) if "user" in old else None

    legacy = mint_starlette({"user": "ada", "visits": 4}, at=T0 - 60)
    clock = FrozenClock(T0)
    source = starlette_cookie(STARLETTE_SECRET, convert=convert)
    handler = make_handler()
    if framework == "litestar":
        app: Any = apps.litestar_reader(cs_litestar.ClientStatePlugin(SESSION, handler, clock=clock, legacy=source))
    else:
        build = cs_starlette.ClientState if framework == "starlette" else cs_fastapi.ClientState
        session = build(SESSION, handler, clock=clock, legacy=source)
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(support.read(session.get_slot(request)))

        app = Starlette(routes=[Route("/read", endpoint)], middleware=[session.middleware])
    with TestClient(app, base_url="http://testserver.local") as client:
        client.cookies.set("session", legacy, domain="testserver.local")
        migrated = client.get("/read")
        assert migrated.json() == {"state": {"user": "ada", "visits": 4, "sudo_until": None, "tags": []},
                                   "error": None}
        lines = migrated.headers.get_list("set-cookie")
        assert [line.partition("=")[0] for line in lines] == ["cs", "session"]
        assert lines[1] == "session=; Max-Age=0; Path=/"
        assert client.cookies.get("session") is None
        assert client.get("/read").headers.get_list("set-cookie") == []
