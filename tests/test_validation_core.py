"""Validation found by an adversarial review: every bad argument is a clear, specific error at the caller's line."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import math
import pkgutil
import subprocess
import sys
from typing import Annotated, Any, Literal

import msgspec
import pytest

import clientstate
from clientstate import (
    ConfigurationError,
    CookieAttributes,
    ErrorKind,
    Keyring,
    Migration,
    RequestCookies,
    Sessions,
    State,
    StateEncodeError,
    client_stored,
    sudo,
)
from clientstate._core.chunks import chunk_index, join_chunks
from clientstate._core.cookies import MAX_COOKIE_NAME, validate_cookie_name
from clientstate._core.state import fingerprint
from clientstate.stores import MemoryStore
from clientstate.testing import fixed_keyring

# --- State ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing a required argument: 'name'"),
        (("a",), {}, "missing a required argument: 'type'"),
        (("a", int, 2), {}, "too many positional arguments"),
        (("a", int), {"versoin": 2}, r"unknown argument 'versoin' \(did you mean 'version'\?\)"),
        (("a", None), {}, "type None cannot hold a state"),
        ((3, int), {}, "state name must be"),
        (("a", int), {"version": True}, "schema version must be an integer"),
        (("a", int), {"version": "1"}, "schema version must be an integer"),
        (("a", int), {"migrations": 5}, "migrations must be an iterable of Migration"),
        (("a", object), {}, "not supported by msgspec"),
    ],
)
def test_state_constructor_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        State(*args, **kwargs)


def test_a_value_that_contains_itself_is_a_state_encode_error() -> None:
    listed: State[Any] = State("l", list[Any])
    cycle: list[Any] = []
    cycle.append(cycle)
    mapped: State[Any] = State("m", dict[str, Any])
    loop: dict[str, Any] = {}
    loop["self"] = loop
    for state, value in ((listed, cycle), (mapped, loop)):
        with pytest.raises(StateEncodeError, match="contains itself"):
            state.encode(value)
        with pytest.raises(StateEncodeError, match="contains itself"):
            state.changed(None, value)


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


class Node(msgspec.Struct, tag="n"):
    name: Annotated[str, msgspec.Meta(max_length=20, pattern="^[a-z]+$")]
    count: Annotated[int, msgspec.Meta(ge=0)] = 0
    kids: list[Node] = []
    color: Color | None = None
    mode: Literal["a", 1] = "a"
    tags: frozenset[str] = frozenset()
    extra: dict[str, tuple[int, float]] = {}


def test_the_fingerprint_is_pinned() -> None:
    # Pinned: a change here invalidates every stored server-side record of every application.
    assert fingerprint(Node).hex() == "d7d77dd60b5a1098"
    assert fingerprint(int).hex() == "8845b8c009186f9b"
    assert fingerprint(dict[str, int]).hex() == "cdd59af46009b250"


class Renamed(msgspec.Struct, tag="n"):
    """Node's shape under another class name, with other defaults."""

    name: Annotated[str, msgspec.Meta(max_length=20, pattern="^[a-z]+$")]
    count: Annotated[int, msgspec.Meta(ge=0)] = 5
    kids: list[Renamed] = []
    color: Color | None = Color.RED
    mode: Literal["a", 1] = 1
    tags: frozenset[str] = frozenset({"x"})
    extra: dict[str, tuple[int, float]] = {}


def test_the_fingerprint_follows_shape_not_names_or_defaults() -> None:
    assert fingerprint(Renamed) == fingerprint(Node)
    assert fingerprint(Annotated[int, msgspec.Meta(ge=1)]) != fingerprint(Annotated[int, msgspec.Meta(ge=0)])
    assert fingerprint(Literal[1]) != fingerprint(Literal["1"])
    assert fingerprint(list[int]) != fingerprint(set[int])


def test_the_fingerprint_is_built_without_repr_of_msgspec_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    # A msgspec release that changes how its inspect objects print must not change fingerprints.
    monkeypatch.setattr(msgspec.Struct, "__repr__", lambda self: f"<changed {id(self)}>", raising=False)
    assert fingerprint(Node).hex() == "d7d77dd60b5a1098"


# --- Sessions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf, True, "1700000000"])
def test_sessions_refuse_a_now_that_is_not_a_finite_number(now: Any) -> None:
    sessions = Sessions(MemoryStore())
    for call in (lambda: sessions.list("ada", now), lambda: sessions.count("ada", now),
                 lambda: sessions.sweep(10, now)):
        with pytest.raises(ConfigurationError, match="now must be a finite number"):
            call()


def test_sessions_validate_their_target_clock_and_keywords() -> None:
    with pytest.raises(ConfigurationError, match="keeps state in cookies"):
        Sessions(client_stored(fixed_keyring(1), name="cs"))
    with pytest.raises(ConfigurationError, match="needs a server_stored handler or a store, got str"):
        Sessions("memory://")
    with pytest.raises(ConfigurationError, match="clock must be a callable"):
        Sessions(MemoryStore(), clock=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"unknown argument 'clok' \(did you mean 'clock'\?\)"):
        Sessions(MemoryStore(), clok=lambda: 0.0)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="clock's reading must be a finite number"):
        Sessions(MemoryStore(), clock=lambda: math.nan).count("ada")
    with pytest.raises(ConfigurationError, match=r"principal .. is not one a session can have: it is empty"):
        Sessions(MemoryStore()).count("")
    assert Sessions(MemoryStore(), clock=lambda: 1_700_000_000.0).count("ada") == 0


def test_async_sessions_share_the_checks() -> None:
    import asyncio

    from clientstate import AsyncSessions

    sessions = AsyncSessions(MemoryStore())
    with pytest.raises(ConfigurationError, match="now must be a finite number"):
        asyncio.run(sessions.count("ada", math.nan))
    assert asyncio.run(sessions.count("ada", 1_700_000_000)) == 0
    assert Sessions.__mro__[1] is AsyncSessions.__mro__[1]  # one implementation of the plans


# --- keys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((5,), {}, "must be an environment variable name"),
        (("A=B",), {}, "must be an environment variable name"),
        ((), {"environ": ["CLIENTSTATE_KEYS"]}, "environ must be a mapping"),
        ((), {"environ": {"CLIENTSTATE_KEYS": b"1:abc"}}, "must hold text"),
        ((), {"environ": {}, "for_testing": 1}, "for_testing must be True or False"),
        ((), {"enviorn": {}}, r"did you mean 'environ'\?"),
    ],
)
def test_keyring_from_env_wrong_types(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Keyring.from_env(*args, **kwargs)


# --- cookies ----------------------------------------------------------------------------------------


def test_very_long_cookie_names_are_refused() -> None:
    assert validate_cookie_name("c" * MAX_COOKIE_NAME) == "c" * MAX_COOKIE_NAME
    with pytest.raises(ConfigurationError, match="over the 200 accepted"):
        validate_cookie_name("c" * (MAX_COOKIE_NAME + 1))
    with pytest.raises(ConfigurationError, match="over the 200 accepted"):
        client_stored(fixed_keyring(1), name="c" * 3000)


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        (".example.com", "drop the leading dot and write 'example.com'"),
        ("example.com.", "trailing dot"),
        ("127.0.0.1", "an IP address or a port"),
        ("127.0.0.1:8080", "an IP address or a port"),
        ("example.com:443", "an IP address or a port"),
        ("[::1]", "an IP address or a port"),
        ("localhost", "a single label"),
        ("exa mple.com", "label 'exa mple'"),
        ("-a.example.com", "label '-a'"),
        ("a-.example.com", "label 'a-'"),
        ("a..example.com", "label ''"),
        ("bücher.example", "xn-- form"),
        ("x" * 64 + ".com", "1-63 ASCII"),
        (".".join(["a" * 60] * 5), "over the 253"),
        ("", "it is empty"),
        ("ex;ample.com", "label 'ex;ample'"),
        (5, "must be a str or None"),
    ],
)
def test_domain_attribute_syntax(domain: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CookieAttributes(domain=domain)


@pytest.mark.parametrize("domain", ["example.com", "Sub.Example.COM", "xn--bcher-kva.example", "a-b.co.uk", "1x.io"])
def test_valid_domains_are_accepted(domain: str) -> None:
    assert f"; Domain={domain}" in CookieAttributes(domain=domain).rest()


def test_check_cookie_size_is_gone() -> None:
    from clientstate._core import cookies

    assert not hasattr(cookies, "check_cookie_size")


# --- chunks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["١", "+1", " 1", "1 ", "01", "0", "1_0", "٣", "²", "-1", "12", ""])
def test_chunk_indices_are_ascii_digits_only(tail: str) -> None:
    assert chunk_index(tail, 12) is None  # "12" is one past the last index of 12 chunks
    handler = client_stored(fixed_keyring(1), name="cs", chunked=True, max_chunks=12)
    assert not handler.claims(f"cs.{tail}")


def test_chunk_index_accepts_what_chunk_name_writes() -> None:
    assert [chunk_index(str(i), 12) for i in range(1, 12)] == list(range(1, 12))
    handler = client_stored(fixed_keyring(1), name="cs", chunked=True, max_chunks=12)
    assert all(handler.claims(f"cs.{i}") for i in range(1, 12))


class Blob(msgspec.Struct):
    data: bytes


BLOB = State("blob", Blob)
NOW = 1_700_000_000


def test_unicode_digit_chunks_are_not_read_as_chunks() -> None:
    handler = client_stored(fixed_keyring(1), name="cs", chunked=True, max_chunks=8)
    lines = handler.save(BLOB, clientstate.Loaded(), BLOB.encode(Blob(b"x" * 6000)), NOW)
    pairs = [line.split(";", 1)[0] for line in lines]
    assert [p.split("=", 1)[0] for p in pairs] == ["cs", "cs.1"]
    swapped = [pairs[0], "cs.١=" + pairs[1].split("=", 1)[1]]  # chunk 1 under an Arabic-Indic digit
    token, highest = join_chunks(RequestCookies(["; ".join(swapped)]), "cs", 8)
    assert isinstance(token, clientstate.LoadError)
    assert token.kind is ErrorKind.MALFORMED
    assert highest == 0


@pytest.mark.parametrize("planted", [2, 5, 7])
def test_a_planted_chunk_does_not_stop_stale_chunks_being_deleted(planted: int) -> None:
    handler = client_stored(fixed_keyring(1), name="cs", chunked=True, max_chunks=8)
    big = handler.save(BLOB, clientstate.Loaded(), BLOB.encode(Blob(b"x" * 6000)), NOW)
    pairs = [line.split(";", 1)[0] for line in big]
    assert len(pairs) == 2
    loaded = handler.load(BLOB, RequestCookies(["; ".join([*pairs, f"cs.{planted}=AAAA"])]), NOW)
    assert loaded.error is not None
    assert loaded.error.kind is ErrorKind.MALFORMED
    # The application writes a small state: every chunk the request carried is deleted, the planted one too.
    small = handler.save(BLOB, loaded, BLOB.encode(Blob(b"y")), NOW)
    deleted = {line.split("=", 1)[0] for line in small if "Max-Age=0" in line}
    assert deleted == {f"cs.{i}" for i in range(1, planted + 1)}
    # Or clears it: the cookie and every chunk up to the planted one go.
    cleared = handler.save(BLOB, loaded, None, NOW)
    assert {line.split("=", 1)[0] for line in cleared} == {"cs", *(f"cs.{i}" for i in range(1, planted + 1))}


# --- client_stored: two States with one name -----------------------------------------------------------


def test_two_different_states_with_one_name_on_one_handler_are_refused() -> None:
    handler = client_stored(fixed_keyring(1), name="cs")
    handler.prepare(State("account", dict[str, int]))
    handler.prepare(State("account", dict[str, int]))  # the same shape again: harmless
    handler.prepare(State("account", dict[str, int], version=2))  # another version: its tokens never authenticate
    upgraded = State("account", list[str], version=3,
                     migrations=[Migration(1, dict[str, int], lambda old: list(old))])
    handler.prepare(upgraded)  # a deploy's next schema, reading version 1 as version 1 was written: no clash
    with pytest.raises(ConfigurationError, match="another state named 'account' with a different type at schema "
                                                 "version 1; each would read the other's cookie"):
        handler.prepare(State("account", list[str]))
    with pytest.raises(ConfigurationError, match="at schema version 1"):
        handler.prepare(State("account", list[int], version=4, migrations=[Migration(1, list[str], list)]))


# --- modules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clientstate.wsgi", "clientstate.asgi"])
def test_wsgi_and_asgi_are_importable_modules(name: str) -> None:
    code = f"import {name} as m; from {name} import setup, StateMiddleware; print(m.setup is setup)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"
    module = importlib.import_module(name)
    assert getattr(clientstate, name.split(".")[1]) is module


PUBLIC = [
    "clientstate",
    *sorted(
        m.name for m in pkgutil.walk_packages(clientstate.__path__, "clientstate.")
        if not any(part.startswith("_") for part in m.name.split(".")[1:])
    ),
]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_a_docstring(name: str) -> None:
    module = importlib.import_module(name)
    missing = []
    for attribute in getattr(module, "__all__", ()):  # a package of modules only may have none
        value = getattr(module, attribute)
        if not (inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value)):
            continue  # constants and type aliases are documented by a #: comment beside them
        if not (getattr(value, "__doc__", None) or "").strip():
            missing.append(attribute)
    assert missing == []


# --- sudo -------------------------------------------------------------------------------------------


class Account(msgspec.Struct):
    user: str
    sudo_until: float | None = None


@dataclasses.dataclass
class Plain:
    user: str


def test_sudo_grant_and_is_active_refuse_bad_types() -> None:
    account = Account("ada")
    with pytest.raises(ConfigurationError, match="now must be a number"):
        sudo.grant(account, 60, "now")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="now must be a finite number"):
        sudo.grant(account, 60, math.nan)
    with pytest.raises(ConfigurationError, match="now must be a number"):
        sudo.is_active(account, True)
    with pytest.raises(ConfigurationError, match="sudo field must be a non-empty str"):
        sudo.is_active(account, NOW, field=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_window must be"):
        sudo.is_active(account, NOW, max_window="1h")  # type: ignore[arg-type]
    with pytest.raises(sudo.SudoStateError, match="has no field 'elevated_until'"):
        sudo.grant(account, 60, NOW, field="elevated_until")
    with pytest.raises(sudo.SudoStateError, match="has no field 'sudo_until'"):
        sudo.grant(Plain("ada"), 60, NOW)
    with pytest.raises(sudo.SudoStateError, match=r"a msgspec\.Struct, a dataclass or a dict"):
        sudo.revoke(["ada"])
    assert sudo.is_active(account, math.nan) is False  # a NaN clock is never elevated
    granted = sudo.grant(account, 60, NOW)
    assert sudo.is_active(granted, NOW + 59)
    assert not sudo.is_active(granted, NOW + 60)
