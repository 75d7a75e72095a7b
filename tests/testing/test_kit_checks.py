"""clientstate.testing checks: they pass on sound states and fail, with a useful message, on broken ones."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import pytest

from clientstate import (
    Binding,
    ClientStored,
    CookieAttributes,
    CookieTooLarge,
    Handler,
    Loaded,
    Migration,
    RequestCookies,
    State,
    client_stored,
)
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
    handler = client_stored(fixed_keyring(3), name="__Host-acct", encrypted=True, expires_in=600,
                            attributes=CookieAttributes(max_age=900))
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

    reissue = True

    def __init__(self, inner: ClientStored) -> None:
        self.inner = inner
        self.name = inner.name

    def prepare(self, descriptor: State[Any]) -> None:
        self.inner.prepare(descriptor)

    def claims(self, cookie_name: str) -> bool:
        return self.inner.claims(cookie_name)

    def load(self, descriptor: State[Any], cookies: RequestCookies, now: float) -> Loaded[Any]:
        return msgspec.structs.replace(self.inner.load(descriptor, cookies, now), reissue=self.reissue)

    def check_size(self, descriptor: State[Any], payload: bytes) -> None:
        self.inner.check_size(descriptor, payload)

    def save(self, descriptor: State[Any], loaded: Loaded[Any], payload: bytes | None, now: float) -> list[str]:
        return self.inner.save(descriptor, loaded, payload, now)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def test_the_test_handlers_are_handlers() -> None:
    assert isinstance(AlwaysReissue(client_stored(fixed_keyring(), name="acct")), Handler)


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
        reissue = False

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
    # The reported limit is exact: one more character is what breaks the cookie (at the assignment).
    binding = Binding(profile, handler, FrozenClock())
    slot = binding.begin([])
    slot.state = Profile(user_id=0, bio="x" * fits)
    assert len(binding.finish(slot)) == 1
    slot = binding.begin([])
    with pytest.raises(CookieTooLarge) as too_large:
        slot.state = Profile(user_id=0, bio="x" * overflows)
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
    slot = Binding(cart, handler, FrozenClock()).begin([])
    with pytest.raises(CookieTooLarge) as too_large:
        slot.state = largest
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


class BoundedTokens(msgspec.Struct):
    csrf: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$", max_length=32)]
    code: Annotated[str, msgspec.Meta(pattern="^[A-Z]{1,40}$", max_length=40)]
    word: Annotated[str, msgspec.Meta(pattern="[a-z]{3}", max_length=300)] = "abc"


def test_a_pattern_never_counts_as_a_length_bound() -> None:
    """Patterns are not analysed (conservative): even an anchored, bounded one needs max_length for the check."""
    handler = client_stored(fixed_keyring(), name="tokens")
    with pytest.raises(AssertionError) as failure:
        check_fits_cookie(State("tokens", Tokens), handler, max_examples=20)
    message = str(failure.value)
    hint = "a pattern does not count as a length bound; add max_length=N to its msgspec.Meta"
    tokens = State("tokens", Tokens)
    for field in ("csrf", "code", "word"):
        # Grown with "x", the other strings at min_length (0): the patterns are not applied to the measurement.
        match = re.search(rf"Tokens\.{field} \(str\) has no size bound: with every other field at its smallest, "
                          rf"it fits up to (\d+) characters, and at (\d+) the cookie is 4097 bytes "
                          rf"\(authenticated handler, cookie 'tokens'\); {re.escape(hint)}", message)
        assert match is not None, message
        fits = int(match.group(1))

        def grown(n: int, field: str = field) -> bytes:
            return msgspec.msgpack.encode(Tokens(**{"csrf": "", "code": "", "word": ""} | {field: "x" * n}))

        handler.check_size(tokens, grown(fits))
        with pytest.raises(CookieTooLarge) as too_large:  # one more character does not fit
            handler.check_size(tokens, grown(fits + 1))
        assert too_large.value.size == 4097
    # With max_length, each patterned string counts at that many 4-byte characters, and the state fits.
    bounded = client_stored(fixed_keyring(), name="tokens")  # another shape at version 1 needs its own handler
    check_fits_cookie(State("tokens", BoundedTokens), bounded, max_examples=20)


def test_a_patterned_string_counts_at_its_max_length_in_4_byte_characters() -> None:
    class Codes(msgspec.Struct):
        codes: Annotated[list[Annotated[str, msgspec.Meta(pattern="^[0-9]+$", max_length=30)]],
                         msgspec.Meta(max_length=40)]

    # 40 codes of 30 digits are 40 * 32 + 3 bytes of MessagePack in reality, but the check counts
    # 30 four-byte characters per code: 40 * 122 + 3 = 4883 bytes, too many for one cookie.
    with pytest.raises(AssertionError, match=r"largest value of the type makes a \d+-byte cookie .* by field: "
                                             r"codes: 4883 bytes"):
        check_fits_cookie(State("codes", Codes), max_examples=5)


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
