"""The sans-I/O core of setup(): when a response carries Set-Cookie, which headers are added,
and the mistakes it refuses loudly (late assignments, collisions, the handler's own cookie)."""

from __future__ import annotations

import enum
from typing import Any

import msgspec
import pytest

from clientstate import (
    Binding,
    ConfigurationError,
    CookieTooLarge,
    Loaded,
    State,
    StateEncodeError,
    StateNotWritable,
    client_stored,
    get_slot,
)
from clientstate._core.binding import REISSUE_WINDOW
from clientstate._core.headers import headers_to_add, vary_covers_cookie
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock, fixed_keyring
from tests.conftest import ACCOUNT, Account


def start(
    handler: ClientStored, value: Account | None, clock: FrozenClock | None = None
) -> tuple[Binding[Account], str]:
    """A binding and a Cookie header carrying ``value`` (or no cookie)."""
    binding = Binding(ACCOUNT, handler, clock or FrozenClock())
    if value is None:
        return binding, ""
    slot = binding.begin([])
    slot.state = value
    (line,) = binding.finish(slot)
    return binding, line.split(";", 1)[0]


def test_unchanged_state_emits_nothing(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a", ["x"]))
    assert binding.finish(binding.begin([cookie])) == []
    slot = binding.begin([cookie])
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


def test_in_place_change_after_assignment_is_saved_too(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin([])
    value = Account(1, "a")
    slot.state = value
    value.roles.append("late")  # the encoding kept at assignment is stale now
    (line,) = binding.finish(slot)
    assert binding.begin([line.split(";", 1)[0]]).state == Account(1, "a", ["late"])


def test_none_deletes_a_loaded_state_and_is_silent_without_one(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a"))
    slot = binding.begin([cookie])
    slot.state = None
    assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]
    assert binding.finish(binding.begin([])) == []


def test_after_a_load_error_the_cookie_is_replaced_or_cleared(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin(["cs=garbage"])
    assert slot.error is not None
    assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]
    slot = binding.begin(["cs=garbage"])
    slot.state = Account(2, "b")
    (line,) = binding.finish(slot)
    assert line.startswith("cs=")
    assert "Max-Age=0;" not in line


def test_ambiguous_without_new_state_writes_nothing(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "a"))
    slot = binding.begin([f"{cookie}; {cookie}"])
    assert slot.error is not None
    assert slot.error.kind == "ambiguous"
    assert binding.finish(slot) == []
    slot = binding.begin([f"{cookie}; {cookie}"])
    slot.state = Account(1, "a")
    assert len(binding.finish(slot)) == 1


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
    cookie = line.split(";", 1)[0]
    assert binding.finish(binding.begin([cookie])) == []
    loaded = binding.begin([cookie])
    loaded.state = Flags({Flag.B, Flag.A})
    assert binding.finish(loaded) == []
    loaded = binding.begin([cookie])
    assert loaded.state is not None
    loaded.state.flags.discard(Flag.A)
    assert len(binding.finish(loaded)) == 1


def test_slot_exposes_loaded_error_time_descriptor_and_clock(handler: ClientStored) -> None:
    clock = FrozenClock(1234.5)
    binding = Binding(ACCOUNT, handler, clock)
    slot = binding.begin(["cs=%%%"])
    assert slot.now == 1234.5
    assert slot.error == slot.loaded.error
    assert isinstance(slot.loaded, Loaded)
    assert slot.descriptor is ACCOUNT
    assert slot.clock is clock
    assert binding.key == "clientstate.account"


# --- 1: an assignment after the response started is an error, not a silent drop ---------------


def test_assigning_after_finish_raises_state_not_writable_naming_the_cause(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin([])
    assert slot.writable
    binding.finish(slot)
    assert not slot.writable
    with pytest.raises(StateNotWritable, match=r"headers were already sent.*assign slot\.state before"):
        slot.state = Account(1, "late")
    with pytest.raises(StateNotWritable):
        slot.state = None
    assert slot.state is None  # nothing changed


def test_assigning_after_a_failed_request_raises_too(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin([])
    assert binding.abandon(slot) == []
    with pytest.raises(StateNotWritable, match="request failed"):
        slot.state = Account(1, "late")


# --- 4: errors at the application's line ------------------------------------------------------


def test_invalid_new_state_raises_at_the_assignment(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin([])
    with pytest.raises(StateEncodeError, match="user_id"):
        slot.state = Account("one", "a")  # type: ignore[arg-type]
    assert slot.state is None  # the bad value was not kept
    assert binding.finish(slot) == []


def test_a_state_too_large_for_the_cookie_raises_at_the_assignment(handler: ClientStored) -> None:
    binding, _ = start(handler, None)
    slot = binding.begin([])
    with pytest.raises(CookieTooLarge, match="'cs'"):
        slot.state = Account(1, "x" * 4000)
    slot.state = Account(1, "x" * 2000)  # fits
    assert len(binding.finish(slot)[0]) > 2000


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("expires_in", [None, 60])
def test_the_early_size_check_agrees_with_the_sealed_cookie_at_the_boundary(
    encrypted: bool, expires_in: int | None
) -> None:
    """The largest name that fits is accepted at assignment and saved; one byte more is refused at assignment."""
    handler = client_stored(fixed_keyring(1), name="cs", encrypted=encrypted, expires_in=expires_in)
    binding = Binding(ACCOUNT, handler, FrozenClock())
    fits = None
    for size in range(2800, 3100):
        slot = binding.begin([])
        try:
            slot.state = Account(1, "x" * size)
        except CookieTooLarge:
            break
        (line,) = binding.finish(slot)
        name, _, value = line.split(";", 1)[0].partition("=")
        assert len(name) + len(value) <= 4096  # RFC 6265bis: name plus value
        fits = size
    assert fits is not None
    slot = binding.begin([])
    with pytest.raises(CookieTooLarge):
        slot.state = Account(1, "x" * (fits + 1))


# --- 2: name collisions between layers --------------------------------------------------------


def test_two_layers_with_the_same_state_name_collide_on_the_first_request(handler: ClientStored) -> None:
    other = State("account", dict[str, int])  # same name, another type
    outer = Binding(ACCOUNT, handler, FrozenClock())
    inner = Binding(other, client_stored(fixed_keyring(1), name="other"), FrozenClock())
    environ: dict[str, Any] = {}
    outer.attach(environ, outer.begin([]))
    with pytest.raises(ConfigurationError, match="two clientstate layers serve a state named 'account'"):
        inner.attach(environ, inner.begin([]))


def test_two_handlers_with_one_cookie_name_collide(handler: ClientStored) -> None:
    a = Binding(ACCOUNT, handler, FrozenClock())
    b = Binding(State("prefs", dict[str, int]), client_stored(fixed_keyring(1), name="cs"), FrozenClock())
    environ: dict[str, Any] = {}
    a.attach(environ, a.begin([]))
    with pytest.raises(ConfigurationError, match="same cookie"):
        b.attach(environ, b.begin([]))


def test_a_chunk_cookie_name_collides_with_a_chunked_handler() -> None:
    chunked = Binding(ACCOUNT, client_stored(fixed_keyring(1), name="cs", chunked=True), FrozenClock())
    plain = Binding(State("prefs", dict[str, int]), client_stored(fixed_keyring(1), name="cs.1"), FrozenClock())
    with pytest.raises(ConfigurationError, match="same cookie"):
        plain.check_apart(chunked)
    apart = Binding(State("more", dict[str, int]), client_stored(fixed_keyring(1), name="cs.9"), FrozenClock())
    apart.check_apart(chunked)  # index 9 is beyond max_chunks=4: not one of its cookies


def test_distinct_layers_share_a_request_and_each_finds_its_own_slot(handler: ClientStored) -> None:
    prefs = State("prefs", dict[str, int])
    a = Binding(ACCOUNT, handler, FrozenClock())
    b = Binding(prefs, client_stored(fixed_keyring(1), name="prefs"), FrozenClock())
    environ: dict[str, Any] = {}
    slot_a, slot_b = a.begin([]), b.begin([])
    a.attach(environ, slot_a)
    b.attach(environ, slot_b)
    assert get_slot(environ, ACCOUNT) is slot_a
    assert get_slot(environ, prefs) is slot_b


def test_get_slot_returns_only_the_slot_of_the_descriptor_asked_for(handler: ClientStored) -> None:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    environ: dict[str, Any] = {}
    binding.attach(environ, binding.begin([]))
    impostor = State("account", dict[str, str])  # same name, another object
    with pytest.raises(ConfigurationError, match="another State object named 'account'"):
        get_slot(environ, impostor)


def test_get_slot_finds_the_slot_or_explains() -> None:
    with pytest.raises(ConfigurationError, match="no clientstate middleware for state 'account'"):
        get_slot({}, ACCOUNT)


class FrameworkRequest:
    """Something like a Flask request: not a mapping."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] = {}


def test_get_slot_given_a_request_object_explains_what_to_pass() -> None:
    with pytest.raises(ConfigurationError, match=r"request.environ \(Flask"):
        get_slot(FrameworkRequest(), ACCOUNT)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs a clientstate State"):
        get_slot({}, "account")  # type: ignore[arg-type]


# --- 3: the application's own Set-Cookie for our cookie ----------------------------------------


@pytest.mark.parametrize("line", ["cs=forged; Path=/", " cs = x", "cs=; Max-Age=0"])
def test_an_application_set_cookie_with_the_handlers_name_is_refused(handler: ClientStored, line: str) -> None:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'cs'"):
        headers_to_add([("Set-Cookie", line)], [], binding)
    with pytest.raises(ConfigurationError, match="its own Set-Cookie for 'cs'"):
        headers_to_add([(b"set-cookie", line.encode())], [], binding)


def test_other_application_cookies_pass_untouched(handler: ClientStored) -> None:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    assert headers_to_add([("Set-Cookie", "cs2=x"), ("Set-Cookie", "theme=cs")], [], binding) == [("Vary", "Cookie")]
    # An error page (exc_info) is not made worse by a second error.
    assert headers_to_add([("Set-Cookie", "cs=x")], [], binding, check_names=False) == [("Vary", "Cookie")]


def test_headers_to_add_rules(handler: ClientStored) -> None:
    binding = Binding(ACCOUNT, handler, FrozenClock())
    assert headers_to_add([], [], binding) == [("Vary", "Cookie")]
    assert headers_to_add([("Vary", "Accept, cookie")], [], binding) == []
    assert headers_to_add([(b"vary", b"*"), (b"cache-control", b"no-store")], [], binding) == []
    assert headers_to_add([("Vary", "Accept")], ["cs=1"], binding) == [
        ("Vary", "Cookie"),
        ("Set-Cookie", "cs=1"),
        ("Cache-Control", "private"),
    ]
    assert headers_to_add([("CACHE-CONTROL", "no-store")], ["cs=1"], binding) == [
        ("Vary", "Cookie"),
        ("Set-Cookie", "cs=1"),
    ]
    assert vary_covers_cookie([" Origin ", "COOKIE"])
    assert not vary_covers_cookie(["Cookies"])


# --- 9: re-issues the application did not ask for ---------------------------------------------


def test_an_unrequested_reissue_is_skipped_when_the_request_ran_past_the_window() -> None:
    clock = FrozenClock()
    old = client_stored(fixed_keyring(1), name="cs")
    _, cookie = start(old, Account(1, "a"), clock)
    rotated = Binding(ACCOUNT, client_stored(fixed_keyring(2, 1), name="cs"), clock)
    fast = rotated.begin([cookie])
    assert fast.loaded.reissue
    clock.advance(REISSUE_WINDOW)
    assert len(rotated.finish(fast)) == 1  # within the window: re-issued under key 2
    slow = rotated.begin([cookie])
    clock.advance(REISSUE_WINDOW + 0.001)
    assert rotated.finish(slow) == []  # the client keeps its cookie; a later request re-issues it


def test_binding_refuses_arguments_of_the_wrong_kind(handler: ClientStored) -> None:
    with pytest.raises(ConfigurationError, match="state descriptor must be a State"):
        Binding("account", handler)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="handler must be a Handler"):
        Binding(ACCOUNT, object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="clock must be a callable"):
        Binding(ACCOUNT, handler, 5)  # type: ignore[arg-type]


def test_bindings_and_handlers_are_immutable(handler: ClientStored) -> None:
    binding = Binding(ACCOUNT, handler)
    with pytest.raises(AttributeError, match="immutable"):
        binding.handler = handler
    with pytest.raises(AttributeError, match=r"immutable.*new handler"):
        handler.keyring = fixed_keyring(2)


@pytest.mark.parametrize("reading", [float("nan"), float("inf"), float("-inf"), True, "1700000000", None])
def test_a_broken_clock_is_refused_on_the_first_request_not_trusted(handler: ClientStored, reading: Any) -> None:
    # NaN compares false with every deadline: trusting it would keep expired tokens alive; a bool or a str
    # (True reads as 1 s after the epoch) would fail later with a bare TypeError, or not at all.
    binding = Binding(ACCOUNT, handler, lambda: reading)
    with pytest.raises(ConfigurationError, match=r"the clock returned .*seconds since the Unix epoch"):
        binding.begin(["cs=x"])


def test_assigning_none_over_an_ambiguous_load_is_a_logout_that_clears_the_cookie(handler: ClientStored) -> None:
    binding, cookie = start(handler, Account(1, "ada"))
    untouched = binding.begin([f"{cookie}; {cookie}"])
    assert untouched.error is not None
    assert untouched.error.kind.value == "ambiguous"
    assert binding.finish(untouched) == []  # reading only: a planted copy cannot make us delete the real one
    logout = binding.begin([f"{cookie}; {cookie}"])
    logout.state = None  # explicit, even though the state is already None
    (line,) = binding.finish(logout)
    assert line.startswith("cs=;")
    assert "Max-Age=0" in line
