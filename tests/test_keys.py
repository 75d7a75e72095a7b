"""Keys, keyrings, the text form and HKDF subkeys."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clientstate import ConfigurationError, Key, KeyFormatError, Keyring, generate_key
from clientstate._core.base64url import b64url_encode
from clientstate._core.keys import MIN_SECRET_BYTES, fixed_secret
from clientstate.testing import fixed_key

# A secret no list of well-known keys holds (the hash of this file's name), random-looking.
SECRET = hashlib.sha256(b"tests/test_keys.py").digest()
SECRET_TEXT = b64url_encode(SECRET)


def test_key_refuses_short_secret_with_clear_message() -> None:
    with pytest.raises(ConfigurationError, match=r"31 bytes; at least 32"):
        Key(1, b"x" * 31)


@pytest.mark.parametrize("key_id", [-1, 256, 1.0, True, "1"])
def test_key_refuses_bad_key_id(key_id: object) -> None:
    with pytest.raises(KeyFormatError, match="key id must be an integer from 0 to 255"):
        Key(key_id, SECRET)  # type: ignore[arg-type]


def test_key_refuses_non_bytes_secret() -> None:
    with pytest.raises(KeyFormatError, match="must be bytes"):
        Key(1, "x" * 40)  # type: ignore[arg-type]


def test_repr_never_shows_the_secret() -> None:
    key = Key(7, SECRET)
    assert repr(key) == "Key(key_id=7, secret=<32 bytes>)"
    assert SECRET.hex() not in repr(Keyring(key))


def test_subkeys_are_hkdf_sha256_and_differ_per_purpose() -> None:
    key = Key(1, SECRET)
    expected = HKDF(hashes.SHA256(), 32, b"clientstate/v1", b"clientstate/v1/hmac").derive(SECRET)
    assert key.subkey(b"hmac") == expected
    assert key.subkey(b"aead") != key.subkey(b"hmac")
    assert key.subkey(b"hmac") is key.subkey(b"hmac")  # cached
    assert Key(1, SECRET).subkey(b"hmac") == expected  # another Key object, the same derivation


def test_generate_key_is_random_and_long_enough() -> None:
    a, b = generate_key(3), generate_key(3)
    assert a.key_id == 3
    assert a.to_text() != b.to_text()
    with pytest.raises(ConfigurationError):
        generate_key(1, size=16)


def test_text_form_round_trips() -> None:
    key = Key(200, SECRET)
    assert key.to_text() == f"200:{SECRET_TEXT}"
    assert Key.from_text(key.to_text()).subkey(b"hmac") == key.subkey(b"hmac")


def test_keyring_text_marks_the_current_key() -> None:
    old, new = Key(1, SECRET), Key(2, bytes(reversed(SECRET)))
    ring = Keyring(new, [old])
    text = ring.to_text()
    assert text.startswith("*2:")
    parsed = Keyring.from_text(text)
    assert parsed.current.key_id == 2
    assert [k.key_id for k in parsed.keys] == [2, 1]
    assert parsed.get(1) is not None
    assert parsed.get(3) is None


def test_single_key_needs_no_mark_and_separators_are_flexible() -> None:
    text = Key(1, SECRET).to_text()
    assert Keyring.from_text(f"  {text}\n").current.key_id == 1
    two = f"1:{text.split(':')[1]},\n*2:{text.split(':')[1]}"
    assert Keyring.from_text(two).current.key_id == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no keys given"),
        ("1-AAAA", r"key entry 1 of 1 \(6 characters\) is not of the form"),
        ("١:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "is not of the form"),
        ("1:AAECAwQ", "at least 32"),
        ("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", "not canonical"),
        ("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "is not of the form"),
        ("300:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "0 to 255"),
        (f"1:{SECRET_TEXT} 2:{SECRET_TEXT}", "mark exactly one"),
        (f"*1:{SECRET_TEXT} 1:{SECRET_TEXT}", "share key id 1"),
    ],
)
def test_bad_text_forms_raise_key_format_error(text: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        Keyring.from_text(text)


def test_from_env_reads_the_variable_and_names_it_in_errors() -> None:
    text = Key(4, SECRET).to_text()
    assert Keyring.from_env(environ={"CLIENTSTATE_KEYS": text}).current.key_id == 4
    with pytest.raises(KeyFormatError, match="CLIENTSTATE_KEYS is not set"):
        Keyring.from_env(environ={})
    with pytest.raises(KeyFormatError, match=r"^MY_KEYS: "):
        Keyring.from_env("MY_KEYS", environ={"MY_KEYS": "nonsense"})


def test_min_secret_is_32_bytes() -> None:
    assert MIN_SECRET_BYTES == 32
    Key(0, SECRET)  # exactly 32 is accepted


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (bytes(32), "only 1 distinct byte values"),
        (b"\xff" * 64, "only 1 distinct byte values"),
        (bytes([1, 2, 3, 4, 5, 6, 7]) * 5, "only 7 distinct"),
        (os.urandom(12) * 3, "repeats a 12-byte pattern"),
        (b"correct horse battery staple 123", "printable text"),
        (bytes(range(32)), "well-known"),  # a placeholder in the keys module docstring
        (bytes.fromhex("deadbeef") + bytes(28), "well-known|distinct"),
        (fixed_secret(1), "well-known"),  # the testing kit's fixed key
        (fixed_secret(200), "well-known"),
    ],
)
def test_weak_and_well_known_secrets_are_refused_unless_for_testing(secret: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        Key(1, secret)
    with pytest.raises(KeyFormatError, match=message):
        Keyring.from_env(environ={"CLIENTSTATE_KEYS": f"1:{b64url_encode(secret)}"})
    assert Key(1, secret, for_testing=True).key_id == 1
    assert Keyring.from_text(f"1:{b64url_encode(secret)}", for_testing=True).current.key_id == 1


def test_the_testing_kit_says_for_testing_and_generated_keys_pass() -> None:
    assert fixed_key(3).for_testing
    for _ in range(200):
        assert not generate_key().for_testing  # a random key never trips the weak-secret checks


@pytest.mark.parametrize("bad", [["1:abc"], "1:abc", [b"x" * 32], None])
def test_a_keyring_given_text_or_a_list_explains(bad: object) -> None:
    with pytest.raises(KeyFormatError, match=r"must be a Key.*Keyring\.from_text"):
        Keyring(bad)  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError, match=r"Keyring.from_text"):
        Keyring(Key(1, SECRET), [bad])  # type: ignore[list-item]


def test_keys_and_keyrings_are_frozen() -> None:
    key = Key(1, SECRET)
    with pytest.raises(AttributeError):
        key.secret = b"x" * 32  # type: ignore[misc]
    ring = Keyring(key)
    with pytest.raises(AttributeError):
        ring.current = Key(2, SECRET)  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="unknown argument 'acepted' \\(did you mean 'accepted'"):
        Keyring(key, acepted=())  # type: ignore[call-arg]


def test_key_format_errors_never_echo_the_entry() -> None:
    secret_text = "d10wZD3GsecretsecretsecretsecretsecretsecretXX"
    with pytest.raises(KeyFormatError) as info:
        Keyring.from_text(secret_text)
    assert "d10w" not in str(info.value)
