"""The live-session manager's rules, in process, with an injected clock: limits, eviction, resume, shutdown."""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from clientstate import ConfigurationError, ErrorKind, Keyring
from clientstate._core.flow import perform_async
from clientstate._core.store import Get
from clientstate.live import SessionManager
from clientstate.live.address import client_address, group_of
from clientstate.live.snapshot import SnapshotError, read_snapshot, write_snapshot
from clientstate.stores import MemoryStore, SQLiteStore
from clientstate.testing import FrozenClock, fixed_keyring
from tests.live.harness import COUNTER, Peer, wrap

T0 = 1_700_000_000


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def manager(
    store: Any = None, clock: FrozenClock | None = None, keyring: Keyring | None = None, **options: Any
) -> SessionManager:
    return SessionManager(
        store if store is not None else MemoryStore(), keyring or fixed_keyring(1), clock=clock or FrozenClock(T0),
        **options,
    )


# --- sessions, resume -------------------------------------------------------------------------------


def test_a_reconnect_inside_the_window_resumes_and_after_it_starts_fresh() -> None:
    async def scenario() -> None:
        clock = FrozenClock(T0)
        m = manager(clock=clock, resume_window=300)
        app = wrap(m)
        first = await Peer(app).open()
        assert first.token is not None
        assert (await first.say("inc"))["count"] == 1
        await first.close()
        clock.advance(299)
        again = await Peer(app, token=first.token).open()
        assert again.token == first.token
        assert (await again.say("inc"))["count"] == 2
        await again.close()
        clock.advance(300)
        late = await Peer(app, token=first.token).open()
        assert late.token != first.token
        assert (await late.say("inc"))["count"] == 1
        assert m.stats().resumed == 1

    run(scenario())


def test_the_slot_reports_why_a_token_did_not_resume() -> None:
    async def scenario() -> None:
        seen: list[Any] = []
        m = manager()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            from clientstate.live import get_live

            seen.append(get_live(scope, COUNTER).error)
            await receive()
            await send({"type": "websocket.accept"})
            await receive()

        wrapped = m.websocket(COUNTER, app)
        peer = await Peer(wrapped, token="not-a-token").open()
        await peer.close()
        assert seen[0] is not None
        assert seen[0].kind is ErrorKind.MALFORMED

    run(scenario())


def test_a_detached_session_evicted_with_unsaved_changes_resumes_from_the_store() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        m = manager(store, max_sessions=2)
        app = wrap(m)
        first = await Peer(app).open()
        await first.say("inc")
        await first.say("inc")
        await first.close()  # detached, unsaved (the store is process-local: no write-through)
        assert await perform_async(store, Get(_sid(m, first.token))) is None
        second = await Peer(app, client=("198.51.100.1", 1)).open()
        third = await Peer(app, client=("198.51.100.2", 1)).open()  # at the limit: the detached one goes
        assert m.stats().evictions == {"anonymous": 1, "authenticated": 0}
        assert m.stats().total == 2
        back = await Peer(app, token=first.token, client=("198.51.100.3", 1)).open()
        assert back.refused  # two live sessions fill memory: nobody to evict
        await second.close()
        back = await Peer(app, token=first.token).open()  # now the detached "second" is evicted instead
        assert back.token == first.token
        assert (await back.say("inc"))["count"] == 3
        await third.close()

    run(scenario())


def _sid(m: SessionManager, token: str | None) -> bytes:
    assert token is not None
    opened = m._bound["counter"].ids.open(token)
    assert isinstance(opened, tuple)
    return opened[0]


@pytest.mark.parametrize("eviction", ["lru", "oldest", "random"])
def test_eviction_takes_detached_anonymous_sessions_first_and_never_live_ones(eviction: str) -> None:
    async def scenario() -> None:
        clock = FrozenClock(T0)
        m = manager(clock=clock, max_sessions=4, eviction=eviction)
        app = wrap(m)
        authenticated = await Peer(app, client=("192.0.2.1", 1)).open()
        await authenticated.say("login:ada")
        clock.advance(1)
        anonymous = [await Peer(app, client=(f"192.0.2.{n}", 1)).open() for n in (2, 3)]
        clock.advance(1)
        live = await Peer(app, client=("192.0.2.9", 1)).open()
        await authenticated.close()
        for peer in anonymous:
            await peer.close()
        evicted = []
        newcomers = []  # kept referenced: a dropped peer's pending task may be garbage collected (and detach)
        for n in range(3):
            newcomers.append(await Peer(app, client=(f"198.51.100.{n}", 1)).open())  # stays live
            evicted.append(dict(m.stats().evictions))
        assert evicted[0] == {"anonymous": 1, "authenticated": 0}
        assert evicted[1] == {"anonymous": 2, "authenticated": 0}
        assert evicted[2] == {"anonymous": 2, "authenticated": 1}  # only once no anonymous one is left
        refused = await Peer(app, client=("198.51.100.99", 1)).open()
        assert refused.refused
        assert refused.close_reason == "max_sessions_reached"
        assert m.stats().live == 4
        assert (await live.say("inc"))["count"] == 1  # a live session was never touched

    run(scenario())


def test_lru_and_oldest_order_among_equals() -> None:
    async def scenario(policy: str) -> list[int]:
        clock = FrozenClock(T0)
        m = manager(clock=clock, max_sessions=3, eviction=policy)
        app = wrap(m)
        peers = []
        for n in range(3):
            peers.append(await Peer(app, client=(f"192.0.2.{n}", 1)).open())
            clock.advance(1)  # created one second apart: peers[0] is the oldest
        for peer in reversed(peers):
            clock.advance(1)
            await peer.close()  # peers[2] closes first: the least recently active
        await Peer(app, client=("198.51.100.1", 1)).open()
        return [int(_sid(m, p.token) in m._sessions) for p in peers]

    assert run(scenario("oldest")) == [0, 1, 1]
    assert run(scenario("lru")) == [1, 1, 0]


def test_a_reconnect_racing_its_eviction_gets_the_saved_state() -> None:
    async def scenario() -> None:
        clock = FrozenClock(T0)
        slow = SlowStore()
        m = manager(slow, clock=clock, max_sessions=2)
        app = wrap(m)
        first = await Peer(app).open()
        await first.say("inc")
        await first.close()  # detached with an unsaved change; the least recently active
        clock.advance(1)
        other = await Peer(app, client=("198.51.100.9", 1)).open()
        await other.close()  # detached, nothing to save
        slow.gate.clear()
        newcomer = asyncio.ensure_future(Peer(app, client=("198.51.100.1", 1)).open())  # evicts first: write held
        await asyncio.wait_for(slow.entered.wait(), 5)
        racing = asyncio.ensure_future(Peer(app, token=first.token, client=("198.51.100.2", 1)).open())
        await asyncio.sleep(0.05)
        assert not racing.done()  # it waits for the eviction's write instead of starting fresh
        slow.gate.set()
        joined = await newcomer
        back = await racing
        assert not joined.refused
        assert back.token == first.token
        assert (await back.say("inc"))["count"] == 2  # resumed from the store with the change

    run(scenario())


class SlowStore(MemoryStore):
    """A MemoryStore whose writes wait for a gate (to hold an eviction mid-write)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def aexecute(self, command: Any) -> Any:
        if type(command).__name__ in ("Create", "Update"):
            self.entered.set()
            await self.gate.wait()
        return self.execute(command)


# --- limits -----------------------------------------------------------------------------------------


def test_the_per_ip_limit_counts_live_and_detached_and_spares_other_addresses() -> None:
    async def scenario() -> None:
        m = manager(max_per_ip=3)
        app = wrap(m)
        peers = [await Peer(app, client=("203.0.113.7", n)).open() for n in range(3)]
        await peers[0].close()  # detached still counts
        refused = await Peer(app, client=("203.0.113.7", 9)).open()
        assert refused.refused
        assert refused.close_reason == "too_many_sessions_from_ip"
        other = await Peer(app, client=("203.0.113.8", 1)).open()
        assert not other.refused
        assert m.stats().refusals == {"too_many_sessions_from_ip": 1}
        assert m.stats().unique_ips == 2

    run(scenario())


def test_ipv6_addresses_are_grouped_by_slash_64() -> None:
    async def scenario() -> None:
        m = manager(max_per_ip=2)
        app = wrap(m)
        await Peer(app, client=("2001:db8:1:2::1", 1)).open()
        await Peer(app, client=("2001:db8:1:2:ffff::9", 1)).open()
        assert (await Peer(app, client=("2001:db8:1:2:abcd::1", 1)).open()).refused
        assert not (await Peer(app, client=("2001:db8:1:3::1", 1)).open()).refused

    run(scenario())


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    forwarded = [(b"x-forwarded-for", b"198.51.100.200, 10.0.0.5")]
    untrusted = {"client": ("203.0.113.7", 1), "headers": forwarded}
    assert str(client_address(untrusted, ())) == "203.0.113.7"
    trusted_scope = {"client": ("10.0.0.1", 1), "headers": forwarded}
    from clientstate.live.address import parse_networks

    proxies = parse_networks(["10.0.0.0/8"])
    assert str(client_address(trusted_scope, proxies)) == "198.51.100.200"  # right-most untrusted hop
    rfc = {"client": ("10.0.0.1", 1), "headers": [(b"forwarded", b'for="[2001:db8::1]:4711";proto=https')]}
    assert group_of(client_address(rfc, proxies)) == "2001:db8::/64"
    assert group_of(client_address({"client": ("::ffff:192.0.2.1", 1)}, ())) == "192.0.2.1"
    assert group_of(None) == "unknown"
    with pytest.raises(ConfigurationError, match="not an IP address"):
        parse_networks(["not-an-ip"])


# --- persistence, shutdown, snapshot ---------------------------------------------------------------


def test_shutdown_saves_every_session_atomically_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        store = SQLiteStore(os.path.join(tempfile.mkdtemp(), "live.db"))
        m = manager(store)
        app = wrap(m)
        peers = [await Peer(app, client=(f"192.0.2.{n}", 1)).open() for n in range(5)]
        for n, peer in enumerate(peers):
            for _ in range(n + 1):
                await peer.say("inc")
        assert await m.shutdown() == 5
        refused = await Peer(app, client=("192.0.2.99", 1)).open()
        assert refused.refused
        assert refused.close_reason == "manager_stopped"
        restarted = wrap(manager(store))  # a new process: nothing in memory, all in the store
        for n, peer in enumerate(peers):
            back = await Peer(restarted, token=peer.token).open()
            assert (await back.say("inc"))["count"] == n + 2

    run(scenario())


def test_a_memory_store_snapshot_restores_and_refuses_tampering(tmp_path: Path) -> None:
    async def scenario() -> None:
        snapshot = tmp_path / "live.snapshot"
        m = manager(MemoryStore(), snapshot_path=snapshot)
        await m.startup()
        app = wrap(m)
        peer = await Peer(app).open()
        await peer.say("inc")
        await m.shutdown()
        assert snapshot.exists()
        rotated = Keyring(fixed_keyring(2).current, (fixed_keyring(1).current,))  # a later deploy, key 2 current
        fresh = manager(MemoryStore(), snapshot_path=snapshot, keyring=rotated)
        assert await fresh.startup() == 1  # a snapshot under the previous key still loads
        back = await Peer(wrap(fresh), token=peer.token).open()
        assert (await back.say("inc"))["count"] == 2
        await fresh.shutdown()
        data = bytearray(snapshot.read_bytes())
        data[len(data) // 2] ^= 1
        snapshot.write_bytes(bytes(data))
        tampered = manager(MemoryStore(), snapshot_path=snapshot, keyring=rotated)
        assert await tampered.startup() == 0  # refused whole, logged
        snapshot.write_bytes(bytes(data[:40]))
        assert await manager(MemoryStore(), snapshot_path=snapshot, keyring=rotated).startup() == 0

    run(scenario())


def test_snapshot_files_name_their_problem(tmp_path: Path) -> None:
    path = tmp_path / "s"
    write_snapshot(path, [], fixed_keyring(1))
    assert read_snapshot(path, fixed_keyring(1)) == []
    with pytest.raises(SnapshotError, match="key id 1"):
        read_snapshot(path, fixed_keyring(2))
    path.write_bytes(b"something else")
    with pytest.raises(SnapshotError, match="not a clientstate snapshot"):
        read_snapshot(path, fixed_keyring(1))


def test_persist_writes_only_changed_sessions() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        m = manager(store)
        app = wrap(m)
        peers = [await Peer(app, client=(f"192.0.2.{n}", 1)).open() for n in range(3)]
        assert await m.persist() == 3  # first write of each
        assert await m.persist() == 0  # nothing changed
        await peers[1].say("inc")
        assert await m.persist() == 1

    run(scenario())


def test_a_shared_store_is_written_through_at_disconnect() -> None:
    async def scenario() -> None:
        store = SQLiteStore(os.path.join(tempfile.mkdtemp(), "live.db"))
        m = manager(store)
        peer = await Peer(wrap(m)).open()
        await peer.say("inc")
        await peer.close()
        record = await perform_async(store, Get(_sid(m, peer.token)))
        assert record is not None
        assert record.version == 1

    run(scenario())


def test_defaults_apply_to_unset_and_non_positive_settings() -> None:
    m = manager(max_sessions=0, max_per_ip=-1, resume_window=None, persist_interval=0, cleanup_interval=-5)
    assert (m.max_sessions, m.max_per_ip, m.resume_window, m.persist_interval, m.cleanup_interval) == (
        10_000, 100, 300.0, 30.0, 60.0,
    )
    with pytest.raises(ConfigurationError, match="eviction"):
        manager(eviction="fifo")
    with pytest.raises(ConfigurationError, match="store"):
        SessionManager(object(), fixed_keyring(1))  # type: ignore[arg-type]


def test_cleanup_removes_detached_sessions_past_the_window() -> None:
    async def scenario() -> None:
        clock = FrozenClock(T0)
        m = manager(clock=clock, resume_window=60)
        app = wrap(m)
        peer = await Peer(app).open()
        await peer.close()
        assert m.cleanup() == 0
        clock.advance(60)
        assert m.cleanup() == 1
        assert m.stats().total == 0

    run(scenario())


@pytest.mark.parametrize("reading", [math.nan, math.inf, "1700000000"])
def test_a_clock_reading_that_is_not_a_finite_number_is_refused_where_nothing_is_held(reading: Any) -> None:
    # NaN compares false with every deadline: trusted, it would keep every detached session forever.
    m = manager(clock=lambda: reading)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"the SessionManager clock returned .*seconds since the Unix epoch"):
        m.cleanup()


def test_a_clock_that_breaks_mid_connection_still_detaches_and_saves(caplog: pytest.LogCaptureFixture) -> None:
    # Where a session is already held (its messages, its detach, the saves) a bad reading is logged and
    # time.time stands in: the connection is detached and its state written, never left half done.
    readings: list[Any] = [float(T0)]
    store = MemoryStore()

    async def scenario() -> int:
        m = manager(store, clock=lambda: readings[0])  # type: ignore[arg-type]
        app = wrap(m)
        peer = await Peer(app).open()
        assert (await peer.say("inc"))["count"] == 1
        readings[0] = math.nan
        assert (await peer.say("inc"))["count"] == 2
        await peer.close()
        assert m.stats().detached == 1
        return int(await m.shutdown())

    assert run(scenario()) == 1
    assert "the SessionManager clock returned nan" in caplog.text
