"""Every bad cookie reaches the application as an error value: no exception, no 500, through WSGI and ASGI.

For each hostile ``Cookie`` header the app still runs, answers 200, sees the
exact error kind, and the response clears the bad cookie, except for
``ambiguous`` (see the save rule in :mod:`clientstate._core.binding`).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientstate import RequestCookies
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from clientstate.testing import fixed_keyring
from tests.security.support import (
    ACCOUNT,
    ALICE,
    T0,
    Account,
    b64url,
    both_middlewares,
    call_asgi,
    call_wsgi,
    make_handler,
    mint,
    seal_inner,
    unb64url,
)

CLEARED = [
    ("content-type", "text/plain"),
    ("vary", "Cookie"),
    ("set-cookie", "cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"),
    ("cache-control", "private"),
]
UNTOUCHED = [("content-type", "text/plain"), ("vary", "Cookie")]


def _not_banned(value: Any, issued_at: int) -> bool:
    return bool(value.user_id != 666)


def hostile_headers(mode: Mode) -> dict[str, tuple[str, ErrorKind | None]]:
    """``label -> (Cookie header, expected kind or None for "no cookie")``."""
    handler = make_handler(mode)
    token = mint(handler)
    raw = unb64url(token)
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x10
    other_mode = Mode.ENCRYPTED if mode is Mode.AUTHENTICATED else Mode.AUTHENTICATED

    def inner(data: bytes) -> str:
        return seal_inner(handler, data)

    return {
        "tampered": (f"cs={b64url(bytes(flipped))}", ErrorKind.AUTHENTICATION_FAILED),
        "truncated": (f"cs={token[:20]}", ErrorKind.MALFORMED),
        "padded": (f"cs={token}==", ErrorKind.MALFORMED),
        "percent-encoded": (f"cs={token}%3D%3D", ErrorKind.MALFORMED),
        "standard-alphabet": ("cs=" + token.replace("-", "+").replace("_", "/") + "+/", ErrorKind.MALFORMED),
        "version-0": ("cs=" + b64url(b"\x00" + raw[1:]), ErrorKind.UNSUPPORTED_VERSION),
        "version-ff": ("cs=" + b64url(b"\xff" + raw[1:]), ErrorKind.UNSUPPORTED_VERSION),
        "other-mode": (f"cs={mint(make_handler(other_mode))}", ErrorKind.UNSUPPORTED_VERSION),
        "unknown-key": (f"cs={mint(make_handler(mode, fixed_keyring(9)))}", ErrorKind.UNKNOWN_KEY),
        "expired": (f"cs={mint(handler, issued_at=T0 - 10, expires_at=T0)}", ErrorKind.EXPIRED),
        "too-old": (f"cs={mint(handler, issued_at=T0 - 86_401)}", ErrorKind.EXPIRED),
        "future": (f"cs={mint(handler, issued_at=T0 + 61)}", ErrorKind.ISSUED_IN_FUTURE),
        "extreme-times": (f"cs={mint(handler, issued_at=2**64 - 1, expires_at=2**64 - 1)}", ErrorKind.ISSUED_IN_FUTURE),
        "reserved-flags": ("cs=" + inner(b"\xff" + struct.pack(">QQ", T0, T0 + 9)), ErrorKind.MALFORMED),
        "short-prelude": ("cs=" + inner(b"\x01" + struct.pack(">Q", T0)), ErrorKind.MALFORMED),
        "wrong-types": (
            "cs=" + inner(b"\x00" + struct.pack(">Q", T0) + b"\x81\xa7user_id\xa1x"),
            ErrorKind.STATE_DECODE,
        ),
        "banned-user": (f"cs={mint(handler, Account(666, 'mallory'))}", ErrorKind.REJECTED),
        "1MB": ("cs=" + "Q" * 1_000_000, ErrorKind.TOO_LARGE),
        "duplicate": (f"cs={token}; cs=JUNK", ErrorKind.AMBIGUOUS),
        "nul-bytes": ("cs=\x00\x00\x00\x00", ErrorKind.MALFORMED),
        "control-characters": ("cs=\x01\x7f\x1b[31m", ErrorKind.MALFORMED),
        "latin-1-bytes": ("cs=\xff\xfe\xe9\xa0", ErrorKind.MALFORMED),
        "unbalanced-quote": ('cs="', ErrorKind.MALFORMED),
        "only-separators": (";;;;; ; ;=;= =", None),
        "name-without-value": ("cs", None),
        "empty-name": ("=cs; =; = =", None),
        "empty-value": ("cs=", None),
        "garbage-around-a-valid-cookie": (f"\x00; ;=x; junk; cs={token}; \xff=\xff", None),
    }


@pytest.fixture
def middlewares(mode: Mode) -> tuple[Any, Any, list[str]]:
    return both_middlewares(make_handler(mode, expires_in=86_400, validate=_not_banned))


def test_every_hostile_cookie_reaches_the_app_as_its_error_kind(
    mode: Mode, middlewares: tuple[Any, Any, list[str]]
) -> None:
    wsgi_app, asgi_app, ran = middlewares
    cases = hostile_headers(mode)
    for label, (header, want) in cases.items():
        from_wsgi = call_wsgi(wsgi_app, header)
        from_asgi = call_asgi(asgi_app, [header.encode("latin-1")])
        if want is None:
            expected = (200, UNTOUCHED, b"- 1" if label.startswith("garbage") else b"- -")
        elif want is ErrorKind.AMBIGUOUS:
            expected = (200, UNTOUCHED, b"ambiguous -")
        else:
            expected = (200, CLEARED, f"{want.value} -".encode())
        assert from_wsgi == expected, label
        assert from_asgi == expected, label
    assert ran == ["wsgi", "asgi"] * len(cases)


def test_hostile_cookie_followed_by_a_new_state_is_replaced(mode: Mode) -> None:
    handler = make_handler(mode, expires_in=86_400, validate=_not_banned)
    wsgi_app, asgi_app, _ = both_middlewares(handler, new_state=lambda _: ALICE)
    for label, (header, _) in hostile_headers(mode).items():
        unchanged = label == "garbage-around-a-valid-cookie"  # ALICE loaded and ALICE returned
        want = ["content-type", "vary"] if unchanged else ["content-type", "vary", "set-cookie", "cache-control"]
        for status, headers, _ in (call_wsgi(wsgi_app, header), call_asgi(asgi_app, [header.encode("latin-1")])):
            assert status == 200
            assert [name for name, _ in headers] == want, label


@pytest.mark.parametrize("header", ["cs=\u2603", "\u2603=1; cs=\U0001f600", "cs=\ud800", "cs=" + "\u00e9" * 5000])
def test_wsgi_never_raises_even_for_characters_a_server_should_not_produce(mode: Mode, header: str) -> None:
    wsgi_app, _, ran = both_middlewares(make_handler(mode))
    status, _, body = call_wsgi(wsgi_app, header)
    assert status == 200
    assert body in {b"malformed -", b"too_large -", b"- -"}
    assert ran == ["wsgi"]


def test_error_details_never_echo_the_cookie_value(mode: Mode) -> None:
    """Details go to logs: they must not carry the (possibly secret or hostile) cookie value."""
    handler = make_handler(mode, expires_in=86_400, validate=_not_banned)
    for label, (header, want) in hostile_headers(mode).items():
        loaded = handler.load(ACCOUNT, RequestCookies([header]), T0)
        if want is None:
            continue
        assert loaded.error is not None
        for value in RequestCookies([header]).get_all("cs"):
            if len(value) >= 8:
                assert value not in loaded.error.detail, label
                assert value[:16] not in loaded.error.detail, label


def _near_limit_token(mode: Mode) -> str:
    """A genuine token without expires-at whose ``cs=<token>`` is within 11 bytes of the 4096 limit."""
    handler = make_handler(mode)
    for size in range(3100, 2900, -1):
        token = mint(handler, Account(1, "x" * size), issued_at=T0 - 100)
        if len("cs") + len(token) <= 4096:
            assert len("cs") + len(token) > 4096 - 11
            return token
    raise AssertionError("no near-limit size found")


def test_automatic_refresh_of_a_genuine_near_limit_cookie_does_not_make_the_middleware_raise(mode: Mode) -> None:
    """The application changes nothing; the library itself decides to re-issue (refresh due), and the
    refreshed token gains an expires-at (+8 bytes, the handler now has ``expires_in``). That must not
    turn a request carrying a valid cookie into an exception (a 500 on every request, with the cookie
    never replaced). Skipping the re-issue, or another documented outcome, is fine."""
    token = _near_limit_token(mode)
    handler = make_handler(mode, expires_in=3600, refresh_after=60)
    wsgi_app, asgi_app, ran = both_middlewares(handler)
    for status, _, body in (call_wsgi(wsgi_app, f"cs={token}"), call_asgi(asgi_app, [f"cs={token}".encode()])):
        assert (status, body) == (200, b"- 1")
    assert ran == ["wsgi", "asgi"]


_LATIN1 = st.characters(min_codepoint=0, max_codepoint=255)
_PIECES = st.one_of(
    st.text(_LATIN1, max_size=12),
    st.sampled_from(["cs=", "; ", ";", "=", '"', " ", "\t", "cs", "CS=", "a=1"]),
    st.just("<token>"),
)
_FIELDS = st.lists(st.lists(_PIECES, max_size=6).map("".join), max_size=3)


@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=["authenticated", "encrypted"])
@settings(max_examples=60, deadline=None, derandomize=True)
@given(fields=_FIELDS)
def test_wsgi_and_asgi_agree_on_any_cookie_fields(mode: Mode, fields: list[str]) -> None:
    """Property: for any header bytes, WSGI (fields joined with "; ") and ASGI (separate fields)
    run the app and give the same status, headers and body."""
    handler = make_handler(mode)
    token = mint(handler)
    fields = [f.replace("<token>", token) for f in fields]
    wsgi_app, asgi_app, ran = both_middlewares(handler)
    from_wsgi = call_wsgi(wsgi_app, "; ".join(fields) if fields else None)
    from_asgi = call_asgi(asgi_app, [f.encode("latin-1") for f in fields])
    assert from_wsgi == from_asgi
    assert from_wsgi[0] == 200
    assert ran == ["wsgi", "asgi"]
