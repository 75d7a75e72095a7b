"""server_stored()'s settings: each bad value is refused with a message that names it, its unit and its range."""

from __future__ import annotations

import pytest

from clientstate import ConfigurationError, server_stored
from clientstate.stores import MemoryStore
from clientstate.testing import fixed_keyring


def make(**settings: object) -> object:
    return server_stored(MemoryStore(), fixed_keyring(), name="sid", **settings)  # type: ignore[arg-type]


def test_the_shortest_idle_timeout_leaves_room_for_the_default_touch_interval() -> None:
    with pytest.raises(ConfigurationError, match=r"idle_timeout must be an integer number of seconds from 2 to"):
        make(idle_timeout=1)
    handler = make(idle_timeout=2, absolute_timeout=2)
    assert handler.touch_interval == 1  # type: ignore[attr-defined]


def test_a_touch_interval_not_shorter_than_the_idle_timeout_names_both() -> None:
    with pytest.raises(ConfigurationError, match=r"touch_interval \(60 s\) must be shorter than idle_timeout \(60 s\)"):
        make(idle_timeout=60, touch_interval=60)


@pytest.mark.parametrize("value", [10, 1.5e3, True, "1mb", 2**31])
def test_max_state_bytes_is_a_whole_number_of_bytes_in_range(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"max_state_bytes must be an integer number of bytes from 1024 to"):
        make(max_state_bytes=value)
    assert make(max_state_bytes=4096).max_state_bytes == 4096  # type: ignore[attr-defined]
