"""clientstate.testing checks: they pass on sound states and fail, with a useful message, on broken ones."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import pytest

from clientstate import CookieAttributes, CookieTooLarge, Loaded, Migration, RequestCookies, State, client_stored
from clientstate.handler import ClientStored
from clientstate.session import Binding
from clientstate.testing import (
    FrozenClock,
    check_all,
    check_fits_cookie,
    check_migrations,
    check_round_trip,
    check_stable,
    fixed_keyring,
)

Name = Annotated[str, msgspec.Meta(max_length=40)]


class Account(msgspec.Struct):
    """A bounded state: every value fits in a cookie."""

    user_id: int
    name: Name
    roles: Annotated[list[Annotated[str, msgspec.Meta(max_length=16)]], msgspec.Meta(max_length=8)] = []
    sudo_until: float | None = None


ACCOUNT = State("account", Account)


class OldAccount(msgspec.Struct):
    user_id: int
    name: Name
    admin: bool = False


def upgrade(old: OldAccount) -> Account:
    return Account(user_id=old.user_id, name=old.name, roles=["admin"] if old.admin else [])


ACCOUNT_V2 = State("account", Account, version=2, migrations=[Migration(1, OldAccount, upgrade)])


def test_sound_state_passes_every_check_in_both_modes() -> None:
    check_all(ACCOUNT_V2, max_examples=40)


def test_checks_accept_a_user_handler_and_clock() -> None:
    clock = FrozenClock(1_800_000_000)
    handler = client_stored(fixed_keyring(3), name="__Host-acct", encrypted=True, expires_in=600, max_age=900)
    check_round_trip(ACCOUNT_V2, handler, max_examples=30, clock=clock)
    check_stable(ACCOUNT_V2, [handler], max_examples=30, clock=clock)
    check_migrations(ACCOUNT_V2, handler, max_examples=30, clock=clock)


def test_round_trip_failure_names_the_value_and_the_load_error() -> None:
    handler = client_stored(fixed_keyring(), name="acct", validate=lambda state, _issued: state.user_id >= 0)
    with pytest.raises(AssertionError) as failure:
        check_round_trip(ACCOUNT, handler, max_examples=200)
    message = str(failure.value)
    assert "state 'account' (authenticated handler, cookie 'acct')" in message
    assert "did not load: rejected: the application's validator refused it" in message
    assert re.search(r"Account\(user_id=-\d+", message)


class AlwaysReissue:
    """A handler that asks for a new cookie on every load: the bug check_stable exists to catch."""

    def __init__(self, inner: ClientStored) -> None:
        self.inner = inner

    def prepare(self, state: State[Any]) -> None:
        self.inner.prepare(state)

    def load(self, state: State[Any], cookies: RequestCookies, now: float) -> Loaded[Any]:
        loaded = self.inner.load(state, cookies, now)
        loaded.reissue = True
        return loaded

    def save(self, state: State[Any], loaded: Loaded[Any], payload: bytes | None, now: float) -> list[str]:
        return self.inner.save(state, loaded, payload, now)

    def __repr__(self) -> str:
        return "AlwaysReissue()"


def test_stable_failure_names_the_variant_that_wrote_a_cookie() -> None:
    handler = AlwaysReissue(client_stored(fixed_keyring(), name="acct"))
    check_round_trip(ACCOUNT, handler, max_examples=10)  # round trips are fine...
    with pytest.raises(AssertionError, match=r"ending the request with the loaded value, unchanged wrote Set-Cookie"):
        check_stable(ACCOUNT, handler, max_examples=10)  # ...but every response writes the cookie


class Person(msgspec.Struct):
    first: Annotated[str, msgspec.Meta(max_length=10)]
    last: Annotated[str, msgspec.Meta(max_length=10)] = ""


class OldPerson(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=30)]  # the kit also draws names of exactly 30 characters


def test_migration_failure_names_version_value_and_error() -> None:
    # The upgrade forgets that an old name can be empty (Hypothesis draws "" first).
    forgetful = State("person", Person, version=2,
                      migrations=[Migration(1, OldPerson, lambda old: Person(first=old.name.split()[0][:10]))])
    with pytest.raises(AssertionError) as failure:
        check_migrations(forgetful, max_examples=50)
    message = str(failure.value)
    assert "state 'person' (authenticated handler, cookie 'session'): a version-1 cookie holding OldPerson(name=" \
        in message
    assert "did not load: migration_failed: from schema version 1: IndexError: list index out of range" in message


def test_migration_to_an_invalid_current_value_is_caught() -> None:
    # The upgrade keeps the whole name, but the current schema allows 10 characters.
    unchecked = State("person", Person, version=2, migrations=[Migration(1, OldPerson, lambda old: Person(old.name))])
    with pytest.raises(AssertionError, match=r"migration_failed: .*StateEncodeError.*Expected `str` of length <= 10"):
        check_migrations(unchecked, max_examples=100)


def test_migration_without_reissue_is_caught() -> None:
    class NoReissue(AlwaysReissue):
        def load(self, state: State[Any], cookies: RequestCookies, now: float) -> Loaded[Any]:
            loaded = self.inner.load(state, cookies, now)
            loaded.reissue = False
            return loaded

    fixed = State("person", Person, version=2,
                  migrations=[Migration(1, OldPerson, lambda old: Person(first=old.name[:10]))])
    check_migrations(fixed, max_examples=30)
    with pytest.raises(AssertionError, match=r"migrated to Person\(.*but was not re-issued at version 2"):
        check_migrations(fixed, NoReissue(client_stored(fixed_keyring(), name="p")), max_examples=10)


def test_state_without_migrations_passes_check_migrations() -> None:
    check_migrations(ACCOUNT, max_examples=5)


class Profile(msgspec.Struct):
    user_id: int
    bio: str
    links: list[Name] = []


def test_fits_cookie_names_every_unbounded_field_with_its_exact_limit() -> None:
    handler = client_stored(fixed_keyring(), name="profile")
    profile = State("profile", Profile)
    with pytest.raises(AssertionError) as failure:
        check_fits_cookie(profile, handler)
    message = str(failure.value)
    assert message.startswith("state 'profile' can outgrow the 4096-byte cookie limit")
    assert "Profile.links (list[str]) has no size bound" in message
    match = re.search(r"Profile\.bio \(str\) has no size bound: with every other field at its smallest, it fits "
                      r"up to (\d+) characters, and at (\d+) the cookie is (\d+) bytes", message)
    assert match is not None, message
    fits, overflows, size = (int(g) for g in match.groups())
    assert overflows == fits + 1
    assert size > 4096
    # The reported limit is exact: one more character is what breaks the cookie.
    binding = Binding(profile, handler, FrozenClock())
    slot = binding.begin([])
    slot.state = Profile(user_id=0, bio="x" * fits)
    assert len(binding.finish(slot)) == 1
    slot.state = Profile(user_id=0, bio="x" * overflows)
    with pytest.raises(CookieTooLarge) as too_large:
        binding.finish(slot)
    assert too_large.value.size == size


class Cart(msgspec.Struct):
    items: Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=100)]
    coupon: Annotated[str, msgspec.Meta(max_length=12)] = ""


def test_fits_cookie_reports_a_bounded_type_whose_largest_value_is_too_big() -> None:
    handler = client_stored(fixed_keyring(), name="cart")
    cart = State("cart", Cart)
    with pytest.raises(AssertionError) as failure:
        check_fits_cookie(cart, handler)
    message = str(failure.value)
    match = re.search(r"the largest value of the type makes a (\d+)-byte cookie \(authenticated handler, "
                      r"cookie 'cart'\), over the 4096-byte limit; by field: items: (\d+) bytes, coupon: (\d+) bytes",
                      message)
    assert match is not None, message
    largest = Cart(items=["\U00010000" * 40] * 100, coupon="\U00010000" * 12)
    binding = Binding(cart, handler, FrozenClock())
    slot = binding.begin([])
    slot.state = largest
    with pytest.raises(CookieTooLarge) as too_large:
        binding.finish(slot)
    assert int(match.group(1)) == too_large.value.size
    assert int(match.group(2)) == len(msgspec.msgpack.encode(largest.items))


def test_fits_cookie_passes_when_the_largest_value_fits() -> None:
    class Small(msgspec.Struct):
        items: Annotated[list[Annotated[str, msgspec.Meta(max_length=20)]], msgspec.Meta(max_length=25)]
        flag: bool = False

    check_fits_cookie(State("small", Small), max_examples=30)


class Tree(msgspec.Struct):
    label: Annotated[str, msgspec.Meta(max_length=4)]
    children: Annotated[list[Tree], msgspec.Meta(max_length=2)] = []


def test_fits_cookie_reports_recursive_types() -> None:
    with pytest.raises(AssertionError, match=r"Tree\.children\[\] \(Tree\) has no size bound: a recursive type"):
        check_fits_cookie(State("tree", Tree), max_examples=5)


def test_check_all_reports_every_failing_check() -> None:
    profile = State("profile", Profile)
    with pytest.raises(AssertionError) as failure:
        check_all(profile, max_examples=20)
    message = str(failure.value)
    assert message.startswith("1 of 4 checks failed for state 'profile':")
    assert "check_fits_cookie: state 'profile' can outgrow" in message


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_examples must be an integer >= 1, got 0"):
        check_round_trip(ACCOUNT, max_examples=0)
    with pytest.raises(TypeError, match="handler must be a clientstate Handler"):
        check_stable(ACCOUNT, "session")  # type: ignore[arg-type]


def test_default_handlers_cover_both_modes_and_keep_secure_attributes() -> None:
    from clientstate.testing.checks import default_handlers

    handlers = default_handlers()
    assert [h.mode.name for h in handlers if isinstance(h, ClientStored)] == ["AUTHENTICATED", "ENCRYPTED"]
    assert all(isinstance(h, ClientStored) and h.attributes.secure for h in handlers)
    assert repr(CookieAttributes()) == repr(handlers[0].attributes)  # type: ignore[attr-defined]


class Tokens(msgspec.Struct):
    csrf: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    code: Annotated[str, msgspec.Meta(pattern="^[A-Z]{1,40}$")]
    word: Annotated[str, msgspec.Meta(pattern="[a-z]{3}")] = "abc"


def test_fits_cookie_accepts_lengths_bounded_by_an_anchored_pattern_only() -> None:
    with pytest.raises(AssertionError) as failure:
        check_fits_cookie(State("tokens", Tokens), max_examples=20)
    message = str(failure.value)
    # "[a-z]{3}" is searched for, so it may sit in a longer string: unbounded; the anchored ones are bounded.
    assert re.search(r"Tokens\.word \(str\) has no size bound: .* fits up to \d+ characters", message)
    assert "csrf" not in message
    assert "code" not in message


def test_checks_run_through_a_chunked_handler() -> None:
    handler = client_stored(fixed_keyring(), name="profile", chunked=True, max_chunks=3)
    profile = State("profile", Profile)
    check_round_trip(profile, handler, max_examples=30)
    check_stable(profile, handler, max_examples=30)
    with pytest.raises(AssertionError) as failure:
        check_fits_cookie(profile, handler)
    message = str(failure.value)
    match = re.search(r"Profile\.bio \(str\) has no size bound: .* fits up to (\d+) characters, and at \d+ the "
                      r"cookie is \d+ bytes \(authenticated handler, cookie 'profile' chunked into up to 3\)", message)
    assert match is not None, message
    assert int(match.group(1)) > 3 * 2900  # three cookies' worth
