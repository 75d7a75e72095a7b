"""Time limits at their exact boundaries, and extreme times that must give defined error kinds."""

from __future__ import annotations

import contextlib

import pytest

from clientstate import Binding, ClientStateError, ConfigurationError
from clientstate._core.cookies import MAX_MAX_AGE
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode, Opened
from clientstate.testing import FrozenClock
from tests.security.support import ACCOUNT, ALICE, BOB, T0, kind, load, make_handler, mint

U63 = 2**63 - 1
U64 = 2**64 - 1


@pytest.mark.parametrize(
    ("age", "want"),
    [(0, None), (3599, None), (3599.999, None), (3600, ErrorKind.EXPIRED), (3601, ErrorKind.EXPIRED)],
)
def test_expires_in_applies_to_a_token_without_expires_at_from_its_issued_at(
    mode: Mode, age: float, want: ErrorKind | None
) -> None:
    """A token minted when the handler had no lifetime (or an older build) still ends at issued-at + expires_in."""
    handler = make_handler(mode, expires_in=3600)
    token = mint(handler, issued_at=T0)
    clock = FrozenClock(T0)
    clock.advance(age)
    assert kind(load(handler, token, clock())) is want


@pytest.mark.parametrize(
    ("now", "want"),
    [(T0 + 99, None), (T0 + 99.999, None), (T0 + 100, ErrorKind.EXPIRED), (T0 + 101, ErrorKind.EXPIRED)],
)
def test_expiry_boundary_accepts_the_second_before_expires_at_and_rejects_expires_at(
    mode: Mode, now: float, want: ErrorKind | None
) -> None:
    handler = make_handler(mode)
    token = mint(handler, issued_at=T0, expires_at=T0 + 100)
    assert kind(load(handler, token, FrozenClock(now)())) is want


def test_expires_in_writes_expires_at_and_the_cookie_expires_with_it(mode: Mode) -> None:
    handler = make_handler(mode, expires_in=100)
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler, clock)
    slot = binding.begin([])
    slot.state = ALICE
    (set_cookie,) = binding.finish(slot)
    assert "; Max-Age=100;" in set_cookie
    cookie = set_cookie.split(";", 1)[0]
    clock.advance(99)
    assert binding.begin([cookie]).error is None
    clock.advance(1)
    assert kind(binding.begin([cookie]).loaded) is ErrorKind.EXPIRED


@pytest.mark.parametrize(
    ("ahead", "want"),
    [(0, None), (59, None), (60, None), (60.5, ErrorKind.ISSUED_IN_FUTURE), (61, ErrorKind.ISSUED_IN_FUTURE)],
)
def test_issued_at_may_be_ahead_by_the_clock_skew_and_not_one_second_more(
    mode: Mode, ahead: float, want: ErrorKind | None
) -> None:
    handler = make_handler(mode, clock_skew=60)
    clock = FrozenClock(T0)
    token = mint(handler, issued_at=T0 + 61)
    clock.advance(61 - ahead)  # the token is now `ahead` seconds ahead of the clock
    assert kind(load(handler, token, clock())) is want


@pytest.mark.parametrize(("step_back", "want"), [(60, None), (61, ErrorKind.ISSUED_IN_FUTURE)])
def test_server_clock_stepped_back_beyond_the_skew_rejects_fresh_tokens(
    mode: Mode, step_back: int, want: ErrorKind | None
) -> None:
    handler = make_handler(mode, clock_skew=60)
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler, clock)
    slot = binding.begin([])
    slot.state = ALICE
    cookie = binding.finish(slot)[0].split(";", 1)[0]
    clock.advance(-step_back)
    assert kind(binding.begin([cookie]).loaded) is want


def test_zero_clock_skew_rejects_a_token_one_second_ahead(mode: Mode) -> None:
    handler = make_handler(mode, clock_skew=0)
    assert kind(load(handler, mint(handler, issued_at=T0), T0)) is None
    assert kind(load(handler, mint(handler, issued_at=T0 + 1), T0)) is ErrorKind.ISSUED_IN_FUTURE


FUTURE = ErrorKind.ISSUED_IN_FUTURE
EXPIRED = ErrorKind.EXPIRED

# The longest expires_in / refresh_after a handler accepts (about 136 years).
MAX_SETTING = 2**32

# (issued-at, expires-at, clock, expires_in) -> kind. Checks run in the order future, expired;
# the deadline is the earlier of expires-at and issued-at + expires_in.
EXTREMES = [
    (0, None, T0, None, None),
    (0, None, T0, 3600, EXPIRED),
    (0, 0, T0, None, EXPIRED),
    (0, U64, T0, MAX_SETTING, None),
    (0, None, T0, MAX_SETTING, None),
    (0, None, 0, 3600, None),
    (U63, None, T0, None, FUTURE),
    (U64, None, T0, None, FUTURE),
    (U64, U64, T0, 3600, FUTURE),
    (U64, 0, T0, 3600, FUTURE),
    (T0, U63, T0, 3600, None),
    (T0, U64, T0, 3600, None),
    (T0, 0, T0, None, EXPIRED),
    (T0, None, 0, None, FUTURE),
    # Clocks near the ends of the range (FrozenClock holds floats: 2**63-1 reads as 2.0**63).
    (T0, None, U63, None, None),
    (T0, None, U63, 3600, EXPIRED),
    (U63, None, U63, 3600, None),
    (U63, U64, U63, 3600, None),
    (U64, None, U63, None, FUTURE),
    (U64, None, U64, None, None),
    (U64, U64, U64, None, EXPIRED),
    (T0, U64, U64, None, EXPIRED),
    (0, None, U64, MAX_SETTING, EXPIRED),
    (T0, None, 1e300, 3600, EXPIRED),
    (T0, U64, 1e300, None, EXPIRED),
    (T0, None, 1e300, MAX_SETTING, EXPIRED),
]


@pytest.mark.parametrize(("issued_at", "expires_at", "now", "expires_in", "want"), EXTREMES)
def test_extreme_times_give_defined_kinds_and_never_raise(
    mode: Mode, issued_at: int, expires_at: int | None, now: float, expires_in: int | None, want: ErrorKind | None
) -> None:
    handler = make_handler(mode, expires_in=expires_in)
    token = mint(handler, BOB, issued_at=issued_at, expires_at=expires_at)
    loaded = load(handler, token, FrozenClock(now)())
    assert kind(loaded) is want
    if want is None:
        assert loaded.state == BOB
        limit = None if expires_in is None else issued_at + expires_in
        deadline = limit if expires_at is None else expires_at if limit is None else min(limit, expires_at)
        assert (loaded.issued_at, loaded.expires_at) == (issued_at, deadline)


@pytest.mark.parametrize("bad", [-1, 2**64, 2**100])
def test_seal_refuses_times_the_format_cannot_hold(mode: Mode, bad: int) -> None:
    codec = make_handler(mode).codec(ACCOUNT)
    with pytest.raises(ValueError, match="outside"):
        codec.seal(b"\x80", bad)
    with pytest.raises(ValueError, match="outside"):
        codec.seal(b"\x80", T0, bad)


def test_saving_at_a_clock_near_2_63_issues_a_loadable_token(mode: Mode) -> None:
    handler = make_handler(mode, expires_in=3600)
    clock = FrozenClock(U63)
    binding = Binding(ACCOUNT, handler, clock)
    slot = binding.begin([])
    slot.state = ALICE
    (set_cookie,) = binding.finish(slot)
    token = set_cookie.split(";", 1)[0].removeprefix("cs=")
    opened = handler.codec(ACCOUNT).open(token)
    assert isinstance(opened, Opened)
    assert (opened.issued_at, opened.expires_at) == (2**63, None)  # the deadline comes from expires_in
    again = binding.begin([f"cs={token}"])
    assert again.state == ALICE
    assert again.loaded.expires_at == 2**63 + 3600


@pytest.mark.parametrize("expires_in", [MAX_SETTING, MAX_MAX_AGE + 1])
def test_long_expires_in_caps_the_cookie_max_age_at_400_days(mode: Mode, expires_in: int) -> None:
    handler = make_handler(mode, expires_in=expires_in)
    binding = Binding(ACCOUNT, handler, FrozenClock(T0))
    slot = binding.begin([])
    slot.state = ALICE
    (set_cookie,) = binding.finish(slot)
    assert f"; Max-Age={MAX_MAX_AGE};" in set_cookie


@pytest.mark.parametrize("setting", ["expires_in", "refresh_after", "clock_skew"])
@pytest.mark.parametrize("seconds", [MAX_SETTING + 1, 2**64, 10**400])
def test_time_settings_beyond_136_years_are_refused_when_configured(mode: Mode, setting: str, seconds: int) -> None:
    """Refused when the handler is built, never as a bare ValueError from the middleware at save."""
    with pytest.raises(ConfigurationError, match=setting):
        make_handler(mode, None, **{setting: seconds})


@pytest.mark.parametrize("now", [float(U64), -1.0])
def test_saving_at_a_clock_outside_the_format_raises_a_library_error_not_value_error(mode: Mode, now: float) -> None:
    """A clock the format cannot represent (past 2**64-1 s, or before the epoch) is a server
    misconfiguration: saving must fail with a documented ``ClientStateError`` (or clamp), not
    a bare ``ValueError`` from the token layer. Loading at such clocks is covered above."""
    binding = Binding(ACCOUNT, make_handler(mode, expires_in=None), FrozenClock(now))
    slot = binding.begin([])
    assert slot.error is None
    slot.state = ALICE
    with contextlib.suppress(ClientStateError):
        binding.finish(slot)
