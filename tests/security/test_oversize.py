"""Oversized cookie values are ``too_large`` before any base64 or cryptographic work.

The proof is structural, not a timing: base64 decoding (``b64url_decode`` and
``binascii.a2b_base64``), HMAC, AES-GCM and the HKDF salt subkey are wrapped by
tripwires that raise if called (fixture ``crypto_spy``) while the oversized
request is served.
"""

from __future__ import annotations

import pytest

from clientstate import RequestCookies
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from tests.security.support import (
    ACCOUNT,
    T0,
    CryptoSpy,
    both_middlewares,
    call_asgi,
    call_wsgi,
    kind,
    load,
    make_handler,
    mint,
)

MB = 1_000_000
LIMIT = 4096 - len("cs")  # longest value accepted for cookie "cs": name plus value <= 4096 bytes

OVERSIZED_HEADERS = {
    "1MB-alphabet": "cs=" + "A" * MB,
    "1MB-after-a-real-looking-prefix": "cs=AQE" + "x" * MB,
    "1MB-quoted": 'cs="' + "A" * MB + '"',
    "1MB-latin1": "cs=" + "\xe9" * MB,
    "1MB-junk-characters": "cs=" + "%=!+/ \t" * (MB // 7),
    "one-over-the-limit": "cs=" + "A" * (LIMIT + 1),
    "among-other-cookies": "a=1; cs=" + "A" * MB + "; b=2",
}


#: What both middlewares answer: the app ran (200, error visible) and the bad cookie is cleared.
TOO_LARGE_RESPONSE = (
    200,
    [
        ("content-type", "text/plain"),
        ("vary", "Cookie"),
        ("set-cookie", "cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"),
        ("cache-control", "private"),
    ],
    b"too_large -",
)


@pytest.mark.parametrize("header", OVERSIZED_HEADERS.values(), ids=OVERSIZED_HEADERS.keys())
def test_oversized_value_is_too_large_without_decoding_through_request_cookies(
    mode: Mode, crypto_spy: CryptoSpy, header: str
) -> None:
    handler = make_handler(mode)
    handler.codec(ACCOUNT)  # build the codec (its HMAC / AES-GCM objects) before arming
    crypto_spy.arm()
    loaded = handler.load(ACCOUNT, RequestCookies([header]), T0)
    assert kind(loaded) is ErrorKind.TOO_LARGE
    assert crypto_spy.calls == []


@pytest.mark.parametrize("header", OVERSIZED_HEADERS.values(), ids=OVERSIZED_HEADERS.keys())
def test_oversized_value_is_too_large_without_decoding_through_wsgi_and_asgi(
    mode: Mode, crypto_spy: CryptoSpy, header: str
) -> None:
    handler = make_handler(mode)
    handler.codec(ACCOUNT)
    wsgi_app, asgi_app, ran = both_middlewares(handler)
    crypto_spy.arm()
    from_wsgi = call_wsgi(wsgi_app, header)
    from_asgi = call_asgi(asgi_app, [header.encode("latin-1")])
    assert crypto_spy.calls == []
    assert from_wsgi == from_asgi == TOO_LARGE_RESPONSE
    assert ran == ["wsgi", "asgi"]


def test_the_tripwires_do_fire_on_a_normal_load(mode: Mode, crypto_spy: CryptoSpy) -> None:
    """Control for the tests above: an ordinary token does go through decoding and cryptography."""
    handler = make_handler(mode)
    token = mint(handler)
    crypto_spy.arm()
    with pytest.raises(AssertionError, match="tripwire"):
        load(handler, token)
    crypto_spy.disarm()
    crypto_spy.calls.clear()
    assert kind(load(handler, token)) is None
    assert "b64url_decode" in crypto_spy.calls
    assert "binascii.a2b_base64" in crypto_spy.calls
    assert ("HMAC.verify" if mode is Mode.AUTHENTICATED else "AESGCM.decrypt") in crypto_spy.calls


def test_value_of_exactly_the_limit_is_decoded_not_too_large(mode: Mode) -> None:
    """The limit is name plus value <= 4096 bytes: 4094 characters for "cs" are read (as zero bytes)."""
    handler = make_handler(mode)
    assert handler.codec(ACCOUNT).max_length == LIMIT
    assert kind(load(handler, "A" * LIMIT)) is ErrorKind.UNSUPPORTED_VERSION
    assert kind(load(handler, "A" * (LIMIT + 1))) is ErrorKind.TOO_LARGE


def test_the_limit_follows_the_cookie_name_length(mode: Mode) -> None:
    handler = make_handler(mode, name="__Host-session")
    limit = 4096 - len("__Host-session")
    assert kind(load(handler, "A" * (limit + 1))) is ErrorKind.TOO_LARGE
    assert kind(load(handler, "A" * (limit - 2))) is ErrorKind.UNSUPPORTED_VERSION


def test_a_huge_header_of_other_cookies_does_not_hide_a_valid_one(mode: Mode) -> None:
    handler = make_handler(mode)
    token = mint(handler)
    header = "; ".join(f"c{i}=" + "v" * 95 for i in range(MB // 100)) + f"; cs={token}"
    assert len(header) > MB
    loaded = handler.load(ACCOUNT, RequestCookies([header]), T0)
    assert kind(loaded) is None
    assert loaded.state is not None
