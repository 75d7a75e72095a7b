"""Keys, keyrings, and the subkeys derived from them.

A :class:`Key` is a key id (an integer 0–255, written into every token) and a
secret of at least 32 random bytes. A :class:`Keyring` has one *current* key,
used for every new token, and any number of older *accepted* keys, used only
to verify tokens they issued. Tokens name their key by id, so verification
never tries keys one after another.

The secret is never used directly: each purpose gets its own 32-byte subkey,
derived with HKDF-SHA256 (RFC 5869, from ``cryptography``)::

    subkey = HKDF-SHA256(ikm=secret, salt=b"clientstate/v1", info=b"clientstate/v1/" + purpose)

with purposes ``hmac`` (authenticated tokens) and ``aead`` (encrypted tokens).

Text form (what ``python -m clientstate keygen`` prints and the
``CLIENTSTATE_KEYS`` environment variable holds): entries separated by commas
and/or whitespace, each ``<key id>:<secret>`` where the key id is decimal 0–255
and the secret is unpadded base64url (RFC 4648 §5). With several entries the
current key is marked with a leading ``*``; a single entry is current without a
mark. Example::

    CLIENTSTATE_KEYS="*2:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clientstate.base64url import b64url_decode, b64url_encode
from clientstate.errors import KeyFormatError

__all__ = ["ENV_VAR", "MAX_SECRET_BYTES", "MIN_SECRET_BYTES", "Key", "Keyring", "generate_key"]

#: Shortest secret accepted, in bytes.
MIN_SECRET_BYTES: Final = 32
#: Longest secret :func:`generate_key` makes, in bytes.
MAX_SECRET_BYTES: Final = 1024
#: The environment variable :meth:`Keyring.from_env` reads.
ENV_VAR: Final = "CLIENTSTATE_KEYS"

_HKDF_SALT: Final = b"clientstate/v1"
_ENTRY = re.compile(r"(\*?)([0-9]{1,3}):([A-Za-z0-9_-]+)")


def _b64url_decode_secret(text: str, where: str) -> bytes:
    raw = b64url_decode(text)
    if raw is None:
        raise KeyFormatError(f"{where}: the secret is not canonical unpadded base64url")
    return raw


class Key:
    """One secret key and its key id.

    Args:
        key_id: integer 0–255, written into every token sealed with this key.
        secret: the key material, at least :data:`MIN_SECRET_BYTES` (32) bytes;
            it should come from a CSPRNG (:func:`generate_key` does).

    Raises:
        ConfigurationError: the key id is out of range, or the secret is not
            ``bytes`` or shorter than 32 bytes.

    ``repr()`` and ``str()`` never show the secret.
    """

    __slots__ = ("_secret", "_subkeys", "key_id")

    def __init__(self, key_id: int, secret: bytes) -> None:
        if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 <= key_id <= 255:
            raise KeyFormatError(f"key id must be an integer from 0 to 255, got {key_id!r}")
        if not isinstance(secret, bytes | bytearray):
            raise KeyFormatError(f"key {key_id}: the secret must be bytes, got {type(secret)!r}")
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyFormatError(
                f"key {key_id}: the secret is {len(secret)} bytes; at least "
                f"{MIN_SECRET_BYTES} random bytes are required (generate one with "
                f"`python -m clientstate keygen`)"
            )
        self.key_id: int = key_id
        self._secret = bytes(secret)
        self._subkeys: dict[bytes, bytes] = {}

    def subkey(self, purpose: bytes) -> bytes:
        """Return the 32-byte subkey for ``purpose`` (HKDF-SHA256, RFC 5869).

        Args:
            purpose: a short ASCII label such as ``b"hmac"`` or ``b"aead"``;
                distinct purposes give independent subkeys.
        """
        sub = self._subkeys.get(purpose)
        if sub is None:
            sub = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=_HKDF_SALT,
                info=_HKDF_SALT + b"/" + purpose,
            ).derive(self._secret)
            self._subkeys[purpose] = sub
        return sub

    def to_text(self) -> str:
        """The key in text form, ``<key id>:<unpadded base64url secret>``."""
        return f"{self.key_id}:{b64url_encode(self._secret)}"

    @classmethod
    def from_text(cls, text: str) -> Key:
        """Read one key written as ``<key id>:<secret>`` (a leading ``*`` is ignored).

        Raises:
            KeyFormatError: the text is not of that form, or the key is invalid.
        """
        return _parse_entry(text.strip())[1]

    def __repr__(self) -> str:
        return f"Key(key_id={self.key_id}, secret=<{len(self._secret)} bytes>)"


def generate_key(key_id: int = 1, size: int = MIN_SECRET_BYTES) -> Key:
    """Make a new key from ``secrets.token_bytes`` (the OS CSPRNG).

    Args:
        key_id: the key id, 0–255.
        size: secret length in bytes, at least 32.

    Raises:
        ConfigurationError: ``key_id`` out of range, or ``size`` outside 32–1024.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise KeyFormatError(
            f"key size must be an integer from {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, got {size!r}"
        )
    return Key(key_id, secrets.token_bytes(size))


def _parse_entry(entry: str, where: str = "the key entry") -> tuple[bool, Key]:
    match = _ENTRY.fullmatch(entry)
    if match is None:
        # Never echo the entry: it may be (part of) a secret.
        raise KeyFormatError(
            f"{where} ({len(entry)} characters) is not of the form '<key id>:<base64url secret>' "
            f"(optionally starting with '*' to mark the current key)"
        )
    mark, kid_text, secret_text = match.groups()
    key_id = int(kid_text)
    return mark == "*", Key(key_id, _b64url_decode_secret(secret_text, f"key {key_id}"))


class Keyring:
    """One current key and the older keys still accepted.

    Args:
        current: the key every new token is sealed with.
        accepted: older keys whose tokens still load (and are then re-issued
            under ``current``). Order does not matter; lookup is by key id.

    Raises:
        ConfigurationError: two keys share a key id.

    Rotation: add the new key as *accepted* on every server, then make it
    *current* (old cookies keep loading and are re-issued), then retire the old
    key once every cookie under it has been re-issued or has expired.
    """

    __slots__ = ("_by_id", "_current")

    def __init__(self, current: Key, accepted: Iterable[Key] = ()) -> None:
        self._current = current
        by_id: dict[int, Key] = {current.key_id: current}
        for key in accepted:
            if key.key_id in by_id:
                raise KeyFormatError(f"two keys share key id {key.key_id}")
            by_id[key.key_id] = key
        self._by_id: Mapping[int, Key] = by_id

    @property
    def current(self) -> Key:
        """The key every new token is sealed with (read-only: build a new keyring to rotate)."""
        return self._current

    def get(self, key_id: int) -> Key | None:
        """The key with ``key_id``, or ``None`` if it is not in this keyring."""
        return self._by_id.get(key_id)

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every key, the current one first."""
        return (self.current, *(k for k in self._by_id.values() if k is not self.current))

    def to_text(self) -> str:
        """The keyring in text form, the current key marked with ``*``."""
        return " ".join(
            ("*" if key is self.current else "") + key.to_text() for key in self.keys
        )

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        """Read a keyring in text form (see the module docstring).

        Raises:
            KeyFormatError: empty text, a malformed entry, a secret shorter than
                32 bytes, duplicate key ids, or zero or several current marks
                among several keys.
        """
        entries = [e for e in re.split(r"[\s,]+", text.strip()) if e]
        if not entries:
            raise KeyFormatError("no keys given")
        parsed = [_parse_entry(e, f"key entry {n} of {len(entries)}") for n, e in enumerate(entries, start=1)]
        marked = [key for is_current, key in parsed if is_current]
        if len(parsed) == 1:
            current = parsed[0][1]
        elif len(marked) == 1:
            current = marked[0]
        else:
            raise KeyFormatError(
                f"{len(parsed)} keys given and {len(marked)} marked current; "
                f"mark exactly one with a leading '*'"
            )
        return cls(current, [key for _, key in parsed if key is not current])

    @classmethod
    def from_env(cls, name: str = ENV_VAR, environ: Mapping[str, str] | None = None) -> Keyring:
        """Read a keyring from an environment variable (default ``CLIENTSTATE_KEYS``).

        Raises:
            KeyFormatError: the variable is unset or empty, or its text is invalid.
        """
        env = os.environ if environ is None else environ
        text = env.get(name, "")
        if not text.strip():
            raise KeyFormatError(
                f"environment variable {name} is not set; generate a key with "
                f"`python -m clientstate keygen`"
            )
        try:
            return cls.from_text(text)
        except KeyFormatError as exc:
            raise KeyFormatError(f"{name}: {exc}") from None

    def __repr__(self) -> str:
        ids = ", ".join(str(k.key_id) for k in self.keys)
        return f"Keyring(current={self.current.key_id}, key_ids=[{ids}])"
