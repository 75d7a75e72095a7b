"""The behavioural suite of server-stored sessions, run against every store and with both drivers.

Each test is one of the shortcomings of other libraries (``research/server-side-anchors.md`` §3/§4) turned
into a requirement: laziness, forged cookies costing nothing, throttled touches, enforced timeouts, no
resurrection, no lost concurrent update, id rotation with requests in flight, a bounded sweep, and stored
rows that cannot be edited or moved.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
import pytest

from clientstate import (
    Binding,
    ErrorKind,
    Keyring,
    Migration,
    Sessions,
    State,
    StateSlot,
    StoreUnavailable,
    server_stored,
)
from clientstate._core.base64url import b64url_encode
from clientstate._core.session_id import SessionIdCodec
from clientstate._core.store import Op, Steps, Store
from clientstate._handlers.server_stored import ServerStored
from clientstate.testing import FrozenClock, fixed_keyring
from tests.server.conftest import Driver
from tests.server.kits import CountingStore, StoreKit

T0 = 1_700_000_000


class Account(msgspec.Struct):
    user: str
    visits: int = 0
    items: list[str] = []


ACCOUNT = State("account", Account)


def kind_of(slot: StateSlot[Any]) -> ErrorKind | None:
    """The kind of ``slot``'s load error, ``None`` if it loaded (``assert kind_of(slot) is ErrorKind.X``)."""
    return None if slot.error is None else slot.error.kind


def handler(store: Store, keyring: Keyring | None = None, **options: Any) -> ServerStored:
    return server_stored(
        store, keyring or fixed_keyring(1), name="sid", principal=lambda state: state.user or None, **options
    )


def cookie_of(lines: list[str]) -> str:
    (line,) = lines
    assert "Max-Age=0" not in line, line
    return line.split(";", 1)[0]


def is_deletion(lines: list[str]) -> bool:
    return len(lines) == 1 and lines[0].startswith("sid=; Max-Age=0")


def log_in_as(driver: Driver, binding: Binding[Any], value: Any) -> str:
    """The session cookie of a first request that assigns ``value``."""

    def act(slot: StateSlot[Any]) -> None:
        slot.state = value

    return cookie_of(driver.request(binding, None, act)[1])


def log_in(driver: Driver, binding: Binding[Account], user: str = "ada") -> str:
    return log_in_as(driver, binding, Account(user))


def start_logged_in(driver: Driver, store: Store, **options: Any) -> tuple[FrozenClock, Binding[Account], str]:
    """A frozen clock at T0, a binding of ``handler(store, **options)`` on it, and ada's session cookie."""
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store, **options), clock)
    return clock, binding, log_in(driver, binding)


def visit(slot: StateSlot[Account]) -> None:
    assert slot.state is not None
    slot.state = msgspec.structs.replace(slot.state, visits=slot.state.visits + 1)


def logout(slot: StateSlot[Account]) -> None:
    slot.state = None


# --- laziness and forged cookies ------------------------------------------------------------------


def test_ten_thousand_anonymous_requests_write_nothing(kit: StoreKit, store: Store, driver: Driver) -> None:
    counting = CountingStore(store)
    binding = Binding(ACCOUNT, handler(counting), FrozenClock(T0))
    runs = 10_000 if driver.name == "sync" else 1_000  # asyncio.run per request is the slow part
    for _ in range(runs):
        slot, lines = driver.request(binding, None)
        assert slot.state is None
        assert slot.error is None
        assert lines == []
    assert counting.ops == []
    assert kit.rows(store) == 0


def forged_cookies(count: int) -> list[str]:
    keyring = Keyring(fixed_keyring(9).current)  # a key the handler does not have
    ids = SessionIdCodec(keyring, "sid")
    other_name = SessionIdCodec(fixed_keyring(1), "other")
    cookies = []
    for n in range(count):
        variant = n % 5
        if variant == 0:
            cookies.append("sid=" + b64url_encode(bytes([3, 1]) + os.urandom(48)))  # right shape, wrong MAC
        elif variant == 1:
            cookies.append("sid=" + ids.sign(os.urandom(16)))  # a real MAC under an unknown key id
        elif variant == 2:
            cookies.append("sid=" + other_name.sign(os.urandom(16)))  # signed for another cookie name
        elif variant == 3:
            cookies.append("sid=" + "A" * 1000)  # too long
        else:
            cookies.append("sid=%%%garbage")
    return cookies


def test_ten_thousand_forged_cookies_cost_no_store_access(kit: StoreKit, store: Store, driver: Driver) -> None:
    counting = CountingStore(store)
    binding = Binding(ACCOUNT, handler(counting), FrozenClock(T0))
    kinds: set[str] = set()
    for cookie in forged_cookies(10_000 if driver.name == "sync" else 1_000):
        slot = driver.begin(binding, cookie)
        assert slot.error is not None
        kinds.add(slot.error.kind.value)
        assert is_deletion(driver.finish(binding, slot))  # the bad cookie is cleared, still without I/O
    assert counting.ops == []
    assert kit.rows(store) == 0
    assert kinds == {"authentication_failed", "unknown_key", "too_large", "malformed"}


def test_operations_per_request_kind(kit: StoreKit, store: Store, driver: Driver) -> None:
    counting = CountingStore(store)
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(counting), clock)
    cookie = log_in(driver, binding)
    assert counting.ops == ["Create"]
    assert kit.rows(store) == 1
    counting.ops.clear()
    slot, lines = driver.request(binding, cookie)
    assert (slot.state, lines, counting.ops) == (Account("ada"), [], ["Get"])  # read-only: one read
    counting.ops.clear()
    slot, lines = driver.request(binding, cookie, visit)
    assert (lines, counting.ops) == ([], ["Get", "Update"])  # changing: one read, one write
    counting.ops.clear()
    slot, lines = driver.request(binding, cookie, logout)
    assert is_deletion(lines)
    assert counting.ops == ["Get", "Get", "Delete"]  # a logout re-reads, to follow a rotation made meanwhile
    assert kit.rows(store) == 0


# --- timeouts and touches -------------------------------------------------------------------------


def test_touches_are_throttled_never_rewrite_the_state_and_stop_at_the_absolute_deadline(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    counting = CountingStore(store)
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(counting, idle_timeout=1000, absolute_timeout=5000, touch_interval=100), clock)
    cookie = log_in(driver, binding)
    counting.ops.clear()
    before = kit.raw(store, _sid(binding, cookie))
    assert before is not None
    for _ in range(1000):  # one read-only request a second for 1000 s
        clock.advance(1)
        slot, lines = driver.request(binding, cookie)
        assert slot.error is None
        assert lines == []
    assert counting.count("Touch") == 10  # at most one per 100 s
    assert counting.count("Update") == 0
    after = kit.raw(store, _sid(binding, cookie))
    assert after is not None
    assert after.blob == before.blob
    assert after.version == before.version
    assert after.idle_deadline == after.last_touch + 1000
    for _ in range(45):  # keep it alive past the absolute deadline
        clock.advance(100)
        slot, _ = driver.request(binding, cookie)
        if slot.error is not None:
            break
        record = kit.raw(store, _sid(binding, cookie))
        assert record is not None
        assert record.idle_deadline <= record.absolute_deadline == T0 + 5000
    assert kind_of(slot) is ErrorKind.SESSION_EXPIRED
    assert clock() >= T0 + 5000


def _sid(binding: Binding[Any], cookie: str) -> bytes:
    handler = binding.handler
    assert isinstance(handler, ServerStored)
    opened = handler._ids.open(cookie.split("=", 1)[1])
    assert isinstance(opened, tuple)
    return opened[0]


def test_idle_expiry_clears_the_cookie(kit: StoreKit, store: Store, driver: Driver) -> None:
    clock, binding, cookie = start_logged_in(driver, store, idle_timeout=600, absolute_timeout=3600)
    clock.advance(599)
    assert driver.request(binding, cookie)[0].state == Account("ada")
    clock.advance(600)  # 600 s after the last touch (the touch at 599 s moved the deadline)
    slot, lines = driver.request(binding, cookie)
    assert slot.state is None
    assert kind_of(slot) is ErrorKind.SESSION_EXPIRED
    assert is_deletion(lines)


# --- no resurrection, no lost update --------------------------------------------------------------


def test_a_slow_request_finishing_after_a_logout_does_not_bring_the_session_back(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    _clock, binding, cookie = start_logged_in(driver, store)
    slow = driver.begin(binding, cookie)  # in flight...
    assert is_deletion(driver.request(binding, cookie, logout)[1])  # ...while the user logs out
    visit(slow)
    assert is_deletion(driver.finish(binding, slow))  # its write finds the session gone
    assert kit.rows(store) == 0
    after = driver.begin(binding, cookie)
    assert kind_of(after) is ErrorKind.UNKNOWN_SESSION


def test_a_slow_read_only_request_due_for_a_touch_does_not_resurrect_either(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock, binding, cookie = start_logged_in(driver, store, idle_timeout=1000, touch_interval=10)
    clock.advance(50)
    slow = driver.begin(binding, cookie)
    assert slow.loaded.session.touch_due
    driver.request(binding, cookie, logout)
    assert is_deletion(driver.finish(binding, slow))
    assert kit.rows(store) == 0


def test_two_writers_to_different_fields_both_persist(kit: StoreKit, store: Store, driver: Driver) -> None:
    _clock, binding, cookie = start_logged_in(driver, store)
    first, second = driver.begin(binding, cookie), driver.begin(binding, cookie)
    visit(first)
    assert second.state is not None
    second.state = msgspec.structs.replace(second.state, items=["book"])
    assert driver.finish(binding, first) == []
    assert driver.finish(binding, second) == []  # a conflict, retried on a fresh read
    assert driver.request(binding, cookie)[0].state == Account("ada", visits=1, items=["book"])


def test_two_writers_to_one_field_leave_a_whole_value_of_the_last(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    _clock, binding, cookie = start_logged_in(driver, store)
    first, second = driver.begin(binding, cookie), driver.begin(binding, cookie)
    first.state = Account("ada", items=["a", "b"])
    second.state = Account("ada", items=["c"])
    driver.finish(binding, first)
    driver.finish(binding, second)
    assert driver.request(binding, cookie)[0].state == Account("ada", items=["c"])  # never a torn ["a", "c"]


# --- id rotation ----------------------------------------------------------------------------------


def test_rotation_with_five_requests_in_flight(kit: StoreKit, store: Store, driver: Driver) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store, rotation_grace=10), clock)
    old = log_in(driver, binding)
    in_flight = [driver.begin(binding, old) for _ in range(5)]

    def elevate(slot: StateSlot[Account]) -> None:
        slot.rotate_id()

    new = cookie_of(driver.request(binding, old, elevate)[1])
    assert new != old
    for n, slot in enumerate(in_flight):
        if n == 1:
            visit(slot)
        elif n == 3:
            assert slot.state is not None
            slot.state = msgspec.structs.replace(slot.state, items=["x"])
        lines = driver.finish(binding, slot)
        assert slot.error is None
        assert not is_deletion(lines), lines
    state = driver.request(binding, new)[0].state
    assert state is not None
    assert (state.visits, state.items) == (1, ["x"])  # both in-flight writes landed on the new session
    clock.advance(9)
    late = driver.begin(binding, old)  # still inside the grace period: served, never re-set
    assert late.state == state
    assert driver.finish(binding, late) == []
    clock.advance(2)
    dead = driver.begin(binding, old)
    assert dead.state is None
    assert dead.error is not None
    # A store that keeps the expired tombstone says so; one that dropped it finds nothing.
    assert dead.error.kind in (ErrorKind.SESSION_MOVED, ErrorKind.UNKNOWN_SESSION)
    lines = driver.finish(binding, dead)
    assert is_deletion(lines) is (dead.error.kind is ErrorKind.UNKNOWN_SESSION), lines
    assert driver.request(binding, new)[0].state == state


def test_a_login_rotates_the_id_by_itself(kit: StoreKit, store: Store, driver: Driver) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store), clock)
    anonymous = log_in(driver, binding, "")  # a pre-login session (principal "")

    def become(slot: StateSlot[Account]) -> None:
        slot.state = Account("ada")

    logged_in = cookie_of(driver.request(binding, anonymous, become)[1])
    assert logged_in != anonymous
    # Fixation: the planted id never reaches the logged-in session, not even inside the grace period...
    planted, lines = driver.request(binding, anonymous)
    assert planted.state is None
    assert kind_of(planted) is ErrorKind.SESSION_MOVED
    assert lines == []  # ...and its response leaves alone the cookie the browser now holds
    assert driver.begin(binding, logged_in).state == Account("ada")
    clock.advance(11)
    assert driver.begin(binding, anonymous).state is None
    assert driver.begin(binding, logged_in).state == Account("ada")


# --- principal index, sweep -----------------------------------------------------------------------


def test_list_count_and_end_a_principals_sessions(kit: StoreKit, store: Store, driver: Driver) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store), clock)
    mine = [log_in(driver, binding, "ada") for _ in range(3)]
    theirs = log_in(driver, binding, "bob")
    sessions = Sessions(binding.handler)
    assert sessions.count("ada", now=clock()) == 3
    listed = sessions.list("ada", now=clock())
    assert len({info.handle for info in listed}) == 3
    current = driver.begin(binding, mine[0])
    assert current.session_handle in {info.handle for info in listed}
    assert sessions.end("ada", keep=current) == 2
    assert driver.begin(binding, mine[0]).state == Account("ada")
    assert driver.begin(binding, mine[1]).state is None
    assert sessions.end("ada") == 1
    assert driver.begin(binding, mine[0]).state is None
    assert driver.begin(binding, theirs).state == Account("bob")
    assert sessions.count("ada", now=clock()) == 0


def test_the_sweep_deletes_only_expired_sessions_in_bounded_batches(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    short = Binding(ACCOUNT, handler(store, idle_timeout=100, absolute_timeout=100, touch_interval=10), clock)
    for n in range(25):
        log_in(driver, short, f"u{n}")
    keep = [log_in(driver, Binding(ACCOUNT, handler(store), clock), f"k{n}") for n in range(5)]
    assert kit.rows(store) == 30
    clock.advance(100)
    sessions = Sessions(store)
    batches = []
    while (deleted := sessions.sweep(limit=10, now=clock())) > 0:
        batches.append(deleted)
    assert batches == [10, 10, 5]
    assert kit.rows(store) == 5
    long_lived = Binding(ACCOUNT, handler(store), clock)
    assert all(driver.begin(long_lived, cookie).state is not None for cookie in keep)


# --- stored rows cannot be edited or moved --------------------------------------------------------


@pytest.mark.parametrize("edit", ["blob", "schema_version", "copy", "principal", "absolute_deadline"])
def test_a_row_edited_in_the_store_fails_to_load(kit: StoreKit, store: Store, driver: Driver, edit: str) -> None:
    clock = FrozenClock(T0)
    h = handler(store)
    binding = Binding(ACCOUNT, h, clock)
    cookie = log_in(driver, binding)
    sid = _sid(binding, cookie)
    if edit == "blob":
        kit.tamper(store, sid, lambda r: msgspec.structs.replace(r, blob=r.blob.replace(b"ada", b"eve")))
    elif edit == "schema_version":
        kit.tamper(store, sid, lambda r: msgspec.structs.replace(r, schema_version=2))
    elif edit == "principal":  # so that "log out everywhere" for ada would miss it
        kit.tamper(store, sid, lambda r: msgspec.structs.replace(r, principal="eve"))
    elif edit == "absolute_deadline":  # a session that never ends
        kit.tamper(store, sid, lambda r: msgspec.structs.replace(
            r, absolute_deadline=2**40, idle_deadline=2**40))
    else:  # the row copied under another id, and a genuine cookie for that id
        record = kit.raw(store, sid)
        assert record is not None
        other = os.urandom(16)
        kit.put_raw(store, msgspec.structs.replace(record, sid=other))
        cookie = "sid=" + h._ids.sign(other)
    slot = driver.begin(binding, cookie)
    assert slot.state is None
    assert kind_of(slot) is ErrorKind.AUTHENTICATION_FAILED


def test_a_changed_type_at_the_same_version_is_a_schema_mismatch(kit: StoreKit, store: Store, driver: Driver) -> None:
    class AccountV2(msgspec.Struct):
        user: str
        visits: str = ""  # the same name and version, another shape

    clock, _binding, cookie = start_logged_in(driver, store)
    changed = Binding(State("account", AccountV2), handler(store), clock)
    slot = driver.begin(changed, cookie)
    assert kind_of(slot) is ErrorKind.SCHEMA_MISMATCH


# --- keys and schema versions ---------------------------------------------------------------------


def test_a_cookie_and_row_under_an_older_key_are_re_signed_under_the_current_one(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    cookie = log_in(driver, Binding(ACCOUNT, handler(store, fixed_keyring(1)), clock))
    rotated = Binding(ACCOUNT, handler(store, fixed_keyring(2, 1)), clock)
    slot, lines = driver.request(rotated, cookie)
    assert slot.state == Account("ada")
    new_cookie = cookie_of(lines)
    assert new_cookie != cookie
    record = kit.raw(store, _sid(rotated, new_cookie))
    assert record is not None
    assert record.blob[1] == 2  # the stored state re-signed under key 2
    retired = Binding(ACCOUNT, handler(store, fixed_keyring(2)), clock)
    assert driver.begin(retired, new_cookie).state == Account("ada")


def test_an_older_schema_version_is_migrated_and_rewritten(kit: StoreKit, store: Store, driver: Driver) -> None:
    class Old(msgspec.Struct):
        user: str

    clock = FrozenClock(T0)
    old = State("account", Old)
    cookie = log_in_as(driver, Binding(old, handler(store), clock), Old("ada"))
    new = State("account", Account, version=2, migrations=[Migration(1, Old, lambda o: Account(o.user, visits=7))])
    binding = Binding(new, handler(store), clock)
    slot, _ = driver.request(binding, cookie)
    assert slot.state == Account("ada", visits=7)
    record = kit.raw(store, _sid(binding, cookie))
    assert record is not None
    assert record.schema_version == 2


# --- a store that does not answer -----------------------------------------------------------------


class DownStore:
    """A store whose server is down: every command fails as StoreUnavailable."""

    shared = True

    def steps(self, op: Op) -> Steps:
        result = yield op
        return result

    def execute(self, command: Any) -> Any:
        raise StoreUnavailable("connection refused")

    async def aexecute(self, command: Any) -> Any:
        raise StoreUnavailable("connection refused")

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def test_a_store_outage_is_an_error_value_and_keeps_the_cookie(kit: StoreKit, store: Store, driver: Driver) -> None:
    clock = FrozenClock(T0)
    cookie = log_in(driver, Binding(ACCOUNT, handler(store), clock))
    down = Binding(ACCOUNT, handler(DownStore()), clock)
    slot, lines = driver.request(down, cookie)
    assert slot.state is None
    assert kind_of(slot) is ErrorKind.STORE_UNAVAILABLE
    assert lines == []  # the cookie is kept: a blip logs nobody out
    slot, lines = driver.request(down, cookie, lambda s: setattr(s, "state", Account("ada")))
    assert lines == []  # the save fails too, is logged, and changes nothing
    assert driver.request(Binding(ACCOUNT, handler(store), clock), cookie)[0].state == Account("ada")


def test_a_tombstone_edited_to_point_at_another_session_fails_to_load(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store), clock)
    victim = log_in(driver, binding, "victim")
    attacker = log_in(driver, binding, "attacker")
    # Someone with write access to the table turns the attacker's row into a tombstone of the victim's.
    kit.tamper(store, _sid(binding, attacker), lambda r: msgspec.structs.replace(
        r, moved_to=_sid(binding, victim), idle_deadline=r.absolute_deadline, blob=b""))
    slot = driver.begin(binding, attacker)
    assert slot.state is None
    assert kind_of(slot) is ErrorKind.AUTHENTICATION_FAILED
    assert driver.begin(binding, victim).state == Account("victim")


# --- races found in review: rotation, in-place edits, old ids, outages ------------------------------


def rotate(slot: StateSlot[Account]) -> None:
    slot.rotate_id()


@pytest.mark.parametrize("how", ["logout", "end_everywhere"])
def test_a_rotation_racing_a_logout_does_not_bring_the_session_back(
    kit: StoreKit, store: Store, driver: Driver, how: str
) -> None:
    clock = FrozenClock(T0)
    h = handler(store)
    binding = Binding(ACCOUNT, h, clock)
    cookie = log_in(driver, binding)
    rotating = driver.begin(binding, cookie)  # a sudo elevation in flight...
    if how == "logout":
        assert is_deletion(driver.request(binding, cookie, logout)[1])  # ...while the user logs out
    else:
        assert Sessions(h).end("ada") == 1  # ...while "log out everywhere" runs
    rotate(rotating)
    lines = driver.finish(binding, rotating)
    assert is_deletion(lines), lines  # not a cookie for a successor
    assert kit.rows(store) == 0  # the successor it created is deleted again
    after = driver.begin(binding, cookie)
    assert after.state is None
    assert kind_of(after) is ErrorKind.UNKNOWN_SESSION


def test_a_rotation_keeps_a_write_committed_while_it_was_in_flight(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    _clock, binding, cookie = start_logged_in(driver, store)
    rotating = driver.begin(binding, cookie)
    driver.request(binding, cookie, visit)  # committed while the rotation is in flight
    rotate(rotating)
    new = cookie_of(driver.finish(binding, rotating))
    assert new != cookie
    assert driver.begin(binding, new).state == Account("ada", visits=1)


def test_a_rotation_that_changes_the_state_merges_with_a_concurrent_write(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    _clock, binding, cookie = start_logged_in(driver, store)
    rotating = driver.begin(binding, cookie)
    driver.request(binding, cookie, visit)
    assert rotating.state is not None
    rotating.state = msgspec.structs.replace(rotating.state, items=["sudo"])
    rotate(rotating)
    new = cookie_of(driver.finish(binding, rotating))
    assert driver.begin(binding, new).state == Account("ada", visits=1, items=["sudo"])


@pytest.mark.parametrize("edit", ["counter", "list"])
def test_an_in_place_edit_survives_a_conflict(kit: StoreKit, store: Store, driver: Driver, edit: str) -> None:
    _clock, binding, cookie = start_logged_in(driver, store)
    slow = driver.begin(binding, cookie)
    assert slow.state is not None
    if edit == "counter":
        slow.state.visits += 1  # edited in place, never assigned
    else:
        slow.state.items.append("pen")
    other = driver.begin(binding, cookie)  # writes the field the slow one did not touch
    other.state = Account("ada", visits=0, items=["book"]) if edit == "counter" else Account("ada", visits=5)
    assert driver.finish(binding, other) == []
    assert driver.finish(binding, slow) == []  # a conflict: its own change is what differs from what it loaded
    expected = Account("ada", visits=1, items=["book"]) if edit == "counter" else Account("ada", 5, ["pen"])
    assert driver.request(binding, cookie)[0].state == expected


def test_ids_rotated_twice_within_the_grace_reach_the_session_and_never_delete_the_cookie(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store, rotation_grace=10), clock)
    first = log_in(driver, binding)
    second = cookie_of(driver.request(binding, first, rotate)[1])
    third = cookie_of(driver.request(binding, second, rotate)[1])
    assert len({first, second, third}) == 3
    oldest, lines = driver.request(binding, first)  # two tombstones to follow
    assert oldest.error is None
    assert oldest.state == Account("ada")
    assert lines == []
    _, lines = driver.request(binding, first, visit)  # its write lands on the newest id
    assert lines == []
    assert driver.begin(binding, third).state == Account("ada", visits=1)
    clock.advance(11)
    for old in (first, second):
        late, lines = driver.request(binding, old)
        assert late.state is None
        assert late.error is not None
        assert late.error.kind in (ErrorKind.SESSION_MOVED, ErrorKind.UNKNOWN_SESSION)
        if late.error.kind is ErrorKind.SESSION_MOVED:
            assert lines == []  # the browser holds the newest cookie under the same name: leave it
    assert driver.begin(binding, third).state == Account("ada", visits=1)


def test_a_write_with_an_id_a_login_just_moved_is_not_saved_over_the_new_cookie(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store), clock)
    anonymous = log_in(driver, binding, "")
    logged_in = cookie_of(driver.request(binding, anonymous, lambda s: setattr(s, "state", Account("ada")))[1])
    late, lines = driver.request(binding, anonymous, lambda s: setattr(s, "state", s.state or Account("")))
    assert kind_of(late) is ErrorKind.SESSION_MOVED
    assert lines == []  # logged, not saved: a new session would replace the login's cookie
    assert driver.begin(binding, logged_in).state == Account("ada")
    clock.advance(11)  # past the grace: a request with that old id starts afresh
    fresh, lines = driver.request(binding, anonymous, lambda s: setattr(s, "state", s.state or Account("")))
    assert fresh.error is not None
    assert cookie_of(lines) not in (anonymous, logged_in)


def test_a_rotation_keeps_the_absolute_deadline_and_a_login_starts_a_new_one(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store, absolute_timeout=1000, idle_timeout=500), clock)
    anonymous = log_in(driver, binding, "")
    clock.advance(100)
    logged_in = cookie_of(driver.request(binding, anonymous, lambda s: setattr(s, "state", Account("ada")))[1])
    login = kit.raw(store, _sid(binding, logged_in))
    assert login is not None
    assert (login.created_at, login.absolute_deadline) == (T0 + 100, T0 + 1100)
    clock.advance(100)
    (line,) = driver.request(binding, logged_in, rotate)[1]
    assert "Max-Age=900" in line  # what is left of the login's absolute timeout
    elevated = cookie_of([line])
    record = kit.raw(store, _sid(binding, elevated))
    assert record is not None
    assert (record.created_at, record.absolute_deadline) == (T0 + 100, T0 + 1100)  # rotating never extends it


class GetFailsStore:
    """A store whose reads fail (as during a blip) while its writes would succeed."""

    shared = True

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def steps(self, op: Op) -> Steps:
        if type(op).__name__ == "Get":
            raise StoreUnavailable("read timed out")
        return (yield from self.inner.steps(op))

    def execute(self, command: Any) -> Any:
        return self.inner.execute(command)

    async def aexecute(self, command: Any) -> Any:
        return await self.inner.aexecute(command)

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def test_after_a_failed_read_a_write_does_not_start_a_new_session(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock = FrozenClock(T0)
    cookie = log_in(driver, Binding(ACCOUNT, handler(store), clock))
    blip = Binding(ACCOUNT, handler(GetFailsStore(store)), clock)
    slot, lines = driver.request(blip, cookie, lambda s: setattr(s, "state", s.state or Account("anonymous")))
    assert kind_of(slot) is ErrorKind.STORE_UNAVAILABLE
    assert lines == []  # not saved (logged): a new session would log the user out over a blip
    assert kit.rows(store) == 1
    assert driver.begin(Binding(ACCOUNT, handler(store), clock), cookie).state == Account("ada")


def test_a_logout_during_an_outage_clears_the_cookie(kit: StoreKit, store: Store, driver: Driver) -> None:
    clock = FrozenClock(T0)
    cookie = log_in(driver, Binding(ACCOUNT, handler(store), clock))
    down = Binding(ACCOUNT, handler(DownStore()), clock)
    slot, lines = driver.request(down, cookie, logout)
    assert kind_of(slot) is ErrorKind.STORE_UNAVAILABLE
    assert is_deletion(lines)  # the record could not be deleted (logged), but this browser is logged out
    blip = Binding(ACCOUNT, handler(GetFailsStore(store)), clock)
    assert is_deletion(driver.request(blip, cookie, logout)[1])
    assert kit.rows(store) == 0  # when only reads fail, the delete still goes through


@pytest.mark.parametrize("delay", [0, 60])
def test_a_logout_with_the_pre_login_id_does_not_log_the_new_session_out(
    kit: StoreKit, store: Store, driver: Driver, delay: int
) -> None:
    clock = FrozenClock(T0)
    binding = Binding(ACCOUNT, handler(store), clock)
    planted = log_in(driver, binding, "")
    logged_in = cookie_of(driver.request(binding, planted, lambda s: setattr(s, "state", Account("ada")))[1])
    clock.advance(delay)
    _, lines = driver.request(binding, planted, logout)
    assert is_deletion(lines)  # the old cookie is cleared in its own browser...
    victim = driver.begin(binding, logged_in)
    assert victim.error is None  # ...and the logged-in session lives on
    assert victim.state == Account("ada")


def test_a_logout_with_a_rotated_id_past_its_grace_does_not_end_the_session(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock, binding, first = start_logged_in(driver, store)
    second = cookie_of(driver.request(binding, first, lambda s: s.rotate_id())[1])
    clock.advance(11)
    driver.request(binding, first, logout)
    assert driver.begin(binding, second).state == Account("ada")


def test_a_logout_with_a_rotated_id_inside_its_grace_ends_the_session(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    _clock, binding, first = start_logged_in(driver, store)
    second = cookie_of(driver.request(binding, first, lambda s: s.rotate_id())[1])
    _, lines = driver.request(binding, first, logout)  # an in-flight request's logout is the user's logout
    assert is_deletion(lines)
    assert driver.begin(binding, second).state is None


def test_a_slow_request_that_finishes_past_the_idle_deadline_does_not_keep_the_session(
    kit: StoreKit, store: Store, driver: Driver
) -> None:
    clock, binding, cookie = start_logged_in(driver, store, idle_timeout=60, touch_interval=50)
    clock.advance(59)

    def slow_visit(slot: StateSlot[Account]) -> None:
        clock.advance(30)  # loaded at 59 s, saved at 89 s: the session ended at 60 s
        visit(slot)

    _, lines = driver.request(binding, cookie, slow_visit)
    assert is_deletion(lines)
    after = driver.begin(binding, cookie)
    assert after.state is None
    assert after.error is not None
    assert after.error.kind in (ErrorKind.SESSION_EXPIRED, ErrorKind.UNKNOWN_SESSION)
