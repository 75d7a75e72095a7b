"""Tokens out of context: another cookie, state, schema version, keyring or mode; key ids and rotation."""

from __future__ import annotations

import random

import pytest

from clientstate import Binding, Key, Keyring, State
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode, Opened, TokenCodec
from clientstate.testing import FrozenClock, fixed_keyring
from tests.security.support import (
    ACCOUNT,
    ALICE,
    OVERHEAD,
    T0,
    Account,
    b64url,
    kind,
    load,
    make_handler,
    mint,
    unb64url,
)

AUTH_FAILED = ErrorKind.AUTHENTICATION_FAILED


def test_token_presented_under_another_cookie_name_fails_authentication(mode: Mode) -> None:
    issuer = make_handler(mode, name="__Host-a")
    reader = make_handler(mode, name="__Host-b")
    token = mint(issuer)
    assert kind(load(issuer, token)) is None
    assert kind(load(reader, token)) is AUTH_FAILED


def test_token_presented_for_another_state_name_fails_authentication(mode: Mode) -> None:
    handler = make_handler(mode)
    other = State("profile", Account)
    token = mint(handler)
    # Same keys and cookie name, but a handler serving the state "profile".
    assert kind(load(make_handler(mode), token, state=other)) is AUTH_FAILED


@pytest.mark.parametrize("version", [0, 2, 10, 11])
def test_token_of_another_schema_version_without_migration_fails_authentication(mode: Mode, version: int) -> None:
    handler = make_handler(mode)
    token = mint(handler)  # schema version 1
    newer = State("account", Account, version=version)
    assert kind(load(handler, token, state=newer)) is AUTH_FAILED


def test_schema_versions_1_and_11_are_not_confused(mode: Mode) -> None:
    """The version is length-prefixed in the associated data, so "1" ‖ "1..." cannot collide."""
    handler = make_handler(mode)
    v11 = State("account", Account, version=11)
    token = mint(handler, state=v11)
    assert kind(load(handler, token, state=v11)) is None
    assert kind(load(handler, token, state=ACCOUNT)) is AUTH_FAILED


def test_token_from_another_keyring_with_the_same_key_id_fails_authentication(mode: Mode) -> None:
    foreign = make_handler(mode, Keyring(Key(1, bytes(range(32)), for_testing=True)))
    handler = make_handler(mode)
    assert kind(load(handler, mint(foreign))) is AUTH_FAILED


def test_random_bytes_of_a_valid_length_with_our_version_and_key_id_fail_authentication(mode: Mode) -> None:
    handler = make_handler(mode)
    length = len(unb64url(mint(handler)))
    rng = random.Random(1234)
    for _ in range(300):
        raw = bytes([mode, 1]) + rng.randbytes(length - 2)
        assert kind(load(handler, b64url(raw))) is AUTH_FAILED


def test_random_bytes_of_a_valid_length_are_rejected_by_their_header(mode: Mode) -> None:
    handler = make_handler(mode)
    length = len(unb64url(mint(handler)))
    rng = random.Random(99)
    seen = set()
    for _ in range(2000):
        raw = rng.randbytes(length)
        want = (
            ErrorKind.UNSUPPORTED_VERSION if raw[0] != mode else AUTH_FAILED if raw[1] == 1 else ErrorKind.UNKNOWN_KEY
        )
        got = kind(load(handler, b64url(raw)))
        assert got is want
        seen.add(got)
    assert ErrorKind.UNSUPPORTED_VERSION in seen
    assert ErrorKind.UNKNOWN_KEY in seen  # ~1 in 256 draws has our version byte


@pytest.mark.parametrize("key_id", [0, 2, 7, 255])
def test_token_under_a_key_id_not_in_the_keyring_is_unknown_key(mode: Mode, key_id: int) -> None:
    issuer = make_handler(mode, fixed_keyring(key_id))
    handler = make_handler(mode, fixed_keyring(1))
    assert kind(load(handler, mint(issuer))) is ErrorKind.UNKNOWN_KEY


@pytest.mark.parametrize("other_id", [0, 2, 3, 255])
def test_key_id_byte_changed_to_another_existing_key_fails_authentication(mode: Mode, other_id: int) -> None:
    """The key id is authenticated: pointing a token at another key of the keyring does not work."""
    handler = make_handler(mode, fixed_keyring(1, other_id))
    raw = bytearray(unb64url(mint(handler)))
    assert raw[1] == 1
    raw[1] = other_id
    assert kind(load(handler, b64url(bytes(raw)))) is AUTH_FAILED


def test_retired_key_is_unknown_and_the_response_clears_the_cookie(mode: Mode) -> None:
    old = make_handler(mode, fixed_keyring(1))
    token = mint(old)
    retired = make_handler(mode, fixed_keyring(2))  # key 1 no longer accepted
    binding = Binding(ACCOUNT, retired, FrozenClock(T0 + 5))
    slot = binding.begin([f"cs={token}"])
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.UNKNOWN_KEY
    assert slot.state is None
    assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]


@pytest.mark.parametrize("expires_at", [None, T0 + 3600])
def test_rotation_reissues_under_the_current_key_keeping_issued_at_and_expires_at(
    mode: Mode, expires_at: int | None
) -> None:
    before = make_handler(mode, fixed_keyring(1))
    token = mint(before, ALICE, issued_at=T0 - 100, expires_at=expires_at)
    rotated = make_handler(mode, fixed_keyring(2, 1), expires_in=7200)
    binding = Binding(ACCOUNT, rotated, FrozenClock(T0))
    slot = binding.begin([f"cs={token}"])
    assert slot.error is None
    assert slot.state == ALICE
    assert slot.loaded.key_id == 1
    (set_cookie,) = binding.finish(slot)  # unchanged state, yet re-issued
    new_token = set_cookie.split(";", 1)[0].removeprefix("cs=")
    assert unb64url(new_token)[:2] == bytes([mode, 2])
    opened = rotated.codec(ACCOUNT).open(new_token)
    assert isinstance(opened, Opened), opened
    # Issued-at is kept; an expires-at is written only if earlier than issued-at + expires_in.
    assert (opened.key_id, opened.issued_at, opened.expires_at) == (2, T0 - 100, expires_at)
    deadline = T0 - 100 + 7200 if expires_at is None else expires_at
    assert binding.begin([set_cookie.split(";", 1)[0]]).loaded.expires_at == deadline
    assert ACCOUNT.decode(opened.payload) == ALICE
    # The re-issued token is current: loading it again writes nothing.
    again = binding.begin([set_cookie.split(";", 1)[0]])
    assert again.error is None
    assert binding.finish(again) == []


def test_mode_downgrade_authenticated_token_to_encrypted_handler_is_unsupported_version() -> None:
    token = mint(make_handler(Mode.AUTHENTICATED))
    assert kind(load(make_handler(Mode.ENCRYPTED), token)) is ErrorKind.UNSUPPORTED_VERSION


def test_mode_downgrade_encrypted_token_to_authenticated_handler_is_unsupported_version() -> None:
    token = mint(make_handler(Mode.ENCRYPTED))
    assert kind(load(make_handler(Mode.AUTHENTICATED), token)) is ErrorKind.UNSUPPORTED_VERSION


@pytest.mark.parametrize("payload", [b"\x01", b"\x90"], ids=["one-byte", "empty-array"])
def test_shortest_tokens_of_the_other_mode_are_unsupported_version_not_malformed(mode: Mode, payload: bytes) -> None:
    """The version byte is read before the mode's minimum length (a 44-byte authenticated token is
    shorter than any encrypted one)."""
    other = Mode.ENCRYPTED if mode is Mode.AUTHENTICATED else Mode.AUTHENTICATED
    token = TokenCodec(fixed_keyring(1), other, "cs", "account", [1], 4000).seal(payload, T0)
    if other is Mode.AUTHENTICATED:
        assert len(unb64url(token)) < OVERHEAD[Mode.ENCRYPTED]
    assert kind(load(make_handler(mode), token)) is ErrorKind.UNSUPPORTED_VERSION


def test_every_foreign_version_byte_is_unsupported_version(mode: Mode) -> None:
    handler = make_handler(mode)
    raw = bytearray(unb64url(mint(handler)))
    others = [v for v in range(256) if v != mode]
    assert {0x00, 0x03, 0xFF} <= set(others)
    for version in others:
        raw[0] = version
        assert kind(load(handler, b64url(bytes(raw)))) is ErrorKind.UNSUPPORTED_VERSION, version
