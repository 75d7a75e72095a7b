"""Legacy session cookies, minted by the real Flask, Starlette and Django code, through clientstate.legacy.

Cookies are minted by each framework's own session machinery: Flask's
``SecureCookieSessionInterface`` (its signing serializer, and a real request),
Starlette's ``SessionMiddleware`` (a real request through ``TestClient``) and
Django's ``signed_cookies`` engine (``SessionStore.save()``).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import flask
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from clientstate import Binding, ConfigurationError, CookieAttributes, LoadError, State, client_stored
from clientstate.legacy import LegacyCookie, accept_legacy, django_cookie, flask_cookie, starlette_cookie
from clientstate.testing import FrozenClock, fixed_keyring
from tests.integrations import django_project

FLASK_SECRET = "flask-secret-key-of-the-old-site"
STARLETTE_SECRET = "starlette-secret-key-of-the-old-site"
NOW = 1_800_000_000.0
DAY = 24 * 3600


class Account(msgspec.Struct):
    user: str
    visits: int = 0


ACCOUNT = State("account", Account)


def to_account(old: dict[str, Any]) -> Account | None:
    return Account(user=old["user"], visits=old.get("visits", 0)) if "user" in old else None


# --- minting with the real libraries -----------------------------------------------------------------------


def flask_app(secret: str | None = FLASK_SECRET) -> flask.Flask:
    app = flask.Flask("old_flask_site")
    app.secret_key = secret

    @app.post("/put")
    def put() -> str:
        flask.session.update(flask.request.get_json())
        return "ok"

    return app


def mint_flask(data: dict[str, Any], *, secret: str = FLASK_SECRET, at: float = NOW) -> str:
    """A Flask session cookie: Flask's own signing serializer, as ``save_session`` uses it."""
    app = flask_app(secret)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    with mock.patch("time.time", return_value=at):
        return str(serializer.dumps(data))


def mint_flask_over_http(data: dict[str, Any], *, at: float = NOW) -> str:
    """The same, through a real request to a Flask app (its Set-Cookie line)."""
    client = flask_app().test_client()
    with mock.patch("time.time", return_value=at):
        response = client.post("/put", json=data)
    (line,) = response.headers.getlist("Set-Cookie")
    assert line.startswith("session=")
    return line.split(";", 1)[0].partition("=")[2]


async def _starlette_put(request: Request) -> PlainTextResponse:
    request.session.update(await request.json())
    return PlainTextResponse("ok")


def starlette_client(secret: str = STARLETTE_SECRET) -> TestClient:
    middleware = [Middleware(SessionMiddleware, secret_key=secret)]
    return TestClient(Starlette(routes=[Route("/put", _starlette_put, methods=["POST"])], middleware=middleware))


_STARLETTE = starlette_client()


def mint_starlette(data: dict[str, Any], *, secret: str = STARLETTE_SECRET, at: float = NOW) -> str:
    """A Starlette SessionMiddleware cookie, from a real request."""
    client = _STARLETTE if secret == STARLETTE_SECRET else starlette_client(secret)
    client.cookies.clear()
    with mock.patch("time.time", return_value=at):
        response = client.post("/put", json=data)
    (line,) = response.headers.get_list("set-cookie")
    assert line.startswith("session=")
    return str(line).split(";", 1)[0].partition("=")[2]


def mint_django(data: dict[str, Any], *, secret: str | None = None, at: float = NOW) -> str:
    """A cookie of Django's signed_cookies engine: its own SessionStore.save()."""
    django_project.configure()
    from django.contrib.sessions.backends.signed_cookies import SessionStore
    from django.test import override_settings

    with override_settings(SECRET_KEY=secret or django_project.SECRET_KEY), mock.patch("time.time", return_value=at):
        store = SessionStore()
        store.update(data)
        store.save()
        key: str = store.session_key
        return key


Mint = Callable[..., str]
FORMATS: dict[str, tuple[Callable[..., LegacyCookie], str, Mint]] = {
    "flask": (lambda **kw: flask_cookie(FLASK_SECRET, **kw), "session", mint_flask),
    "starlette": (lambda **kw: starlette_cookie(STARLETTE_SECRET, **kw), "session", mint_starlette),
    "django": (lambda **kw: django_cookie(django_project.SECRET_KEY, **kw), "sessionid", mint_django),
}


@pytest.fixture(params=list(FORMATS))
def legacy_format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Counting:
    """A converter that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, old: dict[str, Any]) -> Account | None:
        self.calls += 1
        return to_account(old)


def binding_for(fmt: str, convert: Callable[[dict[str, Any]], Any] = to_account, name: str = "__Host-account",
                clock: FrozenClock | None = None, **options: Any) -> Binding[Account]:
    build, _, _ = FORMATS[fmt]
    handler = accept_legacy(client_stored(fixed_keyring(1), name=name), build(convert=convert, **options))
    return Binding(ACCOUNT, handler, clock or FrozenClock(NOW + 60))


def cookie_value(lines: list[str], name: str) -> str | None:
    for line in lines:
        key, _, rest = line.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    return None


# --- a valid legacy cookie loads, is converted, and is replaced ---------------------------------------------


def test_a_real_legacy_cookie_loads_and_is_replaced(legacy_format: str) -> None:
    _, legacy_name, mint = FORMATS[legacy_format]
    binding = binding_for(legacy_format)
    slot = binding.begin([f"{legacy_name}={mint({'user': 'ada', 'visits': 3, 'csrf': 'x'})}; theme=dark"])
    assert slot.error is None
    assert slot.state == Account("ada", 3)
    lines = binding.finish(slot)  # nothing changed, yet the response migrates the cookie
    assert [line.partition("=")[0] for line in lines] == ["__Host-account", legacy_name]
    assert lines[1] == f"{legacy_name}=; Max-Age=0; Path=/"
    token = cookie_value(lines, "__Host-account")
    again = binding.begin([f"__Host-account={token}"])
    assert again.state == Account("ada", 3)
    assert binding.finish(again) == []


def test_flask_cookies_from_a_real_request_with_tagged_values() -> None:
    value = mint_flask_over_http({"user": "ada", "visits": 2, "pair": [1, 2]})
    binding = binding_for("flask")
    assert binding.begin([f"session={value}"]).state == Account("ada", 2)
    # Flask's tagged JSON: tuples, bytes and the like come back as Flask decodes them.
    source = flask_cookie(FLASK_SECRET)
    tagged = mint_flask({"t": (1, "a"), "b": b"\x00\xff"})
    assert source.open(tagged, NOW) == {"t": (1, "a"), "b": b"\x00\xff"}


def test_a_legacy_cookie_of_the_same_name_is_replaced_in_place(legacy_format: str) -> None:
    _, legacy_name, mint = FORMATS[legacy_format]
    binding = binding_for(legacy_format, name=legacy_name)  # Path=/ like the frameworks' defaults
    slot = binding.begin([f"{legacy_name}={mint({'user': 'ada'})}"])
    assert slot.state == Account("ada")
    (line,) = binding.finish(slot)  # one line: the new token under the old name
    assert line.startswith(f"{legacy_name}=AQ")
    token = cookie_value([line], legacy_name)
    assert binding.begin([f"{legacy_name}={token}"]).state == Account("ada")


def test_a_logout_on_the_migrating_request_deletes_the_legacy_cookie(legacy_format: str) -> None:
    _, legacy_name, mint = FORMATS[legacy_format]
    binding = binding_for(legacy_format)
    slot = binding.begin([f"{legacy_name}={mint({'user': 'ada'})}"])
    slot.state = None
    assert binding.finish(slot) == [f"{legacy_name}=; Max-Age=0; Path=/"]


# --- forged, expired and wrong-secret cookies are ignored ----------------------------------------------------


def flip(value: str, index: int) -> str:
    return value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]


def test_forged_wrong_secret_and_expired_legacy_cookies_are_ignored(legacy_format: str) -> None:
    build, legacy_name, mint = FORMATS[legacy_format]
    valid = mint({"user": "ada"})
    other_secret = mint({"user": "ada"}, secret="a-secret-the-new-site-was-not-given")
    max_age = build().max_age
    assert max_age is not None
    cases = {
        "forged payload": (flip(valid, 3), NOW, "authentication_failed"),
        "forged signature": (flip(valid, len(valid) - 5), NOW, "authentication_failed"),
        "wrong secret": (other_secret, NOW, "authentication_failed"),
        "expired": (valid, NOW + max_age + 1, "expired"),
        "not this format": ("garbage-without-separators", NOW, "malformed"),
    }
    for label, (value, now, kind) in cases.items():
        binding = binding_for(legacy_format, clock=FrozenClock(now))
        slot = binding.begin([f"{legacy_name}={value}"])
        assert slot.state is None, label
        assert slot.error is not None, label
        assert slot.error.kind == kind, (label, slot.error)
        assert slot.error.detail.startswith(f"legacy {legacy_format} cookie"), label
        assert binding.finish(slot) == [f"{legacy_name}=; Max-Age=0; Path=/"], label  # and deleted
    # Still valid one second before its max_age runs out.
    binding = binding_for(legacy_format, clock=FrozenClock(NOW + max_age - 1))
    assert binding.begin([f"{legacy_name}={valid}"]).state == Account("ada")


@pytest.mark.parametrize("fmt", ["flask", "starlette"])
def test_itsdangerous_formats_refuse_a_cookie_signed_in_the_future(fmt: str) -> None:
    _, legacy_name, mint = FORMATS[fmt]
    slot = binding_for(fmt, clock=FrozenClock(NOW - 10)).begin([f"{legacy_name}={mint({'user': 'ada'})}"])
    assert slot.error is not None
    assert slot.error.kind == "issued_in_future"


def test_django_format_accepts_future_timestamps_as_django_does() -> None:
    slot = binding_for("django", clock=FrozenClock(NOW - 10)).begin([f"sessionid={mint_django({'user': 'ada'})}"])
    assert slot.state == Account("ada")


def test_flask_cookies_under_a_fallback_secret_load() -> None:
    value = mint_flask({"user": "ada"}, secret="the-previous-flask-secret")
    source = flask_cookie([FLASK_SECRET, "the-previous-flask-secret"], convert=to_account)
    binding = Binding(ACCOUNT, accept_legacy(client_stored(fixed_keyring(1), name="__Host-a"), source),
                      FrozenClock(NOW))
    assert binding.begin([f"session={value}"]).state == Account("ada")


def test_the_converter_decides_what_is_kept(legacy_format: str) -> None:
    _, legacy_name, mint = FORMATS[legacy_format]
    anonymous = mint({"csrf": "x"})  # no user: to_account keeps nothing
    binding = binding_for(legacy_format)
    slot = binding.begin([f"{legacy_name}={anonymous}"])
    assert (slot.state, slot.error and slot.error.kind) == (None, "rejected")
    assert binding.finish(slot) == [f"{legacy_name}=; Max-Age=0; Path=/"]

    def broken(old: dict[str, Any]) -> Account:
        raise KeyError("visits")

    for convert in (broken, lambda old: {"user": 42}):
        slot = binding_for(legacy_format, convert=convert).begin([f"{legacy_name}={mint({'user': 'ada'})}"])
        assert slot.state is None
        assert slot.error is not None
        assert slot.error.kind == "migration_failed"


def test_a_dict_from_the_default_converter_becomes_the_states_type(legacy_format: str) -> None:
    _, legacy_name, mint = FORMATS[legacy_format]
    build, _, _ = FORMATS[legacy_format]
    handler = accept_legacy(client_stored(fixed_keyring(1), name="__Host-a"), build())  # convert=None
    slot = Binding(ACCOUNT, handler, FrozenClock(NOW)).begin([f"{legacy_name}={mint({'user': 'ada', 'visits': 1})}"])
    assert type(slot.state) is Account
    assert slot.state == Account("ada", 1)


# --- after the replacement the legacy cookie is never read again -----------------------------------------------


def test_after_the_replacement_the_legacy_cookie_is_never_read_again(legacy_format: str) -> None:
    _, legacy_name, mint = FORMATS[legacy_format]
    legacy = f"{legacy_name}={mint({'user': 'ada', 'visits': 1})}"
    counting = Counting()
    clock = FrozenClock(NOW + 60)
    binding = binding_for(legacy_format, convert=counting, clock=clock)
    slot = binding.begin([legacy])
    slot.state = Account("ada", 2)
    token = cookie_value(binding.finish(slot), "__Host-account")
    assert counting.calls == 1
    # A browser that kept the legacy cookie anyway (a dropped deletion) sends both: ours wins, unread.
    both = binding.begin([f"{legacy}; __Host-account={token}"])
    assert both.state == Account("ada", 2)
    both.state = Account("ada", 3)
    lines = binding.finish(both)
    assert f"{legacy_name}=; Max-Age=0; Path=/" in lines  # and any save deletes it once more
    # Even when our cookie fails (here: expired), the legacy one is not consulted again.
    clock.set(NOW + 60 + 31 * DAY)
    failed = binding.begin([f"{legacy}; __Host-account={token}"])
    assert failed.state is None
    assert failed.error is not None
    assert failed.error.kind == "expired"
    assert counting.calls == 1


# --- configuration -----------------------------------------------------------------------------------------


def test_configuration_mistakes_are_configuration_errors() -> None:
    handler = client_stored(fixed_keyring(1), name="session", attributes=CookieAttributes(path="/app"))
    with pytest.raises(ConfigurationError, match="another Path or Domain"):
        accept_legacy(handler, flask_cookie(FLASK_SECRET))
    plain = client_stored(fixed_keyring(1), name="cs")
    with pytest.raises(ConfigurationError, match="two legacy cookie formats"):
        accept_legacy(plain, flask_cookie(FLASK_SECRET), starlette_cookie(STARLETTE_SECRET))
    with pytest.raises(ConfigurationError, match="at least one legacy"):
        accept_legacy(plain)
    with pytest.raises(ConfigurationError, match="chunk"):
        accept_legacy(client_stored(fixed_keyring(1), name="cs", chunked=True), flask_cookie("k", name="cs.1"))
    with pytest.raises(ConfigurationError, match="at least one secret"):
        flask_cookie([])
    with pytest.raises(ConfigurationError, match="non-empty"):
        django_cookie(["ok", ""])
    with pytest.raises(ConfigurationError, match="max_age"):
        starlette_cookie("k", max_age=0)
    with pytest.raises(ConfigurationError, match="not a token"):
        django_cookie("k", name="bad name")
    with pytest.raises(ConfigurationError, match="convert must be a callable"):
        flask_cookie("k", convert="to_account")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a legacy cookie format must be"):
        accept_legacy(plain, "flask")  # type: ignore[arg-type]


def test_the_legacy_option_is_refused_when_the_peer_library_is_missing() -> None:
    missing = mock.patch.dict("sys.modules", {"itsdangerous": None})
    with missing, pytest.raises(ConfigurationError, match="itsdangerous"):
        starlette_cookie(STARLETTE_SECRET)


# --- properties: the real libraries' cookies, and anything a client can send -------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
SESSIONS = st.dictionaries(st.text(string.ascii_letters + "_", min_size=1, max_size=8), JSON, min_size=1, max_size=4)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(data=SESSIONS)
def test_every_session_the_libraries_mint_opens_to_the_same_dict(legacy_format: str, data: dict[str, Any]) -> None:
    build, _, mint = FORMATS[legacy_format]
    assert build().open(mint(data), NOW) == data


@PROPERTY
@given(data=SESSIONS, position=st.integers(0, 10_000), character=st.sampled_from(string.ascii_letters + "-_.:=+/"))
def test_a_changed_cookie_never_loads_other_data(
    legacy_format: str, data: dict[str, Any], position: int, character: str
) -> None:
    build, _, mint = FORMATS[legacy_format]
    value = mint(data)
    index = position % len(value)
    changed = value[:index] + character + value[index + 1 :]
    opened = build().open(changed, NOW)
    # Either refused, or (a change in the unused low bits of the base64 signature) the very same data.
    assert isinstance(opened, LoadError) or opened == data


@PROPERTY
@given(value=st.text(max_size=300))
def test_any_cookie_value_opens_to_a_load_error_without_raising(legacy_format: str, value: str) -> None:
    build, _, _ = FORMATS[legacy_format]
    opened = build().open(value, NOW)
    assert isinstance(opened, LoadError)


@pytest.fixture(autouse=True)
def _no_leaked_cookies() -> Iterator[None]:
    yield
    _STARLETTE.cookies.clear()
