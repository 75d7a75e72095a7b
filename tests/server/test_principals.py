"""The principal rule, on every store: what ``server_stored(principal=...)`` may return, and what ``Sessions`` takes.

A principal is a non-empty str of valid UTF-8, without NUL, at most ``MAX_PRINCIPAL_BYTES`` (1024) bytes. Each
of the reviewer's findings is a case here: a 70,000-character principal (MySQL truncated it, so "log out
everywhere" missed the session), NUL and one over PostgreSQL's index-row limit (a save failing as
``store_unavailable``: 200, no cookie, an outage in the log), a lone surrogate (a bare UnicodeEncodeError, a 500,
from the SQL stores) and the empty string (saved, but never listed or ended). Each is now a StateEncodeError at
the application's assignment, with no row written and no ``Set-Cookie``; the same principals are
ConfigurationError for ``Sessions``; a principal of exactly the limit is stored, listed, counted and ended
losslessly on every store.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest

import clientstate.wsgi
from clientstate import (
    AsyncSessions,
    Binding,
    ConfigurationError,
    ErrorKind,
    Sessions,
    State,
    StateEncodeError,
    StateSlot,
    get_slot,
    server_stored,
)
from clientstate._core.store import Store
from clientstate._handlers.server_stored import MAX_PRINCIPAL_BYTES, ServerStored, principal_problem
from clientstate.testing import FrozenClock, fixed_keyring
from tests.server.conftest import Driver
from tests.server.kits import StoreKit

T0 = 1_700_000_000


class Account(msgspec.Struct):
    user: str | None
    visits: int = 0
    domain: str = ""
    #: The login name as the client sent it, bytes (a str field cannot hold a lone surrogate: msgspec refuses to
    #: encode it, so a principal with one comes from a function like this one's, which decodes it).
    login: bytes | None = None


ACCOUNT = State("account", Account)


def principal_of(state: Account) -> str | None:
    return state.user if state.login is None else state.login.decode("utf-8", "surrogateescape")


def named(name: str) -> Account:
    """The state of a user who logged in as ``name`` (a lone U+DC80..U+DCFF is a byte that is not UTF-8)."""
    return Account(None, login=name.encode("utf-8", "surrogateescape"))


def handler(store: Store, principal: Callable[[Account], Any] = principal_of, **options: Any) -> ServerStored:
    return server_stored(store, fixed_keyring(1), name="sid", principal=principal, **options)


#: A principal of exactly MAX_PRINCIPAL_BYTES bytes of UTF-8: two-, four- and one-byte characters, and the
#: characters a store could treat specially (Redis hash-tag braces, SQL quotes and wildcards, a backslash).
_HEAD = "ü" * 300 + "😀" * 100 + "{a}'%_\\\"; -- x"
AT_LIMIT = _HEAD + "y" * (MAX_PRINCIPAL_BYTES - len(_HEAD.encode()))

#: The reviewer's four findings, and a principal one byte over the limit (1025 bytes in 513 characters).
BAD = {
    "70000_chars": "x" * 70_000,
    "nul": "a\x00b",
    "over_postgres_index_row": "é" * 1400,
    "lone_surrogate": "\udcff",
    "empty": "",
    "one_byte_over": "a" + "ü" * 512,
}


def test_the_rule_and_its_limit() -> None:
    assert len(AT_LIMIT.encode()) == MAX_PRINCIPAL_BYTES == 1024
    assert principal_problem(AT_LIMIT) is None
    assert principal_problem("ada") is None
    assert principal_problem("x" * 1024) is None
    assert principal_problem(BAD["70000_chars"]) == (
        "it is 70000 characters, over the 1024-byte limit (MAX_PRINCIPAL_BYTES)"
    )
    assert principal_problem(BAD["nul"]) == "it holds NUL (U+0000 at index 1), which PostgreSQL cannot store"
    assert principal_problem(BAD["over_postgres_index_row"]) == (
        "it is 1400 characters, over the 1024-byte limit (MAX_PRINCIPAL_BYTES)"
    )
    assert principal_problem(BAD["lone_surrogate"]) == (
        "it holds a lone surrogate (U+DCFF at index 0), which is not valid UTF-8"
    )
    assert principal_problem(BAD["empty"]) == "it is empty"
    assert principal_problem(BAD["one_byte_over"]) == (
        "it is 1025 bytes of UTF-8, over the 1024-byte limit (MAX_PRINCIPAL_BYTES)"
    )
    assert principal_problem("x" * 1025) == "it is 1025 characters, over the 1024-byte limit (MAX_PRINCIPAL_BYTES)"
    assert principal_problem(b"ada") == "it is a bytes, not a str"
    assert principal_problem(None) == "it is a NoneType, not a str"


# --- through the WSGI middleware: the application's line gets the error; no row, no Set-Cookie ----------------


def call(app: Any, cookie: str | None = None, body: str = "") -> tuple[str, list[tuple[str, str]], bytes]:
    """One WSGI request to ``app``: (status line, headers, body)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/login", "SERVER_NAME": "x", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body.encode("utf-8", "surrogatepass")),
        "CONTENT_LENGTH": str(len(body.encode("utf-8", "surrogatepass"))),
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        seen[:] = [status, headers]
        return lambda data: None

    chunks: Iterable[bytes] = app(environ, start_response)
    content = b"".join(chunks)
    return seen[0], seen[1], content


def login_app(refused: list[StateEncodeError]) -> Any:
    """A login view: the user name comes from the request body (JSON), as an application's would."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        import json

        user = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))["user"]
        slot = get_slot(environ, ACCOUNT)
        try:
            slot.state = named(user)
        except StateEncodeError as exc:  # the assignment is the line that fails: the view answers 400
            refused.append(exc)
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"bad user name"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"welcome"]

    return app


def set_cookies(headers: list[tuple[str, str]]) -> list[str]:
    return [value for name, value in headers if name.lower() == "set-cookie"]


def as_json(user: str) -> str:
    """``{"user": ...}`` as a client sends it: a lone surrogate as its ``\\udcff`` escape (json.loads revives it)."""
    import json

    return json.dumps({"user": user})


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_principal_is_refused_at_assignment(kit: StoreKit, store: Store, case: str) -> None:
    refused: list[StateEncodeError] = []
    app = clientstate.wsgi.setup(ACCOUNT, handler(store), login_app(refused), clock=FrozenClock(T0))
    status, headers, body = call(app, body=as_json(BAD[case]))
    assert (status, body, set_cookies(headers)) == ("400 Bad Request", b"bad user name", [])
    (error,) = refused
    assert error.state_name == "account"
    assert str(error).startswith("state 'account' cannot be encoded: its principal (server_stored(principal=...) ")
    assert f": {principal_problem(BAD[case])}. A principal is a non-empty str" in str(error)
    assert kit.rows(store) == 0
    # A good name on the same store still logs in: the refusal left nothing behind.
    status, headers, _ = call(app, body=as_json("ada"))
    assert status == "200 OK"
    assert len(set_cookies(headers)) == 1
    assert kit.rows(store) == 1
    assert Sessions(store).count("ada", T0) == 1


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_logged_in_session_given_a_bad_principal_keeps_its_row(
    kit: StoreKit, store: Store, driver: Driver, case: str
) -> None:
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    _, lines = driver.request(binding, None, lambda slot: setattr(slot, "state", Account("ada")))
    cookie = lines[0].split(";", 1)[0]

    def rename(slot: StateSlot[Account]) -> None:
        with pytest.raises(StateEncodeError, match="its principal"):
            slot.state = named(BAD[case])
        assert slot.state == Account("ada")  # the refused value was never taken

    _, lines = driver.request(binding, cookie, rename)
    assert lines == []
    assert kit.rows(store) == 1
    assert Sessions(store).count("ada", T0) == 1
    again, _ = driver.request(binding, cookie)
    assert again.state == Account("ada")


def test_a_lone_surrogate_in_a_str_field_does_not_even_encode(kit: StoreKit, store: Store) -> None:
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))

    def assign(slot: StateSlot[Account]) -> None:
        with pytest.raises(StateEncodeError, match="surrogates not allowed"):
            slot.state = Account("\udcff")

    assert Driver("sync").request(binding, None, assign)[1] == []
    assert kit.rows(store) == 0


# --- a principal of exactly the limit: stored, found, listed, counted and ended losslessly ----------------------


def test_a_principal_at_the_limit_round_trips(kit: StoreKit, store: Store, driver: Driver) -> None:
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    _, lines = driver.request(binding, None, lambda slot: setattr(slot, "state", Account(AT_LIMIT)))
    cookie = lines[0].split(";", 1)[0]
    driver.request(binding, None, lambda slot: setattr(slot, "state", Account(AT_LIMIT[:-1])))
    assert kit.rows(store) == 2

    slot, lines = driver.request(binding, cookie)
    assert (slot.error, slot.state, lines) == (None, Account(AT_LIMIT), [])
    sid = slot.loaded.session.record.sid
    raw = kit.raw(store, sid)
    assert raw is not None
    assert raw.principal == AT_LIMIT  # the row holds it byte for byte (MySQL used to cut it, PostgreSQL to refuse)

    sessions = Sessions(store)
    (info,) = sessions.list(AT_LIMIT, T0)
    assert info.handle == slot.session_handle
    assert sessions.count(AT_LIMIT, T0) == 1
    assert sessions.count(AT_LIMIT[:-1], T0) == 1  # another principal, though MySQL's index holds a 255-byte prefix
    assert sessions.count(AT_LIMIT[:255], T0) == 0
    assert sessions.end(AT_LIMIT) == 1
    assert sessions.count(AT_LIMIT, T0) == 0
    ended, lines = driver.request(binding, cookie)
    assert ended.error is not None
    assert ended.error.kind is ErrorKind.UNKNOWN_SESSION
    assert sessions.count(AT_LIMIT[:-1], T0) == 1
    assert sessions.end(AT_LIMIT[:-1]) == 1


def test_one_byte_over_the_limit_is_refused(kit: StoreKit, store: Store) -> None:
    over = AT_LIMIT + "z"
    assert len(over.encode()) == MAX_PRINCIPAL_BYTES + 1
    refused: list[StateEncodeError] = []
    app = clientstate.wsgi.setup(ACCOUNT, handler(store), login_app(refused), clock=FrozenClock(T0))
    status, headers, _ = call(app, body=as_json(over))
    assert (status, set_cookies(headers), kit.rows(store)) == ("400 Bad Request", [], 0)
    assert "it is 1025 bytes of UTF-8, over the 1024-byte limit" in str(refused[0])
    with pytest.raises(ConfigurationError, match="1025 bytes of UTF-8"):
        Sessions(store).count(over, T0)


# --- a state changed in place after its assignment: refused at the save, as a state that no longer encodes -----


def test_a_principal_changed_in_place_fails_the_save_as_an_encoding_does(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))

    def nul_in_place(slot: StateSlot[Account]) -> None:
        slot.state = Account("ada")
        assert slot.state is not None
        slot.state.user = "a\x00b"

    def not_encodable_in_place(slot: StateSlot[Account]) -> None:
        slot.state = Account("ada")
        assert slot.state is not None
        slot.state.visits = "many"  # type: ignore[assignment]

    for act, match in ((nul_in_place, "its principal .* holds NUL"), (not_encodable_in_place, "Expected `int`")):
        with pytest.raises(StateEncodeError, match=match):
            driver.request(binding, None, act)
    assert kit.rows(store) == 0

    _, lines = driver.request(binding, None, lambda slot: setattr(slot, "state", Account("ada")))
    cookie = lines[0].split(";", 1)[0]

    def surrogate_in_place(slot: StateSlot[Account]) -> None:  # the loaded state itself, never assigned
        assert slot.state is not None
        slot.state.login = b"\xff"

    with pytest.raises(StateEncodeError, match="lone surrogate"):
        driver.request(binding, cookie, surrogate_in_place)
    assert kit.rows(store) == 1
    assert Sessions(store).count("ada", T0) == 1
    again, _ = driver.request(binding, cookie)
    assert again.state == Account("ada")


def test_the_wsgi_middleware_raises_it_from_start_response(kit: StoreKit, store: Store) -> None:
    """In place after the assignment: start_response raises, as for a state that no longer encodes."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        slot = get_slot(environ, ACCOUNT)
        slot.state = Account("ada")
        assert slot.state is not None
        slot.state.user = ""
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = clientstate.wsgi.setup(ACCOUNT, handler(store), app, clock=FrozenClock(T0))
    with pytest.raises(StateEncodeError, match=r"its principal .*: it is empty"):
        call(wrapped)
    assert kit.rows(store) == 0


# --- what principal= returns, besides strs ---------------------------------------------------------------------


def test_none_is_anonymous_and_a_non_str_is_a_configuration_error(kit: StoreKit, store: Store) -> None:
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    driver = Driver("sync")
    _, lines = driver.request(binding, None, lambda slot: setattr(slot, "state", Account(None)))
    assert len(lines) == 1
    assert kit.rows(store) == 1
    slot, _ = driver.request(binding, lines[0].split(";", 1)[0])
    raw = kit.raw(store, slot.loaded.session.record.sid)
    assert raw is not None
    assert raw.principal is None  # anonymous

    numeric = Binding(ACCOUNT, handler(store, principal=lambda s: s.visits), FrozenClock(T0))

    def assign(slot: StateSlot[Account]) -> None:
        with pytest.raises(ConfigurationError, match=r"returned a int; it must return a str or None"):
            slot.state = Account("ada", visits=7)

    assert driver.request(numeric, None, assign)[1] == []
    assert kit.rows(store) == 1


def test_a_merge_that_makes_a_bad_principal_is_not_saved(
    kit: StoreKit, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two requests each change one part of a composite principal, each valid alone: the merge is not saved."""
    principal: Callable[[Account], Any] = lambda s: None if s.user is None else s.user + s.domain  # noqa: E731
    binding = Binding(ACCOUNT, handler(store, principal, rotate_on_principal_change=False), FrozenClock(T0))
    driver = Driver("sync")
    _, lines = driver.request(binding, None, lambda slot: setattr(slot, "state", Account("ada", domain="@x")))
    cookie = lines[0].split(";", 1)[0]
    one = driver.begin(binding, cookie)
    two = driver.begin(binding, cookie)
    one.state = Account("a" * 1000, domain="@x")
    two.state = Account("ada", domain="@" + "b" * 100)
    assert driver.finish(binding, one) == []  # written in place (no rotation on a change of principal)
    with caplog.at_level(logging.WARNING, logger="clientstate"):
        lines = driver.finish(binding, two)  # conflicts, re-reads, merges its domain onto one's user: 1101 chars
    assert lines == []
    assert "not saved: merged with a concurrent write" in caplog.text
    assert "it is 1101 characters, over the 1024-byte limit" in caplog.text
    sessions = Sessions(store)
    assert sessions.count("a" * 1000 + "@x", T0) == 1
    assert sessions.count("ada@" + "b" * 100, T0) == 0


# --- Sessions and AsyncSessions refuse the same principals: ConfigurationError, never a bare UnicodeError --------


@pytest.mark.parametrize("case", sorted(BAD))
def test_sessions_refuse_what_no_session_can_have(store: Store, case: str) -> None:
    principal = BAD[case]
    expected = principal_problem(principal)
    assert expected is not None
    sessions, waiting = Sessions(handler(store)), AsyncSessions(handler(store))
    calls: list[Callable[[], Any]] = [
        lambda: sessions.list(principal, T0),
        lambda: sessions.count(principal, T0),
        lambda: sessions.end(principal),
        lambda: asyncio.run(waiting.list(principal, T0)),
        lambda: asyncio.run(waiting.count(principal, T0)),
        lambda: asyncio.run(waiting.end(principal)),
    ]
    for attempt in calls:
        with pytest.raises(ConfigurationError) as caught:
            attempt()
        assert not isinstance(caught.value, UnicodeError)
        assert str(caught.value).startswith("principal ")
        assert f"is not one a session can have: {expected} (a principal is a non-empty str" in str(caught.value)


def test_sessions_refuse_a_non_str(store: Store) -> None:
    for wrong in (None, b"ada", 7):
        with pytest.raises(ConfigurationError, match=f"it is a {type(wrong).__name__}, not a str"):
            Sessions(store).list(wrong, T0)  # type: ignore[arg-type]
