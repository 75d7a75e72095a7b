"""RedisStore specifics: TTLs that follow the deadlines, single-key scripts, no KEYS/SCAN, the principal index
(lazy repair, another slot on a cluster), round trips per request kind, PutAll, Sweep, URLs and errors.

The behavioural suite (``test_behaviour.py``) runs against the ``redis`` and ``redis-cluster`` kits; these
tests look at what only Redis has. The standalone tests use the machine's Redis (127.0.0.1:6379, db 0, a
prefix of their own, deleted afterwards); the tests that watch every command (``MONITOR``) use a server of
their own, so that they see nothing but their own traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from clientstate import (
    Binding,
    ConfigurationError,
    ErrorKind,
    Sessions,
    State,
    StateSlot,
    StoreUnavailable,
    server_stored,
)
from clientstate._core import store as ops
from clientstate._core.drive import begin_async, begin_sync, finish_async, finish_sync
from clientstate._core.flow import perform_async, perform_sync
from clientstate._core.session_id import handle_of
from clientstate._handlers.server_stored import ServerStored
from clientstate.stores import store_from_url
from clientstate.stores.redis import SCRIPTS, RedisStore
from clientstate.testing import FrozenClock, fixed_keyring
from tests.server.conftest import Driver
from tests.server.kits import delete_redis_keys, served_slots, standalone_redis
from tests.server.redis_cluster import LocalCluster, Monitor, RedisServer, Seen, free_port, shared_cluster
from tests.server.test_behaviour import _sid

LOCAL = "redis://127.0.0.1:6379/0"


class Account(msgspec.Struct):
    user: str
    visits: int = 0


ACCOUNT = State("account", Account)


def handler(store: Any, **options: Any) -> ServerStored:
    return server_stored(store, fixed_keyring(1), name="sid", principal=lambda s: s.user or None, **options)


def now() -> int:
    return int(time.time())


def expiry_of(admin: redis.Redis, key: bytes) -> int:
    """The key's expiry (PEXPIRETIME), ms since the epoch; -1 without one, -2 for a missing key."""
    reply: int = admin.execute_command("PEXPIRETIME", key)  # type: ignore[no-untyped-call]
    return reply


Act = Callable[[StateSlot[Account]], None]


def request(binding: Binding[Account], cookie: str | None, act: Act | None = None, *, mode: str = "sync") -> tuple[
    StateSlot[Account], list[str]
]:
    """One request through the real drivers, blocking (``sync``) or awaited (``async``)."""
    return Driver(mode).request(binding, cookie, act)


def cookie_of(lines: list[str]) -> str:
    (line,) = lines
    assert "Max-Age=0" not in line, line
    return line.split(";", 1)[0]


def become(user: str) -> Act:
    def act(slot: StateSlot[Account]) -> None:
        slot.state = Account(user)

    return act


def visit(slot: StateSlot[Account]) -> None:
    assert slot.state is not None
    slot.state = msgspec.structs.replace(slot.state, visits=slot.state.visits + 1)


def logout(slot: StateSlot[Account]) -> None:
    slot.state = None


@pytest.fixture
def prefix() -> Iterator[str]:
    """A prefix of this test's own on the machine's Redis; its keys are deleted afterwards."""
    standalone_redis().close()
    chosen = f"cstest:{os.urandom(6).hex()}:"
    yield chosen
    delete_redis_keys(chosen)


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    client = standalone_redis()
    yield client
    client.close()


@pytest.fixture(scope="module")
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this module's own (nobody else's commands in its MONITOR)."""
    server = RedisServer(Path(tempfile.mkdtemp(prefix="clientstate-redis-"))).start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The test run's Redis Cluster (stopped at the end of the session)."""
    started = shared_cluster()
    yield started
    started.stop()


# --- the TTL follows the deadlines --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_ttl_is_the_deadline_and_touches_clamp_it_to_the_absolute_one(
    prefix: str, admin: redis.Redis, mode: str
) -> None:
    store = RedisStore(url=LOCAL, prefix=prefix)
    start = now()
    clock = FrozenClock(start)
    binding = Binding(ACCOUNT, handler(store, idle_timeout=600, absolute_timeout=2000, touch_interval=60), clock)
    cookie = cookie_of(request(binding, None, become("ada"), mode=mode)[1])
    key, index = store.key(_sid(binding, cookie)), store.index_key("ada")
    assert expiry_of(admin, key) == (start + 600) * 1000
    assert expiry_of(admin, index) == (start + 2000) * 1000  # the index lives as long as its latest session
    for step in range(1, 4):  # a read-only request every 550 s: each one touches, until the absolute deadline
        clock.advance(550)
        slot, lines = request(binding, cookie, mode=mode)
        assert (slot.error, lines) == (None, [])
        idle = int(admin.hget(key, "i") or 0)
        assert idle == min(start + 550 * step + 600, start + 2000)
        assert expiry_of(admin, key) == idle * 1000
    assert idle == start + 2000  # clamped: the TTL never goes past the absolute deadline
    clock.advance(10)
    request(binding, cookie, visit, mode=mode)  # an update keeps the clamp too
    assert expiry_of(admin, key) == (start + 2000) * 1000
    assert int(admin.hget(key, "v") or 0) == 2
    store.close()


def test_touch_clamps_to_the_absolute_deadline_and_reports_a_missing_session(prefix: str, admin: redis.Redis) -> None:
    store = RedisStore(url=LOCAL, prefix=prefix, expiry_margin=30)
    t = now()
    sid = os.urandom(16)
    assert perform_sync(store, ops.Create(ops.Record(sid, 1, None, t, t + 100, t + 50, t, 1, b"x")))
    assert expiry_of(admin, store.key(sid)) == (t + 50 + 30) * 1000  # deadline + expiry_margin
    assert perform_sync(store, ops.Touch(sid, t + 10_000, t + 1))
    record = perform_sync(store, ops.Get(sid))
    assert (record.idle_deadline, record.last_touch, record.version) == (t + 100, t + 1, 1)
    assert expiry_of(admin, store.key(sid)) == (t + 100 + 30) * 1000
    assert not perform_sync(store, ops.Touch(os.urandom(16), t + 10, t))  # missing: False, nothing created
    assert not perform_sync(store, ops.Touch(sid, t + 10_000, t + 100))  # expired by the handler's clock
    assert not perform_sync(store, ops.Retire(sid, 2, b"n" * 16, t + 5, b"tomb"))  # compare-and-set: v is 1
    assert perform_sync(store, ops.Retire(sid, 1, b"n" * 16, t + 5, b"tomb"))
    tombstone = ops.Record(sid, 2, None, t, t + 100, t + 5, t + 1, 1, b"tomb", b"n" * 16)
    assert perform_sync(store, ops.Get(sid)) == tombstone
    assert not perform_sync(store, ops.Retire(sid, 2, b"m" * 16, t + 5, b"tomb"))  # a tombstone is not retired
    assert expiry_of(admin, store.key(sid)) == (t + 5 + 30) * 1000  # a tombstone ends at its own deadline
    assert not perform_sync(store, ops.Touch(sid, t + 10, t + 2))  # a tombstone is not touched
    store.close()


# --- no KEYS, no SCAN, one key per script ------------------------------------------------------------------


def workload(store: RedisStore, mode: str, flush: Callable[[], object]) -> None:
    """Every kind of request and every store operation, through the real handler."""
    clock = FrozenClock(now())
    binding = Binding(ACCOUNT, handler(store, idle_timeout=600, touch_interval=60, rotation_grace=5), clock)
    assert request(binding, None, mode=mode)[1] == []  # anonymous
    assert request(binding, "sid=forged", mode=mode)[0].error is not None
    anonymous = cookie_of(request(binding, None, become(""), mode=mode)[1])  # a pre-login session
    ada = cookie_of(request(binding, anonymous, become("ada"), mode=mode)[1])  # login: rotation
    others = [cookie_of(request(binding, None, become("ada"), mode=mode)[1]) for _ in range(3)]
    request(binding, ada, mode=mode)  # read-only
    clock.advance(70)
    request(binding, ada, mode=mode)  # touching
    request(binding, ada, visit, mode=mode)  # changing
    flush()  # the servers forget the scripts: the next ones come back with NOSCRIPT, then EVAL
    request(binding, others[0], visit, mode=mode)

    def rotate(slot: StateSlot[Account]) -> None:
        slot.rotate_id()

    ada = cookie_of(request(binding, ada, rotate, mode=mode)[1])
    sessions = Sessions(binding.handler)
    assert sessions.count("ada", now=clock()) == 4
    assert len(sessions.list("ada", now=clock())) == 4
    keep = begin_sync(binding, [ada])
    assert sessions.end("ada", keep=keep) == 3
    t = int(clock())
    items = tuple((ops.Record(os.urandom(16), 1, "bob", t, t + 50, t + 20, t, 1, b"b"), 0) for _ in range(3))
    assert perform_sync(store, ops.PutAll(items)) == 3
    clock.advance(30)
    assert Sessions(store).sweep(limit=10, now=clock()) == 3
    request(binding, ada, logout, mode=mode)


def check_commands(seen: list[Seen], cluster: bool) -> dict[str, int]:
    """No KEYS/SCAN; each script names one key (put_all: keys of one slot) and its commands touch only those."""
    shas = {script.sha: name for name, script in SCRIPTS.items()}
    sources = {script.source.encode(): name for name, script in SCRIPTS.items()}
    names: dict[str, int] = {}
    script_keys: tuple[bytes, ...] = ()
    script_name = ""
    for command in seen:
        names[command.name] = names.get(command.name, 0) + 1
        assert command.name not in ("KEYS", "SCAN", "FLUSHDB", "FLUSHALL", "RANDOMKEY"), command
        if command.client == "lua":
            assert command.name not in ("EVAL", "EVALSHA", "KEYS", "SCAN")
            assert command.args[1] in script_keys, (script_name, command, script_keys)  # arg 1 is the key
            continue
        if command.name in ("EVAL", "EVALSHA"):
            numkeys = int(command.args[2])
            script_keys = command.args[3 : 3 + numkeys]
            script_name = shas[command.args[1].decode()] if command.name == "EVALSHA" else sources[command.args[1]]
            if script_name == "put_all":
                assert numkeys >= 1
                if cluster:
                    assert len({key_slot(key) for key in script_keys}) == 1
            else:
                assert numkeys == 1, command
        else:
            script_keys = ()
    return names


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_no_keys_or_scan_and_every_script_touches_one_key(own_server: RedisServer, mode: str) -> None:
    store = RedisStore(url=own_server.url, prefix="watched:", expiry_margin=3600)
    plain = redis.Redis(port=own_server.port)
    with Monitor(own_server.port) as monitor:
        workload(store, mode, lambda: plain.script_flush())
    names = check_commands(monitor.seen, cluster=False)
    assert names.get("EVAL", 0) > 0  # the NOSCRIPT fallback ran
    assert names["EVALSHA"] > names["EVAL"]
    store.close()
    plain.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_no_keys_or_scan_and_every_script_touches_one_key_on_a_cluster(cluster: LocalCluster, mode: str) -> None:
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix=f"watched-{mode}:",
                       expiry_margin=3600)
    plains = cluster_admins(cluster)
    monitors = watched_workload(cluster, store, mode, plains)
    for monitor in monitors:
        check_commands(monitor.seen, cluster=True)
    scripted = [monitor for monitor in monitors if any(seen.name in ("EVAL", "EVALSHA") for seen in monitor.seen)]
    assert len(scripted) >= 2  # the scripts ran on several masters (their keys' slots)
    store.close()
    for plain in plains:
        plain.close()


# --- the principal index: lazy repair, another slot ------------------------------------------------------


def test_the_principal_index_is_repaired_after_keys_vanish_behind_its_back(prefix: str, admin: redis.Redis) -> None:
    store = RedisStore(url=LOCAL, prefix=prefix)
    clock = FrozenClock(now())
    binding = Binding(ACCOUNT, handler(store), clock)
    cookies = [cookie_of(request(binding, None, become("ada"))[1]) for _ in range(4)]
    keys = [store.key(_sid(binding, cookie)) for cookie in cookies]
    index = store.index_key("ada")
    assert admin.zcard(index) == 4
    admin.delete(keys[0])  # deleted behind the store's back
    admin.pexpire(keys[1], 1)  # expired by Redis
    admin.hset(keys[2], "p", "eve")  # now someone else's (an operator's edit)
    time.sleep(0.05)
    sessions = Sessions(binding.handler)
    assert sessions.count("ada", now=clock()) == 1
    assert admin.zcard(index) == 1  # the three stale members are gone from the index
    assert [info.handle for info in sessions.list("ada", now=clock())] == [
        begin_sync(binding, [cookies[3]]).session_handle
    ]
    cookies.append(cookie_of(request(binding, None, become("ada"))[1]))
    assert sessions.end("ada") == 2
    assert admin.exists(keys[2]) == 1  # eve's session is not ended by ending ada's
    assert admin.exists(index) == 0
    store.close()


def test_a_touch_re_adds_a_session_its_index_lost(prefix: str, admin: redis.Redis) -> None:
    store = RedisStore(url=LOCAL, prefix=prefix)
    clock = FrozenClock(now())
    binding = Binding(ACCOUNT, handler(store, idle_timeout=600, touch_interval=60), clock)
    cookie = cookie_of(request(binding, None, become("ada"))[1])
    admin.delete(store.index_key("ada"))  # as if the write after the creation had failed
    assert Sessions(binding.handler).count("ada", now=clock()) == 0
    clock.advance(61)
    request(binding, cookie)  # touching
    assert Sessions(binding.handler).count("ada", now=clock()) == 1
    store.close()


def test_on_a_cluster_the_index_lives_in_another_slot_and_still_works(cluster: LocalCluster) -> None:
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix="slots:")
    clock = FrozenClock(now())
    binding = Binding(ACCOUNT, handler(store), clock)
    cookies = [cookie_of(request(binding, None, become("ada"), mode=("sync", "async")[n % 2])[1]) for n in range(30)]
    masters = [served_slots(redis.Redis(port=node.port)) for node in cluster.nodes]

    def master(key: bytes) -> int:
        return next(n for n, slots in enumerate(masters) if key_slot(key) in slots)

    index_master = master(store.index_key("ada"))
    session_masters = {master(store.key(_sid(binding, cookie))) for cookie in cookies}
    assert session_masters - {index_master}  # sessions on other masters than their index (30 over 3: surely)
    sessions = Sessions(binding.handler)
    assert sessions.count("ada", now=clock()) == 30
    keep = begin_sync(binding, [cookies[5]])
    assert sessions.end("ada", keep=keep) == 29
    assert sessions.count("ada", now=clock()) == 1
    assert begin_sync(binding, [cookies[5]]).state == Account("ada")
    assert begin_sync(binding, [cookies[4]]).error is not None
    store.close()


# --- round trips per request kind ---------------------------------------------------------------------------


def count_round_trips(client: Any, trips: list[int]) -> Any:
    """Make ``client`` (any redis-py client: blocking or asyncio, one server or a cluster) log its round trips.

    Each plain command appends 1 to ``trips``; each pipeline, when executed, the
    number of commands it carried. Returns ``client``.
    """
    command, pipeline = client.execute_command, client.pipeline

    def counted_command(*args: Any, **options: Any) -> Any:
        trips.append(1)
        return command(*args, **options)

    def counted_pipeline(*args: Any, **options: Any) -> Any:
        pipe = pipeline(*args, **options)
        queue, execute, queued = pipe.execute_command, pipe.execute, []

        def queued_command(*call: Any, **call_options: Any) -> Any:
            queued.append(call[0])
            return queue(*call, **call_options)

        def counted(*execute_args: Any, **execute_options: Any) -> Any:
            trips.append(len(queued))
            return execute(*execute_args, **execute_options)

        pipe.execute_command, pipe.execute = queued_command, counted
        return pipe

    client.execute_command, client.pipeline = counted_command, counted_pipeline
    return client


ROUND_TRIPS = {
    "anonymous": 0,
    "forged": 0,
    "login": 1,  # create | index_add, one pipeline
    "read-only": 1,  # HMGET
    "touching": 2,  # HMGET + touch | index_add (re-asserts the index entry, in the touch's pipeline)
    "changing": 2,  # HMGET + update
    "login from an anonymous session": 3,  # HMGET + create | index_add + retire
    "logout": 3,  # HMGET, HMGET (a rotation meanwhile?) + DEL
}


class Counted:
    """A store whose clients log their round trips, driven blocking or on one event loop of its own."""

    def __init__(self, store: RedisStore, mode: str) -> None:
        self.store, self.mode, self.trips = store, mode, list[int]()
        self.loop = asyncio.new_event_loop()
        if mode == "sync":
            count_round_trips(store._client(), self.trips)
        else:
            count_round_trips(self.loop.run_until_complete(store._aclient()), self.trips)

    def perform(self, op: ops.Op) -> Any:
        if self.mode == "sync":
            return perform_sync(self.store, op)
        return self.loop.run_until_complete(perform_async(self.store, op))

    def request(self, binding: Binding[Account], cookie: str | None, act: Act | None = None) -> tuple[
        StateSlot[Account], list[str]
    ]:
        headers = [] if cookie is None else [cookie]
        if self.mode == "sync":
            slot = begin_sync(binding, headers)
            if act is not None:
                act(slot)
            return slot, finish_sync(binding, slot)

        async def go() -> tuple[StateSlot[Account], list[str]]:
            slot = await begin_async(binding, headers)
            if act is not None:
                act(slot)
            return slot, await finish_async(binding, slot)

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.store.close()
        self.loop.run_until_complete(self.store.aclose())
        self.loop.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_round_trips_per_request_kind(prefix: str, mode: str) -> None:
    counted = Counted(RedisStore(url=LOCAL, prefix=prefix), mode)
    run = counted.request
    clock = FrozenClock(now())
    binding = Binding(ACCOUNT, handler(counted.store, idle_timeout=600, touch_interval=60), clock)
    warm = cookie_of(run(binding, None, become("warm"))[1])  # the server learns every script once
    clock.advance(61)
    run(binding, warm)
    run(binding, warm, visit)
    run(binding, cookie_of(run(binding, None, become(""))[1]), become("warm"))
    measured: dict[str, int] = {}
    sizes: dict[str, list[int]] = {}

    def measure(kind: str, *args: Any) -> tuple[StateSlot[Account], list[str]]:
        counted.trips.clear()
        result = run(binding, *args)
        measured[kind], sizes[kind] = len(counted.trips), list(counted.trips)
        return result

    measure("anonymous", None)
    measure("forged", "sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    ada = cookie_of(measure("login", None, become("ada"))[1])
    measure("read-only", ada)
    clock.advance(61)
    measure("touching", ada)
    measure("changing", ada, visit)
    anonymous = cookie_of(run(binding, None, become(""))[1])
    measure("login from an anonymous session", anonymous, become("ada"))
    measure("logout", ada, logout)
    print(f"\nRedis round trips per request kind ({mode}): {measured} (commands in each: {sizes})")
    assert measured == ROUND_TRIPS
    assert sizes["read-only"] == [1]
    assert sizes["touching"] == [1, 2]  # HMGET; then the touch and the index write in one pipeline
    assert sizes["changing"] == [1, 1]  # HMGET; then the update alone (the principal did not change)
    assert Sessions(counted.store).count("ada", now=clock()) == 1  # the index followed every step
    counted.close()


TOPOLOGIES = ["server", "cluster", "cluster+hash_tag"]


def topology_store(topology: str, cluster: LocalCluster, prefix: str) -> RedisStore:
    if topology == "server":
        return RedisStore(url=LOCAL, prefix=prefix)
    tag = "app" if topology == "cluster+hash_tag" else None
    return RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix=prefix, hash_tag=tag)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_round_trips_per_operation(cluster: LocalCluster, prefix: str, topology: str, mode: str) -> None:
    """read 1, touch 1, change 1, login (create + index) 1 on one server and 2 on a cluster without a hash tag."""
    counted = Counted(topology_store(topology, cluster, prefix), mode)
    t = now()
    trips: dict[str, int] = {}

    def measure(name: str, op: ops.Op) -> Any:
        counted.trips.clear()
        result = counted.perform(op)
        trips[name] = len(counted.trips)
        return result

    def record(sid: bytes, version: int, principal: str | None) -> ops.Record:
        return ops.Record(sid, version, principal, t, t + 1000, t + 600, t, 1, b"state %d" % version)

    for port in [6379] if topology == "server" else [node.port for node in cluster.nodes]:
        with redis.Redis(port=port) as node:  # every script loaded on every master: no NOSCRIPT round trips
            for script in SCRIPTS.values():
                assert node.script_load(script.source) == script.sha
    assert counted.perform(ops.Get(os.urandom(16))) is None  # a client's start-up (an asyncio one reads COMMAND)
    sid, other = os.urandom(16), os.urandom(16)
    # A cluster client may ask a server where a command goes (COMMAND GETKEYS): a round trip the counts above
    # do not see, so the cluster's own MONITORs watch for it.
    monitors = [] if topology == "server" else [Monitor(node.port) for node in cluster.nodes]
    for monitor in monitors:
        monitor.__enter__()
    assert measure("create (login)", ops.Create(record(sid, 1, "ada")))
    assert measure("create anonymous", ops.Create(record(other, 1, None)))
    assert measure("read", ops.Get(sid)) == record(sid, 1, "ada")
    assert measure("touch", ops.Touch(sid, t + 700, t + 10))
    counted.perform(ops.Get(sid))
    assert measure("change", ops.Update(record(sid, 2, "ada"), 1)) is ops.UpdateResult.OK
    counted.perform(ops.Get(other))
    assert measure("change to a new principal", ops.Update(record(other, 2, "bob"), 1)) is ops.UpdateResult.OK
    assert measure("touch without a read before it", ops.Touch(sid, t + 710, t + 20))
    assert measure("delete", ops.Delete(other))
    for monitor in monitors:
        monitor.__exit__()
    hidden = [seen for monitor in monitors for seen in monitor.seen if seen.name == "COMMAND"]
    assert hidden == []
    print(f"\nRedis round trips per operation ({topology}, {mode}): {trips}")
    one_server = topology != "cluster"
    assert trips == {
        "create (login)": 1 if one_server else 2,  # a cluster writes the index (another master) after the session
        "create anonymous": 1,
        "read": 1,
        "touch": 1,
        "change": 1,
        "change to a new principal": 1 if one_server else 2,
        "touch without a read before it": 2,  # no hint: the touch's reply names the principal, then the index
        "delete": 1,
    }
    assert counted.perform(ops.ListSessions("ada", t + 30)) == [
        (sid, ops.SessionInfo(handle_of(sid), t, t + 20, t + 710, t + 1000))
    ]
    assert counted.perform(ops.CountSessions("bob", t + 30)) == 0  # deleted: the index repaired on the way
    assert counted.perform(ops.DeleteSessions("ada", None)) == 1
    counted.close()


# --- PutAll, Sweep --------------------------------------------------------------------------------------------


def test_put_all_writes_exactly_the_records_whose_version_holds(prefix: str, admin: redis.Redis) -> None:
    store = RedisStore(url=LOCAL, prefix=prefix)
    t = now()

    def record(sid: bytes, version: int, principal: str | None = "ada") -> ops.Record:
        return ops.Record(sid, version, principal, t, t + 100, t + 50, t, 1, b"v%d" % version)

    a, b, c = os.urandom(16), os.urandom(16), os.urandom(16)
    assert perform_sync(store, ops.Create(record(a, 1)))
    assert perform_sync(store, ops.Create(record(b, 3, None)))
    items = ((record(a, 2), 1), (record(b, 4), 2), (record(c, 1), 0))  # a: right version, b: stale, c: new
    assert perform_sync(store, ops.PutAll(items)) == 2
    assert perform_sync(store, ops.Get(a)).blob == b"v2"
    assert perform_sync(store, ops.Get(b)).blob == b"v3"  # skipped: another process took it over
    assert perform_sync(store, ops.Get(c)).blob == b"v1"
    assert expiry_of(admin, store.key(c)) == (t + 50) * 1000
    assert perform_sync(store, ops.CountSessions("ada", t)) == 2  # indexed too
    assert perform_sync(store, ops.PutAll(())) == 0
    store.close()


def test_put_all_on_a_cluster_groups_keys_by_slot(cluster: LocalCluster) -> None:
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix="putall:")
    t = now()
    records = [ops.Record(os.urandom(16), 1, "ada", t, t + 100, t + 50, t, 1, b"x") for _ in range(20)]
    assert asyncio.run(perform_async(store, ops.PutAll(tuple((r, 0) for r in records)))) == 20
    assert perform_sync(store, ops.PutAll(tuple((r, 0) for r in records))) == 0  # they exist now: version 1
    assert perform_sync(store, ops.CountSessions("ada", t)) == 20
    assert perform_sync(store, ops.DeleteSessions("ada", None)) == 20
    store.close()


def cluster_admins(cluster: LocalCluster) -> list[redis.Redis]:
    return [redis.Redis(port=node.port, socket_timeout=5) for node in cluster.nodes]


def watched_workload(
    cluster: LocalCluster, store: RedisStore, mode: str, admins: list[redis.Redis]
) -> list[Monitor]:
    """Run :func:`workload` (scripts flushed on every master midway) with a ``MONITOR`` on every node.

    Returns the monitors, one per node in ``cluster.nodes`` order, stopped, with what each saw.
    """
    monitors = [Monitor(node.port) for node in cluster.nodes]
    with contextlib.ExitStack() as watching:
        for monitor in monitors:
            watching.enter_context(monitor)
        workload(store, mode, lambda: [admin.script_flush() for admin in admins])
    return monitors


def master_of(admins: list[redis.Redis], key: bytes) -> redis.Redis:
    return next(admin for admin in admins if key_slot(key) in served_slots(admin))


def test_a_hash_tag_puts_every_key_in_one_slot() -> None:
    plain, tagged = RedisStore(url=LOCAL), RedisStore(url=LOCAL, prefix="app:", hash_tag="sessions-1")
    sid = bytes(range(16))
    assert plain.key(sid) == b"cs:s:{000102030405060708090a0b0c0d0e0f}"
    assert plain.index_key("ada") == b"cs:p:{ada}"
    assert tagged.key(sid) == b"app:{sessions-1}s:000102030405060708090a0b0c0d0e0f"
    assert tagged.index_key("a{d}a") == b"app:{sessions-1}p:a{d}a"  # the first braces decide the slot
    keys = [tagged.key(os.urandom(16)) for _ in range(50)] + [tagged.index_key(f"user{n}") for n in range(50)]
    assert {key_slot(key) for key in keys} == {key_slot(b"{sessions-1}")}
    assert len({key_slot(plain.key(os.urandom(16))) for _ in range(50)}) > 40  # without: spread over the slots
    assert repr(tagged) == "RedisStore(redis://127.0.0.1:6379/0, prefix='app:', hash_tag='sessions-1')"
    url = store_from_url("redis+cluster://127.0.0.1:7000?hash_tag=live&prefix=x:")
    assert isinstance(url, RedisStore)
    assert (url.hash_tag, url.prefix, url.cluster, url.one_server) == ("live", "x:", True, True)
    for bad in ("", "a}b", "a{b", "with space", "x" * 65, 7):
        with pytest.raises(ConfigurationError, match="hash_tag"):
            RedisStore(url=LOCAL, hash_tag=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_with_a_hash_tag_every_command_goes_to_one_master(cluster: LocalCluster, mode: str) -> None:
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix=f"tagged-{mode}:",
                       hash_tag=f"one-{mode}", expiry_margin=3600)
    plains = cluster_admins(cluster)
    monitors = watched_workload(cluster, store, mode, plains)
    ours = [[seen for seen in monitor.seen if any(arg.startswith(store.prefix.encode()) for arg in seen.args)]
            for monitor in monitors]
    home = cluster.nodes.index(next(node for node in cluster.nodes if node.port == master_of(
        plains, store.key(b"x" * 16)).connection_pool.connection_kwargs["port"]))
    assert ours[home]
    assert all(not seen for n, seen in enumerate(ours) if n != home), [ours[n] for n in range(3) if n != home]
    for monitor in monitors:
        check_commands(monitor.seen, cluster=True)
    store.close()
    for plain in plains:
        plain.close()


def putall_records(t: int, count: int, principal: str = "ada") -> list[ops.Record]:
    return [ops.Record(os.urandom(16), 1, principal, t, t + 1000, t + 600, t, 1, b"saved %d" % n) for n in range(count)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_with_a_hash_tag_put_all_is_one_atomic_script_on_a_cluster(cluster: LocalCluster, mode: str) -> None:
    """Per-record compare-and-set, in one script on one master: every right version written, every stale one not."""
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix=f"atomic-{mode}:",
                       hash_tag="live")
    t = now()

    def perform(op: ops.Op) -> Any:
        return perform_sync(store, op) if mode == "sync" else asyncio.run(perform_async(store, op))

    existing = putall_records(t, 15)
    for record in existing:
        assert perform(ops.Create(record))
    fresh = putall_records(t, 25, principal="bob")

    def bumped(record: ops.Record) -> ops.Record:
        return msgspec.structs.replace(record, version=record.version + 1, blob=b"new")

    items = (
        *((bumped(r), 1) for r in existing[:10]),  # the version the store holds: written
        *((bumped(r), 7) for r in existing[10:]),  # another process took them over: skipped
        *((r, 0) for r in fresh),  # new: written
    )
    monitors = [Monitor(node.port) for node in cluster.nodes]
    for monitor in monitors:
        monitor.__enter__()
    try:
        assert perform(ops.PutAll(items)) == 35
    finally:
        for monitor in monitors:
            monitor.__exit__()
    scripts = [(n, seen) for n, monitor in enumerate(monitors) for seen in monitor.seen
               if seen.name in ("EVAL", "EVALSHA") and seen.args[1] in (SCRIPTS["put_all"].sha.encode(),
                                                                       SCRIPTS["put_all"].source.encode())]
    assert len({n for n, _ in scripts}) == 1  # one master
    assert [int(seen.args[2]) for _, seen in scripts][-1] == 40  # one script naming every record's key
    assert [perform(ops.Get(r.sid)).blob for r in existing] == [b"new"] * 10 + [b"saved %d" % n for n in range(10, 15)]
    assert all(perform(ops.Get(r.sid)) == r for r in fresh)
    assert perform(ops.CountSessions("bob", t)) == 25  # the index entries followed
    assert perform(ops.DeleteSessions("ada", None)) == 15
    assert perform(ops.DeleteSessions("bob", None)) == 25
    store.close()


@pytest.mark.parametrize("tagged", [True, False])
def test_put_all_that_fails_writes_nothing_with_a_hash_tag_and_per_slot_without(cluster: LocalCluster,
                                                                                 tagged: bool) -> None:
    """A key of another type makes the script fail: with a hash tag nothing is written (one script checks every
    key before its first write); without, only that key's slot is spared — the documented trade-off."""
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix=f"failing-{tagged}:",
                       hash_tag="live" if tagged else None)
    admins = cluster_admins(cluster)
    t = now()
    records = putall_records(t, 40)
    poisoned = records[17]
    master_of(admins, store.key(poisoned.sid)).set(store.key(poisoned.sid), b"not a hash")
    with pytest.raises(StoreUnavailable, match="WRONGTYPE") as failure:
        perform_sync(store, ops.PutAll(tuple((r, 0) for r in records)))
    assert "WRONGTYPE" in str(failure.value)
    written = [r for r in records if r is not poisoned and perform_sync(store, ops.Get(r.sid)) is not None]
    if tagged:
        assert written == []  # all or nothing
    else:
        same_slot = [r for r in records if key_slot(store.key(r.sid)) == key_slot(store.key(poisoned.sid))]
        assert len(written) == len(records) - len(same_slot)  # every other slot's script ran: per slot only
    for record in records:
        master_of(admins, store.key(record.sid)).delete(store.key(record.sid))
    for admin in admins:
        admin.close()
    store.close()


def test_sweep_deletes_only_what_redis_still_holds_and_counts_honestly(prefix: str, admin: redis.Redis) -> None:
    store = RedisStore(url=LOCAL, prefix=prefix, expiry_margin=3600)  # keys outlive their deadlines by an hour
    t = now()
    short = [ops.Record(os.urandom(16), 1, f"u{n % 3}", t, t + 10, t + 10, t, 1, b"x") for n in range(7)]
    long = [ops.Record(os.urandom(16), 1, "u0", t, t + 1000, t + 1000, t, 1, b"y") for _ in range(2)]
    anonymous = ops.Record(os.urandom(16), 1, None, t, t + 10, t + 10, t, 1, b"z")
    for r in [*short, *long, anonymous]:
        assert perform_sync(store, ops.Create(r))
    assert perform_sync(store, ops.Sweep(t + 5, 100)) == 0  # nothing is due yet
    assert perform_sync(store, ops.Sweep(t + 10, 4)) == 4  # bounded
    assert perform_sync(store, ops.Sweep(t + 10, 4)) == 3
    assert perform_sync(store, ops.Sweep(t + 10, 4)) == 0
    assert all(admin.exists(store.key(r.sid)) == 0 for r in short)
    assert all(admin.exists(store.key(r.sid)) == 1 for r in long)
    assert admin.exists(store.key(anonymous.sid)) == 1  # not indexed: left to its TTL
    assert admin.zcard(store.index_key("u0")) == 2
    assert admin.exists(store.index_key("u1")) == 0
    # With the TTL first (a key gone from Redis), a sweep deletes nothing, counts nothing, trims the index.
    admin.delete(store.key(long[0].sid))
    assert perform_sync(store, ops.Sweep(t + 2000, 100)) == 1  # long[1]: due, still there
    assert admin.exists(store.index_key("u0")) == 0
    store.close()


# --- clients, URLs, errors -------------------------------------------------------------------------------------


def test_async_clients_follow_event_loops_and_close_with_them(own_server: RedisServer) -> None:
    store = RedisStore(url=own_server.url, prefix="loops:")
    plain = redis.Redis(port=own_server.port)
    before = len(plain.client_list())
    for _ in range(50):
        assert asyncio.run(perform_async(store, ops.Get(os.urandom(16)))) is None
    assert len(plain.client_list()) <= before + 2  # each loop's client closed when its loop shut down
    assert len(store._async) == 1
    plain.close()


def test_urls_name_the_right_store() -> None:
    store = store_from_url("redis://127.0.0.1:6379/3?prefix=app:&timeout=0.5&max_connections=7")
    assert isinstance(store, RedisStore)
    assert (store.prefix, store.timeout, store.cluster) == ("app:", 0.5, False)
    assert "max_connections=7" in store._url
    assert repr(store) == "RedisStore(redis://127.0.0.1:6379/3, prefix='app:')"
    secure = store_from_url("rediss://:pw@example.invalid:6380")
    assert isinstance(secure, RedisStore)
    assert "pw" not in repr(secure)
    assert RedisStore(url="redis://h:1/0?password=in-query")._secrets == ("in-query",)  # masked in messages
    clustered = store_from_url("redis+cluster://127.0.0.1:7000")
    assert isinstance(clustered, RedisStore)
    assert clustered.cluster
    assert clustered._url == "redis://127.0.0.1:7000"


@pytest.mark.parametrize(
    "build",
    [
        lambda: RedisStore(url="http://x"),
        lambda: RedisStore(url="redis://h:notaport"),
        lambda: RedisStore.from_url("redis+cluster:///tmp/socket"),
        lambda: RedisStore.from_url("redis://h?timeout=soon"),
        lambda: RedisStore(prefix="a{b}"),
        lambda: RedisStore(prefix=""),
        lambda: RedisStore(timeout=0),
        lambda: RedisStore(timeout=True),
        lambda: RedisStore(expiry_margin=-1),
        lambda: RedisStore(client_options={"socket_timeout": 9}),
        lambda: RedisStore(redis.Redis(), url=LOCAL),
        lambda: RedisStore(object()),
        lambda: RedisStore(redis.Redis(decode_responses=True)),
    ],
)
def test_bad_settings_are_configuration_errors(build: Callable[[], RedisStore]) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_a_store_given_one_kind_of_client_refuses_the_other_kind() -> None:
    port = free_port()
    store = RedisStore(redis.Redis(port=port, password="given-pw"))
    assert repr(store) == f"RedisStore(localhost:{port}/0, prefix='cs:')"
    with pytest.raises(ConfigurationError, match="async_client"):
        asyncio.run(store.aexecute(store_command()))
    with pytest.raises(StoreUnavailable) as failure:
        store.execute(store_command())
    assert "given-pw" not in f"{failure.value} {failure.value.__cause__!r}"
    with pytest.raises(ConfigurationError, match="only an asyncio client"):
        RedisStore(async_client=redis.asyncio.Redis(port=port)).execute(store_command())


def store_command() -> Any:
    from clientstate.stores.redis import Call

    return Call(("HMGET", b"x", b"v"))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_dead_server_is_store_unavailable_quickly_and_never_shows_the_password(mode: str) -> None:
    port = free_port()  # nothing listens there
    store = RedisStore(url=f"redis://user:s3cr3t-pw@127.0.0.1:{port}/0", timeout=0.5)

    def attempt() -> None:
        if mode == "sync":
            perform_sync(store, ops.Get(os.urandom(16)))
        else:
            asyncio.run(perform_async(store, ops.Get(os.urandom(16))))

    began = time.monotonic()
    with pytest.raises(StoreUnavailable) as failure:
        attempt()
    assert time.monotonic() - began < 1.5
    text = f"{failure.value} {failure.value.__cause__!r}"
    assert "s3cr3t-pw" not in text
    assert f"127.0.0.1:{port}" in str(failure.value)
    binding = Binding(ACCOUNT, handler(store), FrozenClock(now()))
    cookie = "sid=" + binding.handler._ids.sign(os.urandom(16))  # type: ignore[union-attr]
    slot, lines = request(binding, cookie, mode=mode)
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.STORE_UNAVAILABLE
    assert lines == []  # the cookie is kept


# --- credentials never leak ---------------------------------------------------------------------------------

SECRET = "s3cr3t-pw%2Fx"  # percent-encoded in the URL: the client library uses "s3cr3t-pw/x"
PLAIN_SECRET = "s3cr3t-pw/x"


def leaks(*texts: str) -> bool:
    return any("s3cr3t-pw" in text for text in texts)


def described(error: BaseException) -> list[str]:
    """Everything an application could print about ``error``: message, repr, the formatted traceback chain."""
    import traceback

    return [str(error), repr(error), repr(error.__cause__), "".join(traceback.format_exception(error))]


def refused_urls() -> list[str]:
    port = free_port()  # nothing listens there
    socket_path = f"{tempfile.gettempdir()}/clientstate-nothing-{os.urandom(4).hex()}.sock"
    return [
        f"redis://user:{SECRET}@127.0.0.1:{port}/0",
        f"redis://:{SECRET}@127.0.0.1:{port}/0",
        f"redis://127.0.0.1:{port}/0?password={SECRET}",
        f"rediss://user:{SECRET}@127.0.0.1:{port}/0?password=other-{SECRET}",
        f"unix://{socket_path}?password={SECRET}",
        f"redis+cluster://user:{SECRET}@127.0.0.1:{port}",
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("url", refused_urls(), ids=["userinfo", "password-only", "query", "both-tls", "unix",
                                                      "cluster"])
def test_a_refused_connection_never_shows_the_password(url: str, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = store_from_url(url.replace("?", "?timeout=0.5&") if "?" in url else f"{url}?timeout=0.5")
    assert isinstance(store, RedisStore)
    assert not leaks(repr(store), str(store))

    def attempt(op: ops.Op) -> Any:
        return perform_sync(store, op) if mode == "sync" else asyncio.run(perform_async(store, op))

    with pytest.raises(StoreUnavailable) as failure:
        attempt(ops.Get(os.urandom(16)))
    assert not leaks(*described(failure.value)), described(failure.value)
    assert "127.0.0.1" in str(failure.value) or "clientstate-nothing" in str(failure.value)  # the server is named
    binding = Binding(ACCOUNT, handler(store), FrozenClock(now()))
    slot, lines = request(binding, None, become("ada"), mode=mode)  # a login: the save fails and is logged
    assert lines == []
    cookie = "sid=" + binding.handler._ids.sign(os.urandom(16))  # type: ignore[union-attr]
    slot, lines = request(binding, cookie, mode=mode)
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.STORE_UNAVAILABLE
    assert not leaks(slot.error.detail, repr(slot.error))
    logged = [caplog.handler.format(record) for record in caplog.records]
    assert any("unavailable" in line for line in logged)  # the failed save was logged…
    assert not leaks(*logged), logged  # …without the password


def test_a_wrong_password_is_store_unavailable_without_the_password(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "auth").start()
    try:
        with redis.Redis(port=server.port) as admin:
            admin.config_set("requirepass", PLAIN_SECRET)
        wrong = RedisStore(url=f"redis://:wrong-{SECRET}@127.0.0.1:{server.port}/0", timeout=1)
        with pytest.raises(StoreUnavailable, match=r"AuthenticationError|WRONGPASS|invalid") as failure:
            perform_sync(wrong, ops.Get(os.urandom(16)))
        assert not leaks(*described(failure.value)), described(failure.value)
        right = RedisStore(url=f"redis://127.0.0.1:{server.port}/0?password={SECRET}", timeout=1)
        assert perform_sync(right, ops.Get(os.urandom(16))) is None  # the decoded password works
        assert not leaks(repr(right))
        wrong.close()
        right.close()
    finally:
        server.destroy()


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{SECRET}@127.0.0.1:notaport/0",
        f"redis://:{SECRET}@[::1/0",
        f"rediss://:{SECRET}@127.0.0.1:99999/0",
        f"redis://:{SECRET}@127.0.0.1/notadb",
        f"redis://:{SECRET}@127.0.0.1:6379/0?timeout=soon",
        f"redis://127.0.0.1:6379/0?password={SECRET}&timeout=soon",
        f"redis://127.0.0.1:6379/0?password={SECRET}&socket_timeout=soon",
        f"redis://:{SECRET}@127.0.0.1:6379/0?hash_tag=a{{b}}",
        f"http://:{SECRET}@127.0.0.1:6379/0",
        f"redis+cluster://:{SECRET}@127.0.0.1:6379/0?prefix=a{{b",
    ],
)
def test_a_malformed_url_is_a_configuration_error_without_the_password(url: str) -> None:
    for build in (store_from_url, RedisStore.from_url, lambda u: RedisStore(url=u)):
        with pytest.raises(ConfigurationError) as failure:
            build(url)
        assert not leaks(*described(failure.value)), (build, described(failure.value))
