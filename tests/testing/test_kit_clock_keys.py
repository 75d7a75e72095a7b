"""FrozenClock and the fixed test keys."""

from __future__ import annotations

import math

import pytest

from clientstate import ConfigurationError, Keyring
from clientstate.testing import FrozenClock, fixed_key, fixed_keyring


def test_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock()
    assert clock() == clock.now == 1_700_000_000
    assert clock.advance(30) == 1_700_000_030
    assert clock() == 1_700_000_030
    assert clock.advance(-100) == 1_699_999_930  # a clock stepped back
    clock.set(5)
    assert clock() == 5.0
    assert isinstance(clock(), float)
    assert repr(clock) == "FrozenClock(5.0)"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "1"])
def test_frozen_clock_refuses_non_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="clock values must be finite numbers of seconds"):
        FrozenClock(bad)  # type: ignore[arg-type]
    clock = FrozenClock(10)
    with pytest.raises(ValueError, match="finite"):
        clock.advance(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        clock.set(bad)  # type: ignore[arg-type]
    assert clock() == 10


def test_fixed_keys_are_deterministic_and_distinct() -> None:
    assert fixed_key(1).to_text() == fixed_key(1).to_text()
    assert fixed_key(1).to_text() != fixed_key(2).to_text()
    assert fixed_key(7).key_id == 7
    with pytest.raises(ConfigurationError, match="key id must be an integer from 0 to 255"):
        fixed_key(256)


def test_fixed_keyring_has_current_and_accepted_keys() -> None:
    keyring = fixed_keyring(3, 1, 2)
    assert isinstance(keyring, Keyring)
    assert keyring.current.key_id == 3
    assert sorted(k.key_id for k in keyring.keys) == [1, 2, 3]
    assert keyring.current.to_text() == fixed_key(3).to_text()
