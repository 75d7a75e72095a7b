"""Canonical, unpadded base64url (RFC 4648 §5), strictly decoded.

Python's decoders are lenient: ``base64.urlsafe_b64decode`` drops characters
outside the alphabet, and even ``binascii.a2b_base64(strict_mode=True)``
accepts non-zero unused bits in the last character (``"QR"`` decodes like
``"QQ"``). Tokens and key secrets must have exactly one spelling, so
:func:`b64url_decode` accepts only the string :func:`b64url_encode` produces.
"""

from __future__ import annotations

import binascii
from typing import Final

__all__ = ["b64url_decode", "b64url_encode"]

# One pass maps base64url to standard base64 and every character that is legal in
# standard base64 but not in canonical unpadded base64url ("+", "/", "=") to "*",
# which a2b_base64(strict_mode=True) refuses like any other stray character.
_TO_STD: Final = bytes.maketrans(b"-_+/=", b"+/***")
_FROM_STD: Final = bytes.maketrans(b"+/", b"-_")
_PAD: Final = (b"", b"", b"==", b"=")
_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# For a length of 2 or 3 mod 4, the last character carries 4 or 2 unused low
# bits, which canonical base64 sets to zero (RFC 4648 §3.5).
_LAST_OK: Final[tuple[frozenset[str], ...]] = (
    frozenset(),
    frozenset(),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x0F == 0),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x03 == 0),
)


def b64url_encode(data: bytes) -> str:
    """Canonical unpadded base64url (RFC 4648 §5, no ``=``) of ``data``."""
    return binascii.b2a_base64(data, newline=False).translate(_FROM_STD, b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Strictly decode canonical unpadded base64url; ``None`` if ``text`` is anything else.

    Rejected: characters outside ``A–Z a–z 0–9 - _`` (``+``, ``/``, ``=``,
    whitespace, percent-escapes, non-ASCII), a length of 1 mod 4, and non-zero
    unused bits in the last character, so exactly one string decodes to each
    byte string. The empty string decodes to ``b""``.

    One ``bytes.translate`` and one strict ``a2b_base64`` call do the work
    (no separate scans): see ``_TO_STD``.
    """
    rem = len(text) & 3
    if rem and (rem == 1 or text[-1] not in _LAST_OK[rem]):
        return None
    try:
        return binascii.a2b_base64(text.encode("ascii").translate(_TO_STD) + _PAD[rem], strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
