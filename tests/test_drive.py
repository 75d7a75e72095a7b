"""clientstate._core.drive: the one place that decides a request failed, for every adapter."""

from __future__ import annotations

import asyncio

import pytest

from clientstate import Binding, StateNotWritable
from clientstate._core.base64url import b64url_decode
from clientstate._core.drive import begin_async, begin_sync, failed, finish_async, finish_sync
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock
from tests.conftest import ACCOUNT, Account


@pytest.mark.parametrize(
    ("status", "error_page", "expected"),
    [
        (200, False, False),
        (302, False, False),
        (499, False, False),
        (500, False, True),
        (503, False, True),
        (599, False, True),
        ("200 OK", False, False),
        ("404 Not Found", False, False),
        ("500 Internal Server Error", False, True),
        ("502 Bad Gateway", False, True),
        (200, True, True),
        ("200 OK", True, True),
    ],
)
def test_failed_is_a_5xx_status_or_an_error_page(status: int | str, error_page: bool, expected: bool) -> None:
    assert failed(status, error_page) is expected


def _cookie(handler: ClientStored) -> str:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    slot = binding.begin([])
    slot.state = Account(1, "a", ["x"])
    (line,) = binding.finish(slot)
    return line.split(";", 1)[0]


def test_finish_sync_saves_a_change_unless_the_status_failed(handler: ClientStored) -> None:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    cookie = _cookie(handler)
    for status, error_page, lines in ((200, False, 1), ("201 Created", False, 1), (500, False, 0),
                                      ("503 Service Unavailable", False, 0), ("200 OK", True, 0)):
        slot = begin_sync(binding, [cookie])
        slot.state = Account(2, "b")
        got = finish_sync(binding, slot, status, error_page)
        assert len(got) == lines, (status, error_page, got)
        if lines:
            assert got[0].startswith(f"{handler.name}=")
        with pytest.raises(StateNotWritable):
            slot.state = Account(3, "c")  # closed either way


def test_finish_async_abandons_a_failed_request(handler: ClientStored) -> None:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    cookie = _cookie(handler)

    async def run(status: int) -> list[str]:
        slot = await begin_async(binding, [cookie])
        assert slot.state == Account(1, "a", ["x"])
        slot.state = None  # a logout
        return await finish_async(binding, slot, status)

    (deleted,) = asyncio.run(run(200))
    assert deleted.startswith(f"{handler.name}=;")
    assert "Max-Age=0" in deleted
    assert asyncio.run(run(500)) == []


@pytest.mark.parametrize("text", ["QQ*A", "*AAA", "QUFB*", "QUFBQQ*=", "QUFB\x00", "QUFB QQ", "QUFBQQ=="])
def test_b64url_decode_refuses_the_characters_its_translation_maps_away(text: str) -> None:
    assert b64url_decode(text) is None
