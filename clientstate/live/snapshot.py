"""The snapshot file of a ``MemoryStore``: every record, authenticated with the keyring, written atomically.

Layout::

    file = magic(24)=b"clientstate-snapshot-v1\\n" ‖ key id(1) ‖ body ‖ tag(32)
    body = MessagePack array of records, each an array of the ten Record fields
    tag  = HMAC-SHA256(K_snapshot[key id], magic ‖ key id ‖ body)

``K_snapshot`` is the key's HKDF subkey for the purpose ``snapshot``. A
snapshot sealed under an older key that the keyring still accepts loads; a
tampered, truncated or foreign file is refused as a whole — nothing is loaded
from it. Writing goes to a temporary file in the same directory, which is
fsynced, renamed over the snapshot, and the directory fsynced, so a crash
leaves either the old snapshot or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from clientstate._core.keys import Keyring
from clientstate._core.store import Record

__all__ = ["SnapshotError", "read_snapshot", "write_snapshot"]

_MAGIC: Final = b"clientstate-snapshot-v1\n"
_TAG: Final = 32
_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(list[Record])


class SnapshotError(Exception):
    """A snapshot file could not be used: the message says why (tampered, truncated, foreign key...)."""


def _mac(keyring: Keyring, key_id: int) -> hmac.HMAC | None:
    key = keyring.get(key_id)
    if key is None:
        return None
    return hmac.HMAC(key.subkey(b"snapshot"), hashes.SHA256())


def write_snapshot(path: str | os.PathLike[str], records: list[Record], keyring: Keyring) -> int:
    """Write ``records`` to the snapshot file at ``path`` atomically; returns the file's size in bytes.

    Raises:
        OSError: the file or its directory cannot be written.
    """
    target = Path(path)
    key_id = keyring.current.key_id
    head = _MAGIC + bytes((key_id,))
    body = _ENCODER.encode(records)
    mac = _mac(keyring, key_id)
    assert mac is not None
    mac.update(head)
    mac.update(body)
    content = head + body + mac.finalize()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return len(content)


def read_snapshot(path: str | os.PathLike[str], keyring: Keyring) -> list[Record]:
    """The records of the snapshot file at ``path``.

    Raises:
        FileNotFoundError: there is no snapshot.
        SnapshotError: it is not a snapshot, is truncated, was sealed under a
            key the keyring does not hold, or fails its MAC (tampered).
    """
    content = Path(path).read_bytes()
    if not content.startswith(_MAGIC) or len(content) < len(_MAGIC) + 1 + _TAG:
        raise SnapshotError(f"{path} is not a clientstate snapshot (or is truncated)")
    key_id = content[len(_MAGIC)]
    mac = _mac(keyring, key_id)
    if mac is None:
        raise SnapshotError(f"{path} was sealed under key id {key_id}, which the keyring does not hold")
    mac.update(content[:-_TAG])
    try:
        mac.verify(content[-_TAG:])
    except InvalidSignature:
        raise SnapshotError(f"{path} failed authentication: tampered or truncated") from None
    try:
        return _DECODER.decode(content[len(_MAGIC) + 1 : -_TAG])
    except (msgspec.DecodeError, ValueError) as exc:  # authentic but undecodable: written by another version
        raise SnapshotError(f"{path} does not decode as records: {exc}") from None
