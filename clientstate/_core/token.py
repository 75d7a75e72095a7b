"""The token: the wire format of a client-stored cookie value, version 1.

A token is canonical, unpadded base64url (RFC 4648 §5) of bytes laid out as
below. All integers are unsigned big-endian; ``‖`` is concatenation.

Authenticated mode (version byte ``0x01``), HMAC-SHA256 (RFC 2104, FIPS 180-4)::

    token  = version(1)=0x01 ‖ key id(1) ‖ inner ‖ tag(32)
    tag    = HMAC-SHA256(K_hmac[key id], AD ‖ version ‖ key id ‖ inner)

Encrypted mode (version byte ``0x02``), AES-256-GCM (NIST SP 800-38D)::

    token  = version(1)=0x02 ‖ key id(1) ‖ key salt(8) ‖ nonce(12) ‖ ciphertext ‖ tag(16)
    ciphertext ‖ tag = AES-256-GCM(K_salt, nonce, inner, associated data =
                                   AD ‖ version ‖ key id ‖ key salt ‖ nonce)
    K_salt = HKDF-Expand-SHA256(K_aead[key id], info=b"clientstate/v1/aead-salt/" ‖ key salt, 32)

Both modes::

    inner  = flags(1) ‖ issued-at(8) ‖ [expires-at(8) iff flags bit 0] ‖ payload
    flags  : bit 0 = expires-at present; bits 1–7 reserved, must be 0
    issued-at, expires-at : seconds since the Unix epoch
    payload: the state, msgspec MessagePack with deterministic map order
    AD     = PAE(b"clientstate/v1", cookie name, state name, schema version)
    PAE(x1..xn) = LE64(n) ‖ LE64(len x1) ‖ x1 ‖ ... ‖ LE64(len xn) ‖ xn

``PAE`` is the length-prefixed pre-authentication encoding of PASETO; with it
the associated data is unambiguous, so a token moved to another cookie name,
state name or schema version fails authentication. The schema version is
written as decimal ASCII. ``K_hmac`` and ``K_aead`` are the key's HKDF subkeys
for the purposes ``hmac`` and ``aead`` (see :mod:`clientstate._core.keys`).

Encryption: each :class:`TokenCodec` (one per handler and state, in each
process; a forked child draws anew) draws a random 8-byte key salt, derives
``K_salt`` from it, and uses that subkey for at most 2**24 tokens before
drawing a new salt; each token gets a fresh random 96-bit nonce. Under any one AES key there
are therefore at most 2**24 random nonces, so the chance that a nonce repeats
under one key stays below 2**-49 however many cookies a site writes (the
random-nonce bound of SP 800-38D §8.3 applies per derived key, not per secret).

Reading a token, in order, stopping at the first failure:

1. length over the limit → ``too_large`` (before any decoding);
2. characters outside ``[A-Za-z0-9_-]``, padding, a length of 1 mod 4, or
   non-zero unused bits in the last character → ``malformed``;
3. version byte not the handler's mode → ``unsupported_version``;
4. shorter than the mode's fixed layout → ``malformed``;
5. key id not in the keyring → ``unknown_key``;
6. HMAC (compared in constant time by ``cryptography``) or AEAD check fails →
   ``authentication_failed``. Nothing past the version and key id (and, in
   encrypted mode, the salt and nonce, which only select the subkey) is read
   before this check passes;
7. reserved flag bits set, or inner too short → ``malformed`` (the detail
   says which: after authentication this means a writer holding the key wrote
   bad content).

Time limits and decoding the payload into the state's type are the handler's
work (:mod:`clientstate._handlers.client_stored`).

Fixed overhead: authenticated 43 bytes (51 with expires-at), encrypted 47
bytes (55 with expires-at), before base64url's 4/3 expansion.
"""

from __future__ import annotations

import enum
import itertools
import os
import struct
import threading
import weakref
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.errors import (
    AUTH_FAILED,
    MALFORMED_BASE64,
    MALFORMED_EMPTY,
    MALFORMED_SHORT,
    ErrorKind,
    LoadError,
)
from clientstate._core.keys import Keyring
from clientstate._core.value import Value

__all__ = [
    "AUTHENTICATED_OVERHEAD",
    "ENCRYPTED_OVERHEAD",
    "EXPIRES_AT_BYTES",
    "Mode",
    "Opened",
    "Peeked",
    "TokenCodec",
    "associated_data",
    "pae",
    "peek",
    "token_length",
]

_DOMAIN: Final = b"clientstate/v1"


class Mode(enum.IntEnum):
    """The token modes; the value is the version byte."""

    #: HMAC-SHA256: the client can read the state but not change it.
    AUTHENTICATED = 0x01
    #: AES-256-GCM: the client can neither read nor change the state.
    ENCRYPTED = 0x02


_FLAG_EXPIRES: Final = 0x01
_U64: Final = struct.Struct(">Q")
_U64x2: Final = struct.Struct(">QQ")
_PRELUDE: Final = struct.Struct(">BQ")
_PRELUDE_EXPIRES: Final = struct.Struct(">BQQ")
_U64_MAX: Final = 2**64 - 1
_HMAC_TAG: Final = 32
_GCM_TAG: Final = 16
_SALT: Final = 8
_NONCE: Final = 12
_INNER_MIN: Final = 1 + 8
_A_HEADER: Final = 2
_E_HEADER: Final = 2 + _SALT + _NONCE
_SALT_USES: Final = 2**24
_DECRYPT_CACHE: Final = 256

#: Fixed bytes an authenticated token adds to the payload (without expires-at).
AUTHENTICATED_OVERHEAD: Final = _A_HEADER + _INNER_MIN + _HMAC_TAG
#: Fixed bytes an encrypted token adds to the payload (without expires-at).
ENCRYPTED_OVERHEAD: Final = _E_HEADER + _INNER_MIN + _GCM_TAG
#: Bytes an expires-at adds to a token.
EXPIRES_AT_BYTES: Final = 8


def pae(*items: bytes) -> bytes:
    """PASETO's pre-authentication encoding of ``items``: an unambiguous concatenation.

    ``LE64(n) ‖ LE64(len item1) ‖ item1 ‖ … ‖ LE64(len itemn) ‖ itemn``: no two
    different sequences of items encode alike, so values bound this way
    (names, ids, versions) cannot be shifted into one another.
    """
    out = [len(items).to_bytes(8, "little")]
    for item in items:
        out.append(len(item).to_bytes(8, "little"))
        out.append(item)
    return b"".join(out)


def associated_data(cookie_name: str, state_name: str, schema_version: int) -> bytes:
    """The associated data binding a token to its cookie, state and schema version.

    ``PAE(b"clientstate/v1", cookie name, state name, schema version)`` (see
    :func:`pae`). Names are UTF-8; the schema version is decimal ASCII.
    """
    return pae(_DOMAIN, cookie_name.encode("utf-8"), state_name.encode("utf-8"), str(schema_version).encode("ascii"))


class Opened(Value, frozen=True):
    """A token that authenticated. Frozen.

    Attributes:
        payload: the state's MessagePack bytes (not yet decoded).
        issued_at: seconds since the Unix epoch.
        expires_at: seconds since the Unix epoch, or ``None``.
        key_id: the id of the key that verified it.
        schema_version: the schema version whose associated data verified it.
    """

    payload: bytes
    issued_at: int
    expires_at: int | None
    key_id: int
    schema_version: int


class Peeked(Value, frozen=True):
    """What a token shows without any key (see :func:`peek`). Frozen.

    Attributes:
        mode: the token's mode, from its version byte.
        key_id: the key id in the header.
        issued_at, expires_at, payload: for authenticated tokens, the
            *unverified* inner fields; ``None`` for encrypted tokens.
    """

    mode: Mode
    key_id: int
    issued_at: int | None
    expires_at: int | None
    payload: bytes | None


def _inner(payload: bytes, issued_at: int, expires_at: int | None) -> bytes:
    if not 0 <= issued_at <= _U64_MAX:
        raise ValueError(f"issued-at {issued_at} is outside 0..2**64-1")
    if expires_at is None:
        return _PRELUDE.pack(0, issued_at) + payload
    if not 0 <= expires_at <= _U64_MAX:
        raise ValueError(f"expires-at {expires_at} is outside 0..2**64-1")
    return _PRELUDE_EXPIRES.pack(_FLAG_EXPIRES, issued_at, expires_at) + payload


def _parse_inner(data: bytes, at: int) -> tuple[bytes, int, int | None] | LoadError:
    """``(payload, issued-at, expires-at)`` of the inner bytes starting at offset ``at`` of ``data``."""
    if len(data) - at < _INNER_MIN:
        return MALFORMED_SHORT
    flags = data[at]
    if flags == 0:
        return data[at + 9 :], _U64.unpack_from(data, at + 1)[0], None
    if flags != _FLAG_EXPIRES:
        return LoadError(ErrorKind.MALFORMED, f"reserved flag bits set (flags=0x{flags:02x})")
    if len(data) - at < _INNER_MIN + 8:
        return MALFORMED_SHORT
    issued_at, expires_at = _U64x2.unpack_from(data, at + 1)
    return data[at + 17 :], issued_at, expires_at


def peek(value: str) -> Peeked | LoadError:
    """Read what a token shows without verifying it. Never raises.

    For authenticated tokens the inner fields are readable (authenticated is not
    encrypted) but **unverified**: anyone can write them. For encrypted tokens
    only the mode and key id are readable. Used by ``python -m clientstate
    inspect --no-verify``.
    """
    raw = b64url_decode(value)
    if raw is None:
        return MALFORMED_BASE64
    if len(raw) < 2:
        return MALFORMED_SHORT
    try:
        mode = Mode(raw[0])
    except ValueError:
        return LoadError(ErrorKind.UNSUPPORTED_VERSION, f"unknown version byte 0x{raw[0]:02x}")
    if mode is Mode.ENCRYPTED:
        if len(raw) < ENCRYPTED_OVERHEAD:
            return MALFORMED_SHORT
        return Peeked(mode, raw[1], None, None, None)
    if len(raw) < AUTHENTICATED_OVERHEAD:
        return MALFORMED_SHORT
    inner = _parse_inner(raw[:-_HMAC_TAG], _A_HEADER)
    if isinstance(inner, LoadError):
        return inner
    payload, issued_at, expires_at = inner
    return Peeked(mode, raw[1], issued_at, expires_at, payload)


class _Sealer:
    """The current encryption subkey of this process: salt, AEAD object, uses left."""

    __slots__ = ("aead", "header", "salt", "uses")

    def __init__(self, aead_key: bytes, header: bytes) -> None:
        self.salt = os.urandom(_SALT)
        self.aead = AESGCM(_salt_key(aead_key, self.salt))
        self.uses = itertools.count()
        #: The token header up to the nonce: version, key id, salt.
        self.header = header + self.salt


def _salt_key(aead_key: bytes, salt: bytes) -> bytes:
    return HKDFExpand(hashes.SHA256(), 32, b"clientstate/v1/aead-salt/" + salt).derive(aead_key)


# Encrypting codecs draw a new key salt in a forked child, so that workers forked
# from one parent never share a salt.
_ENCRYPTING: Final[weakref.WeakSet[TokenCodec]] = weakref.WeakSet()


def _after_fork() -> None:
    for codec in list(_ENCRYPTING):
        codec._lock = threading.Lock()
        codec._new_sealer()


os.register_at_fork(after_in_child=_after_fork)


class TokenCodec:
    """Seals and opens tokens for one (keyring, mode, cookie name, state name).

    Everything constant is computed once here: the associated data, an HMAC
    object per key already fed with it, and the AEAD subkeys.

    Args:
        keyring: the keys; tokens are sealed under ``keyring.current``.
        mode: :class:`Mode` of the tokens written and the only one accepted.
        cookie_name: bound into the associated data.
        state_name: bound into the associated data.
        schema_versions: schema versions accepted, the current (written) one
            first. Older versions are tried in order only when the current one
            fails to authenticate, so migrations need no version field on the wire.
        max_length: longest token accepted, in characters; longer values are
            ``too_large`` before any decoding.

    Raises:
        ValueError: ``schema_versions`` is empty.
    """

    def __init__(
        self,
        keyring: Keyring,
        mode: Mode,
        cookie_name: str,
        state_name: str,
        schema_versions: Sequence[int],
        max_length: int,
    ) -> None:
        if not schema_versions:
            raise ValueError("at least one schema version is required")
        self.keyring = keyring
        self.mode = Mode(mode)
        self.max_length = max_length
        self._versions = tuple(schema_versions)
        self._ads = tuple(associated_data(cookie_name, state_name, v) for v in self._versions)
        self._current_id = keyring.current.key_id
        self._lock = threading.Lock()
        # Authenticated mode: per key id, one HMAC per schema version, fed with AD.
        self._macs: dict[int, tuple[hmac.HMAC, ...]] = {}
        # Encrypted mode: per key id, the aead subkey; one sealer for the current key.
        self._aead_keys: dict[int, bytes] = {}
        self._openers: dict[tuple[int, bytes], AESGCM] = {}
        for key in keyring.keys:
            if self.mode is Mode.AUTHENTICATED:
                base = hmac.HMAC(key.subkey(b"hmac"), hashes.SHA256())
                per_version = []
                for ad in self._ads:
                    h = base.copy()
                    h.update(ad)
                    per_version.append(h)
                self._macs[key.key_id] = tuple(per_version)
            else:
                self._aead_keys[key.key_id] = key.subkey(b"aead")
        self._header = bytes((self.mode, self._current_id))
        # Plain attributes for the hot path (enum member look-ups and comparisons cost more).
        self._version = int(self.mode)
        self._authenticating = self.mode is Mode.AUTHENTICATED
        self._seal_mac = self._macs[self._current_id][0] if self.mode is Mode.AUTHENTICATED else None
        self._sealer: _Sealer | None = None
        if self.mode is Mode.ENCRYPTED:
            self._new_sealer()
            _ENCRYPTING.add(self)

    @property
    def current_key_id(self) -> int:
        """The key id new tokens are sealed with."""
        return self._current_id

    @property
    def schema_version(self) -> int:
        """The schema version new tokens are bound to."""
        return self._versions[0]

    def seal(self, payload: bytes, issued_at: int, expires_at: int | None = None) -> str:
        """Seal ``payload`` into a token under the current key and schema version.

        Args:
            payload: the encoded state (bytes).
            issued_at: seconds since the Unix epoch, 0 to 2**64-1.
            expires_at: seconds since the Unix epoch, or ``None`` for no expiry.

        Raises:
            ValueError: a time outside 0 to 2**64-1.
        """
        inner = _inner(payload, issued_at, expires_at)
        mac = self._seal_mac
        if mac is not None:
            head = self._header + inner
            mac = mac.copy()
            mac.update(head)
            return b64url_encode(head + mac.finalize())
        sealer = self._sealer
        assert sealer is not None
        if next(sealer.uses) >= _SALT_USES:
            sealer = self._new_sealer()
            next(sealer.uses)
        nonce = os.urandom(_NONCE)
        header = sealer.header + nonce
        return b64url_encode(header + sealer.aead.encrypt(nonce, inner, self._ads[0] + header))

    def _new_sealer(self) -> _Sealer:
        with self._lock:
            sealer = _Sealer(self._aead_keys[self._current_id], self._header)
            self._sealer = sealer
            return sealer

    def open(self, value: str) -> Opened | LoadError:
        """Verify (or decrypt) a token. Never raises; every failure is a :class:`LoadError`.

        Returns:
            :class:`Opened` with the payload bytes and the authenticated times,
            or a ``LoadError`` of kind ``too_large``, ``malformed``,
            ``unsupported_version``, ``unknown_key`` or ``authentication_failed``.
        """
        fields = self.open_fields(value)
        return fields if isinstance(fields, LoadError) else Opened(*fields)

    def open_fields(self, value: str) -> tuple[bytes, int, int | None, int, int] | LoadError:
        """:meth:`open` returning a plain tuple in :class:`Opened` order: the per-request hot path."""
        size = len(value)
        if size > self.max_length:
            return LoadError(
                ErrorKind.TOO_LARGE, f"cookie value is {size} characters, over the {self.max_length} accepted"
            )
        raw = b64url_decode(value)
        if not raw:
            return MALFORMED_BASE64 if raw is None else MALFORMED_EMPTY
        if raw[0] != self._version:
            return self._bad_version(raw)
        key_id = raw[1] if len(raw) > 1 else -1
        if self._authenticating:
            if len(raw) < AUTHENTICATED_OVERHEAD:
                return MALFORMED_SHORT
            macs = self._macs.get(key_id)
            if macs is None:
                return self._unknown_key(key_id)
            data = raw[:-_HMAC_TAG]
            tag = raw[-_HMAC_TAG:]
            mac = macs[0].copy()
            mac.update(data)
            try:
                mac.verify(tag)  # constant-time comparison inside cryptography
                index = 0
            except InvalidSignature:
                index = self._verify(macs, data, tag)
                if index < 0:
                    return AUTH_FAILED
            at = _A_HEADER
        else:
            if len(raw) < ENCRYPTED_OVERHEAD:
                return MALFORMED_SHORT
            aead_key = self._aead_keys.get(key_id)
            if aead_key is None:
                return self._unknown_key(key_id)
            data, index = self._decrypt(aead_key, raw)
            if index < 0:
                return AUTH_FAILED
            at = 0
        # Authenticated: now the inner fields may be read.
        if len(data) - at >= _INNER_MIN and not data[at]:  # the usual token: no expires-at
            return data[at + 9 :], _U64.unpack_from(data, at + 1)[0], None, key_id, self._versions[index]
        inner = _parse_inner(data, at)
        if isinstance(inner, LoadError):
            return inner
        return inner[0], inner[1], inner[2], key_id, self._versions[index]

    @staticmethod
    def _unknown_key(key_id: int) -> LoadError:
        return LoadError(ErrorKind.UNKNOWN_KEY, f"key id {key_id} is not in the keyring")

    def _bad_version(self, raw: bytes) -> LoadError:
        return LoadError(
            ErrorKind.UNSUPPORTED_VERSION,
            f"version byte 0x{raw[0]:02x}; this handler reads only 0x{self.mode.value:02x} ({self.mode.name.lower()})",
        )

    @staticmethod
    def _verify(macs: tuple[hmac.HMAC, ...], data: bytes, tag: bytes) -> int:
        """Index of the older schema version whose HMAC matches ``tag``, or -1."""
        for index, prefix in enumerate(macs[1:], start=1):
            mac = prefix.copy()
            mac.update(data)
            try:
                mac.verify(tag)  # constant-time comparison inside cryptography
            except InvalidSignature:
                continue
            return index
        return -1

    def _decrypt(self, aead_key: bytes, raw: bytes) -> tuple[bytes, int]:
        """``(inner, index of the schema version)`` for an authentic token, else ``(b"", -1)``."""
        key_id = raw[1]
        header = raw[:_E_HEADER]
        salt = raw[2 : 2 + _SALT]
        cache_key = (key_id, salt)
        aead = self._openers.get(cache_key)
        cached = aead is not None
        if aead is None:
            aead = AESGCM(_salt_key(aead_key, salt))
        nonce = raw[2 + _SALT : _E_HEADER]
        sealed = raw[_E_HEADER:]
        for index, ad in enumerate(self._ads):
            try:
                inner = aead.decrypt(nonce, sealed, ad + header)
            except InvalidTag:
                continue
            if not cached:
                # Only subkeys of authenticated tokens are cached, so forged salts
                # cannot evict the real ones.
                with self._lock:
                    if len(self._openers) >= _DECRYPT_CACHE:
                        self._openers.pop(next(iter(self._openers)))
                    self._openers[cache_key] = aead
            return inner, index
        return b"", -1


def token_length(mode: Mode, payload_size: int, expires: bool) -> int:
    """Characters of the token for a payload of ``payload_size`` bytes (with an expires-at if ``expires``)."""
    overhead = AUTHENTICATED_OVERHEAD if mode is Mode.AUTHENTICATED else ENCRYPTED_OVERHEAD
    size = overhead + payload_size + (EXPIRES_AT_BYTES if expires else 0)
    return (4 * size + 2) // 3  # unpadded base64url
