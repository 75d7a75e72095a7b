"""Fixed keys for tests: the same bytes in every run, never for production."""

from __future__ import annotations

import hashlib

from clientstate.keys import Key, Keyring

__all__ = ["fixed_key", "fixed_keyring"]


def fixed_key(key_id: int = 1) -> Key:
    """A deterministic 32-byte key for ``key_id`` (SHA-256 of a fixed label). Tests only.

    Raises:
        ConfigurationError: ``key_id`` outside 0-255.
    """
    return Key(key_id, hashlib.sha256(f"clientstate test key {key_id}".encode()).digest())


def fixed_keyring(current: int = 1, *accepted: int) -> Keyring:
    """A deterministic keyring: :func:`fixed_key` ``current`` plus the ``accepted`` ids. Tests only."""
    return Keyring(fixed_key(current), [fixed_key(i) for i in accepted])
