"""client_stored: loading, saving, key rotation, time limits, the revocation hook."""

from __future__ import annotations

import msgspec
import pytest

from clientstate import (
    Binding,
    ConfigurationError,
    CookieAttributes,
    CookieTooLarge,
    ErrorKind,
    Keyring,
    Loaded,
    Migration,
    RequestCookies,
    State,
    client_stored,
)
from clientstate._core.base64url import b64url_decode
from clientstate._core.token import Opened
from clientstate._handlers.client_stored import DEFAULT_EXPIRES_IN, ClientStored
from clientstate.testing import FrozenClock, fixed_keyring
from tests.conftest import ACCOUNT, Account

T0 = 1_700_000_000


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def issue(handler: ClientStored, value: Account, now: float = T0) -> str:
    """Mint a cookie value for ``value`` as a fresh save would."""
    lines = handler.save(ACCOUNT, Loaded(), ACCOUNT.encode(value), now)
    assert len(lines) == 1
    return cookie_value(lines[0])


def load(handler: ClientStored, header: str, now: float = T0) -> Loaded[Account]:
    return handler.load(ACCOUNT, RequestCookies([header]), now)


def test_no_cookie_loads_nothing(handler: ClientStored) -> None:
    for header in ("", "other=1", "cs="):
        loaded = load(handler, header)
        assert loaded.state is None
        assert loaded.error is None
        assert not loaded.present


def test_round_trip_with_metadata(handler: ClientStored) -> None:
    value = Account(7, "ada", ["admin"], "csrf", None)
    loaded = load(handler, f"theme=dark; cs={issue(handler, value)}", now=T0 + 5)
    assert loaded.error is None
    assert loaded.state == value
    assert loaded.present
    assert loaded.issued_at == T0
    assert loaded.expires_at == T0 + DEFAULT_EXPIRES_IN  # the default lifetime, 30 days
    assert loaded.key_id == 1
    assert loaded.schema_version == 1
    assert not loaded.reissue


def test_token_verified_with_older_key_is_reissued_with_same_times() -> None:
    for encrypted in (False, True):
        old = client_stored(fixed_keyring(1), name="cs", encrypted=encrypted, expires_in=3600)
        value = Account(1, "ada")
        token = issue(old, value)
        new = client_stored(fixed_keyring(2, 1), name="cs", encrypted=encrypted, expires_in=3600)
        clock = FrozenClock(T0 + 100)
        binding = Binding(ACCOUNT, new, clock)
        slot = binding.begin([f"cs={token}"])
        assert slot.state == value
        assert slot.loaded.key_id == 1
        assert slot.loaded.reissue
        (line,) = binding.finish(slot)  # state unchanged, still re-issued
        reissued = new.codec(ACCOUNT).open(cookie_value(line))
        assert isinstance(reissued, Opened)
        assert reissued.key_id == 2
        assert reissued.issued_at == T0
        assert reissued.expires_at is None  # issued-at + expires_in is the deadline: nothing to write
        assert new.load_value(ACCOUNT, cookie_value(line), T0 + 100).expires_at == T0 + 3600
        assert "Max-Age=3500;" in line


def test_retired_key_is_unknown_and_the_cookie_is_cleared(handler: ClientStored) -> None:
    token = issue(handler, Account(1, "ada"))
    retired = client_stored(fixed_keyring(2), name="cs", encrypted=handler.mode == 2)
    binding = Binding(ACCOUNT, retired, FrozenClock(T0))
    slot = binding.begin([f"cs={token}"])
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.UNKNOWN_KEY
    assert binding.finish(slot) == ["cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"]


def test_a_tightened_expires_in_applies_to_tokens_already_issued() -> None:
    """A token minted under expires_in=30 days, or with no expiry at all, ends at the handler's current limit."""
    lax = client_stored(fixed_keyring(1), name="cs")
    for before in (lax, client_stored(fixed_keyring(1), name="cs", expires_in=None)):
        token = issue(before, Account(1, "a"))
        now = client_stored(fixed_keyring(1), name="cs", expires_in=3600)
        assert load(now, f"cs={token}", T0 + 3599).state is not None
        assert load(now, f"cs={token}", T0 + 3599).expires_at == T0 + 3600
        error = load(now, f"cs={token}", T0 + 3600).error
        assert error is not None
        assert error.kind is ErrorKind.EXPIRED
        assert load(before, f"cs={token}", T0 + 3600).state is not None  # the old policy would still take it


def test_a_default_handler_refuses_a_year_old_token_and_unlimited_is_explicit() -> None:
    never = client_stored(fixed_keyring(1), name="cs", expires_in=None)
    token = issue(never, Account(1, "a"))
    year = 365 * 24 * 3600
    assert load(never, f"cs={token}", T0 + year).state is not None
    default = client_stored(fixed_keyring(1), name="cs")
    assert default.expires_in == DEFAULT_EXPIRES_IN <= 400 * 24 * 3600
    error = load(default, f"cs={token}", T0 + year).error
    assert error is not None
    assert error.kind is ErrorKind.EXPIRED


def test_the_cookie_max_age_never_exceeds_the_tokens_remaining_life() -> None:
    long_attr = CookieAttributes(max_age=30 * 24 * 3600)
    handler = client_stored(fixed_keyring(1), name="cs", expires_in=3600, attributes=long_attr)
    (line,) = handler.save(ACCOUNT, Loaded(), ACCOUNT.encode(Account(1, "a")), T0)
    assert "; Max-Age=3600; " in line
    short_attr = CookieAttributes(max_age=60)
    handler = client_stored(fixed_keyring(1), name="cs", expires_in=3600, attributes=short_attr)
    (line,) = handler.save(ACCOUNT, Loaded(), ACCOUNT.encode(Account(1, "a")), T0)
    assert "; Max-Age=60; " in line


def test_automatic_refresh_is_a_day_or_half_the_lifetime() -> None:
    assert client_stored(fixed_keyring(1), name="cs").refresh_after == 24 * 3600
    assert client_stored(fixed_keyring(1), name="cs", expires_in=600).refresh_after == 300
    assert client_stored(fixed_keyring(1), name="cs", expires_in=None).refresh_after is None
    assert client_stored(fixed_keyring(1), name="cs", refresh_after=None).refresh_after is None


def test_expires_boundary_and_max_age_attribute() -> None:
    handler = client_stored(fixed_keyring(1), name="cs", expires_in=600)
    line = handler.save(ACCOUNT, Loaded(), ACCOUNT.encode(Account(1, "a")), T0)[0]
    assert "; Max-Age=600; " in line
    token = cookie_value(line)
    assert load(handler, f"cs={token}", T0 + 599).state is not None
    error = load(handler, f"cs={token}", T0 + 600).error
    assert error is not None
    assert error.kind is ErrorKind.EXPIRED


def test_future_issued_at_beyond_skew() -> None:
    handler = client_stored(fixed_keyring(1), name="cs", clock_skew=60)
    token = issue(handler, Account(1, "a"), now=T0 + 60)
    assert load(handler, f"cs={token}", T0).state is not None
    token = issue(handler, Account(1, "a"), now=T0 + 61)
    error = load(handler, f"cs={token}", T0).error
    assert error is not None
    assert error.kind is ErrorKind.ISSUED_IN_FUTURE


def test_refresh_after_reissues_with_a_new_issued_at() -> None:
    handler = client_stored(fixed_keyring(1), name="cs", refresh_after=300, expires_in=900)
    token = issue(handler, Account(1, "a"))
    binding = Binding(ACCOUNT, handler, FrozenClock(T0 + 299))
    assert binding.finish(binding.begin([f"cs={token}"])) == []
    binding = Binding(ACCOUNT, handler, FrozenClock(T0 + 300))
    (line,) = binding.finish(binding.begin([f"cs={token}"]))
    refreshed = handler.codec(ACCOUNT).open(cookie_value(line))
    assert isinstance(refreshed, Opened)
    assert refreshed.issued_at == T0 + 300


def test_validator_rejects_and_exceptions_become_rejections() -> None:
    revoked_before = T0 + 10

    def validate(state: Account, issued_at: int) -> bool:
        if state.name == "boom":
            raise RuntimeError("db down")
        return issued_at >= revoked_before

    handler = client_stored(fixed_keyring(1), name="cs", validate=validate)
    old = issue(handler, Account(1, "a"), now=T0)
    fresh = issue(handler, Account(1, "a"), now=T0 + 10)
    assert load(handler, f"cs={fresh}", T0 + 20).state == Account(1, "a")
    error = load(handler, f"cs={old}", T0 + 20).error
    assert error is not None
    assert error.kind is ErrorKind.REJECTED
    boom = issue(handler, Account(1, "boom"), now=T0 + 10)
    error = load(handler, f"cs={boom}", T0 + 20).error
    assert error is not None
    assert error.kind is ErrorKind.REJECTED
    assert "RuntimeError: db down" in error.detail


def test_duplicate_cookies_are_ambiguous(handler: ClientStored) -> None:
    token = issue(handler, Account(1, "a"))
    for header in (f"cs={token}; cs=junk", f"cs=junk; cs={token}", f"cs={token}; cs={token}"):
        loaded = load(handler, header)
        assert loaded.state is None
        assert loaded.error is not None
        assert loaded.error.kind is ErrorKind.AMBIGUOUS


def test_quoted_value_loads(handler: ClientStored) -> None:
    token = issue(handler, Account(1, "a"))
    assert load(handler, f'cs="{token}"').state == Account(1, "a")


def test_state_too_large_for_a_cookie_raises_naming_it(handler: ClientStored) -> None:
    big = Account(1, "x" * 4000)
    with pytest.raises(CookieTooLarge, match="'cs' would be"):
        handler.save(ACCOUNT, Loaded(), ACCOUNT.encode(big), T0)


def test_value_over_the_size_limit_is_too_large(handler: ClientStored) -> None:
    error = load(handler, "cs=" + "A" * 4095).error
    assert error is not None
    assert error.kind is ErrorKind.TOO_LARGE


class AccountV1(msgspec.Struct):
    uid: int
    name: str


def test_old_schema_version_is_migrated_and_reissued_keeping_times() -> None:
    v1 = State("account", AccountV1, version=1)
    v2 = State(
        "account",
        Account,
        version=2,
        migrations=[Migration(1, AccountV1, lambda old: Account(old.uid, old.name))],
    )
    handler = client_stored(fixed_keyring(1), name="cs")
    old_line = handler.save(v1, Loaded(), v1.encode(AccountV1(3, "bo")), T0)[0]
    binding = Binding(v2, handler, FrozenClock(T0 + 50))
    slot = binding.begin([old_line.split(";")[0]])
    assert slot.state == Account(3, "bo")
    assert slot.loaded.schema_version == 1
    (line,) = binding.finish(slot)
    opened = handler.codec(v2).open(cookie_value(line))
    assert isinstance(opened, Opened)
    assert opened.schema_version == 2
    assert opened.issued_at == T0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "not a token"),
        ({"name": "__Host-cs", "attributes": CookieAttributes(path="/x")}, "requires Path=/"),
        ({"max_age": 0}, "unknown argument 'max_age'"),
        ({"expires_in": 0}, "expires_in must be an integer number of seconds from 1"),
        ({"expires_in": 600, "refresh_after": 600}, "must be shorter than expires_in"),
        ({"encrypted": "yes"}, "encrypted must be a bool"),
        ({"max_chunks": 1}, "max_chunks must be an integer from 2 to 50"),
        ({"validate": 3}, "validate must be a callable"),
        ({"expires_in": -5}, "expires_in"),
        ({"refresh_after": 1.5}, "refresh_after"),
        ({"clock_skew": -1}, "clock_skew"),
    ],
)
def test_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "cs", **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        client_stored(fixed_keyring(1), **args)  # type: ignore[arg-type]


def test_keyring_must_be_a_keyring() -> None:
    with pytest.raises(ConfigurationError, match="keyring must be a Keyring"):
        client_stored("secret", name="cs")  # type: ignore[arg-type]


def test_repr_names_mode_and_keys_without_secrets(keyring: Keyring) -> None:
    text = repr(client_stored(keyring, name="cs", encrypted=True))
    assert text == "ClientStored(name='cs', mode=encrypted, keyring=Keyring(current=1, key_ids=[1]))"


def test_tokens_carry_the_current_key_id(handler: ClientStored) -> None:
    raw = b64url_decode(issue(handler, Account(1, "a")))
    assert raw is not None
    assert raw[1] == 1
