"""The session-id cookie of server-stored sessions: a random id and its MAC, version 3.

The cookie value is canonical unpadded base64url of 50 bytes::

    value = version(1)=0x03 ‖ key id(1) ‖ session id(16) ‖ tag(32)
    tag   = HMAC-SHA256(K_sid[key id], PAE(b"clientstate/v1/sid", cookie name) ‖ version ‖ key id ‖ session id)

``K_sid`` is the key's HKDF subkey for the purpose ``sid`` (never the one
client-stored tokens use). The session id is 16 bytes from ``secrets``
(128 bits). A store holds the raw id, not the cookie: a leaked store dump or
backup gives no cookie that loads without the keys.

Reading a value, in order, stopping at the first failure — all before any
store access: length other than 67 characters → ``too_large`` (longer) or
``malformed``; not canonical base64url → ``malformed``; version byte not 0x03
→ ``unsupported_version``; key id not in the keyring → ``unknown_key``; tag
mismatch (compared in constant time by ``cryptography``) → ``authentication_failed``.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.errors import AUTH_FAILED, MALFORMED_BASE64, ErrorKind, LoadError
from clientstate._core.keys import Keyring
from clientstate._core.token import pae
from clientstate._core.value import Immutable

__all__ = ["SID_BYTES", "SID_COOKIE_CHARS", "VERSION", "SessionIdCodec", "handle_of", "new_sid"]

#: The version byte of a session-id cookie.
VERSION: Final = 0x03
#: Bytes of a session id.
SID_BYTES: Final = 16
_TAG: Final = 32
_RAW: Final = 2 + SID_BYTES + _TAG
#: Characters of a session-id cookie value.
SID_COOKIE_CHARS: Final = (4 * _RAW + 2) // 3

_MALFORMED_LENGTH: Final = LoadError(ErrorKind.MALFORMED, f"a session-id cookie is {SID_COOKIE_CHARS} characters")
_TOO_LARGE: Final = LoadError(ErrorKind.TOO_LARGE, f"longer than the {SID_COOKIE_CHARS} characters of a session id")


def handle_of(sid: bytes) -> str:
    """The public handle of a session id: hex of the first 8 bytes of its SHA-256 (16 characters)."""
    return hashlib.sha256(sid).hexdigest()[:16]


def new_sid() -> bytes:
    """A new session id: 16 bytes from the OS CSPRNG (``secrets``)."""
    return secrets.token_bytes(SID_BYTES)


class SessionIdCodec(Immutable):
    """Signs and verifies session-id cookies for one keyring and cookie name.

    Args:
        keyring: the keys; new cookies use the current one, any accepted one verifies.
        cookie_name: bound into every tag, so an id cookie moved to another name fails.
    """

    __slots__ = ("_current", "_macs", "keyring")

    keyring: Keyring
    _macs: dict[int, hmac.HMAC]
    _current: int

    def __init__(self, keyring: Keyring, cookie_name: str) -> None:
        context = pae(b"clientstate/v1/sid", cookie_name.encode())
        macs = {}
        for key in keyring.keys:
            mac = hmac.HMAC(key.subkey(b"sid"), hashes.SHA256())
            mac.update(context)
            macs[key.key_id] = mac
        self._set(keyring=keyring, _macs=macs, _current=keyring.current.key_id)

    @property
    def current_key_id(self) -> int:
        """The key id new cookies are signed with."""
        return self._current

    def sign(self, sid: bytes) -> str:
        """The cookie value for ``sid`` under the current key."""
        head = bytes((VERSION, self._current)) + sid
        mac = self._macs[self._current].copy()
        mac.update(head)
        return b64url_encode(head + mac.finalize())

    def open(self, value: str) -> tuple[bytes, int] | LoadError:
        """``(session id, key id)`` of a genuine cookie value, else the :class:`LoadError`. Never raises."""
        if len(value) != SID_COOKIE_CHARS:
            return _TOO_LARGE if len(value) > SID_COOKIE_CHARS else _MALFORMED_LENGTH
        raw = b64url_decode(value)
        if raw is None:
            return MALFORMED_BASE64
        if raw[0] != VERSION:
            return LoadError(ErrorKind.UNSUPPORTED_VERSION, f"version byte 0x{raw[0]:02x}; session ids are 0x03")
        mac = self._macs.get(raw[1])
        if mac is None:
            return LoadError(ErrorKind.UNKNOWN_KEY, f"key id {raw[1]} is not in the keyring")
        mac = mac.copy()
        mac.update(raw[: 2 + SID_BYTES])
        try:
            mac.verify(raw[2 + SID_BYTES :])  # constant-time comparison inside cryptography
        except InvalidSignature:
            return AUTH_FAILED
        return raw[2 : 2 + SID_BYTES], raw[1]
