"""RedisStore when Redis fails: requests meet ``store_unavailable`` within the timeout, keep their cookies,
work again once the server is back, and no acknowledged session is lost.

Each test runs a server (or a cluster) of its own, with ``--appendonly yes --appendfsync always`` so that
what Redis acknowledged survives a SIGKILL; the machine's Redis on 6379 is never stopped. Traffic goes
through the real handler and drivers (blocking, and asyncio on one event loop) in a thread while the test
stops the server in the middle of it. The numbers (errors during the outage, time to ``store_unavailable``,
recovery time, sessions lost) are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from clientstate import Binding, ErrorKind, State, StateSlot, StoreUnavailable, server_stored
from clientstate._core import store as ops
from clientstate._core.drive import begin_async, begin_sync, finish_async, finish_sync
from clientstate._core.flow import perform_sync
from clientstate.stores.redis import RedisStore
from clientstate.testing import FrozenClock, fixed_keyring
from tests.server.conftest import Driver
from tests.server.kits import CountingStore
from tests.server.redis_cluster import LocalCluster, RedisServer
from tests.server.test_behaviour import _sid

TIMEOUT = 1.0  # the store's timeout, seconds: every failing request must end within TIMEOUT + 1 s
OUTAGE = 3.0  # seconds the server stays down


class Account(msgspec.Struct):
    user: str
    visits: int = 0


ACCOUNT = State("account", Account)


class Witness(CountingStore):
    """A store in front of another that records what it acknowledged: each session's latest written version."""

    inner: RedisStore

    def __init__(self, inner: RedisStore) -> None:
        super().__init__(inner)
        self.acked: dict[bytes, int] = {}
        self.lock = threading.Lock()

    def steps(self, op: ops.Op) -> ops.Steps:
        result = yield ops.Delegate(self.inner, op)
        with self.lock:
            written = result is True if isinstance(op, ops.Create) else result is ops.UpdateResult.OK
            if written and isinstance(op, ops.Create | ops.Update):
                self.acked[op.record.sid] = op.record.version
        return result

    def lost(self) -> list[bytes]:
        """The acknowledged sessions now missing from the store, or older than acknowledged."""
        missing = []
        for sid, version in sorted(self.acked.items()):
            record = perform_sync(self.inner, ops.Get(sid))
            if record is None or record.version < version:
                missing.append(sid)
        return missing


@dataclass
class Outcome:
    kind: str  # "login" or "visit"
    began: float  # time.monotonic()
    seconds: float
    ok: bool
    unavailable: bool  # the load said store_unavailable, or the save did not happen
    lines: list[str]
    sid: bytes | None = None


@dataclass
class Traffic:
    """Requests in a thread, one after another, until stopped: logins, and visits to known sessions."""

    binding: Binding[Account]
    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    pause: float = 0.005

    def sid(self, cookie: str) -> bytes:
        return _sid(self.binding, cookie)

    def plan(self, n: int) -> tuple[str, str | None]:
        if len(self.cookies) < 5 or n % 3 == 0:
            return "login", None
        return "visit", random.choice(self.cookies)

    def record(self, kind: str, cookie: str | None, began: float, slot: StateSlot[Account], lines: list[str]) -> None:
        if kind == "login":
            ok = len(lines) == 1 and "Max-Age=0" not in lines[0]
            if ok:
                self.cookies.append(lines[0].split(";", 1)[0])
            sid = self.sid(self.cookies[-1]) if ok else None
        else:
            ok = slot.error is None
            assert cookie is not None
            sid = self.sid(cookie)
        unavailable = slot.error is not None and slot.error.kind is ErrorKind.STORE_UNAVAILABLE
        outcome = Outcome(kind, began, time.monotonic() - began, ok, unavailable or not ok, lines, sid)
        self.outcomes.append(outcome)

    def once(self, driver: Driver, cookie: str | None, kind: str, n: int) -> Outcome:
        """One request of ``kind`` through ``driver``, timed and recorded; its outcome."""
        began = time.monotonic()
        slot, lines = driver.request(self.binding, cookie, lambda slot: self.act(kind, slot, n))
        self.record(kind, cookie, began, slot, lines)
        return self.outcomes[-1]

    @staticmethod
    def act(kind: str, slot: StateSlot[Account], n: int) -> None:
        if kind == "login":
            slot.state = Account(f"user{n % 7}")
        elif slot.state is not None:
            slot.state = msgspec.structs.replace(slot.state, visits=slot.state.visits + 1)

    def run_sync(self) -> None:
        n = 0
        while not self.stopping.is_set():
            kind, cookie = self.plan(n)
            began = time.monotonic()
            slot = begin_sync(self.binding, [] if cookie is None else [cookie])
            self.act(kind, slot, n)
            self.record(kind, cookie, began, slot, finish_sync(self.binding, slot))
            n += 1
            time.sleep(self.pause)

    async def run_async(self) -> None:
        n = 0
        while not self.stopping.is_set():
            kind, cookie = self.plan(n)
            began = time.monotonic()
            slot = await begin_async(self.binding, [] if cookie is None else [cookie])
            self.act(kind, slot, n)
            self.record(kind, cookie, began, slot, await finish_async(self.binding, slot))
            n += 1
            await asyncio.sleep(self.pause)

    @property
    def target(self) -> Any:
        return self.run_sync if self.mode == "sync" else lambda: asyncio.run(self.run_async())

    def __enter__(self) -> Traffic:
        self.thread = threading.Thread(target=self.target, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(30)
        assert not self.thread.is_alive()

    def wait_for(self, count: int, deadline: float = 30.0) -> None:
        """Wait until ``count`` more requests have finished."""
        target, end = len(self.outcomes) + count, time.monotonic() + deadline
        while len(self.outcomes) < target:
            assert time.monotonic() < end, "the traffic stalled"
            time.sleep(0.01)


def binding_for(store: Witness) -> Binding[Account]:
    handler = server_stored(store, fixed_keyring(1), name="sid", principal=lambda s: s.user)
    return Binding(ACCOUNT, handler, time.time)


def report(title: str, numbers: dict[str, Any]) -> None:
    print(f"\n{title}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


@pytest.fixture
def server() -> Iterator[RedisServer]:
    started = RedisServer(Path(tempfile.mkdtemp(prefix="clientstate-redis-fault-")), persistent=True).start()
    yield started
    started.destroy()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGSTOP"])
def test_an_outage_is_store_unavailable_in_bounded_time_and_loses_nothing_acknowledged(
    server: RedisServer, mode: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "clientstate")
    store = RedisStore(url=server.url, prefix="fault:", timeout=TIMEOUT)
    witness = Witness(store)
    with Traffic(binding_for(witness), mode) as traffic:
        traffic.wait_for(200)
        down_at = time.monotonic()
        assert server.process is not None
        if how == "SIGSTOP":  # hung, not dead: every call waits for its timeout
            server.process.send_signal(signal.SIGSTOP)
        else:
            server.kill(getattr(signal, how))
        time.sleep(OUTAGE)
        up_at = time.monotonic()
        if how == "SIGSTOP":
            server.process.send_signal(signal.SIGCONT)
        else:
            server.start()  # the same port, the same append-only file
        answering_at = time.monotonic()
        traffic.wait_for(100)
    during = [o for o in traffic.outcomes if o.began < answering_at and o.began + o.seconds > down_at]
    failed = [o for o in traffic.outcomes if o.unavailable]
    after = [o for o in traffic.outcomes if o.began >= answering_at]
    first_ok = next(o for o in after if o.ok)
    lost = witness.lost()
    numbers = {
        "requests before": sum(1 for o in traffic.outcomes if o.began + o.seconds <= down_at),
        "during outage": len(during),
        "errors during outage": sum(o.unavailable for o in during),
        "errors after restart": sum(o.unavailable for o in after),
        "max time to store_unavailable s": round(max(o.seconds for o in failed), 3),
        "median time to error s": round(sorted(o.seconds for o in failed)[len(failed) // 2], 3),
        "restart s": round(answering_at - up_at, 3),
        "recovery s (server answering -> first success)": round(first_ok.began + first_ok.seconds - answering_at, 3),
        "acknowledged sessions": len(witness.acked),
        "sessions lost": len(lost),
    }
    report(f"Redis fault {how} ({mode})", numbers)
    assert failed, "no request met the outage"
    assert all(o in during for o in failed), numbers  # every failure is the outage's
    assert all(o.seconds < TIMEOUT + 1 for o in failed), numbers
    assert all(o.lines == [] for o in failed)  # the cookie kept: never a deletion, never a new one
    assert not any("Max-Age=0" in line for o in traffic.outcomes for line in o.lines)
    assert all(o.ok for o in after[-50:])  # working again
    assert lost == []
    store.close()


# --- a Redis Cluster losing one master -------------------------------------------------------------------


@pytest.fixture
def persistent_cluster() -> Iterator[LocalCluster]:
    started = LocalCluster(persistent=True).start()
    yield started
    started.stop()


def node_serving(cluster: LocalCluster, key: bytes) -> int:
    """The index (in ``cluster.nodes``) of the master serving ``key``, from the client's own slot table."""
    import redis.cluster

    client = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        return next(n for n, server in enumerate(cluster.nodes) if server.port == node.port)
    finally:
        client.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cluster_losing_a_master_fails_only_its_slots_and_recovers(
    persistent_cluster: LocalCluster, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "clientstate")
    cluster = persistent_cluster
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix="cfault:", timeout=TIMEOUT)
    witness = Witness(store)
    binding = binding_for(witness)
    traffic = Traffic(binding, mode)
    loop = asyncio.new_event_loop()

    def run(cookie: str | None, kind: str, n: int) -> Outcome:
        return traffic.once(Driver(mode, loop), cookie, kind, n)

    for n in range(60):
        assert run(None, "login", n).ok
    sessions = list(traffic.cookies)
    owner = {cookie: node_serving(cluster, store.key(traffic.sid(cookie))) for cookie in sessions}
    victim = cluster.nodes[1]
    dead = {cookie for cookie in sessions if owner[cookie] == 1}
    index_on_victim = {f"user{n}" for n in range(7) if node_serving(cluster, store.index_key(f"user{n}")) == 1}
    assert 0 < len(dead) < len(sessions)
    victim.kill(signal.SIGKILL)
    down = [run(cookie, "visit", n) for n, cookie in enumerate(sessions)]
    logins = [run(None, "login", n) for n in range(30)]  # new ids land in every slot; indexes on the victim too
    failed = [o for o, cookie in zip(down, sessions, strict=True) if cookie in dead]
    alive = [o for o, cookie in zip(down, sessions, strict=True) if cookie not in dead]
    assert all(o.unavailable and o.lines == [] for o in failed)  # store_unavailable, the cookie kept
    assert all(o.ok for o in alive)  # the other masters keep serving their slots
    assert all(o.seconds < TIMEOUT + 1 for o in [*failed, *alive])
    made = [o for o in logins if o.ok]
    assert 0 < len(made) < len(logins)
    index_warnings = sum("principal index" in r.getMessage() for r in caplog.records)
    restarted_at = time.monotonic()
    victim.start()
    cluster.wait_ok()
    ok_at = time.monotonic()
    probe = next(iter(dead))
    recovered = None
    while recovered is None or not recovered.ok:
        assert time.monotonic() - ok_at < 30, "the cluster client did not recover"
        recovered = run(probe, "visit", 0)
    recovery = recovered.began + recovered.seconds - ok_at
    again = [run(cookie, "visit", n) for n, cookie in enumerate(sessions)]
    assert all(o.ok for o in again)
    lost = witness.lost()
    report(f"Redis Cluster fault, one master of 3 SIGKILLed ({mode})", {
        "sessions": len(sessions),
        "in the dead master's slots": len(failed),
        "errors during outage (visits)": sum(o.unavailable for o in down),
        "logins during outage ok/failed": f"{len(made)}/{len(logins) - len(made)}",
        "principal indexes on the dead master": len(index_on_victim),
        "index warnings logged": index_warnings,
        "max time to store_unavailable s": round(max(o.seconds for o in failed), 3),
        "max time of a surviving-slot request s": round(max(o.seconds for o in alive), 3),
        "master restart + cluster_state:ok s": round(ok_at - restarted_at, 3),
        "recovery s (cluster ok -> first success in its slots)": round(recovery, 3),
        "acknowledged sessions": len(witness.acked),
        "sessions lost": len(lost),
    })
    assert lost == []
    expected_warnings = sum(1 for n, o in enumerate(logins) if o.ok and f"user{n % 7}" in index_on_victim)
    assert index_warnings == expected_warnings  # an index write lost is logged, and never failed its request
    loop.run_until_complete(store.aclose())
    loop.close()
    store.close()


def _slot_master(cluster: LocalCluster, store: RedisStore, key: bytes) -> RedisServer:
    return cluster.nodes[node_serving(cluster, key)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_touch_survives_the_loss_of_its_index_master(
    persistent_cluster: LocalCluster, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The touch and its index write share a pipeline that spans two masters; the index's master dying costs
    the index write (logged), never the touch; the first touch after the restart repairs the index."""
    caplog.set_level(logging.WARNING, "clientstate")
    cluster = persistent_cluster
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix="tfault:", timeout=TIMEOUT)
    victim = _slot_master(cluster, store, store.index_key("ada"))
    clock = FrozenClock(int(time.time()))
    binding = Binding(ACCOUNT, server_stored(store, fixed_keyring(1), name="sid", principal=lambda s: s.user,
                                             idle_timeout=600, touch_interval=60), clock)
    loop = asyncio.new_event_loop()

    def run(cookie: str | None, act: Any = None) -> tuple[StateSlot[Account], list[str]]:
        return Driver(mode, loop).request(binding, cookie, act)

    def login(slot: StateSlot[Account]) -> None:
        slot.state = Account("ada")

    cookies: list[str] = []
    while len(cookies) < 5:  # sessions on the surviving masters, their index on the victim
        slot, lines = run(None, login)
        cookie = lines[0].split(";", 1)[0]
        if _slot_master(cluster, store, store.key(_sid(binding, cookie))) is not victim:
            cookies.append(cookie)
    victim.kill(signal.SIGKILL)
    clock.advance(61)
    timings = []
    for cookie in cookies:  # read-only requests, due for a touch
        began = time.monotonic()
        slot, lines = run(cookie)
        timings.append(time.monotonic() - began)
        assert (slot.error, lines) == (None, [])
        record = perform_sync(store, ops.Get(_sid(binding, cookie)))
        assert record.last_touch == int(clock())  # touched, although its index's master is down
    lost = [r for r in caplog.records if "principal index" in r.getMessage()]
    assert len(lost) == len(cookies)  # each lost index write logged
    victim.start()
    cluster.wait_ok()
    deadline = time.monotonic() + 30
    while True:  # the cluster client finds the master again within a bounded wait
        try:
            perform_sync(store, ops.CountSessions("ada", int(clock())))
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the cluster client did not recover"
            time.sleep(0.05)
    clock.advance(61)
    for cookie in cookies:
        assert run(cookie)[0].error is None
    assert perform_sync(store, ops.CountSessions("ada", int(clock()))) >= len(cookies)  # the touches re-added them
    report(f"Redis Cluster: touches while their index's master is down ({mode})", {
        "touches": len(cookies), "index writes lost and logged": len(lost),
        "max touch time s": round(max(timings), 3),
    })
    assert all(seconds < TIMEOUT + 1 for seconds in timings)
    loop.run_until_complete(store.aclose())
    loop.close()
    store.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_hash_tagged_store_lives_and_fails_with_its_one_master(
    persistent_cluster: LocalCluster, mode: str, how: str
) -> None:
    """With ``hash_tag`` every key is on one master: another master's loss changes nothing; its own loss makes
    every request store_unavailable in bounded time (a killed master at once; a hung one within twice the timeout:
    the client's slot-table refresh after a timeout may wait on it too), cookies kept; after the restart
    everything works and nothing is lost."""
    cluster = persistent_cluster
    store = RedisStore(url=f"redis://{cluster.nodes[0].address}", cluster=True, prefix="hfault:",
                       hash_tag="live", timeout=TIMEOUT)
    witness = Witness(store)
    traffic = Traffic(binding_for(witness), mode)
    home = _slot_master(cluster, store, store.key(b"x" * 16))
    other = next(node for node in cluster.nodes if node is not home)
    loop = asyncio.new_event_loop()

    def run(cookie: str | None, kind: str, n: int) -> Outcome:
        return traffic.once(Driver(mode, loop), cookie, kind, n)

    for n in range(20):
        assert run(None, "login", n).ok
    sessions = list(traffic.cookies)
    other.kill(signal.SIGKILL)  # not the store's master: nothing changes
    assert all(run(cookie, "visit", n).ok for n, cookie in enumerate(sessions))
    assert run(None, "login", 99).ok
    other.start()
    cluster.wait_ok()
    assert home.process is not None
    if how == "SIGSTOP":
        home.process.send_signal(signal.SIGSTOP)
    else:
        home.kill(signal.SIGKILL)
    down = [run(cookie, "visit", n) for n, cookie in enumerate(sessions[:4])] + [run(None, "login", 7)]
    assert all(o.unavailable and o.lines == [] for o in down)  # store_unavailable, the cookie kept
    # a hung master: a request may also wait on it while the client refreshes its slot table (a second timeout)
    bound = TIMEOUT + 1 if how == "SIGKILL" else 2 * TIMEOUT + 1
    assert all(o.seconds < bound for o in down), [o.seconds for o in down]
    if how == "SIGSTOP":
        home.process.send_signal(signal.SIGCONT)
    else:
        home.start()
    cluster.wait_ok()
    deadline = time.monotonic() + 30
    while not run(sessions[0], "visit", 0).ok:
        assert time.monotonic() < deadline, "the cluster client did not recover"
        time.sleep(0.05)
    assert all(run(cookie, "visit", n).ok for n, cookie in enumerate(sessions))
    lost = witness.lost()
    report(f"Redis Cluster, hash-tagged store, its master {how} ({mode})", {
        "sessions": len(sessions), "requests during the outage": len(down),
        "errors during the outage": sum(o.unavailable for o in down),
        "max time to store_unavailable s": round(max(o.seconds for o in down), 3),
        "acknowledged sessions": len(witness.acked), "sessions lost": len(lost),
    })
    assert lost == []
    loop.run_until_complete(store.aclose())
    loop.close()
    store.close()
