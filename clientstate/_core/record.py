"""The stored state of a server-stored session: an authenticated blob bound to its session id, version 1.

::

    blob = version(1)=0x01 ‖ key id(1) ‖ fingerprint(8) ‖ payload ‖ tag(32)
    tag  = HMAC-SHA256(K_record[key id],
                       PAE(b"clientstate/v1/record", session id, state name, schema version) ‖ version ‖ key id
                       ‖ fingerprint ‖ payload)

``payload`` is the state's canonical MessagePack; ``fingerprint`` is
:func:`clientstate._core.state.fingerprint` of the type at that schema version;
``K_record`` is the key's HKDF subkey for the purpose ``record``. Binding the
session id means a row copied under another id, or edited in the database
(its state, its schema version), fails to load with ``authentication_failed``.
The store sees the state (it is authenticated, not encrypted).

Opening, in order: shorter than the fixed layout or a version byte other
than 0x01 → ``malformed`` / ``unsupported_version``; key id not in the keyring
→ ``unknown_key``; tag mismatch → ``authentication_failed``; fingerprint not
that of the state's type at the record's schema version → ``schema_mismatch``.
"""

from __future__ import annotations

from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from clientstate._core.errors import AUTH_FAILED, ErrorKind, LoadError
from clientstate._core.keys import Keyring
from clientstate._core.state import State
from clientstate._core.token import pae
from clientstate._core.value import Immutable

__all__ = ["BLOB_OVERHEAD", "RecordCodec"]

_VERSION: Final = 0x01
_HEAD: Final = 2 + 8
_TAG: Final = 32
#: Bytes a blob adds to the payload.
BLOB_OVERHEAD: Final = _HEAD + _TAG
_SHORT: Final = LoadError(ErrorKind.MALFORMED, "stored state shorter than its fixed layout")
_DOMAIN: Final = b"clientstate/v1/record"


class RecordCodec(Immutable):
    """Seals and opens the stored state of one :class:`~clientstate.State` under one keyring.

    Args:
        keyring: new blobs use the current key; any accepted key opens.
        descriptor: the state; its name and per-version fingerprints are bound in.
    """

    __slots__ = ("_current", "_macs", "_name", "descriptor")

    descriptor: State[Any]
    _macs: dict[int, hmac.HMAC]
    _current: int
    _name: bytes

    def __init__(self, keyring: Keyring, descriptor: State[Any]) -> None:
        macs = {key.key_id: hmac.HMAC(key.subkey(b"record"), hashes.SHA256()) for key in keyring.keys}
        self._set(descriptor=descriptor, _macs=macs, _current=keyring.current.key_id, _name=descriptor.name.encode())

    @property
    def current_key_id(self) -> int:
        """The key id new blobs are sealed with."""
        return self._current

    def _mac(self, key_id: int, sid: bytes, schema_version: int) -> hmac.HMAC | None:
        base = self._macs.get(key_id)
        if base is None:
            return None
        mac = base.copy()
        mac.update(pae(_DOMAIN, sid, self._name, str(schema_version).encode()))
        return mac

    def seal(self, sid: bytes, schema_version: int, payload: bytes) -> bytes:
        """The blob of ``payload`` (the state at ``schema_version``) for session ``sid``, under the current key.

        Raises:
            KeyError: ``schema_version`` is not one the state accepts (a bug in the caller).
        """
        head = bytes((_VERSION, self._current)) + self.descriptor.fingerprints[schema_version]
        mac = self._mac(self._current, sid, schema_version)
        assert mac is not None
        mac.update(head)
        mac.update(payload)
        return head + payload + mac.finalize()

    def open(self, sid: bytes, schema_version: int, blob: bytes) -> tuple[bytes, int] | LoadError:
        """``(payload, key id)`` of a genuine blob of session ``sid``, else the :class:`LoadError`. Never raises."""
        if len(blob) < BLOB_OVERHEAD:
            return _SHORT
        if blob[0] != _VERSION:
            return LoadError(ErrorKind.UNSUPPORTED_VERSION, f"stored state version 0x{blob[0]:02x}; this reads 0x01")
        mac = self._mac(blob[1], sid, schema_version)
        if mac is None:
            return LoadError(ErrorKind.UNKNOWN_KEY, f"stored state under key id {blob[1]}, not in the keyring")
        mac.update(blob[:-_TAG])
        try:
            mac.verify(blob[-_TAG:])  # constant-time comparison inside cryptography
        except InvalidSignature:
            return AUTH_FAILED
        expected = self.descriptor.fingerprints.get(schema_version)
        if expected is None:
            return LoadError(ErrorKind.STATE_DECODE, f"no migration from schema version {schema_version}")
        if blob[2:_HEAD] != expected:
            return LoadError(
                ErrorKind.SCHEMA_MISMATCH,
                f"stored for a type of another shape at schema version {schema_version}; bump the State's "
                f"version and add a Migration when its type changes",
            )
        return blob[_HEAD:-_TAG], blob[1]
