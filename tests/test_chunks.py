"""Opt-in chunking: one token across numbered cookies, authenticated as one unit."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientstate import Binding, CookieTooLarge, ErrorKind, Loaded, RequestCookies, State, client_stored
from clientstate._core.chunks import chunk_size, join_chunks, split_token
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock, fixed_keyring


class Blob(msgspec.Struct):
    data: bytes


BLOB = State("blob", Blob)


def chunked(encrypted: bool = False, max_chunks: int = 12) -> ClientStored:
    return client_stored(fixed_keyring(1), name="cs", encrypted=encrypted, chunked=True, max_chunks=max_chunks)


def save(handler: ClientStored, value: Blob, loaded: Loaded[Blob] | None = None) -> list[str]:
    return handler.save(BLOB, loaded or Loaded(), BLOB.encode(value), 1_700_000_000)


def pairs(lines: list[str]) -> list[str]:
    """The ``name=value`` parts of Set-Cookie lines."""
    return [line.split(";", 1)[0] for line in lines]


def load(handler: ClientStored, cookie_pairs: list[str]) -> Loaded[Blob]:
    return handler.load(BLOB, RequestCookies(["; ".join(cookie_pairs)]), 1_700_000_000)


@pytest.mark.parametrize("encrypted", [False, True])
def test_small_state_uses_one_plain_cookie(encrypted: bool) -> None:
    lines = save(chunked(encrypted), Blob(b"small"))
    assert len(lines) == 1
    assert "." not in pairs(lines)[0].split("=", 1)[1]
    assert load(chunked(encrypted), pairs(lines)).state == Blob(b"small")


@pytest.mark.parametrize("encrypted", [False, True])
def test_twelve_chunks_round_trip_in_any_header_order(encrypted: bool) -> None:
    handler = chunked(encrypted)
    value = Blob(random.Random(1).randbytes(35_000))
    lines = save(handler, value)
    names = [p.split("=", 1)[0] for p in pairs(lines)]
    assert names == ["cs", *(f"cs.{i}" for i in range(1, 12))]
    assert pairs(lines)[0].startswith("cs=12.")
    for p in pairs(lines):
        assert len(p) - 1 <= 4096  # name plus value, without the '='
    shuffled = pairs(lines)
    random.Random(2).shuffle(shuffled)
    assert load(handler, shuffled).state == value
    assert load(handler, list(reversed(pairs(lines)))).state == value


def test_missing_extra_reordered_and_mixed_chunks_are_errors() -> None:
    handler = chunked()
    a = pairs(save(handler, Blob(random.Random(3).randbytes(12_000))))
    b = pairs(save(handler, Blob(random.Random(4).randbytes(12_000))))
    assert len(a) == len(b) == 4

    def kind(cookie_pairs: list[str]) -> ErrorKind:
        error = load(handler, cookie_pairs).error
        assert error is not None
        return error.kind

    assert kind(a[:2] + a[3:]) is ErrorKind.MALFORMED  # chunk 2 missing
    assert kind(a[:-1]) is ErrorKind.MALFORMED  # last chunk missing
    assert kind([*a, "cs.4=AAAA"]) is ErrorKind.MALFORMED  # extra chunk
    assert load(handler, [*a, "cs.04=AAAA", "cs.99=AAAA"]).error is None  # names we never write are not ours
    swapped = [a[0], "cs.1=" + a[2].split("=", 1)[1], "cs.2=" + a[1].split("=", 1)[1], a[3]]
    assert kind(swapped) is ErrorKind.AUTHENTICATION_FAILED
    mixed = [a[0], b[1], a[2], a[3]]
    assert kind(mixed) is ErrorKind.AUTHENTICATION_FAILED
    assert kind(a[1:]) is ErrorKind.MALFORMED  # chunks without the first
    assert kind(["cs=99." + a[0].split(".", 1)[1], *a[1:]]) is ErrorKind.MALFORMED  # count over max_chunks
    assert kind(["cs=x." + a[0].split(".", 1)[1], *a[1:]]) is ErrorKind.MALFORMED
    assert kind([*a, a[1]]) is ErrorKind.AMBIGUOUS


def test_shrinking_deletes_stale_chunks_and_none_deletes_all() -> None:
    handler = chunked()
    binding = Binding(BLOB, handler, FrozenClock())
    big = pairs(save(handler, Blob(random.Random(5).randbytes(15_000))))
    assert len(big) == 5
    slot = binding.begin(["; ".join(big)])
    assert slot.loaded.chunks == 4
    slot.state = Blob(random.Random(6).randbytes(4000))
    lines = binding.finish(slot)
    written = [line for line in lines if "Max-Age=0" not in line]
    deleted = [line.split("=", 1)[0] for line in lines if "Max-Age=0" in line]
    assert [line.split("=", 1)[0] for line in written] == ["cs", "cs.1"]
    assert deleted == ["cs.2", "cs.3", "cs.4"]
    slot = binding.begin(["; ".join(big)])
    slot.state = None
    assert [line.split("=", 1)[0] for line in binding.finish(slot)] == ["cs", "cs.1", "cs.2", "cs.3", "cs.4"]


def test_orphan_chunks_are_malformed_and_cleared() -> None:
    binding = Binding(BLOB, chunked(), FrozenClock())
    slot = binding.begin(["cs.1=AAAA; cs.2=BBBB"])
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.MALFORMED
    assert [line.split("=", 1)[0] for line in binding.finish(slot)] == ["cs", "cs.1", "cs.2"]


def test_too_many_chunks_is_cookie_too_large() -> None:
    with pytest.raises(CookieTooLarge, match="'cs'"):
        save(chunked(max_chunks=2), Blob(random.Random(7).randbytes(9000)))


def test_without_chunking_a_large_state_raises() -> None:
    handler = client_stored(fixed_keyring(1), name="cs")
    with pytest.raises(CookieTooLarge):
        save(handler, Blob(b"x" * 4000))


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 40_000), name=st.sampled_from(["s", "__Host-session", "a" * 40]))
def test_split_then_join_is_identity_and_every_cookie_fits(size: int, name: str) -> None:
    token = "A" * size
    max_chunks = 20
    split = split_token(name, token, max_chunks)
    for cookie_name, value in split:
        assert len(cookie_name) + len(value) <= 4096
    header = "; ".join(f"{n}={v}" for n, v in split)
    joined, highest = join_chunks(RequestCookies([header]), name, max_chunks)
    assert joined == token
    assert highest == len(split) - 1


def test_chunk_size_leaves_room_for_name_and_count() -> None:
    assert chunk_size("cs", 10) == 4096 - len("cs.9") - len("10.")
