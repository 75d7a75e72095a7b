"""Races: 50 threads and 50 asyncio tasks on one baton; the reaper against a statement in flight."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
from pathlib import Path

from clientstate.batons import AsyncStreams, Limits, SQLiteResource, Stream, Streams, sqlite3_acquirer
from clientstate.testing import FrozenClock, fixed_keyring
from tests.batons.support import OWNER, SCOPE, AsyncFakeResource, FakeResource, begin, kind, make_streams, step

RACERS = 50
ROUNDS = 20


def _race(streams: Streams[FakeResource], calls: list[tuple[str, str]], baton: str) -> list[object]:
    """Start ``len(calls)`` threads at one barrier, each resuming ``baton`` as ``(principal, scope)``."""
    barrier = threading.Barrier(len(calls), timeout=20)
    results: list[object] = [None] * len(calls)

    def racer(index: int, principal: str, scope: str) -> None:
        barrier.wait()
        results[index] = streams.resume(baton, scope=scope, principal=principal)

    threads = [threading.Thread(target=racer, args=(i, p, s)) for i, (p, s) in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_fifty_threads_racing_one_baton_exactly_one_resumes() -> None:
    streams = make_streams()
    baton, resource = begin(streams)
    tally: collections.Counter[str] = collections.Counter()
    for _ in range(ROUNDS):
        results = _race(streams, [(OWNER, SCOPE)] * RACERS, baton)
        counts = collections.Counter(kind(r) for r in results)
        assert counts == {"ok": 1, "baton_reused": RACERS - 1}, counts
        tally.update(counts)
        (winner,) = [r for r in results if isinstance(r, Stream)]
        nxt = streams.release(winner)
        assert isinstance(nxt, str)
        baton = nxt
    assert tally == {"ok": ROUNDS, "baton_reused": ROUNDS * (RACERS - 1)}
    assert streams.list()[0].generation == ROUNDS
    assert resource.calls == []


def test_fifty_threads_of_another_principal_never_burn_the_owners_baton() -> None:
    streams = make_streams()
    baton, _ = begin(streams)
    results = _race(streams, [("mallory", SCOPE)] * RACERS, baton)
    assert collections.Counter(kind(r) for r in results) == {"principal_mismatch": RACERS}
    assert (streams.list()[0].generation, streams.list()[0].busy) == (0, False)
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"


def test_owner_and_thieves_racing_together() -> None:
    streams = make_streams()
    baton, _ = begin(streams)
    calls = [(OWNER, SCOPE)] * 25 + [("mallory", SCOPE)] * 20 + [(OWNER, "other-db")] * 5
    results = _race(streams, calls, baton)
    assert collections.Counter(kind(r) for r in results) == {
        "ok": 1, "baton_reused": 24, "principal_mismatch": 20, "scope_mismatch": 5}
    owner_kinds = [kind(r) for r in results[:25]]
    assert owner_kinds.count("ok") == 1


def test_fifty_asyncio_tasks_racing_one_baton_exactly_one_resumes() -> None:
    async def main() -> collections.Counter[str]:
        streams: AsyncStreams[AsyncFakeResource] = AsyncStreams(fixed_keyring(1), clock=FrozenClock())
        resource = AsyncFakeResource()
        opened = await streams.open(lambda ro: resource, principal=OWNER, scope=SCOPE)
        assert isinstance(opened, Stream)
        baton = await streams.release(opened)
        assert isinstance(baton, str)
        tally: collections.Counter[str] = collections.Counter()
        for _ in range(ROUNDS):
            barrier = asyncio.Barrier(RACERS)

            async def racer(current: str = baton, gate: asyncio.Barrier = barrier) -> object:
                await gate.wait()
                return await streams.resume(current, scope=SCOPE, principal=OWNER)

            results = await asyncio.wait_for(asyncio.gather(*(racer() for _ in range(RACERS))), 20)
            counts = collections.Counter(kind(r) for r in results)
            assert counts == {"ok": 1, "baton_reused": RACERS - 1}, counts
            tally.update(counts)
            (winner,) = [r for r in results if isinstance(r, Stream)]
            nxt = await streams.release(winner)
            assert isinstance(nxt, str)
            baton = nxt
        thieves = await asyncio.gather(*(streams.resume(baton, scope=SCOPE, principal="mallory")
                                         for _ in range(RACERS)))
        tally.update(kind(r) for r in thieves)
        assert kind(await streams.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"
        assert resource.calls == []
        return tally

    tally = asyncio.run(main())
    assert tally == {"ok": ROUNDS, "baton_reused": ROUNDS * (RACERS - 1), "principal_mismatch": RACERS}


def _blocking_db(tmp_path: Path) -> tuple[Path, threading.Event, threading.Event]:
    """A database whose ``block()`` SQL function signals it started and waits for the test's permission."""
    database = tmp_path / "slow.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
    connection.close()
    return database, threading.Event(), threading.Event()


def test_the_reaper_never_closes_a_stream_with_a_statement_in_flight(tmp_path: Path) -> None:
    database, started, may_finish = _blocking_db(tmp_path)

    def block() -> int:
        started.set()
        return 42 if may_finish.wait(20) else -1

    def setup(connection: sqlite3.Connection) -> None:
        connection.create_function("block", 0, block)

    clock = FrozenClock()
    streams: Streams[SQLiteResource] = Streams(fixed_keyring(1), Limits(idle_timeout=5, max_lifetime=30),
                                               clock=clock)
    acquire = sqlite3_acquirer(database, setup=setup)
    opened = streams.open(acquire, principal=OWNER, scope=SCOPE)
    assert isinstance(opened, Stream)
    opened.resource.query("INSERT INTO t VALUES (1)")
    baton = streams.release(opened)
    assert isinstance(baton, str)
    stream = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(stream, Stream)

    answers: list[object] = []
    worker = threading.Thread(target=lambda: answers.append(stream.resource.query("SELECT block()").rows))
    worker.start()
    assert started.wait(20)
    clock.advance(1000)  # far past the idle timeout and the lifetime, with the statement still running

    assert streams.reap() == 0
    assert kind(streams.kill(stream.id)) == "stream_busy"
    passes: list[int] = []
    five = threading.Event()

    def counted(ended: int) -> None:
        passes.append(ended)
        if len(passes) >= 5:
            five.set()

    streams.start_reaper(0.005, on_pass=counted)
    assert five.wait(20)
    assert sum(passes) == 0
    (info,) = streams.list()
    assert info.busy is True
    assert stream.resource.in_transaction

    may_finish.set()
    worker.join(20)
    assert answers == [((42,),)]
    assert stream.resource.in_transaction  # the statement finished inside the untouched transaction
    nxt = streams.release(stream)
    assert isinstance(nxt, str)

    # Now idle: the next passes past the idle timeout end it and roll the INSERT back.
    passes.clear()
    gone = threading.Event()
    streams.stop_reaper(20)
    clock.advance(6)
    streams.start_reaper(0.005, on_pass=lambda ended: gone.set() if ended else None)
    assert gone.wait(20)
    streams.stop_reaper(20)
    assert streams.list() == ()
    assert kind(streams.resume(nxt, scope=SCOPE, principal=OWNER)) == "stream_expired"
    with sqlite3.connect(database) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)
    check.close()


def test_async_reaper_task_skips_busy_and_ends_idle() -> None:
    async def main() -> None:
        clock = FrozenClock()
        streams: AsyncStreams[AsyncFakeResource] = AsyncStreams(fixed_keyring(1), Limits(idle_timeout=5),
                                                                clock=clock)
        busy_res, idle_res = AsyncFakeResource(), AsyncFakeResource()
        busy = await streams.open(lambda ro: busy_res, principal="a", scope=SCOPE)
        idle = await streams.open(lambda ro: idle_res, principal="b", scope=SCOPE)
        assert isinstance(busy, Stream)
        assert isinstance(idle, Stream)
        assert isinstance(await streams.release(idle), str)
        clock.advance(60)
        ended = asyncio.Event()
        streams.start_reaper(0.005, on_pass=lambda count: ended.set() if count else None)
        await asyncio.wait_for(ended.wait(), 20)
        await streams.stop_reaper()
        assert idle_res.calls == ["rollback", "close"]
        assert busy_res.calls == []
        drained = await streams.close_all()
        assert (drained.closed, drained.busy, drained.unfinished) == (0, 1, 0)
        assert kind(await streams.release(busy)) == "registry_closed"
        assert busy_res.calls == ["rollback", "close"]

    asyncio.run(main())


def test_async_form_follows_every_rule_of_the_blocking_one() -> None:
    async def main() -> list[str]:
        clock = FrozenClock()
        streams: AsyncStreams[AsyncFakeResource] = AsyncStreams(
            fixed_keyring(1), Limits(idle_timeout=5, max_streams=1), clock=clock)
        resource = AsyncFakeResource()

        async def acquire(read_only: bool) -> AsyncFakeResource:
            return resource

        seen: list[str] = []
        opened = await streams.open(acquire, principal=OWNER, scope=SCOPE)
        assert isinstance(opened, Stream)
        early = streams.peek(opened)
        seen.append(kind(await streams.resume(early, scope=SCOPE, principal=OWNER)))  # busy
        first = await streams.release(opened)
        assert first == early
        seen.append(kind(await streams.open(acquire, principal="b", scope=SCOPE)))  # cap
        seen.append(kind(await streams.resume(first, scope=SCOPE, principal="mallory")))
        again = await streams.resume(first, scope=SCOPE, principal=OWNER)
        assert isinstance(again, Stream)
        seen.append(kind(await streams.resume(first, scope=SCOPE, principal=OWNER)))  # reused
        second = await streams.release(again)
        assert isinstance(second, str)
        clock.advance(6)
        seen.append(kind(await streams.resume(second, scope=SCOPE, principal=OWNER)))  # expired, ended now
        assert resource.calls == ["rollback", "close"]
        third = await streams.open(acquire, principal=OWNER, scope=SCOPE)
        assert isinstance(third, Stream)
        await streams.close(third)
        seen.append(kind(await streams.kill(third.id)))
        async with streams:
            pass
        seen.append(kind(await streams.resume(second, scope=SCOPE, principal=OWNER)))
        return seen

    assert asyncio.run(main()) == ["stream_busy", "too_many_streams", "principal_mismatch", "baton_reused",
                                   "stream_expired", "stream_expired", "registry_closed"]


def test_threads_stepping_different_streams_never_cross() -> None:
    streams = make_streams()
    errors: list[str] = []
    barrier = threading.Barrier(RACERS, timeout=20)

    def user(index: int) -> None:
        name = f"user{index}"
        baton, _ = begin(streams, principal=name)
        barrier.wait()
        for _ in range(20):
            baton = step(streams, baton, principal=name)
        (info,) = streams.list(lambda i: i.principal == name)
        if info.generation != 20:
            errors.append(f"{name}: generation {info.generation}")

    threads = [threading.Thread(target=user, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(streams.list()) == RACERS
