"""Logout races: a read-only request that started before a logout and finishes after it.

The application never asked for a write on such a request, but clientstate may re-issue the token
(key rotation, schema migration, refresh). The browser keeps whichever Set-Cookie arrives last, so
such a re-issue could undo the logout. What clientstate does about it (README, "Logout races"):

1. a re-issue carries the loaded state unchanged, and a rotation or migration keeps its issued-at;
2. a re-issue is skipped when the request ran longer than REISSUE_WINDOW (1 s), which bounds the race
   to requests that overlap the logout by less than a second;
3. a revocation hook (``validate=``) comparing issued-at, or a login time kept in the state, with a
   server-side "logged out at" refuses whatever a race re-set.

Each case below plays the race with a frozen clock and a one-cookie "browser" that keeps the last
Set-Cookie it receives, and asserts what the browser holds afterwards and whether it still loads.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clientstate import Binding, State, StateSlot, client_stored
from clientstate._core.binding import REISSUE_WINDOW
from clientstate.testing import FrozenClock, fixed_keyring

T0 = 1_700_000_000


class Session(msgspec.Struct):
    user: str
    logged_in_at: int  # set at login; never changed by a re-issue


SESSION = State("session", Session)


class Jar:
    """A browser's cookie for ``cs``: the last Set-Cookie wins."""

    def __init__(self) -> None:
        self.cookie: str | None = None

    def header(self) -> list[str]:
        return [] if self.cookie is None else [f"cs={self.cookie}"]

    def receive(self, lines: list[str]) -> None:
        for line in lines:
            pair = line.split(";", 1)[0]
            value = pair.split("=", 1)[1]
            self.cookie = None if "Max-Age=0" in line else value


def log_in(binding: Binding[Session], jar: Jar, clock: FrozenClock) -> None:
    slot = binding.begin(jar.header())
    slot.state = Session("ada", int(clock()))
    jar.receive(binding.finish(slot))


def logout(binding: Binding[Session], jar: Jar, logged_out: dict[str, float]) -> None:
    slot = binding.begin(jar.header())
    assert slot.state is not None
    logged_out[slot.state.user] = slot.now  # the server-side record validate= consults
    slot.state = None
    jar.receive(binding.finish(slot))


def race(binding: Binding[Session], jar: Jar, clock: FrozenClock, logged_out: dict[str, float],
         duration: float, logout_at: float) -> StateSlot[Session]:
    """Request A starts, B logs out ``logout_at`` s later, A ends after ``duration`` s; returns A's slot."""
    a = binding.begin(jar.header())
    assert a.state is not None
    assert a.loaded.reissue  # rotation, migration or refresh is due: the dangerous case
    clock.advance(logout_at)
    logout(binding, jar, logged_out)
    assert jar.cookie is None
    clock.advance(duration - logout_at)
    jar.receive(binding.finish(a))  # A's response arrives last
    return a


def by_issued_at(logged_out: dict[str, float]) -> Any:
    def validate(state: Session, issued_at: int) -> bool:
        return issued_at > logged_out.get(state.user, -1)

    return validate


def by_login_time(logged_out: dict[str, float]) -> Any:
    def validate(state: Session, issued_at: int) -> bool:
        return state.logged_in_at > logged_out.get(state.user, -1)

    return validate


def setup_rotation(validate: Any) -> tuple[Binding[Session], Jar, FrozenClock]:
    clock = FrozenClock(T0)
    jar = Jar()
    log_in(Binding(SESSION, client_stored(fixed_keyring(1), name="cs"), clock), jar, clock)
    clock.advance(10)
    rotated = client_stored(fixed_keyring(2, 1), name="cs", validate=validate)  # key 2 is now current
    return Binding(SESSION, rotated, clock), jar, clock


def test_rotation_race_without_a_hook_re_sets_the_state_the_documented_residual() -> None:
    logged_out: dict[str, float] = {}
    binding, jar, clock = setup_rotation(None)
    race(binding, jar, clock, logged_out, duration=0.5, logout_at=0.1)
    assert jar.cookie is not None  # the re-issued old state came back...
    held = binding.begin(jar.header())
    assert held.state == Session("ada", T0)  # ...unchanged, never a different state
    assert held.loaded.issued_at == T0  # and no younger than the cookie it replaced


def test_rotation_race_is_refused_by_an_issued_at_hook() -> None:
    logged_out: dict[str, float] = {}
    binding, jar, clock = setup_rotation(by_issued_at(logged_out))
    race(binding, jar, clock, logged_out, duration=0.5, logout_at=0.1)
    assert jar.cookie is not None
    again = binding.begin(jar.header())
    assert again.state is None
    assert again.error is not None
    assert again.error.kind == "rejected"
    jar.receive(binding.finish(again))  # the rejected cookie is cleared
    assert jar.cookie is None


def test_a_request_slower_than_the_window_does_not_re_issue() -> None:
    logged_out: dict[str, float] = {}
    binding, jar, clock = setup_rotation(None)
    race(binding, jar, clock, logged_out, duration=REISSUE_WINDOW + 0.5, logout_at=0.2)
    assert jar.cookie is None  # the logout stands, even without any hook


def setup_refresh(validate: Any) -> tuple[Binding[Session], Jar, FrozenClock]:
    clock = FrozenClock(T0)
    jar = Jar()
    handler = client_stored(fixed_keyring(1), name="cs", expires_in=3600, refresh_after=600, validate=validate)
    binding = Binding(SESSION, handler, clock)
    log_in(binding, jar, clock)
    clock.advance(700)  # refresh is due
    return binding, jar, clock


def test_refresh_race_started_before_the_logout_is_refused_by_an_issued_at_hook() -> None:
    """The refreshed token's issued-at is the start of request A, before the logout was recorded."""
    logged_out: dict[str, float] = {}
    binding, jar, clock = setup_refresh(by_issued_at(logged_out))
    race(binding, jar, clock, logged_out, duration=0.9, logout_at=0.5)
    again = binding.begin(jar.header())
    assert again.error is not None
    assert again.error.kind == "rejected"


def test_a_request_loaded_after_the_logout_is_refused_at_load_by_either_hook() -> None:
    """Request A was sent before the logout's response arrived but reached the server after it.

    Its cookie was issued before the logout, so a hook refuses it when it loads: there is no state
    to re-issue, and the rejected cookie is cleared.
    """
    for validate_with in (by_issued_at, by_login_time):
        logged_out: dict[str, float] = {}
        binding, jar, clock = setup_refresh(validate_with(logged_out))
        sent = jar.header()  # A leaves the browser with the cookie...
        logout(binding, jar, logged_out)  # ...the logout is served first...
        clock.advance(0.5)
        a = binding.begin(sent)  # ...and A is loaded after it
        assert a.state is None
        assert a.error is not None
        assert a.error.kind == "rejected"
        jar.receive(binding.finish(a))
        assert jar.cookie is None, validate_with.__name__


def test_refresh_race_without_a_hook_inside_the_window_is_the_residual() -> None:
    logged_out: dict[str, float] = {}
    binding, jar, clock = setup_refresh(None)
    race(binding, jar, clock, logged_out, duration=0.9, logout_at=0.5)
    held = binding.begin(jar.header())
    assert held.state == Session("ada", T0)  # the same state, refreshed: what the README documents
