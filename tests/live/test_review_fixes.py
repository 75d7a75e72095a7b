"""The live-session manager's review fixes, each with the test that would have caught it.

Logout persisted (A7), quiet connections kept resumable (A8), the age heap
bounded (A11), many query fields and header values (A12), connections with
no address (C5), ``no_room_to_resume``, and constructor validation.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from clientstate import ConfigurationError, ErrorKind
from clientstate._core.flow import perform_async
from clientstate._core.store import Get, Record
from clientstate.live import SessionManager, get_live
from clientstate.stores import MemoryStore, SQLiteStore
from clientstate.testing import FrozenClock, fixed_keyring
from tests.live.harness import COUNTER, Peer, counter_app, wrap

T0 = 1_700_000_000


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def manager(store: Any = None, clock: FrozenClock | None = None, **options: Any) -> SessionManager:
    return SessionManager(
        store if store is not None else MemoryStore(), fixed_keyring(1), clock=clock or FrozenClock(T0), **options
    )


def sid(m: SessionManager, token: str | None) -> bytes:
    assert token is not None
    opened = m._bound["counter"].ids.open(token)
    assert isinstance(opened, tuple)
    return opened[0]


async def persisted_session(tmp_path: Path) -> tuple[FrozenClock, SQLiteStore, SessionManager, Peer]:
    """One live session on a SQLite store (resume window 300 s, a pass every 30 s), changed once and persisted."""
    clock = FrozenClock(T0)
    store = SQLiteStore(str(tmp_path / "live.db"))
    m = manager(store, clock, resume_window=300, persist_interval=30)
    peer = await Peer(wrap(m)).open()
    await peer.say("inc")
    assert await m.persist() == 1
    return clock, store, m, peer


async def stored(store: Any, key: bytes) -> Record | None:
    record: Record | None = await perform_async(store, Get(key))
    return record


# --- A7: a cleared state is deleted from the store ------------------------------------------------------


def test_clearing_the_state_deletes_the_stored_record_so_a_restart_does_not_bring_it_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteStore(str(tmp_path / "live.db"))  # shared: written through at disconnect
        m = manager(store)
        app = wrap(m)
        peer = await Peer(app).open()
        await peer.say("inc")
        await peer.say("login:ada")
        await peer.close()
        assert await stored(store, sid(m, peer.token)) is not None
        back = await Peer(app, token=peer.token).open()
        assert (await back.say("clear")) == {"count": 0, "user": None}
        await back.close()
        assert await stored(store, sid(m, peer.token)) is None  # the logout reached the store
        again = await Peer(app, token=peer.token).open()  # from memory: still cleared
        assert (await again.say("inc")) == {"count": 1, "user": None}
        await again.say("clear")
        assert await m.shutdown() == 0  # nothing to save: the cleared session is not written back
        assert await stored(store, sid(m, peer.token)) is None
        restarted = await Peer(wrap(manager(store)), token=peer.token).open()
        assert (await restarted.say("inc")) == {"count": 1, "user": None}  # a fresh session, not ada's

    run(scenario())


def test_a_clear_on_a_process_local_store_is_deleted_by_the_next_persist_pass_and_absent_from_the_snapshot(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        snapshot = tmp_path / "live.snapshot"
        m = manager(store, snapshot_path=snapshot)
        app = wrap(m)
        peer = await Peer(app).open()
        await peer.say("inc")
        assert await m.persist() == 1
        assert await stored(store, sid(m, peer.token)) is not None
        await peer.say("clear")
        assert await m.persist() == 1  # the deletion
        assert await stored(store, sid(m, peer.token)) is None
        await m.shutdown()
        fresh = manager(MemoryStore(), snapshot_path=snapshot)
        assert await fresh.startup() == 0
        back = await Peer(wrap(fresh), token=peer.token).open()
        assert (await back.say("inc"))["count"] == 1
        await fresh.shutdown()

    run(scenario())


# --- A8: a quiet live session stays resumable from the store -------------------------------------------


def test_a_live_session_that_never_changes_is_touched_not_rewritten_and_survives_a_crash(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock, store, m, peer = await persisted_session(tmp_path)
        key = sid(m, peer.token)
        first = await stored(store, key)
        assert first is not None
        assert first.idle_deadline == T0 + 300 + 60
        for _ in range(100):  # 50 minutes of a connection whose state never changes
            clock.advance(30)
            assert await m.persist() == 0
        record = await stored(store, key)
        assert record is not None
        assert record.version == 1  # never rewritten
        assert record.blob == first.blob
        assert record.idle_deadline >= clock() + 300  # but kept alive
        assert record.last_touch == clock()
        clock.advance(200)  # the process dies (no shutdown); a new one starts
        back = await Peer(wrap(manager(store, clock, resume_window=300)), token=peer.token).open()
        assert back.token == peer.token
        assert (await back.say("inc"))["count"] == 2

    run(scenario())


def test_at_disconnect_the_stored_deadline_becomes_the_resume_window(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock, store, m, peer = await persisted_session(tmp_path)
        for _ in range(40):  # 20 minutes, persist passes every 30 s
            clock.advance(30)
            await m.persist()
        clock.advance(10)
        await peer.close()  # unchanged since the write: touched to end 300 s after the disconnect
        record = await stored(store, sid(m, peer.token))
        assert record is not None
        assert (record.version, record.idle_deadline) == (1, T0 + 1210 + 300)

    run(scenario())


# --- A11: the age heap is bounded --------------------------------------------------------------------


def test_the_age_heap_stays_bounded_under_resume_churn_and_still_evicts_the_oldest() -> None:
    async def scenario() -> None:
        clock = FrozenClock(T0)
        m = manager(clock=clock, eviction="oldest", max_sessions=50)
        app = wrap(m)
        keep = []
        for n in range(10):
            peer = await Peer(app, client=(f"192.0.2.{n}", 1)).open()
            keep.append(peer)
            clock.advance(1)
        for peer in keep:
            await peer.close()
        sizes = []
        for round_ in range(300):  # resume and leave again, over and over
            peer = keep[round_ % 10]
            back = await Peer(app, token=peer.token, client=(f"192.0.2.{round_ % 10}", 1)).open()
            clock.advance(1)
            await back.close()
            sizes.append(len(m._by_age))
            assert len(m._by_age) <= 2 * m.stats().detached + 17
        assert max(sizes) <= 2 * 10 + 17
        for n in range(41):  # fill up to the limit with live sessions, then one more
            await Peer(app, client=(f"198.51.100.{n}", 1)).open()
        assert m.stats().evictions["anonymous"] == 1
        assert sid(m, keep[0].token) not in m._sessions  # the first created went first
        assert all(sid(m, p.token) in m._sessions for p in keep[1:])

    run(scenario())


def test_lru_and_random_do_not_keep_an_age_heap() -> None:
    async def scenario(policy: str) -> int:
        m = manager(eviction=policy)
        app = wrap(m)
        peer = await Peer(app).open()
        await peer.close()
        for _ in range(50):
            back = await Peer(app, token=peer.token).open()
            await back.close()
        return len(m._by_age)

    assert run(scenario("lru")) == 0
    assert run(scenario("random")) == 0


# --- A12: many query fields, many header values -----------------------------------------------------------


def test_a_query_with_many_fields_is_handled_and_the_token_still_found() -> None:
    async def scenario() -> None:
        m = manager()
        app = wrap(m)
        peer = await Peer(app).open()
        await peer.say("inc")
        await peer.close()
        noise = "&".join(f"f{n}=v{n}" for n in range(40))
        back = await Peer(app, query=f"{noise}&live_session={peer.token}&x=1".encode()).open()
        assert back.token == peer.token
        assert (await back.say("inc"))["count"] == 2
        plain = await Peer(app, query=noise.encode() + b"&%zz=%&&=").open()  # no token, odd fields: a new session
        assert plain.token is not None
        assert plain.token != peer.token

    run(scenario())


def test_many_forwarding_header_values_from_a_trusted_proxy_are_handled() -> None:
    async def scenario() -> None:
        seen: list[Any] = []
        m = manager(trusted_proxies=["10.0.0.0/8"], max_per_ip=1)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(get_live(scope, COUNTER).error)
            await counter_app(scope, receive, send)

        wrapped = m.websocket(COUNTER, app)
        headers = [(b"x-forwarded-for", f"10.0.{n}.1".encode()) for n in range(60)]
        headers.insert(0, (b"x-forwarded-for", b"198.51.100.5"))
        first = await Peer(wrapped, client=("10.0.0.1", 1), headers=headers).open()
        assert not first.refused
        second = await Peer(wrapped, client=("10.0.0.2", 1), headers=headers).open()
        assert second.close_reason == "too_many_sessions_from_ip"  # both counted under 198.51.100.5
        assert seen == [None]

    run(scenario())


# --- C5: no client address ------------------------------------------------------------------------------


def test_connections_without_an_address_are_one_group_bounded_by_max_unaddressed() -> None:
    async def scenario() -> None:
        m = manager(max_per_ip=2)  # max_unaddressed unset: only max_sessions bounds them
        app = wrap(m)
        for _ in range(5):
            assert not (await Peer(app, client=None).open()).refused
        assert m.stats().unique_ips == 1
        bounded = manager(max_per_ip=2, max_unaddressed=3)
        app = wrap(bounded)
        for _ in range(3):
            assert not (await Peer(app, client=None).open()).refused
        refused = await Peer(app, client=None).open()
        assert refused.close_reason == "too_many_sessions_from_ip"
        assert not (await Peer(app, client=("192.0.2.1", 1)).open()).refused  # addresses have their own limit
        assert not (await Peer(app, client=("192.0.2.1", 2)).open()).refused
        assert (await Peer(app, client=("192.0.2.1", 3)).open()).refused
        assert bounded.stats().refusals == {"too_many_sessions_from_ip": 2}
        assert bounded.max_unaddressed == 3
        assert manager().max_unaddressed == 10_000

    run(scenario())


# --- no room to resume -------------------------------------------------------------------------------------


def test_a_resume_from_the_store_without_room_is_refused_as_no_room_to_resume(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteStore(str(tmp_path / "live.db"))
        before = manager(store)
        peer = await Peer(wrap(before)).open()
        await peer.say("inc")
        await peer.close()  # written through
        m = manager(store, max_sessions=2)  # after a restart
        app = wrap(m)
        live = [await Peer(app, client=(f"192.0.2.{n}", 1)).open() for n in range(2)]
        back = await Peer(app, token=peer.token).open()
        assert back.refused
        assert back.close_reason == "no_room_to_resume"
        assert m.stats().refusals == {"no_room_to_resume": 1}
        await live[0].close()  # a detached one can now be evicted
        again = await Peer(app, token=peer.token).open()
        assert again.token == peer.token
        assert (await again.say("inc"))["count"] == 2

    run(scenario())


# --- constructor validation ------------------------------------------------------------------------------


COUNTS = ("max_sessions", "max_per_ip", "max_unaddressed")
SECONDS = ("resume_window", "persist_interval", "cleanup_interval", "max_lifetime")


@pytest.mark.parametrize("name", COUNTS + SECONDS)
@pytest.mark.parametrize("value", [True, False, "10", b"10", [10], math.nan, math.inf, -math.inf])
def test_a_setting_of_the_wrong_type_is_a_configuration_error(name: str, value: object) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(ConfigurationError, match=name):
        manager(**options)


@pytest.mark.parametrize("name", COUNTS)
def test_a_count_given_as_a_float_is_a_configuration_error(name: str) -> None:
    options: dict[str, Any] = {name: 2.5}
    with pytest.raises(ConfigurationError, match=f"{name} must be an int, got float 2.5"):
        manager(**options)


@pytest.mark.parametrize("value", [0, -1, -0.5, None])
def test_non_positive_or_unset_settings_take_the_documented_defaults(value: float | None) -> None:
    counts = dict.fromkeys(COUNTS, value) if not isinstance(value, float) else {}
    m = manager(**counts, **dict.fromkeys(SECONDS, value))
    assert (m.max_sessions, m.max_per_ip, m.max_unaddressed) == (10_000, 100, 10_000)
    assert (m.resume_window, m.persist_interval, m.cleanup_interval, m.max_lifetime) == (300, 30, 60, 7 * 24 * 3600)


def test_seconds_may_be_fractional_and_counts_are_kept() -> None:
    m = manager(resume_window=1.5, persist_interval=0.25, max_sessions=7, max_per_ip=3)
    assert (m.resume_window, m.persist_interval, m.max_sessions, m.max_per_ip) == (1.5, 0.25, 7, 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eviction": "fifo"}, "eviction must be 'lru', 'oldest' or 'random', got 'fifo'"),
        ({"eviction": 3}, "eviction must be"),
        ({"eviction": None}, "eviction must be"),
        ({"snapshot_path": 3}, "snapshot_path must be a str or a Path"),
        ({"trusted_proxies": "10.0.0.1"}, "not one string"),
        ({"trusted_proxies": ["nope"]}, "not an IP address"),
        ({"clock": 5}, "clock must be a callable"),
    ],
)
def test_other_bad_settings_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        manager(**options)


def test_a_bad_keyring_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="keyring"):
        SessionManager(MemoryStore(), "key")  # type: ignore[arg-type]


def test_an_expired_token_still_reports_session_expired() -> None:
    async def scenario() -> None:
        seen: list[Any] = []
        clock = FrozenClock(T0)
        m = manager(clock=clock, resume_window=10)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(get_live(scope, COUNTER).error)
            await counter_app(scope, receive, send)

        wrapped = m.websocket(COUNTER, app)
        peer = await Peer(wrapped).open()
        await peer.close()
        clock.advance(10)
        await Peer(wrapped, token=peer.token).open()
        assert seen[1] is not None
        assert seen[1].kind is ErrorKind.SESSION_EXPIRED

    run(scenario())


def test_a_live_session_whose_record_expired_while_the_process_stood_still_is_written_anew(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock, store, m, peer = await persisted_session(tmp_path)
        clock.advance(5000)  # no pass ran (a suspended VM): the stored record expired
        assert await m.persist() == 1  # the touch fails, so the record is written again
        record = await stored(store, sid(m, peer.token))
        assert record is not None
        assert record.idle_deadline == T0 + 5000 + 360
        assert (await peer.say("inc"))["count"] == 2  # still live here
        assert await m.persist() == 1
        back = await Peer(wrap(manager(store, clock)), token=peer.token).open()  # after a crash
        assert (await back.say("inc"))["count"] == 3

    run(scenario())
