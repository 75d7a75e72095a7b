"""RedisStore specifics: TTLs that follow the deadlines, single-key scripts, no KEYS/SCAN, the principal index
(lazy repair, another slot on a cluster), round trips per request kind, PutAll, Sweep, URLs and errors.

The behavioural suite (``test_behaviour.py``) runs against the ``redis`` and ``redis-cluster`` kits; these
tests look at what only Redis has. The standalone tests use the machine's Redis (127.0.0.1:6379, db 0, a
prefix of their own, deleted afterwards); the tests that watch every command (``MONITOR``) use a server of
their own, so that they see nothing but their own traffic.
"""

from __future__ import annotations

import asyncio
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
from clientstate._handlers.server_stored import ServerStored
from clientstate.stores import store_from_url
from clientstate.stores.redis import SCRIPTS, RedisStore
from clientstate.testing import FrozenClock, fixed_keyring
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
    headers = [] if cookie is None else [cookie]
    if mode == "sync":
        slot = begin_sync(binding, headers)
        if act is not None:
            act(slot)
        return slot, finish_sync(binding, slot)

    async def run() -> tuple[StateSlot[Account], list[str]]:
        slot = await begin_async(binding, headers)
        if act is not None:
            act(slot)
        return slot, await finish_async(binding, slot)

    return asyncio.run(run())


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
    plains = [redis.Redis(port=node.port) for node in cluster.nodes]
    monitors = [Monitor(node.port) for node in cluster.nodes]
    for monitor in monitors:
        monitor.__enter__()
    try:
        workload(store, mode, lambda: [plain.script_flush() for plain in plains])
    finally:
        for monitor in monitors:
            monitor.__exit__()
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


class CountingRedis(redis.Redis):
    """A blocking client whose pipelines count their round trips (the store sends every command in one)."""

    counts: list[int]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute, counts = pipe.execute, self.counts

        def counted(raise_on_error: bool = True) -> Any:
            counts.append(len(pipe.command_stack))
            return execute(raise_on_error)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


class AsyncCountingRedis(redis.asyncio.Redis):
    """The asyncio twin of :class:`CountingRedis`."""

    counts: list[int]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute, counts = pipe.execute, self.counts

        async def counted(raise_on_error: bool = True) -> Any:
            counts.append(len(pipe.command_stack))
            return await execute(raise_on_error)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


ROUND_TRIPS = {
    "anonymous": 0,
    "forged": 0,
    "login": 2,  # create + index_add
    "read-only": 1,  # HMGET
    "touching": 3,  # HMGET + touch + index_add (re-asserts the index entry)
    "changing": 2,  # HMGET + update
    "login from an anonymous session": 4,  # HMGET + create + index_add + retire
    "logout": 3,  # HMGET, HMGET (a rotation meanwhile?) + DEL
}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_round_trips_per_request_kind(prefix: str, mode: str) -> None:
    counts: list[int] = []

    async def make_async() -> AsyncCountingRedis:
        client = AsyncCountingRedis(host="127.0.0.1", port=6379, socket_timeout=2)
        client.counts = counts
        return client

    if mode == "sync":
        client = CountingRedis(host="127.0.0.1", port=6379, socket_timeout=2)
        client.counts = counts
        store = RedisStore(client, prefix=prefix)
        run: Callable[..., tuple[StateSlot[Account], list[str]]] = request
    else:  # one event loop for the whole test: an asyncio client belongs to one loop
        loop = asyncio.new_event_loop()
        store = RedisStore(async_client=loop.run_until_complete(make_async()), prefix=prefix)

        def run(binding: Binding[Account], cookie: str | None, act: Act | None = None) -> tuple[
            StateSlot[Account], list[str]
        ]:
            async def go() -> tuple[StateSlot[Account], list[str]]:
                slot = await begin_async(binding, [] if cookie is None else [cookie])
                if act is not None:
                    act(slot)
                return slot, await finish_async(binding, slot)

            return loop.run_until_complete(go())

    clock = FrozenClock(now())
    binding = Binding(ACCOUNT, handler(store, idle_timeout=600, touch_interval=60), clock)
    warm = cookie_of(run(binding, None, become("warm"))[1])  # the server learns every script once
    clock.advance(61)
    run(binding, warm)
    run(binding, warm, visit)
    run(binding, cookie_of(run(binding, None, become(""))[1]), become("warm"))
    measured: dict[str, int] = {}

    def measure(kind: str, *args: Any) -> tuple[StateSlot[Account], list[str]]:
        counts.clear()
        result = run(binding, *args)
        measured[kind] = len(counts)
        assert all(n == 1 for n in counts), (kind, counts)  # no pipeline of several commands on these paths
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
    print(f"\nRedis round trips per request kind ({mode}): {measured}")
    assert measured == ROUND_TRIPS
    if mode == "async":
        loop.run_until_complete(store._agiven.aclose())
        loop.close()
    else:
        client.close()


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
    assert RedisStore(url="redis://h:1/0?password=in-query")._secret == "in-query"  # masked in messages too
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
