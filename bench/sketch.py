"""A lean re-implementation of clientstate's v1 token, to show what the format itself costs.

Not part of the library and not a proposal of its API: one key, one state, one
schema version, no expiry, no rotation. It writes and reads exactly the token
of :mod:`clientstate._core.token` (:func:`check_interop` proves it both ways at start
up), so the gap between a ``sketch:`` row and a ``clientstate`` row in the
codec table is code, not format. The differences from the library's code:

* base64url decoding converts the ``str`` to ``bytes`` first and translates
  with one 256-byte table (``bytes.translate`` runs in C; ``str.translate``
  with a dict looks every character up in Python), mapping ``+ / =`` to a
  character strict ``a2b_base64`` refuses, so no separate scans are needed;
* encoding drops ``=`` in the same ``bytes.translate`` call;
* the result is a plain tuple, not a keyword-built object;
* the inner layout is read inline.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import math
import os
import struct
import time
from typing import Any, Final

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from bench.workload import STATE, VALUE, handler, keyring
from clientstate import Key, State
from clientstate._core.cookies import MAX_COOKIE_BYTES
from clientstate._core.handler import Loaded
from clientstate._core.token import associated_data

__all__ = ["Sketch", "b64url_decode", "b64url_encode", "check_interop"]

_U64: Final = struct.Struct(">Q")
_TO_STD: Final = bytes.maketrans(b"-_+/=", b"+/***")  # '*' is refused by strict a2b_base64
_FROM_STD: Final = bytes.maketrans(b"+/", b"-_")
_PAD: Final = (b"", b"", b"==", b"=")
_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LAST_OK: Final = (
    frozenset[str](),
    frozenset[str](),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x0F == 0),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x03 == 0),
)
_COOKIE_NAME: Final = "session"
_SKEW: Final = 60

#: ``(state, issued_at, expires_at, payload)``, or ``None`` when refused.
Result = tuple[Any, int, int | None, bytes] | None


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, ``=`` dropped by the same translate call."""
    return binascii.b2a_base64(data, newline=False).translate(_FROM_STD, b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Strict canonical unpadded base64url, as :func:`clientstate._core.token.b64url_decode` accepts."""
    rem = len(text) % 4
    if rem == 1 or (rem and text[-1] not in _LAST_OK[rem]):
        return None
    try:
        return binascii.a2b_base64(
            text.encode("ascii").translate(_TO_STD) + _PAD[rem], strict_mode=True
        )
    except (binascii.Error, UnicodeEncodeError):
        return None


class Sketch:
    """Save and load one state in clientstate's v1 token format (lean code).

    Args:
        key: the key (its id goes in the header; its HKDF subkeys are used).
        state: the state descriptor (name and version go in the associated data).
        encrypted: AES-256-GCM instead of HMAC-SHA256.
    """

    def __init__(self, key: Key, state: State[Any], *, encrypted: bool) -> None:
        self.encrypted = encrypted
        self.max_length = MAX_COOKIE_BYTES - len(_COOKIE_NAME)
        self.ad = associated_data(_COOKIE_NAME, state.name, state.version)
        self.key_id = key.key_id
        self.encode = msgspec.msgpack.Encoder(order="deterministic").encode
        self.decode = msgspec.msgpack.Decoder(state.type).decode
        if encrypted:
            self.header_base = bytes((0x02, key.key_id))
            self.aead_key = key.subkey(b"aead")
            self.salt = os.urandom(8)
            self.aead = AESGCM(self._salt_key(self.salt))
            self.openers = {self.salt: self.aead}
        else:
            self.header_base = bytes((0x01, key.key_id))
            mac_key = key.subkey(b"hmac").ljust(64, b"\0")
            inner = hashlib.sha256(bytes(b ^ 0x36 for b in mac_key))
            inner.update(self.ad)
            self.inner = inner
            self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in mac_key))

    def _salt_key(self, salt: bytes) -> bytes:
        info = b"clientstate/v1/aead-salt/" + salt
        return HKDFExpand(hashes.SHA256(), 32, info).derive(self.aead_key)

    def _tag(self, signed: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(signed)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def save(self, value: Any, now: float) -> str:
        """The token for ``value`` issued at ``now`` (the value is checked to decode back, as the library does)."""
        payload = self.encode(value)
        self.decode(payload)
        inner = b"\x00" + _U64.pack(math.floor(now)) + payload
        if self.encrypted:
            nonce = os.urandom(12)
            header = self.header_base + self.salt + nonce
            return b64url_encode(header + self.aead.encrypt(nonce, inner, self.ad + header))
        signed = self.header_base + inner
        return b64url_encode(signed + self._tag(signed))

    def load(self, value: str, now: float) -> Result:
        """``(state, issued_at, expires_at, payload)`` for a valid token, else ``None``. Never raises."""
        if len(value) > self.max_length:
            return None
        raw = b64url_decode(value)
        if raw is None or raw[:2] != self.header_base:
            return None
        if self.encrypted:
            if len(raw) < 47:
                return None
            aead = self.openers.get(raw[2:10])
            if aead is None:
                return None  # a real reader would derive and cache the salt's subkey here
            try:
                inner = aead.decrypt(raw[10:22], raw[22:], self.ad + raw[:22])
            except Exception:
                return None
        else:
            if len(raw) < 43 or not hmac.compare_digest(raw[-32:], self._tag(raw[:-32])):
                return None
            inner = raw[2:-32]
        flags = inner[0]
        if flags > 1:
            return None  # reserved flag bits
        issued_at: int = _U64.unpack_from(inner, 1)[0]
        if issued_at > now + _SKEW:
            return None
        expires_at: int | None = None
        at = 9
        if flags:  # expires-at present (the library's default lifetime writes one)
            expires_at = _U64.unpack_from(inner, 9)[0]
            at = 17
            if not now < expires_at:
                return None
        payload = inner[at:]
        try:
            return self.decode(payload), issued_at, expires_at, payload
        except (msgspec.DecodeError, ValueError, TypeError):
            return None


def check_interop() -> None:
    """Prove the sketch and the library read each other's tokens, in both modes.

    Raises:
        AssertionError: a token of one did not load in the other.
    """
    now = time.time()
    for encrypted in (False, True):
        lib = handler(encrypted=encrypted)
        sk = Sketch(keyring.current, STATE, encrypted=encrypted)
        from_sketch = lib.load_value(STATE, sk.save(VALUE, now), now)
        assert from_sketch.error is None, from_sketch
        assert from_sketch.state == VALUE, from_sketch
        lib_token = lib.seal(STATE, Loaded(), STATE.encode(VALUE), now)[0]
        if encrypted:
            # The library's process salt differs from the sketch's; teach the sketch it.
            raw = b64url_decode(lib_token)
            assert raw is not None
            sk.openers[raw[2:10]] = AESGCM(sk._salt_key(raw[2:10]))
        got = sk.load(lib_token, now)
        assert got is not None, lib_token
        assert got[0] == VALUE, got
        assert b64url_decode(lib_token) is not None
        assert b64url_encode(b64url_decode(lib_token) or b"") == lib_token
