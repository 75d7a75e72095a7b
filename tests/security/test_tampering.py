"""Tampered tokens: bit flips, truncation, extension, and every non-canonical base64url spelling.

Each case asserts the exact error kind the documented reading order gives
(``clientstate._core.token``: length limit, base64url, version byte, layout, key id,
authentication), never just "some error", and never a loaded state.
"""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from clientstate._core.base64url import b64url_decode
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import fixed_keyring
from tests.security.support import (
    ACCOUNT,
    ALPHABET,
    OVERHEAD,
    T0,
    Account,
    b64url,
    expected_kind,
    is_canonical,
    kind,
    load,
    make_handler,
    mint,
    unb64url,
)

MALFORMED = ErrorKind.MALFORMED
AUTH_FAILED = ErrorKind.AUTHENTICATION_FAILED


def test_the_genuine_token_loads(mode: Mode) -> None:
    """The control for every case below: the untouched token loads."""
    handler = make_handler(mode)
    loaded = load(handler, mint(handler))
    assert loaded.error is None
    assert loaded.state == Account(1, "alice", ["admin"])


def test_every_single_bit_flip_is_rejected_with_the_kind_of_its_position(mode: Mode) -> None:
    handler = make_handler(mode)
    raw = unb64url(mint(handler))
    wrong: list[tuple[int, object]] = []
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        position = bit // 8
        want = (
            ErrorKind.UNSUPPORTED_VERSION if position == 0 else ErrorKind.UNKNOWN_KEY if position == 1 else AUTH_FAILED
        )
        got = kind(load(handler, b64url(bytes(flipped))))
        if got is not want:
            wrong.append((bit, got))
    assert wrong == []
    assert len(raw) * 8 > 8 * OVERHEAD[mode]  # the payload bits were covered too


def test_every_single_bit_flip_of_the_text_is_rejected(mode: Mode) -> None:
    """Flip each of the 7 bits of each character: non-alphabet results are malformed, the rest fail by position."""
    keyring = fixed_keyring(1)
    handler = make_handler(mode, keyring)
    token = mint(handler)
    seen: set[ErrorKind] = set()
    for index, char in enumerate(token):
        for bit in range(7):
            text = token[:index] + chr(ord(char) ^ (1 << bit)) + token[index + 1 :]
            want = expected_kind(unb64url(text), mode, keyring) if is_canonical(text) else MALFORMED
            got = kind(handler.load_value(ACCOUNT, text, T0))
            assert got is want, (index, bit, text)
            seen.add(got)
    assert seen == {MALFORMED, ErrorKind.UNSUPPORTED_VERSION, ErrorKind.UNKNOWN_KEY, AUTH_FAILED}


def test_every_prefix_is_malformed_or_fails_authentication(mode: Mode) -> None:
    handler = make_handler(mode)
    token = mint(handler)
    codec = handler.codec(ACCOUNT)
    counts = {MALFORMED: 0, AUTH_FAILED: 0}
    for length in range(len(token)):
        prefix = token[:length]
        decodable = is_canonical(prefix) and len(unb64url(prefix)) >= OVERHEAD[mode]
        want = AUTH_FAILED if decodable else MALFORMED
        opened = codec.open(prefix)
        assert getattr(opened, "kind", None) is want, (length, opened)
        if length:  # through a Cookie header ("cs=" alone is no cookie, checked elsewhere)
            assert kind(load(handler, prefix)) is want, length
        counts[want] += 1
    assert counts[MALFORMED] > 0
    assert counts[AUTH_FAILED] > 0


@pytest.mark.parametrize("extra", [b"\x00", b"\xff", b"\x00\x00", b"abc", b"\x01" * 40])
def test_appended_bytes_fail_authentication(mode: Mode, extra: bytes) -> None:
    handler = make_handler(mode)
    raw = unb64url(mint(handler))
    assert kind(load(handler, b64url(raw + extra))) is AUTH_FAILED


@pytest.mark.parametrize("suffix", ["A", "AA", "AAA", "AAAA", "Q", "QQ", "Ag", "-", "__", "_w"])
def test_appended_base64_characters_are_malformed_or_fail_authentication(mode: Mode, suffix: str) -> None:
    handler = make_handler(mode)
    text = mint(handler) + suffix
    want = AUTH_FAILED if is_canonical(text) else MALFORMED
    assert kind(load(handler, text)) is want


def _token_with_remainder(mode: Mode, remainder: int) -> tuple[ClientStored, str]:
    """A handler and a token whose length is ``remainder`` mod 4 (so its last character has unused bits)."""
    handler = make_handler(mode)
    for extra in range(8):
        token = mint(handler, Account(1, "a" * (1 + extra)))
        if len(token) % 4 == remainder:
            return handler, token
    raise AssertionError("no payload length gives that remainder")


@pytest.mark.parametrize(("remainder", "unused_bits"), [(2, 4), (3, 2)])
def test_changed_unused_low_bits_of_the_last_character_are_malformed(
    mode: Mode, remainder: int, unused_bits: int
) -> None:
    handler, token = _token_with_remainder(mode, remainder)
    last = ALPHABET.index(token[-1])
    assert last & ((1 << unused_bits) - 1) == 0  # canonical: the unused bits are zero
    variants = [token[:-1] + ALPHABET[last | low] for low in range(1, 1 << unused_bits)]
    for text in variants:
        # A lenient decoder (the standard library) reads the very same bytes ...
        assert unb64url(text) == unb64url(token)
        # ... but only the canonical spelling is a token.
        assert kind(load(handler, text)) is MALFORMED, text
    assert len(variants) == (1 << unused_bits) - 1


def _spellings(token: str) -> dict[str, str]:
    """Non-canonical spellings of ``token`` (same bytes for a lenient decoder, or junk inside)."""
    middle = len(token) // 2
    raw = unb64url(token)
    padded = token + "=" * (-len(token) % 4)
    out = {
        "padding-standard": padded if padded != token else token + "==",
        "padding-one": token + "=",
        "padding-two": token + "==",
        "padding-four": token + "====",
        "padding-inside": token[:middle] + "=" + token[middle:],
        "percent-encoded-padding": urllib.parse.quote(token + "==", safe=""),
        "percent-3D-appended": token + "%3D",
        "percent-encoded-char": token[:middle] + "%" + format(ord(token[middle]), "02X") + token[middle + 1 :],
        "standard-alphabet": base64.b64encode(raw).decode("ascii").rstrip("="),
        "standard-alphabet-padded": base64.b64encode(raw).decode("ascii"),
        "non-ascii-e-acute": token[:middle] + "é" + token[middle + 1 :],
        "non-ascii-fullwidth-A": token[:middle] + "\uff21" + token[middle + 1 :],
        "non-ascii-cyrillic-A": token[:middle] + "\u0410" + token[middle + 1 :],
        "non-ascii-arabic-digit": token[:middle] + "\u0663" + token[middle + 1 :],
        "nul": token[:middle] + "\x00" + token[middle:],
        "latin1-byte": token + "\xff",
    }
    for label, char in {"plus": "+", "slash": "/", "bang": "!", "dot": ".", "tilde": "~", "quote": '"'}.items():
        out[f"{label}-inside"] = token[:middle] + char + token[middle:]
        out[f"{label}-replacing"] = token[:middle] + char + token[middle + 1 :]
    for label, char in {"space": " ", "newline": "\n", "tab": "\t", "cr": "\r", "crlf": "\r\n"}.items():
        out[f"{label}-inside"] = token[:middle] + char + token[middle:]
        out[f"{label}-every-8"] = char.join(token[i : i + 8] for i in range(0, len(token), 8))
    return out


def _token_with_url_specials(mode: Mode) -> tuple[ClientStored, str]:
    """A handler and a token containing both ``-`` and ``_`` (so standard-alphabet re-encoding differs)."""
    handler = make_handler(mode)
    for user_id in range(1000):
        token = mint(handler, Account(user_id, "alice"))
        if "-" in token and "_" in token and len(token) % 4:
            return handler, token
    raise AssertionError("no token with both - and _")


def test_non_canonical_spellings_are_malformed(mode: Mode) -> None:
    handler, token = _token_with_url_specials(mode)
    codec = handler.codec(ACCOUNT)
    spellings = _spellings(token)
    assert spellings["standard-alphabet"] != token
    for label, text in spellings.items():
        assert b64url_decode(text) is None, label
        opened = codec.open(text)
        assert getattr(opened, "kind", None) is MALFORMED, (label, opened)


@pytest.mark.parametrize("edge", [" ", "\t", " \t "])
def test_spaces_and_tabs_around_a_cookie_value_are_trimmed_by_the_parser(mode: Mode, edge: str) -> None:
    """Documented parsing rule: spaces and tabs around values are trimmed; the token itself stays strict."""
    handler = make_handler(mode)
    token = mint(handler)
    assert kind(load(handler, f"{edge}{token}{edge}")) is None
    assert getattr(handler.codec(ACCOUNT).open(f"{edge}{token}"), "kind", None) is MALFORMED


@pytest.mark.parametrize("edge", ["\n", "\r", "\x0b", "\x0c", "\x00", "\u00a0"])
def test_other_whitespace_around_a_cookie_value_is_malformed(mode: Mode, edge: str) -> None:
    handler = make_handler(mode)
    token = mint(handler)
    assert kind(load(handler, f"{token}{edge}")) is MALFORMED
    assert kind(load(handler, f"{edge}{token}")) is MALFORMED
