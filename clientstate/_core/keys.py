"""Keys, keyrings, and the subkeys derived from them.

A :class:`Key` is a key id (an integer 0–255, written into every token) and a
secret of at least 32 random bytes. A :class:`Keyring` has one *current* key,
used for every new token, and any number of older *accepted* keys, used only
to verify tokens they issued. Tokens name their key by id, so verification
never tries keys one after another.

The secret is never used directly: each purpose gets its own 32-byte subkey,
derived with HKDF-SHA256 (RFC 5869, from ``cryptography``)::

    subkey = HKDF-SHA256(ikm=secret, salt=b"clientstate/v1", info=b"clientstate/v1/" + purpose)

with purposes such as ``hmac`` (authenticated tokens) and ``aead`` (encrypted
tokens); every feature that signs something has a purpose of its own.

Weak secrets are refused: a secret with fewer than 8 distinct byte values
(all zero, one repeated byte), one that repeats a shorter pattern, one that is
entirely printable ASCII (a password or phrase, not random bytes), and the
well-known ones — the keys of :mod:`clientstate.testing` and the examples in
clientstate's documentation. Tests that need such keys say so with
``for_testing=True``. A random 32-byte secret trips none of these checks
(the likeliest, all-printable, has a chance below 2**-45).

Text form (what ``python -m clientstate keygen`` prints and the
``CLIENTSTATE_KEYS`` environment variable holds): entries separated by commas
and/or whitespace, each ``<key id>:<secret>`` where the key id is decimal 0–255
written without leading zeros (``1``, not ``01``, so that one text spells one
keyring) and the secret is unpadded base64url (RFC 4648 §5). With several entries the
current key is marked with a leading ``*``; a single entry is current without a
mark. The shape, with placeholder secrets that are refused as keys::

    CLIENTSTATE_KEYS="*2:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.config import checked
from clientstate._core.errors import ConfigurationError, KeyFormatError
from clientstate._core.value import ConfigValue, Value

__all__ = ["ENV_VAR", "MAX_SECRET_BYTES", "MIN_SECRET_BYTES", "Key", "Keyring", "fixed_secret", "generate_key"]

#: Shortest secret accepted, in bytes.
MIN_SECRET_BYTES: Final = 32
#: Longest secret :func:`generate_key` makes, in bytes.
MAX_SECRET_BYTES: Final = 1024
#: The environment variable :meth:`Keyring.from_env` reads.
ENV_VAR: Final = "CLIENTSTATE_KEYS"

_HKDF_SALT: Final = b"clientstate/v1"
_ENTRY = re.compile(r"(\*?)([0-9]{1,3}):([A-Za-z0-9_-]+)")
_MIN_DISTINCT: Final = 8


def fixed_secret(key_id: int) -> bytes:
    """The fixed secret of :func:`clientstate.testing.fixed_key` for ``key_id``: SHA-256 of a public label."""
    return hashlib.sha256(f"clientstate test key {key_id}".encode()).digest()


# The placeholders in this module's docstring, and every fixed test key.
_WELL_KNOWN: Final = frozenset(
    {
        bytes.fromhex("deadbeef") + bytes(28),
        bytes(range(32)),
        *(fixed_secret(i) for i in range(256)),
    }
)


def _weakness(secret: bytes) -> str | None:
    """Why ``secret`` is not a usable key, or ``None``."""
    if secret in _WELL_KNOWN:
        return "is a well-known example or test secret, public to everyone"
    distinct = len(set(secret))
    if distinct < _MIN_DISTINCT:
        return f"has only {distinct} distinct byte values (all zero, one repeated byte or a short pattern)"
    for period in range(1, len(secret) // 2 + 1):
        if secret[period:] == secret[:-period]:
            return f"repeats a {period}-byte pattern"
    if all(0x20 <= b <= 0x7E for b in secret):
        return "is printable text (a password or phrase), not random bytes"
    return None


# Subkeys per Key, derived once; keyed by identity (keys compare by identity).
_SUBKEYS: Final[weakref.WeakKeyDictionary[Key, dict[bytes, bytes]]] = weakref.WeakKeyDictionary()
_SUBKEYS_LOCK: Final = threading.Lock()


class Key(ConfigValue, eq=False, weakref=True, frozen=True):
    """One secret key and its key id. Frozen.

    Args:
        key_id: integer 0–255, written into every token sealed with this key.
        secret: the key material, at least :data:`MIN_SECRET_BYTES` (32) bytes
            from a CSPRNG (:func:`generate_key` makes one).
        for_testing: accept a well-known or degenerate secret (fixed test
            keys); never set this in production code.

    Raises:
        KeyFormatError: the key id is out of range; the secret is not bytes,
            shorter than 32 bytes, or weak (see the module docstring) while
            ``for_testing`` is false.

    ``repr()`` and ``str()`` never show the secret. Keys compare by identity.
    """

    key_id: int
    secret: bytes
    for_testing: bool = False

    def __post_init__(self) -> None:
        key_id, secret = self.key_id, self.secret
        if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 <= key_id <= 255:
            raise KeyFormatError(f"key id must be an integer from 0 to 255, got {key_id!r}")
        if not isinstance(secret, bytes | bytearray):
            raise KeyFormatError(
                f"key {key_id}: the secret must be bytes, got {type(secret).__name__} "
                f"(for text such as CLIENTSTATE_KEYS use Key.from_text or Keyring.from_text)"
            )
        if not isinstance(self.for_testing, bool):
            raise KeyFormatError(f"key {key_id}: for_testing must be True or False, got {self.for_testing!r}")
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyFormatError(
                f"key {key_id}: the secret is {len(secret)} bytes; at least "
                f"{MIN_SECRET_BYTES} random bytes are required (generate one with "
                f"`python -m clientstate keygen`)"
            )
        Value.force(self, "secret", bytes(secret))
        if not self.for_testing:
            weakness = _weakness(self.secret)
            if weakness is not None:
                raise KeyFormatError(
                    f"key {key_id}: the secret {weakness}; generate a random key with "
                    f"`python -m clientstate keygen` (tests may pass for_testing=True)"
                )

    def subkey(self, purpose: bytes) -> bytes:
        """Return the 32-byte subkey for ``purpose`` (HKDF-SHA256, RFC 5869).

        Args:
            purpose: a short ASCII label such as ``b"hmac"`` or ``b"aead"``;
                distinct purposes give independent subkeys.
        """
        with _SUBKEYS_LOCK:
            cache = _SUBKEYS.setdefault(self, {})
            sub = cache.get(purpose)
            if sub is None:
                sub = HKDF(
                    algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_SALT + b"/" + purpose
                ).derive(self.secret)
                cache[purpose] = sub
        return sub

    def to_text(self) -> str:
        """The key in text form, ``<key id>:<unpadded base64url secret>``."""
        return f"{self.key_id}:{b64url_encode(self.secret)}"

    @classmethod
    def from_text(cls, text: str, *, for_testing: bool = False) -> Key:
        """Read one key written as ``<key id>:<secret>`` (a leading ``*`` is ignored).

        Raises:
            KeyFormatError: the text is not of that form (a key id with a leading
                zero included), or the key is invalid or weak.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"key text must be a str, got {type(text).__name__}")
        return _parse_entry(text.strip(), "the key entry", for_testing)[1]

    def __repr__(self) -> str:
        return f"Key(key_id={self.key_id}, secret=<{len(self.secret)} bytes>)"

    __str__ = __repr__


@checked
def generate_key(key_id: int = 1, size: int = MIN_SECRET_BYTES) -> Key:
    """Make a new key from ``secrets.token_bytes`` (the OS CSPRNG).

    Args:
        key_id: the key id, 0–255.
        size: secret length in bytes, 32–1024.

    Raises:
        KeyFormatError: ``key_id`` out of range, or ``size`` outside 32–1024.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise KeyFormatError(
            f"key size must be an integer from {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, got {size!r}"
        )
    while True:
        key_bytes = secrets.token_bytes(size)
        if _weakness(key_bytes) is None:  # never in practice; a redraw keeps the promise absolute
            return Key(key_id, key_bytes)


def _parse_entry(entry: str, where: str, for_testing: bool) -> tuple[bool, Key]:
    match = _ENTRY.fullmatch(entry)
    if match is None:
        # Never echo the entry: it may be (part of) a secret.
        raise KeyFormatError(
            f"{where} ({len(entry)} characters) is not of the form '<key id>:<base64url secret>' "
            f"(optionally starting with '*' to mark the current key)"
        )
    mark, kid_text, secret_text = match.groups()
    if len(kid_text) > 1 and kid_text.startswith("0"):  # one text spells one keyring: "1", never "01"
        raise KeyFormatError(
            f"{where}: key id {kid_text!r} has a leading zero; write it as {int(kid_text)} "
            f"(a key id is decimal 0-255 without leading zeros)"
        )
    key_id = int(kid_text)
    raw = b64url_decode(secret_text)
    if raw is None:
        raise KeyFormatError(f"key {key_id}: the secret is not canonical unpadded base64url")
    return mark == "*", Key(key_id, raw, for_testing=for_testing)


class Keyring(ConfigValue, eq=False, frozen=True):
    """One current key and the older keys still accepted. Frozen.

    Args:
        current: the :class:`Key` every new token is sealed with.
        accepted: older keys whose tokens still load (and are then re-issued
            under ``current``). Order does not matter; lookup is by key id.

    Raises:
        KeyFormatError: ``current`` or an accepted entry is not a :class:`Key`
            (text belongs in :meth:`from_text`), or two keys share a key id.

    Rotation: add the new key as *accepted* on every server, then make it
    *current* (old cookies keep loading and are re-issued), then retire the old
    key once every cookie under it has been re-issued or has expired. A keyring
    never changes: build a new one (and new handlers) to rotate.
    """

    current: Key
    accepted: Sequence[Key] = ()

    def __post_init__(self) -> None:
        hint = "to read keys in text form use Keyring.from_text(text) or Keyring.from_env()"
        if not isinstance(self.current, Key):
            raise KeyFormatError(f"Keyring current must be a Key, got {type(self.current).__name__}; {hint}")
        if isinstance(self.accepted, str | bytes) or not isinstance(self.accepted, Iterable):
            raise KeyFormatError(
                f"Keyring accepted must be an iterable of Key, got {type(self.accepted).__name__}; {hint}"
            )
        accepted = tuple(self.accepted)
        seen = {self.current.key_id}
        for key in accepted:
            if not isinstance(key, Key):
                raise KeyFormatError(f"Keyring accepted holds a {type(key).__name__}, not a Key; {hint}")
            if key.key_id in seen:
                raise KeyFormatError(f"two keys share key id {key.key_id}")
            seen.add(key.key_id)
        Value.force(self, "accepted", accepted)

    def get(self, key_id: int) -> Key | None:
        """The key with ``key_id``, or ``None`` if it is not in this keyring."""
        for key in self.keys:
            if key.key_id == key_id:
                return key
        return None

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every key, the current one first."""
        return (self.current, *self.accepted)

    def to_text(self) -> str:
        """The keyring in text form, the current key marked with ``*``."""
        return " ".join(("*" if key is self.current else "") + key.to_text() for key in self.keys)

    @classmethod
    def from_text(cls, text: str, *, for_testing: bool = False) -> Keyring:
        """Read a keyring in text form (see the module docstring).

        Args:
            text: the entries.
            for_testing: accept well-known and degenerate secrets (tests only).

        Raises:
            KeyFormatError: not a ``str``, empty, a malformed entry (a key id
                with a leading zero included), a secret shorter than 32 bytes
                or weak, a key id given twice (named, with the entries), or
                zero or several current marks among several keys.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"keyring text must be a str, got {type(text).__name__}")
        entries = [e for e in re.split(r"[\s,]+", text.strip()) if e]
        if not entries:
            raise KeyFormatError("no keys given")
        parsed = [
            _parse_entry(e, f"key entry {n} of {len(entries)}", for_testing) for n, e in enumerate(entries, start=1)
        ]
        first: dict[int, int] = {}  # key id -> the entry (1-based) that gave it first
        for n, (_, key) in enumerate(parsed, start=1):
            if key.key_id in first:  # checked before the marks: "*1:… *1:…" is one key id given twice
                raise KeyFormatError(
                    f"entries {first[key.key_id]} and {n} of {len(parsed)} share key id {key.key_id}; "
                    f"each key id names one key"
                )
            first[key.key_id] = n
        marked = [key for is_current, key in parsed if is_current]
        if len(parsed) == 1:
            current = parsed[0][1]
        elif len(marked) == 1:
            current = marked[0]
        else:
            raise KeyFormatError(
                f"{len(parsed)} keys given and {len(marked)} marked current; mark exactly one with a leading '*'"
            )
        return cls(current, tuple(key for _, key in parsed if key is not current))

    @classmethod
    @checked
    def from_env(
        cls, name: str = ENV_VAR, environ: Mapping[str, str] | None = None, *, for_testing: bool = False
    ) -> Keyring:
        """Read a keyring from an environment variable (default ``CLIENTSTATE_KEYS``).

        Args:
            name: the variable's name, a non-empty ``str`` without ``=`` or NUL.
            environ: the mapping to read (default ``os.environ``).
            for_testing: ``True`` to accept the testing kit's well-known keys.

        Raises:
            ConfigurationError: ``name`` is not a valid variable name, ``environ``
                is not a mapping, ``for_testing`` is not a ``bool``, or the
                variable's value is not a ``str``.
            KeyFormatError: the variable is unset or empty, or its text is
                invalid or holds a weak or well-known secret.
        """
        if not isinstance(name, str) or not name or "=" in name or "\x00" in name:
            raise ConfigurationError(
                f"Keyring.from_env name must be an environment variable name (a non-empty str without '=' "
                f"or NUL), got {type(name).__name__} {name!r:.40}"
            )
        if environ is not None and not isinstance(environ, Mapping):
            raise ConfigurationError(f"Keyring.from_env environ must be a mapping, got {type(environ).__name__}")
        if not isinstance(for_testing, bool):
            raise ConfigurationError(f"for_testing must be True or False, got {for_testing!r}")
        env = os.environ if environ is None else environ
        text = env.get(name, "")
        if not isinstance(text, str):
            raise ConfigurationError(
                f"environment variable {name} must hold text, got {type(text).__name__} (keys are never printed)"
            )
        if not text.strip():
            raise KeyFormatError(
                f"environment variable {name} is not set; generate a key with `python -m clientstate keygen`"
            )
        try:
            return cls.from_text(text, for_testing=for_testing)
        except KeyFormatError as exc:
            raise KeyFormatError(f"{name}: {exc}") from None

    def __repr__(self) -> str:
        ids = ", ".join(str(k.key_id) for k in self.keys)
        return f"Keyring(current={self.current.key_id}, key_ids=[{ids}])"

    __str__ = __repr__

