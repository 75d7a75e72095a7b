"""Dogfooding: clientstate.testing applied to the demo app (clientstate.demo)."""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientstate import State, client_stored
from clientstate.demo import build_handler
from clientstate.demo.api import DEMO_STATE, MAX_VISITS, DemoState, LoginBody
from clientstate.demo.apps import make_asgi_app, make_wsgi_app
from clientstate.testing import (
    FrozenClock,
    StateClient,
    asgi_client,
    check_fits_cookie,
    check_migrations,
    check_round_trip,
    check_stable,
    fixed_keyring,
    from_type,
    states,
    wsgi_client,
)

APP = settings(max_examples=15, deadline=None)


def demo_client(interface: str, clock: FrozenClock, *, encrypted: bool = False) -> StateClient[DemoState]:
    handler = client_stored(fixed_keyring(), name="demo", encrypted=encrypted)
    if interface == "asgi":
        return asgi_client(make_asgi_app(handler, clock), DEMO_STATE, handler, clock)
    return wsgi_client(make_wsgi_app(handler, clock), DEMO_STATE, handler, clock)


def body(response: Any) -> Any:
    return response.json() if callable(response.json) else response.json


def test_demo_schema_with_the_demos_own_handler() -> None:
    for encrypted in (False, True):
        handler = build_handler({}, "127.0.0.1", lambda _line: None, encrypted=encrypted)
        check_round_trip(DEMO_STATE, handler, max_examples=40)
        check_stable(DEMO_STATE, handler, max_examples=40)
        check_migrations(DEMO_STATE, handler, max_examples=5)


def test_demo_schema_fits_one_cookie() -> None:
    """The kit's size check once found DemoState.user unbounded (login took 1-64 characters); now it is bounded."""
    check_fits_cookie(DEMO_STATE, client_stored(fixed_keyring(), name="clientstate_demo"))
    check_fits_cookie(DEMO_STATE, client_stored(fixed_keyring(), name="clientstate_demo", encrypted=True))


class BoundedDemoState(msgspec.Struct):
    """DemoState with user bounded as LoginBody bounds it: what the size check asks for."""

    user: Annotated[str, msgspec.Meta(max_length=64)]
    visits: int = 0
    sudo_until: float | None = None


def test_bounding_the_user_name_as_login_does_makes_every_state_fit() -> None:
    check_fits_cookie(State("demo", BoundedDemoState), max_examples=40)


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@APP
@given(login=from_type(LoginBody))
def test_any_valid_login_becomes_the_state(interface: str, login: LoginBody) -> None:
    client = demo_client(interface, FrozenClock())
    assert body(client.post("/api/login", json={"user": login.user}))["state"]["user"] == login.user
    client.assert_set(DemoState(user=login.user))


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@APP
@given(user=st.one_of(st.just(""), st.text(min_size=65, max_size=80)))
def test_an_invalid_login_is_refused_and_leaves_the_cookie(interface: str, user: str) -> None:
    client = demo_client(interface, FrozenClock())
    client.set_state(DemoState(user="before"))
    assert client.post("/api/login", json={"user": user}).status_code == 400
    client.assert_unchanged()
    assert client.state == DemoState(user="before")


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@APP
@given(state=states(DEMO_STATE).filter(lambda s: len(s.user) <= 100), visits=st.integers(0, 4))
def test_every_visit_counts_once_and_only_visits_write(interface: str, state: DemoState, visits: int) -> None:
    start = DemoState(user=state.user, visits=min(state.visits, MAX_VISITS - 4), sudo_until=None)
    client = demo_client(interface, FrozenClock(), encrypted=visits % 2 == 1)
    client.set_state(start)
    for _ in range(visits):
        client.post("/api/visit")
        client.assert_set()
    client.get("/api/state")
    client.assert_unchanged()
    assert client.state == DemoState(user=state.user, visits=start.visits + visits)


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_the_visit_counter_stops_at_its_bound_without_writing(interface: str) -> None:
    client = demo_client(interface, FrozenClock())
    client.set_state(DemoState(user="ada", visits=MAX_VISITS))
    assert body(client.post("/api/visit"))["state"]["visits"] == MAX_VISITS
    client.assert_unchanged()


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@APP
@given(state=states(DEMO_STATE).filter(lambda s: len(s.user) <= 100))
def test_get_state_shows_whatever_valid_state_the_cookie_holds(interface: str, state: DemoState) -> None:
    client = demo_client(interface, FrozenClock())
    client.set_state(state)
    shown = body(client.get("/api/state"))
    assert shown["error"] is None
    assert shown["state"]["user"] == state.user
    assert shown["state"]["visits"] == state.visits
    if state.sudo_until is None or not math.isnan(state.sudo_until):
        assert shown["state"]["sudo_until"] == state.sudo_until
    client.assert_unchanged()


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@APP
@given(
    t0=st.integers(1_000_000_000, 4_000_000_000),
    window=st.integers(1, 3600),
    encrypted=st.booleans(),
)
def test_sudo_window_is_exact_at_any_time(interface: str, t0: int, window: int, encrypted: bool) -> None:
    clock = FrozenClock(t0)
    client = demo_client(interface, clock, encrypted=encrypted)
    client.set_state(DemoState(user="ada"))
    assert body(client.get("/api/admin")) == {"error": "sudo_required"}
    client.post("/api/sudo", json={"password": "pw", "seconds": window})
    assert client.assert_set().sudo_until == t0 + window
    clock.set(t0 + window - 1)
    assert client.get("/api/admin").status_code == 200
    clock.set(t0 + window)
    assert client.get("/api/admin").status_code == 403
    client.assert_unchanged()


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_logout_deletes_and_sudo_needs_a_login(interface: str) -> None:
    client = demo_client(interface, FrozenClock())
    assert client.post("/api/sudo", json={"password": "pw", "seconds": 5}).status_code == 401
    client.assert_unchanged()
    client.post("/api/login", json={"user": "ada"})
    client.post("/api/logout")
    client.assert_deleted()
    assert client.state is None
