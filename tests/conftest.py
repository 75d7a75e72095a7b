"""Shared fixtures for clientstate's own tests."""

from __future__ import annotations

import msgspec
import pytest

from clientstate import CookieAttributes, Keyring, State, client_stored
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock, fixed_keyring


class Account(msgspec.Struct):
    """A typical state: who is logged in, their roles, a CSRF token, sudo-until."""

    user_id: int
    name: str
    roles: list[str] = []
    csrf: str = ""
    sudo_until: float | None = None


ACCOUNT = State("account", Account)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000)


@pytest.fixture
def keyring() -> Keyring:
    return fixed_keyring(1)


@pytest.fixture(params=[False, True], ids=["authenticated", "encrypted"])
def handler(request: pytest.FixtureRequest, keyring: Keyring) -> ClientStored:
    """A client-stored handler in each mode."""
    return client_stored(
        keyring, name="cs", attributes=CookieAttributes(), encrypted=request.param
    )
