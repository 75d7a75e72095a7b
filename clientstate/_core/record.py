"""The stored state of a server-stored session: an authenticated blob bound to its record, version 1.

A session's blob::

    blob = version(1)=0x01 ‖ key id(1) ‖ fingerprint(8) ‖ payload ‖ tag(32)
    tag  = HMAC-SHA256(K_record[key id],
                       PAE(b"clientstate/v1/record", session id, state name, schema version,
                           principal, created-at, absolute deadline)
                       ‖ version ‖ key id ‖ fingerprint ‖ payload)

A tombstone's blob (the record of an id rotated away, :class:`~clientstate._core.store.Retire`)::

    blob = version(1)=0x02 ‖ key id(1) ‖ follow(1) ‖ tag(32)
    tag  = HMAC-SHA256(K_record[key id],
                       PAE(b"clientstate/v1/tombstone", session id, successor id, until)
                       ‖ version ‖ key id ‖ follow)

``follow`` is 1 when requests still carrying the old id reach the successor
until ``until`` (an id rotation without a change of principal), 0 when they
do not (a login: the old id must not reach the new session).

``payload`` is the state's canonical MessagePack; ``fingerprint`` is
:func:`clientstate._core.state.fingerprint` of the type at that schema version;
``K_record`` is the key's HKDF subkey for the purpose ``record``. Numbers are
decimal ASCII; ``principal`` is ``b"\x00"`` for none, else ``b"\x01"`` ‖ UTF-8.

Binding these fields means a row copied under another id, or edited in the
database — its state, schema version, principal, creation time, absolute
deadline, or a tombstone's successor or end — fails to load with
``authentication_failed``. The idle deadline and last touch are not bound
(a touch moves them without rewriting the blob); an edited idle deadline is
still capped by the authenticated absolute deadline. The store sees the state
(it is authenticated, not encrypted).

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
from clientstate._core.store import Record
from clientstate._core.token import pae
from clientstate._core.value import Immutable

__all__ = ["BLOB_OVERHEAD", "RecordCodec"]

_VERSION: Final = 0x01
_TOMBSTONE: Final = 0x02
_HEAD: Final = 2 + 8
_TAG: Final = 32
#: Bytes a blob adds to the payload.
BLOB_OVERHEAD: Final = _HEAD + _TAG
_SHORT: Final = LoadError(ErrorKind.MALFORMED, "stored state shorter than its fixed layout")
_DOMAIN: Final = b"clientstate/v1/record"
_TOMBSTONE_DOMAIN: Final = b"clientstate/v1/tombstone"
_NO_PRINCIPAL: Final = b"\x00"


def _principal(principal: str | None) -> bytes:
    return _NO_PRINCIPAL if principal is None else b"\x01" + principal.encode("utf-8", "surrogatepass")


def _number(value: int) -> bytes:
    return str(value).encode("ascii")


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

    def _mac(
        self, key_id: int, sid: bytes, schema_version: int, principal: str | None, created_at: int, absolute: int
    ) -> hmac.HMAC | None:
        base = self._macs.get(key_id)
        if base is None:
            return None
        mac = base.copy()
        mac.update(
            pae(_DOMAIN, sid, self._name, _number(schema_version), _principal(principal), _number(created_at),
                _number(absolute))
        )
        return mac

    def seal(
        self, sid: bytes, schema_version: int, payload: bytes, principal: str | None, created_at: int,
        absolute_deadline: int,
    ) -> bytes:
        """The blob of ``payload`` (the state at ``schema_version``) for the record of session ``sid``.

        Args:
            sid: the session id (16 bytes).
            schema_version: the schema version ``payload`` is encoded at.
            payload: the state's MessagePack.
            principal, created_at, absolute_deadline: the record's fields of
                those names (seconds since the epoch), bound into the tag.

        Raises:
            KeyError: ``schema_version`` is not one the state accepts (a bug in the caller).
        """
        head = bytes((_VERSION, self._current)) + self.descriptor.fingerprints[schema_version]
        mac = self._mac(self._current, sid, schema_version, principal, created_at, absolute_deadline)
        assert mac is not None
        mac.update(head)
        mac.update(payload)
        return head + payload + mac.finalize()

    def open(self, record: Record) -> tuple[bytes, int] | LoadError:
        """``(payload, key id)`` of a genuine session ``record``, else the :class:`LoadError`. Never raises."""
        blob = record.blob
        if len(blob) < BLOB_OVERHEAD:
            return _SHORT
        if blob[0] != _VERSION:
            return LoadError(ErrorKind.UNSUPPORTED_VERSION, f"stored state version 0x{blob[0]:02x}; this reads 0x01")
        schema_version = record.schema_version
        mac = self._mac(blob[1], record.sid, schema_version, record.principal, record.created_at,
                        record.absolute_deadline)
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

    def _tombstone_mac(self, key_id: int, follow: int, sid: bytes, moved_to: bytes, until: int) -> hmac.HMAC | None:
        base = self._macs.get(key_id)
        if base is None:
            return None
        mac = base.copy()
        mac.update(pae(_TOMBSTONE_DOMAIN, sid, moved_to, _number(until)))
        mac.update(bytes((_TOMBSTONE, key_id, follow)))
        return mac

    def seal_tombstone(self, sid: bytes, moved_to: bytes, until: int, follow: bool) -> bytes:
        """The blob of the tombstone of ``sid``: rotated to ``moved_to`` (both 16 bytes), answering until ``until``.

        ``until`` is seconds since the epoch; ``follow`` says whether requests
        with the old id reach the successor's state until then (``False`` for
        a login's rotation: the old, anonymous id must not reach the new session).
        """
        mac = self._tombstone_mac(self._current, int(follow), sid, moved_to, until)
        assert mac is not None
        return bytes((_TOMBSTONE, self._current, int(follow))) + mac.finalize()

    def open_tombstone(self, record: Record) -> bool | None:
        """For a genuine tombstone ``record``, whether it is followed to its successor; ``None`` if it is not genuine.

        Genuine: its successor, end and follow flag are the ones its writer set.
        """
        blob, moved_to = record.blob, record.moved_to
        if moved_to is None or len(blob) != 3 + _TAG or blob[0] != _TOMBSTONE or blob[2] > 1:
            return None
        mac = self._tombstone_mac(blob[1], blob[2], record.sid, moved_to, record.idle_deadline)
        if mac is None:
            return None
        try:
            mac.verify(blob[3:])  # constant-time comparison inside cryptography
        except InvalidSignature:
            return None
        return blob[2] == 1
