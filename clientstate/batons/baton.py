"""The baton: the wire format of a stream handle, version 1.

A baton is canonical, unpadded base64url (RFC 4648 §5) of 58 bytes, so always
78 characters. Integers are unsigned big-endian; ``‖`` is concatenation::

    baton      = version(1)=0x01 ‖ key id(1) ‖ stream id(16) ‖ generation(8) ‖ tag(32)
    stream id  = boot(8) ‖ random(8)
    tag        = HMAC-SHA256(K_baton[key id], binding ‖ version ‖ key id ‖ stream id ‖ generation)
    binding    = PAE(b"clientstate/v1/baton", UTF-8(scope), SHA-256(UTF-8(principal)))
    PAE(x1..xn) = LE64(n) ‖ LE64(len x1) ‖ x1 ‖ ... ‖ LE64(len xn) ‖ xn

* ``K_baton`` is the key's HKDF subkey for the purpose ``baton`` (see
  :mod:`clientstate._core.keys`): never the key used for cookies.
* ``boot`` is 8 random bytes drawn by each registry when it is created (and
  again in a forked child); ``random`` is 8 bytes from :mod:`secrets` per stream.
  A baton presented to another process, or after a restart, names a boot that
  registry never had, and is refused as ``bad_baton`` before any lookup.
* ``generation`` starts at 0 and grows by one each time the stream is resumed,
  so every response carries a new baton and an old one never resumes again.
* The binding ties the tag to the stream's scope (for example a database name)
  and to a hash of its principal, with PASETO's length-prefixed encoding so no
  two (scope, principal) pairs share a binding.

Reading a baton, in order, stopping at the first failure (all ``bad_baton``):
the type and length (exactly 78 characters) before any decoding; strict
base64url; the version byte; the key id (looked up, never tried in turn); then,
in the registry, the boot and the stream id select the binding, and the tag is
checked in constant time by ``cryptography``. Nothing else of the baton is
acted on before the tag has verified.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.keys import Keyring
from clientstate._core.value import Immutable, Value
from clientstate.batons.errors import BAD_VERSION, NOT_BASE64, WRONG_LENGTH, BatonError

__all__ = [
    "BATON_BYTES",
    "BATON_CHARS",
    "BOOT_BYTES",
    "GENERATION_MAX",
    "STREAM_ID_BYTES",
    "STREAM_ID_CHARS",
    "VERSION",
    "Baton",
    "BatonKeys",
    "authentic",
    "binding",
    "decode",
    "peek_baton",
    "seal",
]

VERSION: Final = 0x01  # the version byte of this layout
BOOT_BYTES: Final = 8  # the per-registry boot prefix of a stream id
STREAM_ID_BYTES: Final = 16  # boot ‖ random
STREAM_ID_CHARS: Final = 22  # a stream id in text form (unpadded base64url)
_TAG: Final = 32
_SIGNED: Final = 2 + STREAM_ID_BYTES + 8
BATON_BYTES: Final = _SIGNED + _TAG  # 58
BATON_CHARS: Final = (BATON_BYTES * 8 + 5) // 6  # 78
GENERATION_MAX: Final = 2**64 - 1  # a stream that reaches it has ended its lifetime
_DOMAIN: Final = b"clientstate/v1/baton"
_PURPOSE: Final = b"baton"


def binding(scope: str, principal: str) -> bytes:
    """The bytes that bind a stream's tags to its scope and principal.

    ``PAE(b"clientstate/v1/baton", UTF-8(scope), SHA-256(UTF-8(principal)))``.

    Args:
        scope: the stream's scope, for example a database name.
        principal: who opened the stream, for example a user name.

    Raises:
        UnicodeEncodeError: either string holds a lone surrogate.
    """
    digest = hashes.Hash(hashes.SHA256())
    digest.update(principal.encode("utf-8"))
    items = (_DOMAIN, scope.encode("utf-8"), digest.finalize())
    out = [len(items).to_bytes(8, "little")]
    for item in items:
        out.append(len(item).to_bytes(8, "little"))
        out.append(item)
    return b"".join(out)


class BatonKeys(Immutable):
    """A keyring's baton subkeys as pre-keyed HMAC-SHA256 objects, one per key id.

    Args:
        keyring: the keys; batons are sealed under ``keyring.current`` and
            verified under the key their key id names.
    """

    __slots__ = ("_bases", "current_id", "keyring")

    keyring: Keyring
    current_id: int
    _bases: dict[int, hmac.HMAC]

    def __init__(self, keyring: Keyring) -> None:
        bases = {key.key_id: hmac.HMAC(key.subkey(_PURPOSE), hashes.SHA256()) for key in keyring.keys}
        self._set(keyring=keyring, current_id=keyring.current.key_id, _bases=bases)

    def fed(self, key_id: int, bound: bytes) -> hmac.HMAC | None:
        """An HMAC under key ``key_id`` already fed with ``bound``; ``None`` if the key id is unknown."""
        base = self._bases.get(key_id)
        if base is None:
            return None
        mac = base.copy()
        mac.update(bound)
        return mac


class Baton(Value, frozen=True):
    """The fields of a baton, **not verified** (see :func:`peek_baton`). Frozen.

    Attributes:
        key_id: the key id byte, 0–255.
        stream_id: the stream id in text form (22 characters of base64url).
        generation: the generation, 0 to 2**64-1.
    """

    key_id: int
    stream_id: str
    generation: int


def decode(text: object) -> bytes | BatonError:
    """The 58 bytes of a baton, checked for length (first), encoding and version; not verified.

    Never raises: anything that is not a 78-character canonical base64url
    string of a version-1 baton is a ``bad_baton`` :class:`BatonError`.
    """
    if type(text) is not str or len(text) != BATON_CHARS:
        return WRONG_LENGTH
    raw = b64url_decode(text)
    if raw is None:
        return NOT_BASE64
    if raw[0] != VERSION:
        return BAD_VERSION
    return raw


def peek_baton(text: object) -> Baton | BatonError:
    """Read a baton's fields without any key: for logs and tools. Never raises.

    The fields are **unverified**: anyone can write a string of this shape.
    """
    raw = decode(text)
    if isinstance(raw, BatonError):
        return raw
    return Baton(raw[1], b64url_encode(raw[2:18]), int.from_bytes(raw[18:_SIGNED], "big"))


def seal(fed: hmac.HMAC, key_id: int, stream_id: bytes, generation: int) -> str:
    """The baton for ``(key id, stream id, generation)``, tagged with ``fed`` (a copy is used).

    Args:
        fed: the HMAC under key ``key_id`` fed with the stream's binding
            (:meth:`BatonKeys.fed`); it is copied, never changed.
        key_id: 0–255.
        stream_id: 16 bytes.
        generation: 0 to 2**64-1.
    """
    head = bytes((VERSION, key_id)) + stream_id + generation.to_bytes(8, "big")
    mac = fed.copy()
    mac.update(head)
    return b64url_encode(head + mac.finalize())


def authentic(fed: hmac.HMAC, raw: bytes) -> bool:
    """Whether the tag of the decoded baton ``raw`` verifies under ``fed`` (constant time; a copy is used)."""
    mac = fed.copy()
    mac.update(raw[:_SIGNED])
    try:
        mac.verify(raw[_SIGNED:])
    except InvalidSignature:
        return False
    return True
