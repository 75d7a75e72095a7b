"""Splitting one token across numbered cookies, for states too large for one cookie.

Opt-in (``client_stored(..., chunked=True)``): by default a state that does not
fit in one cookie raises :class:`~clientstate._core.errors.CookieTooLarge`.

Layout, for a cookie named ``N`` and a token ``T`` split into ``n`` parts
``T = P0 ‖ P1 ‖ … ‖ P(n-1)``:

* ``n == 1``: one cookie ``N=T``, exactly as without chunking;
* ``n >= 2``: cookie ``N`` holds ``"<n>." + P0`` and cookies ``N.1`` …
  ``N.<n-1>`` hold ``P1`` … ``P(n-1)``. The ``.`` never occurs in a token
  (base64url), so the count is unambiguous.

The parts are joined by their *numeric* index, never by sorting names, so
order survives ten and more chunks. The token is authenticated as one unit:
a missing or extra chunk is ``malformed``; reordered parts or parts of two
different tokens make a different byte string, which fails authentication.
Every cookie's name plus value stays within 4096 bytes.

Servers limit request headers: nginx reads a header line into 8 KiB buffers
and gunicorn refuses header fields over 8190 bytes by default, so a ``Cookie``
header carrying two full chunks may already be refused before the application
runs (and the application cannot then clear it). Chunking past one extra
cookie needs those limits raised; a state that large usually belongs on the
server.
"""

from __future__ import annotations

import re
from typing import Final

from clientstate._core.cookies import MAX_COOKIE_BYTES, RequestCookies
from clientstate._core.errors import AMBIGUOUS_COOKIE, CookieTooLarge, ErrorKind, LoadError

__all__ = ["chunk_index", "chunk_name", "chunk_size", "join_chunks", "split_token"]

# A chunk count or index as chunk_name and split_token write it (max_chunks <= 50): ASCII digits only,
# no sign, space or leading zero (int() alone would accept '+1', ' 1', '01' and '١').
_NUMBER: Final = re.compile(r"[1-9][0-9]?", re.ASCII)


def chunk_index(tail: str, max_chunks: int) -> int | None:
    """The chunk index ``tail`` spells (the part of ``name.<tail>`` after the dot), if it is one of ours.

    Only the spelling :func:`chunk_name` writes counts: ``1`` to ``max_chunks - 1`` in
    ASCII digits without a sign, spaces or a leading zero; anything else is ``None``.
    """
    if _NUMBER.fullmatch(tail) is None:
        return None
    index = int(tail)
    return index if index < max_chunks else None


def chunk_name(name: str, index: int) -> str:
    """The cookie name of chunk ``index`` (0 is ``name`` itself, then ``name.1``, ...)."""
    return name if index == 0 else f"{name}.{index}"


def chunk_size(name: str, max_chunks: int) -> int:
    """Characters of token per chunk such that every chunk cookie fits in 4096 bytes."""
    longest_name = len(chunk_name(name, max_chunks - 1))
    prefix = len(f"{max_chunks}.")
    return MAX_COOKIE_BYTES - longest_name - prefix


def split_token(name: str, token: str, max_chunks: int) -> list[tuple[str, str]]:
    """Split ``token`` into ``(cookie name, value)`` pairs, as few as fit.

    Raises:
        CookieTooLarge: the token needs more than ``max_chunks`` cookies.
    """
    if len(name) + len(token) <= MAX_COOKIE_BYTES:
        return [(name, token)]
    size = chunk_size(name, max_chunks)
    parts = [token[i : i + size] for i in range(0, len(token), size)]
    if len(parts) > max_chunks:
        raise CookieTooLarge(name, len(name) + len(token), size * max_chunks, max_chunks)
    out = [(name, f"{len(parts)}.{parts[0]}")]
    out.extend((chunk_name(name, i), part) for i, part in enumerate(parts[1:], start=1))
    return out


def _indices(cookies: RequestCookies, name: str, max_chunks: int) -> list[int]:
    """Indices ``1 <= i < max_chunks`` of the ``name.i`` cookies present.

    Only the spellings :func:`chunk_name` writes count; other names (``name.07``,
    ``name.1000000``) are not ours and are ignored, so a request cannot make a
    response delete more than ``max_chunks`` cookies.
    """
    prefix = name + "."
    found = []
    for cookie in cookies.names():
        if cookie.startswith(prefix):
            index = chunk_index(cookie[len(prefix) :], max_chunks)
            if index is not None:
                found.append(index)
    return found


def join_chunks(cookies: RequestCookies, name: str, max_chunks: int) -> tuple[str | LoadError | None, int]:
    """Reassemble the token from the request's chunk cookies. Never raises.

    Returns:
        ``(token, highest chunk index present)``. ``token`` is ``None`` when
        there is no cookie ``name`` and no chunk, or a ``LoadError``:
        ``ambiguous`` (a name sent twice), ``malformed`` (bad count, a missing
        or extra chunk, chunks without the first) or ``too_large``.
    """
    indices = _indices(cookies, name, max_chunks)
    highest = max(indices, default=0)
    firsts = cookies.get_values(name)
    if len(firsts) > 1:
        return AMBIGUOUS_COOKIE, highest
    if not firsts:
        if indices:
            return LoadError(ErrorKind.MALFORMED, "chunk cookies without the first one"), highest
        return None, 0
    first = firsts[0]
    count_text, dot, part0 = first.partition(".")
    if not dot:
        count, parts = 1, [first]
    elif _NUMBER.fullmatch(count_text) and 2 <= int(count_text) <= max_chunks:
        count, parts = int(count_text), [part0]
    else:
        return LoadError(ErrorKind.MALFORMED, "bad chunk count in the first cookie"), highest
    if highest >= count:
        return LoadError(ErrorKind.MALFORMED, f"chunk cookies beyond the {count} announced"), highest
    size = chunk_size(name, max_chunks)
    for index in range(1, count):
        values = cookies.get_values(chunk_name(name, index))
        if not values:
            return LoadError(ErrorKind.MALFORMED, f"chunk {index} of {count} is missing"), highest
        if len(values) > 1:
            return AMBIGUOUS_COOKIE, highest
        if len(values[0]) > size:
            return LoadError(ErrorKind.TOO_LARGE, f"chunk {index} is over {size} characters"), highest
        parts.append(values[0])
    return "".join(parts), highest
