"""Tokens that authenticate but whose inner content is bad, written by a test writer holding the key.

``support.seal_inner`` seals raw inner bytes (flags, times, payload) without
checking them, so these tokens pass the HMAC/AEAD check and exercise what comes
after it: the prelude (``malformed``) and the payload (``state_decode``).
"""

from __future__ import annotations

import struct

import msgspec
import pytest

from clientstate import Binding
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from clientstate.testing import FrozenClock
from tests.security.support import ACCOUNT, ALICE, T0, kind, load, make_handler, seal_inner

U64 = struct.Struct(">Q")
GOOD_PAYLOAD = ACCOUNT.encode(ALICE)


def inner(flags: int, *times: int, payload: bytes = GOOD_PAYLOAD) -> bytes:
    return bytes([flags]) + b"".join(U64.pack(t) for t in times) + payload


def test_the_test_writer_produces_loadable_tokens_when_the_inner_content_is_good(mode: Mode) -> None:
    handler = make_handler(mode)
    assert load(handler, seal_inner(handler, inner(0, T0))).state == ALICE
    loaded = load(handler, seal_inner(handler, inner(1, T0, T0 + 10)))
    assert loaded.state == ALICE
    assert loaded.expires_at == T0 + 10


@pytest.mark.parametrize("flags", [0x02, 0x03, 0x04, 0x80, 0x81, 0xFE, 0xFF])
def test_reserved_flag_bits_are_malformed(mode: Mode, flags: int) -> None:
    handler = make_handler(mode)
    assert kind(load(handler, seal_inner(handler, inner(flags, T0, T0 + 10)))) is ErrorKind.MALFORMED


@pytest.mark.parametrize("length", range(9))
def test_prelude_shorter_than_flags_and_issued_at_is_malformed(mode: Mode, length: int) -> None:
    handler = make_handler(mode)
    assert kind(load(handler, seal_inner(handler, inner(0, T0, payload=b"")[:length]))) is ErrorKind.MALFORMED


@pytest.mark.parametrize("length", range(9, 17))
def test_expires_flag_with_a_prelude_shorter_than_17_bytes_is_malformed(mode: Mode, length: int) -> None:
    handler = make_handler(mode)
    data = inner(1, T0, T0 + 10, payload=b"")[:length]
    assert kind(load(handler, seal_inner(handler, data))) is ErrorKind.MALFORMED


def test_full_prelude_with_an_empty_payload_is_state_decode(mode: Mode) -> None:
    handler = make_handler(mode)
    assert kind(load(handler, seal_inner(handler, inner(0, T0, payload=b"")))) is ErrorKind.STATE_DECODE
    assert kind(load(handler, seal_inner(handler, inner(1, T0, T0 + 10, payload=b"")))) is ErrorKind.STATE_DECODE


WRONG_TYPES = {
    "user_id-as-string": {"user_id": "1", "name": "alice"},
    "user_id-as-float": {"user_id": 1.0, "name": "alice"},
    "user_id-as-bool": {"user_id": True, "name": "alice"},
    "name-as-bytes": {"user_id": 1, "name": b"alice"},
    "roles-as-string": {"user_id": 1, "name": "alice", "roles": "admin"},
    "roles-of-ints": {"user_id": 1, "name": "alice", "roles": [1]},
    "sudo_until-as-string": {"user_id": 1, "name": "alice", "sudo_until": "soon"},
    "missing-required-field": {"name": "alice"},
    "array-not-map": [1, "alice"],
    "nil": None,
    "integer": 1,
}


@pytest.mark.parametrize("value", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_payload_of_the_wrong_types_is_state_decode(mode: Mode, value: object) -> None:
    handler = make_handler(mode)
    token = seal_inner(handler, inner(0, T0, payload=msgspec.msgpack.encode(value)))
    assert kind(load(handler, token)) is ErrorKind.STATE_DECODE


def test_extra_field_is_state_decode_when_the_struct_forbids_unknown_fields(mode: Mode) -> None:
    handler = make_handler(mode)
    payload = msgspec.msgpack.encode({"user_id": 1, "name": "alice", "is_admin": True})
    loaded = load(handler, seal_inner(handler, inner(0, T0, payload=payload)))
    assert kind(loaded) is ErrorKind.STATE_DECODE
    assert loaded.error is not None
    assert "is_admin" in loaded.error.detail


@pytest.mark.parametrize("trailing", [b"\x00", b"\xc0", b"\x81\xa1a\x01", GOOD_PAYLOAD])
def test_trailing_bytes_after_the_msgpack_value_are_state_decode(mode: Mode, trailing: bytes) -> None:
    handler = make_handler(mode)
    token = seal_inner(handler, inner(0, T0, payload=GOOD_PAYLOAD + trailing))
    assert kind(load(handler, token)) is ErrorKind.STATE_DECODE


GARBAGE = {
    "reserved-c1": b"\xc1",
    "negative-fixints": b"\xff\xff\xff",
    "ascii-text": b"not msgpack at all",
    "truncated-map": b"\x85\xa7user_id",
    "huge-map-header": b"\xdf\xff\xff\xff\xff",
    "huge-str-header": b"\xdb\xff\xff\xff\xff",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_payload_is_state_decode(mode: Mode, garbage: bytes) -> None:
    handler = make_handler(mode)
    assert kind(load(handler, seal_inner(handler, inner(0, T0, payload=garbage)))) is ErrorKind.STATE_DECODE


def test_bad_inner_content_reaches_the_app_as_an_error_and_clears_the_cookie(mode: Mode) -> None:
    handler = make_handler(mode)
    binding = Binding(ACCOUNT, handler, FrozenClock(T0))
    for data in (inner(0xFF, T0), inner(0, T0, payload=b"\xc1")):
        slot = binding.begin([f"cs={seal_inner(handler, data)}"])
        assert slot.state is None
        assert slot.error is not None
        assert slot.error.kind in {ErrorKind.MALFORMED, ErrorKind.STATE_DECODE}
        assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]
