"""The baton's byte layout, strict decoding, and the property that no altered baton ever resumes a stream."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, hmac
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clientstate._core.base64url import b64url_encode
from clientstate.batons import BATON_BYTES, BATON_CHARS, Baton, BatonError, BatonErrorKind, Stream, peek_baton
from clientstate.batons.baton import binding, decode
from clientstate.testing import FrozenClock, fixed_key
from tests.batons.support import OWNER, SCOPE, T0, begin, kind, make_streams, raw, step, text

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
FAST = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def test_layout_and_size() -> None:
    assert (BATON_BYTES, BATON_CHARS) == (58, 78)
    streams = make_streams()
    baton, _ = begin(streams)
    data = raw(baton)
    (info,) = streams.list()
    assert data[0] == 0x01  # version
    assert data[1] == 1  # key id
    assert b64url_encode(data[2:18]) == info.id  # stream id = boot(8) ‖ random(8)
    assert int.from_bytes(data[18:26], "big") == 0  # generation
    # The tag is HMAC-SHA256 under the key's "baton" subkey over binding ‖ the first 26 bytes.
    mac = hmac.HMAC(fixed_key(1).subkey(b"baton"), hashes.SHA256())
    mac.update(binding(SCOPE, OWNER) + data[:26])
    assert mac.finalize() == data[26:]
    assert fixed_key(1).subkey(b"baton") != fixed_key(1).subkey(b"hmac")


def test_binding_is_pae_of_domain_scope_and_principal_hash() -> None:
    digest = hashlib.sha256(b"alice").digest()
    expected = (3).to_bytes(8, "little")
    for item in (b"clientstate/v1/baton", b"db", digest):
        expected += len(item).to_bytes(8, "little") + item
    assert binding("db", "alice") == expected
    # Unambiguous: moving bytes between scope and principal changes the binding.
    assert binding("ab", "c") != binding("a", "bc")


def test_every_stream_of_a_registry_shares_its_boot_prefix() -> None:
    streams = make_streams()
    ids = {raw(begin(streams, principal=f"u{i}")[0])[2:18] for i in range(20)}
    assert len(ids) == 20
    assert len({sid[:8] for sid in ids}) == 1
    other = make_streams()
    assert raw(begin(other)[0])[2:10] not in {sid[:8] for sid in ids}


def test_decode_checks_length_first_then_encoding_then_version() -> None:
    streams = make_streams()
    baton, _ = begin(streams)
    assert decode(baton) == raw(baton)
    assert decode(baton + "A") == BatonError(BatonErrorKind.BAD_BATON, "not a baton: wrong length or type")
    assert decode(baton[:-1] + "+") == BatonError(BatonErrorKind.BAD_BATON, "not canonical unpadded base64url")
    # The last character of 58 bytes carries 2 unused bits: only their zero spelling decodes.
    last = ALPHABET.index(baton[-1])
    assert decode(baton[:-1] + ALPHABET[last | 1]) == BatonError(BatonErrorKind.BAD_BATON,
                                                                 "not canonical unpadded base64url")
    assert decode(text(b"\x02" + raw(baton)[1:])) == BatonError(BatonErrorKind.BAD_BATON, "unknown baton version")
    assert peek_baton(baton) == Baton(1, streams.list()[0].id, 0)
    assert peek_baton(12) == BatonError(BatonErrorKind.BAD_BATON, "not a baton: wrong length or type")


# --------------------------------------------------------------------------- the property

def _flip(baton: str, bit: int) -> str:
    data = bytearray(raw(baton))
    data[bit // 8] ^= 1 << (bit % 8)
    return text(bytes(data))


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, BATON_BYTES * 8 - 1)),
    st.tuples(st.just("char"), st.integers(0, BATON_CHARS - 1), st.sampled_from(ALPHABET + "=+/ .~\x00é")),
    st.tuples(st.just("truncate"), st.integers(0, BATON_CHARS - 1)),
    st.tuples(st.just("extend"), st.text(alphabet=ALPHABET + "= ", min_size=1, max_size=8)),
    st.tuples(st.just("prefix"), st.text(alphabet=ALPHABET + " ", min_size=1, max_size=4)),
    st.tuples(st.just("splice"), st.integers(1, BATON_BYTES - 1)),
    st.tuples(st.just("generation"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("case"), st.integers(0, BATON_CHARS - 1)),
)


def _mutate(baton: str, other: str, mutation: tuple[object, ...]) -> str:
    how = mutation[0]
    if how == "flip":
        return _flip(baton, int(mutation[1]))  # type: ignore[call-overload]
    if how == "char":
        at, char = int(mutation[1]), str(mutation[2])  # type: ignore[call-overload]
        return baton[:at] + char + baton[at + 1:]
    if how == "truncate":
        return baton[: int(mutation[1])]  # type: ignore[call-overload]
    if how == "extend":
        return baton + str(mutation[1])
    if how == "prefix":
        return str(mutation[1]) + baton
    if how == "splice":  # the head of this baton with the rest of another stream's (id, generation, tag)
        cut = int(mutation[1])  # type: ignore[call-overload]
        return text(raw(baton)[:cut] + raw(other)[cut:])
    if how == "generation":  # another generation, this stream's id and tag
        data = raw(baton)
        return text(data[:18] + int(mutation[1]).to_bytes(8, "big") + data[26:])  # type: ignore[call-overload]
    at = int(mutation[1])  # type: ignore[call-overload]
    return baton[:at] + baton[at].swapcase() + baton[at + 1:]


@FAST
@given(mutation=mutations, requests=st.integers(0, 3))
def test_no_altered_baton_resumes_a_stream(mutation: tuple[object, ...], requests: int) -> None:
    clock = FrozenClock(T0)
    streams = make_streams(clock)
    baton, resource = begin(streams)
    other, _ = begin(streams, principal="bob")
    for _ in range(requests):
        baton = step(streams, baton)
    before = {i.principal: (i.generation, i.busy) for i in streams.list()}
    altered = _mutate(baton, other, mutation)
    if altered in (baton, other):  # swapcase of a digit, the current generation, a splice of the shared prefix
        return
    for principal in (OWNER, "bob"):
        result = streams.resume(altered, scope=SCOPE, principal=principal)
        assert isinstance(result, BatonError), (mutation, principal)
        assert result.kind in (BatonErrorKind.BAD_BATON, BatonErrorKind.BATON_REUSED), result
    # Nothing moved: both streams idle at the same generations, and the genuine baton still works.
    assert {i.principal: (i.generation, i.busy) for i in streams.list()} == before
    assert resource.calls == []
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"


@FAST
@given(requests=st.integers(1, 6), back=st.integers(1, 6))
def test_every_earlier_generation_is_reused_never_resumed(requests: int, back: int) -> None:
    streams = make_streams()
    baton, _ = begin(streams)
    history = [baton]
    for _ in range(requests):
        history.append(step(streams, history[-1]))
    old = history[-1 - min(back, requests)]
    assert kind(streams.resume(old, scope=SCOPE, principal=OWNER)) == "baton_reused"
    assert isinstance(streams.resume(history[-1], scope=SCOPE, principal=OWNER), Stream)
