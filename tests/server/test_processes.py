"""Several OS processes sharing one SQLite file, or one PostgreSQL database: no cross-talk, no lost state.

The parent creates sessions; worker processes (``multiprocessing``, spawned: fresh interpreters) read
them and write to them concurrently — 1,000 requests over 8 sessions, several threads per process. Each
session's state is a dict: its owner, and one key per write aimed at it (dict states merge changed keys
on a conflict, so concurrent writes to one session all persist). Every read must see its own owner, and
each session must end with exactly its own writes — never another session's.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from clientstate import Binding, State, StateSlot, server_stored
from clientstate._core.drive import begin_sync, finish_sync
from clientstate._core.store import Store
from clientstate.stores import SQLiteStore
from clientstate.stores.postgres import PostgresStore
from clientstate.stores.sql import Statement
from clientstate.testing import FrozenClock, fixed_keyring
from tests.server.kits import PG_URL, PostgresKit, unique_table

T0 = 1_700_000_000
SESSIONS = 8
PROCESSES = 4
THREADS = 5
PER_THREAD = 50  # 4 * 5 * 50 = 1,000 requests
BAG = State("bag", dict[str, str])


def make_store(engine: str, target: str) -> Store:
    return SQLiteStore(target, timeout=30) if engine == "sqlite" else PostgresStore(PG_URL, table=target, timeout=30)


def binding_of(store: Store) -> Binding[dict[str, str]]:
    return Binding(BAG, server_stored(store, fixed_keyring(1), name="sid"), FrozenClock(T0))


def request(binding: Binding[dict[str, str]], cookie: str | None, marker: str | None, owner: str) -> list[str]:
    slot: StateSlot[dict[str, str]] = begin_sync(binding, [] if cookie is None else [cookie])
    if cookie is None:
        slot.state = {"owner": owner}
    else:
        assert slot.error is None, slot.error
        assert slot.state is not None
        assert slot.state["owner"] == owner, (slot.state, owner)  # never another's
        if marker is not None:
            slot.state = {**slot.state, marker: owner}
    return finish_sync(binding, slot)


def worker(engine: str, target: str, cookies: list[str], process: int, results: Any) -> None:
    """One app server: THREADS threads, each PER_THREAD requests spread over every session."""
    store = make_store(engine, target)
    binding = binding_of(store)
    errors: list[str] = []
    given_up = GivenUp()
    logging.getLogger("clientstate").addHandler(given_up)

    def run(thread: int) -> None:
        for i in range(PER_THREAD):
            n = (process * 7 + thread * 3 + i) % SESSIONS
            try:
                request(binding, cookies[n], f"{n}/{process}/{thread}/{i}", f"s{n}")
            except BaseException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    store.close()
    results.put((process, (errors, given_up.count)))


class GivenUp(logging.Handler):
    """Counts the writes the handler gave up after three conflicting attempts (it logs each: not acknowledged)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "not saved after" in record.getMessage():
            self.count += 1


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        directory = tempfile.mkdtemp(prefix="clientstate-procs-")
        yield "sqlite", os.path.join(directory, "sessions.db")
    else:
        table = unique_table("procs")
        yield "postgres", table
        PostgresKit().drop(table)


def test_processes_share_sessions_without_cross_talk(shared: tuple[str, str]) -> None:
    engine, target = shared
    store = make_store(engine, target)
    binding = binding_of(store)
    cookies = [request(binding, None, None, f"s{n}")[0].split(";", 1)[0] for n in range(SESSIONS)]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=worker, args=(engine, target, cookies, p, results)) for p in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    reports = dict(results.get(timeout=600) for _ in processes)
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert all(errors == [] for errors, _ in reports.values()), reports
    given_up = sum(count for _, count in reports.values())

    expected: dict[int, set[str]] = {n: set() for n in range(SESSIONS)}
    for p in range(PROCESSES):
        for t in range(THREADS):
            for i in range(PER_THREAD):
                n = (p * 7 + t * 3 + i) % SESSIONS
                expected[n].add(f"{n}/{p}/{t}/{i}")
    foreign = lost = 0
    for n, cookie in enumerate(cookies):
        slot = begin_sync(binding, [cookie])  # a state written by other processes, read by this one
        assert slot.state is not None
        markers = {key for key in slot.state if key != "owner"}
        foreign += sum(1 for key in markers if not key.startswith(f"{n}/"))
        lost += len(expected[n] - markers)
        assert slot.state["owner"] == f"s{n}"
    print(f"\n{engine}: {PROCESSES} processes x {THREADS} threads, {PROCESSES * THREADS * PER_THREAD} requests over "
          f"{SESSIONS} sessions: cross-talk {foreign}, writes missing {lost}, of which given up after 3 conflicts "
          f"(logged, never acknowledged) {given_up}")
    assert foreign == 0
    assert lost == given_up  # every write the handler did not give up on persisted
    store.close()


def test_the_sqlite_sweep_uses_its_index() -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="clientstate-plan-"), "s.db")
    store = SQLiteStore(path)
    sweep = store.sweep_command(T0, 10)
    assert isinstance(sweep, Statement)
    store.execute(sweep)  # creates the table
    store.close()
    with sqlite3.connect(path) as db:
        plan = db.execute(f"EXPLAIN QUERY PLAN {sweep.sql}", (T0, 10)).fetchall()
    details = [row[-1] for row in plan]
    assert any("USING INDEX clientstate_sessions_idle_deadline" in d or
               "USING COVERING INDEX clientstate_sessions_idle_deadline" in d for d in details), details
    assert not any(d.startswith("SCAN clientstate_sessions") and "INDEX" not in d for d in details), details
