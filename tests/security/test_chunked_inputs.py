"""Hostile chunk cookies for a chunked handler (``client_stored(..., chunked=True)``).

Chunk indices come from cookie *names* the client chooses (``cs.<digits>``), so
they must be bounded like any other input: they must not make the response
grow with the number the client wrote, nor raise.
"""

from __future__ import annotations

import pytest

from clientstate import Binding, RequestCookies
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from clientstate.testing import FrozenClock
from tests.security.support import ACCOUNT, T0, Account, both_middlewares, call_asgi, call_wsgi, kind, make_handler

MAX_CHUNKS = 4
BIG = Account(1, "x" * 10_000)  # needs four chunks


def _write(mode: Mode) -> list[str]:
    binding = Binding(ACCOUNT, make_handler(mode, chunked=True, max_chunks=MAX_CHUNKS), FrozenClock(T0))
    slot = binding.begin([])
    slot.state = BIG
    return [line.split(";", 1)[0] for line in binding.finish(slot)]


def test_a_multi_chunk_cookie_round_trips(mode: Mode) -> None:
    """Control: the chunked handler reads back what it wrote."""
    pairs = _write(mode)
    assert len(pairs) == 4
    handler = make_handler(mode, chunked=True, max_chunks=MAX_CHUNKS)
    loaded = handler.load(ACCOUNT, RequestCookies(["; ".join(pairs)]), T0)
    assert kind(loaded) is None
    assert loaded.state == BIG


def test_swapped_chunks_fail_authentication_and_a_missing_chunk_is_malformed(mode: Mode) -> None:
    pairs = _write(mode)
    handler = make_handler(mode, chunked=True, max_chunks=MAX_CHUNKS)
    first, second, third, last = pairs
    (name1, value1), (name2, value2) = second.split("=", 1), third.split("=", 1)
    assert len(value1) == len(value2)  # full-size middle chunks: the swap keeps a canonical token
    swapped = [first, f"{name1}={value2}", f"{name2}={value1}", last]
    assert kind(handler.load(ACCOUNT, RequestCookies(["; ".join(swapped)]), T0)) is ErrorKind.AUTHENTICATION_FAILED
    missing = [first, second, last]
    assert kind(handler.load(ACCOUNT, RequestCookies(["; ".join(missing)]), T0)) is ErrorKind.MALFORMED


@pytest.mark.parametrize("header", ["cs.100000=x", "cs=2.AAAA; cs.1=AAAA; cs.99999=x"])
def test_a_huge_chunk_index_does_not_amplify_the_response(mode: Mode, header: str) -> None:
    """A 13-byte cookie ``cs.100000=x`` must not make the response carry 100,001 deletion lines
    (with ``cs.999999999999=x`` that is an unbounded loop): at most one line per possible chunk."""
    binding = Binding(ACCOUNT, make_handler(mode, chunked=True, max_chunks=MAX_CHUNKS), FrozenClock(T0))
    slot = binding.begin([header])
    assert slot.state is None  # malformed today; ignoring the absurd index would be fine too
    assert len(binding.finish(slot)) <= MAX_CHUNKS


@pytest.mark.parametrize("digits", [4301, 20000])
def test_a_chunk_index_of_thousands_of_digits_is_an_error_value_not_an_exception(mode: Mode, digits: int) -> None:
    """``int()`` refuses strings of more than 4300 digits (ValueError): loading must still never raise."""
    header = "cs." + "9" * digits + "=x; cs=2.AAAA"
    handler = make_handler(mode, chunked=True, max_chunks=MAX_CHUNKS)
    loaded = handler.load(ACCOUNT, RequestCookies([header]), T0)
    assert kind(loaded) is ErrorKind.MALFORMED
    wsgi_app, asgi_app, ran = both_middlewares(handler)
    assert call_wsgi(wsgi_app, header)[2] == b"malformed -"
    assert call_asgi(asgi_app, [header.encode()])[2] == b"malformed -"
    assert ran == ["wsgi", "asgi"]


@pytest.mark.parametrize(
    "header",
    ["cs=2.AAAA; cs=2.BBBB; cs.1=CCCC", "cs=2.AAAA; cs.1=BBBB; cs.1=CCCC", "cs=2.AAAA; cs.1=BBBB; cs=JUNK"],
    ids=["first-twice", "chunk-twice", "first-twice-apart"],
)
def test_duplicated_chunk_cookies_are_ambiguous_and_write_nothing(mode: Mode, header: str) -> None:
    binding = Binding(ACCOUNT, make_handler(mode, chunked=True, max_chunks=MAX_CHUNKS), FrozenClock(T0))
    slot = binding.begin([header])
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.AMBIGUOUS
    assert binding.finish(slot) == []
