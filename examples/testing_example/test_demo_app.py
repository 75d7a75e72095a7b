"""Property tests for clientstate's demo app, written with clientstate.testing.

Run with ``pytest examples/testing_example`` (needs hypothesis, starlette, httpx, werkzeug).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientstate import ClientStored, client_stored, sudo
from clientstate.demo.api import DEMO_STATE, DemoState
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
    states,
    wsgi_client,
)
from clientstate.testing.plugin import ClientFactory


# 1. The state schema: each property is one call.
def test_demo_state_round_trips_is_stable_and_migrates() -> None:
    check_round_trip(DEMO_STATE)  # save -> load gives the same value, both modes
    check_stable(DEMO_STATE)  # an unchanged state writes no Set-Cookie
    check_migrations(DEMO_STATE)  # every older schema version upgrades (none yet)


def test_demo_state_always_fits_one_cookie() -> None:
    # Every field of DemoState is bounded (user: 1-64 characters), so even the
    # largest value fits; an unbounded field would fail here, named with its limit.
    check_fits_cookie(DEMO_STATE)


# 2. The app, through its real middleware, on both interfaces.
def make_client(interface: str, clock: FrozenClock) -> StateClient[DemoState]:
    handler = client_stored(fixed_keyring(), name="demo")  # default attributes: Secure
    if interface == "asgi":  # Starlette TestClient on https://testserver
        return asgi_client(make_asgi_app(handler, clock), DEMO_STATE, handler, clock)
    return wsgi_client(make_wsgi_app(handler, clock), DEMO_STATE, handler, clock)


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@settings(max_examples=20, deadline=None)
@given(
    state=states(DEMO_STATE),
    window=st.integers(min_value=1, max_value=3600),  # /api/sudo accepts 1-3600 seconds
)
def test_sudo_lasts_exactly_its_window(interface: str, state: DemoState, window: int) -> None:
    clock = FrozenClock()
    client = make_client(interface, clock)
    client.set_state(sudo.revoke(state))  # any valid state, not elevated
    assert client.get("/api/admin").status_code == 403

    t0 = clock()
    client.post("/api/sudo", json={"password": "correct horse", "seconds": window})
    assert client.assert_set().sudo_until == t0 + window

    clock.set(t0 + window - 1)
    assert client.get("/api/admin").status_code == 200
    client.assert_unchanged()  # reading does not rewrite the cookie
    clock.set(t0 + window)
    assert client.get("/api/admin").status_code == 403


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@settings(max_examples=20, deadline=None)
# Any user name the demo accepts: no control characters (Cc), and only characters
# UTF-8 can carry in a JSON body (codec="utf-8" leaves out lone surrogates).
@given(user=st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=64))
def test_login_then_visit_then_logout(interface: str, user: str) -> None:
    client = make_client(interface, FrozenClock())
    client.post("/api/login", json={"user": user})
    client.assert_set(DemoState(user=user))
    client.post("/api/visit")
    assert client.assert_set().visits == 1
    client.post("/api/logout")
    client.assert_deleted()
    assert client.state is None


# 3. The pytest plugin's fixtures: a frozen clock, fixed keys, client factories.
def test_a_forged_cookie_is_rejected_and_deleted(
    clientstate_asgi_client: ClientFactory, clientstate_handler: ClientStored, clientstate_clock: FrozenClock
) -> None:
    client = clientstate_asgi_client(make_asgi_app(clientstate_handler, clientstate_clock), DEMO_STATE)
    client.set_state(DemoState(user="ada", visits=3))
    token = client.cookie
    assert token is not None
    client.set_cookie(token[:20] + ("A" if token[20] != "A" else "B") + token[21:])  # flip one character
    assert client.get("/api/state").json() == {"state": None, "error": "authentication_failed"}
    client.assert_deleted()  # the invalid cookie is removed
