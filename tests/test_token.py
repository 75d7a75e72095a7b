"""The token wire format: base64url strictness, layout, sealing and opening."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientstate import ErrorKind, Keyring, LoadError, generate_key
from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.token import (
    AUTHENTICATED_OVERHEAD,
    ENCRYPTED_OVERHEAD,
    Mode,
    Opened,
    Peeked,
    TokenCodec,
    associated_data,
    peek,
)
from clientstate.testing import fixed_keyring
from tests.security.support import seal_raw_inner

MODES = [Mode.AUTHENTICATED, Mode.ENCRYPTED]


def codec(
    mode: Mode,
    keyring: Keyring | None = None,
    cookie: str = "cs",
    state: str = "account",
    versions: tuple[int, ...] = (1,),
) -> TokenCodec:
    return TokenCodec(keyring or fixed_keyring(1), mode, cookie, state, versions, 4094)


# --- base64url -------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_b64url_round_trips_and_matches_the_standard_library(data: bytes) -> None:
    text = b64url_encode(data)
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert b64url_decode(text) == data


@given(st.text(max_size=60))
def test_b64url_decode_accepts_only_canonical_text(text: str) -> None:
    decoded = b64url_decode(text)
    if decoded is not None:
        assert b64url_encode(decoded) == text


@pytest.mark.parametrize(
    "text",
    [
        "QQ==",  # padding
        "QR",  # non-zero unused bits ("QQ" is the canonical form of b"A")
        "QUF",  # unused bits set on a 3-char tail ("QUE" is canonical)
        "Q",  # length 1 mod 4
        "QU+B",  # standard alphabet
        "QU/B",
        "QU B",
        "QU\nB",
        "QU%3D",
        "QUé",
        "QUFB!",
    ],
)
def test_b64url_decode_rejects_non_canonical_forms(text: str) -> None:
    assert b64url_decode(text) is None


def test_b64url_canonical_forms_decode() -> None:
    assert b64url_decode("QQ") == b"A"
    assert b64url_decode("QUE") == b"AA"
    assert b64url_decode("") == b""


# --- associated data ---------------------------------------------------------------------


def test_associated_data_is_pae_of_domain_names_and_version() -> None:
    ad = associated_data("cs", "account", 12)
    expected = struct.pack("<Q", 4)
    for item in (b"clientstate/v1", b"cs", b"account", b"12"):
        expected += struct.pack("<Q", len(item)) + item
    assert ad == expected


def test_associated_data_is_unambiguous_where_concatenation_is_not() -> None:
    assert associated_data("ab", "c", 1) != associated_data("a", "bc", 1)
    assert associated_data("a", "b1", 1) != associated_data("a", "b", 11)


# --- layout and sealing -------------------------------------------------------------------


def test_overheads_are_43_and_47_bytes() -> None:
    assert AUTHENTICATED_OVERHEAD == 43
    assert ENCRYPTED_OVERHEAD == 47
    for mode, overhead in ((Mode.AUTHENTICATED, 43), (Mode.ENCRYPTED, 47)):
        raw = b64url_decode(codec(mode).seal(b"", 0))
        assert raw is not None
        assert len(raw) == overhead
        raw_exp = b64url_decode(codec(mode).seal(b"", 0, 1))
        assert raw_exp is not None
        assert len(raw_exp) == overhead + 8


def test_authenticated_layout_is_readable_and_documented() -> None:
    token = codec(Mode.AUTHENTICATED).seal(b"\x81\xa1a\x01", 1_700_000_000, 1_700_000_600)
    raw = b64url_decode(token)
    assert raw is not None
    assert raw[0] == 0x01
    assert raw[1] == 1
    assert raw[2] == 0x01  # flags: expires-at present
    assert struct.unpack(">QQ", raw[3:19]) == (1_700_000_000, 1_700_000_600)
    assert raw[19:-32] == b"\x81\xa1a\x01"


def test_encrypted_layout_hides_the_payload() -> None:
    payload = b"secret-state-bytes"
    token = codec(Mode.ENCRYPTED).seal(payload, 1_700_000_000)
    raw = b64url_decode(token)
    assert raw is not None
    assert raw[0] == 0x02
    assert raw[1] == 1
    assert payload not in raw
    assert len(raw) == ENCRYPTED_OVERHEAD + len(payload)


@pytest.mark.parametrize("mode", MODES)
@given(
    payload=st.binary(max_size=500),
    issued_at=st.integers(0, 2**64 - 1),
    expires_at=st.none() | st.integers(0, 2**64 - 1),
)
def test_seal_then_open_round_trips(
    mode: Mode, payload: bytes, issued_at: int, expires_at: int | None
) -> None:
    c = codec(mode)
    opened = c.open(c.seal(payload, issued_at, expires_at))
    assert opened == Opened(payload, issued_at, expires_at, 1, 1)


@pytest.mark.parametrize("mode", MODES)
def test_seal_refuses_times_outside_u64(mode: Mode) -> None:
    with pytest.raises(ValueError, match="issued-at"):
        codec(mode).seal(b"", -1)
    with pytest.raises(ValueError, match="expires-at"):
        codec(mode).seal(b"", 0, 2**64)


@pytest.mark.parametrize("mode", MODES)
def test_tokens_are_cookie_octets(mode: Mode) -> None:
    token = codec(mode).seal(bytes(range(256)), 5)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_encrypted_tokens_differ_each_time_authenticated_do_not() -> None:
    enc = codec(Mode.ENCRYPTED)
    assert enc.seal(b"x", 1) != enc.seal(b"x", 1)
    auth = codec(Mode.AUTHENTICATED)
    assert auth.seal(b"x", 1) == auth.seal(b"x", 1)


# --- opening failures ---------------------------------------------------------------------


def kind(result: Opened | Peeked | LoadError) -> str:
    assert isinstance(result, LoadError), result
    return result.kind.value


@pytest.mark.parametrize("mode", MODES)
@given(data=st.data())
def test_any_corruption_is_an_error_value_never_a_wrong_state(mode: Mode, data: st.DataObject) -> None:
    c = codec(mode)
    payload = data.draw(st.binary(max_size=64), label="payload")
    token = c.seal(payload, 1_700_000_000)
    raw = b64url_decode(token)
    assert raw is not None
    how = data.draw(st.sampled_from(["flip", "truncate", "extend", "chars"]), label="how")
    if how == "flip":
        bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
        bad_raw = bytearray(raw)
        bad_raw[bit // 8] ^= 1 << (bit % 8)
        bad = b64url_encode(bytes(bad_raw))
    elif how == "truncate":
        bad = token[: data.draw(st.integers(0, len(token) - 1), label="length")]
    elif how == "extend":
        bad = token + data.draw(st.text(min_size=1, max_size=8), label="suffix")
    else:
        i = data.draw(st.integers(0, len(token) - 1), label="index")
        ch = data.draw(st.characters(), label="char")
        bad = token[:i] + ch + token[i + 1 :]
    if bad == token:
        return
    result = c.open(bad)
    assert isinstance(result, LoadError), (how, result)
    assert result.kind in {
        ErrorKind.MALFORMED,
        ErrorKind.AUTHENTICATION_FAILED,
        ErrorKind.UNKNOWN_KEY,
        ErrorKind.UNSUPPORTED_VERSION,
        ErrorKind.TOO_LARGE,
    }


@pytest.mark.parametrize("mode", MODES)
def test_token_moved_to_another_cookie_state_or_schema_fails_authentication(mode: Mode) -> None:
    token = codec(mode).seal(b"\xc0", 1)
    assert kind(codec(mode, cookie="other").open(token)) == "authentication_failed"
    assert kind(codec(mode, state="other").open(token)) == "authentication_failed"
    assert kind(codec(mode, versions=(2,)).open(token)) == "authentication_failed"


@pytest.mark.parametrize("mode", MODES)
def test_older_schema_versions_are_tried_after_the_current_one(mode: Mode) -> None:
    old = codec(mode, versions=(1,)).seal(b"\xc0", 1)
    opened = codec(mode, versions=(3, 2, 1)).open(old)
    assert isinstance(opened, Opened)
    assert opened.schema_version == 1
    assert kind(codec(mode, versions=(3, 2)).open(old)) == "authentication_failed"


@pytest.mark.parametrize("mode", MODES)
def test_unknown_key_and_other_keyrings(mode: Mode) -> None:
    token = codec(mode, fixed_keyring(5)).seal(b"\xc0", 1)
    assert kind(codec(mode).open(token)) == "unknown_key"
    same_id_other_secret = Keyring(generate_key(1))
    own = codec(mode).seal(b"\xc0", 1)
    assert kind(codec(mode, same_id_other_secret).open(own)) == "authentication_failed"


@pytest.mark.parametrize("mode", MODES)
def test_older_accepted_key_opens_and_reports_its_id(mode: Mode) -> None:
    old = codec(mode, fixed_keyring(1)).seal(b"\xc0", 1)
    opened = codec(mode, fixed_keyring(2, 1)).open(old)
    assert isinstance(opened, Opened)
    assert opened.key_id == 1


def test_modes_never_accept_each_other() -> None:
    auth_token = codec(Mode.AUTHENTICATED).seal(b"\xc0", 1)
    enc_token = codec(Mode.ENCRYPTED).seal(b"\xc0", 1)
    assert kind(codec(Mode.ENCRYPTED).open(auth_token)) == "unsupported_version"
    assert kind(codec(Mode.AUTHENTICATED).open(enc_token)) == "unsupported_version"


@pytest.mark.parametrize("mode", MODES)
def test_size_is_checked_before_decoding(mode: Mode) -> None:
    c = TokenCodec(fixed_keyring(1), mode, "cs", "account", (1,), max_length=100)
    result = c.open("!" * 101)  # not base64 either: the size check comes first
    assert kind(result) == "too_large"
    assert kind(c.open("")) == "malformed"


def test_reserved_flag_bits_are_malformed_after_authentication() -> None:
    c = codec(Mode.AUTHENTICATED)
    token = seal_raw_inner(c.keyring, Mode.AUTHENTICATED, "cs", "account", 1, b"\x02" + struct.pack(">Q", 1) + b"\xc0")
    result = c.open(token)
    assert isinstance(result, LoadError)
    assert result.kind is ErrorKind.MALFORMED
    assert "reserved flag bits" in result.detail


# --- peek -----------------------------------------------------------------------------------


def test_peek_shows_unverified_fields_of_authenticated_tokens_only() -> None:
    a = peek(codec(Mode.AUTHENTICATED).seal(b"\xc0", 10, 20))
    assert a == Peeked(Mode.AUTHENTICATED, 1, 10, 20, b"\xc0")
    e = peek(codec(Mode.ENCRYPTED).seal(b"\xc0", 10, 20))
    assert e == Peeked(Mode.ENCRYPTED, 1, None, None, None)
    assert kind(peek("@@")) == "malformed"
    assert kind(peek(b64url_encode(b"\x09\x01" + b"\x00" * 60))) == "unsupported_version"
