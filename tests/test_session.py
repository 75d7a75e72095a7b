"""The sans-I/O core of setup(): when a response carries Set-Cookie, and which headers are added."""

from __future__ import annotations

import enum

import msgspec
import pytest

from clientstate import Binding, ConfigurationError, Loaded, State, StateEncodeError, get_slot
from clientstate.handler import ClientStored
from clientstate.session import state_headers, vary_covers_cookie
from clientstate.testing import FrozenClock
from tests.conftest import ACCOUNT, Account


def start(handler: ClientStored, value: Account | None) -> tuple[Binding[Account], str]:
    """A binding and a Cookie header carrying ``value`` (or no cookie)."""
    binding = Binding(ACCOUNT, handler, FrozenClock())
    if value is None:
        return binding, ""
    slot = binding.begin([])
    slot.state = value
    (line,) = binding.finish(slot)
    return binding, line.split(";", 1)[0]


def test_unchanged_state_emits_nothing(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a", ["x"]))
    slot = binding.begin([cookie])
    assert binding.finish(slot) == []
    slot.state = Account(1, "a", ["x"])  # equal value, new object
    assert binding.finish(slot) == []


def test_in_place_nested_change_is_saved(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a", ["x"]))
    slot = binding.begin([cookie])
    assert slot.state is not None
    slot.state.roles.append("y")  # mutate the loaded object itself
    (line,) = binding.finish(slot)
    again = binding.begin([line.split(";", 1)[0]])
    assert again.state == Account(1, "a", ["x", "y"])


def test_none_deletes_a_loaded_state_and_is_silent_without_one(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a"))
    slot = binding.begin([cookie])
    slot.state = None
    assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]
    empty = binding.begin([])
    assert binding.finish(empty) == []


def test_after_a_load_error_the_cookie_is_replaced_or_cleared(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin(["cs=garbage"])
    assert slot.error is not None
    assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]
    slot.state = Account(2, "b")
    (line,) = binding.finish(slot)
    assert line.startswith("cs=")
    assert "Max-Age=0" not in line


def test_ambiguous_without_new_state_writes_nothing(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a"))
    slot = binding.begin([f"{cookie}; {cookie}"])
    assert slot.error is not None
    assert slot.error.kind == "ambiguous"
    assert binding.finish(slot) == []
    slot.state = Account(1, "a")
    assert len(binding.finish(slot)) == 1


def test_invalid_new_state_raises_to_the_developer(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin([])
    slot.state = Account("one", "a")  # type: ignore[arg-type]
    with pytest.raises(StateEncodeError, match="user_id"):
        binding.finish(slot)


class Flag(enum.Enum):
    A = "a"
    B = "b"


class Flags(msgspec.Struct):
    flags: set[Flag]


def test_unsortable_sets_still_compare_by_value(handler: ClientStored) -> None:
    state = State("flags", Flags)
    binding = Binding(state, handler, FrozenClock())
    slot = binding.begin([])
    slot.state = Flags({Flag.A, Flag.B})
    (line,) = binding.finish(slot)
    loaded = binding.begin([line.split(";", 1)[0]])
    assert binding.finish(loaded) == []
    loaded.state = Flags({Flag.B, Flag.A})
    assert binding.finish(loaded) == []
    assert loaded.state is not None
    loaded.state.flags.discard(Flag.A)
    assert len(binding.finish(loaded)) == 1


def test_slot_exposes_loaded_error_and_time(handler: ClientStored) -> None:
    clock = FrozenClock(1234.5)
    binding = Binding(ACCOUNT, handler, clock)
    slot = binding.begin(["cs=%%%"])
    assert slot.now == 1234.5
    assert slot.error == slot.loaded.error
    assert isinstance(slot.loaded, Loaded)
    assert binding.key == "clientstate.account"


def test_get_slot_finds_the_slot_or_explains() -> None:
    with pytest.raises(ConfigurationError, match="no clientstate middleware for state 'account'"):
        get_slot({}, ACCOUNT)


def test_state_headers_rules() -> None:
    assert state_headers([], False, []) == [("Vary", "Cookie")]
    assert state_headers(["Accept, cookie"], False, []) == []
    assert state_headers(["*"], True, []) == []
    assert state_headers(["Accept"], False, ["cs=1"]) == [
        ("Vary", "Cookie"),
        ("Set-Cookie", "cs=1"),
        ("Cache-Control", "private"),
    ]
    assert state_headers([], True, ["cs=1"]) == [("Vary", "Cookie"), ("Set-Cookie", "cs=1")]
    assert vary_covers_cookie([" Origin ", "COOKIE"])
    assert not vary_covers_cookie(["Cookies"])
