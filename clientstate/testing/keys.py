"""Fixed keys for tests: the same bytes in every run, refused as production keys."""

from __future__ import annotations

from clientstate._core.keys import Key, Keyring, fixed_secret

__all__ = ["fixed_key", "fixed_keyring"]


def fixed_key(key_id: int = 1) -> Key:
    """A deterministic 32-byte key for ``key_id`` (SHA-256 of a public label). Tests only.

    The secret is public, so :class:`~clientstate.Key` refuses it unless told
    ``for_testing=True``, which this function does.

    Raises:
        KeyFormatError: ``key_id`` outside 0-255.
    """
    return Key(key_id, fixed_secret(key_id), for_testing=True)


def fixed_keyring(current: int = 1, *accepted: int) -> Keyring:
    """A deterministic keyring: :func:`fixed_key` ``current`` plus the ``accepted`` ids. Tests only."""
    return Keyring(fixed_key(current), tuple(fixed_key(i) for i in accepted))
