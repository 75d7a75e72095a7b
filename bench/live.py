"""Live sessions: memory per live and per detached session, eviction throughput, shutdown time per store.

Run: ``.venv/bin/python bench/live.py [--sessions 10000] [--stores memory,sqlite,redis,postgres]``

* **Memory**: ``tracemalloc`` bytes allocated per session (the manager's
  bookkeeping, the connection's slot and a small ``Counter`` state), live
  and after its connection ended (detached); one process, one measurement.
* **Eviction throughput**: detached sessions evicted per second when a new
  connection arrives at ``max_sessions`` (each eviction writes the session first).
* **Persist pass**: seconds for one write-behind pass over N live sessions
  (``MemoryStore``): all changed, none changed, none changed but due for the
  touch that keeps a quiet session's stored record alive.
* **Shutdown**: seconds for ``SessionManager.shutdown`` to save N sessions in
  one atomic batch, per store (a ``MemoryStore`` also writes its snapshot file).

Connections are the in-process peers of ``tests/live/harness.py``'s shape
(ASGI messages through queues), so what is measured is the manager, not a
network. Figures vary with the machine; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from clientstate import Keyring, State, generate_key
from clientstate._core.store import Store
from clientstate.live import SessionManager, get_live
from clientstate.stores import MemoryStore, SQLiteStore, store_from_url


class Counter(msgspec.Struct):
    count: int = 0


COUNTER = State("counter", Counter)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    slot = get_live(scope, COUNTER)
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        slot.state = Counter((slot.state or Counter()).count + 1)


class _Connection:
    """One open connection to a wrapped app (messages through queues)."""

    def __init__(self, app: Any, address: str) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "websocket", "path": "/ws", "query_string": b"", "client": (address, 1), "headers": []}
        self.task = asyncio.ensure_future(app(scope, self.inbox.get, self.outbox.put))

    async def opened(self) -> None:
        await self.inbox.put({"type": "websocket.connect"})
        await self.outbox.get()  # accept
        await self.outbox.get()  # the announced token
        await self.inbox.put({"type": "websocket.receive", "text": "inc"})

    async def close(self) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await self.task


def _address(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


async def _open(app: Any, count: int, start: int = 0) -> list[_Connection]:
    connections = [_Connection(app, _address(start + n)) for n in range(count)]
    for connection in connections:
        await connection.opened()
    await asyncio.sleep(0)
    return connections


async def memory_per_session(count: int) -> tuple[float, float, float]:
    """Bytes per session: live (clientstate's allocations only), live (everything, the in-process
    transport's task and queues included), and detached (after its connection closed)."""
    keyring = Keyring(generate_key(1))
    manager = SessionManager(MemoryStore(), keyring, max_sessions=count * 2, max_per_ip=count)
    app = manager.websocket(COUNTER, _app, initial=Counter)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    connections = await _open(app, count)
    gc.collect()
    live = tracemalloc.take_snapshot()
    for connection in connections:
        await connection.close()
    del connections
    gc.collect()
    detached = tracemalloc.take_snapshot()
    tracemalloc.stop()

    def grew(after: tracemalloc.Snapshot, ours: bool) -> int:
        stats = after.compare_to(before, "filename")
        return sum(
            stat.size_diff for stat in stats
            if not ours or "/clientstate/" in stat.traceback[0].filename or "msgspec" in stat.traceback[0].filename
        )

    return grew(live, True) / count, grew(live, False) / count, grew(detached, False) / count


async def eviction_rate(count: int) -> float:
    """Evictions per second at the limit (each new connection evicts one detached session)."""
    manager = SessionManager(MemoryStore(), Keyring(generate_key(1)), max_sessions=count, max_per_ip=count * 2)
    app = manager.websocket(COUNTER, _app, initial=Counter)
    for connection in await _open(app, count):
        await connection.close()
    started = time.perf_counter()
    newcomers = await _open(app, count, start=count)
    elapsed = time.perf_counter() - started
    assert manager.stats().evictions["anonymous"] == count
    for connection in newcomers:
        await connection.close()
    return count / elapsed


async def persist_pass(count: int) -> tuple[float, float, float]:
    """Seconds for one persist pass over ``count`` live sessions on a ``MemoryStore``: all changed
    (written), none changed and not due (nothing sent), none changed but due for a touch (deadline pushed on)."""
    now = [time.time()]
    manager = SessionManager(MemoryStore(), Keyring(generate_key(1)), max_sessions=count * 2, max_per_ip=count,
                             clock=lambda: now[0])
    app = manager.websocket(COUNTER, _app, initial=Counter)
    connections = await _open(app, count)
    timings = []
    for advance in (0.0, 0.0, manager.persist_interval * 1.5):
        now[0] += advance
        started = time.perf_counter()
        await manager.persist()
        timings.append(time.perf_counter() - started)
    for connection in connections:
        await connection.close()
    return timings[0], timings[1], timings[2]


async def shutdown_time(make: Callable[[], Store], count: int, snapshot: Path | None) -> float:
    """Seconds for ``shutdown`` to save ``count`` live sessions."""
    store = make()
    manager = SessionManager(store, Keyring(generate_key(1)), max_sessions=count * 2, max_per_ip=count,
                             snapshot_path=snapshot)
    app = manager.websocket(COUNTER, _app, initial=Counter)
    connections = await _open(app, count)
    started = time.perf_counter()
    saved = await manager.shutdown(timeout=600)
    elapsed = time.perf_counter() - started
    assert saved == count, (saved, count)
    for connection in connections:  # the server closes them after the lifespan shutdown
        await connection.close()
    await store.aclose()
    return elapsed


def _stores(names: list[str], directory: str) -> dict[str, tuple[Callable[[], Store], Path | None]]:
    table = os.environ.get("CLIENTSTATE_BENCH_TABLE", f"cs_bench_live_{os.getpid()}")
    known: dict[str, tuple[Callable[[], Store], Path | None]] = {
        "memory": (MemoryStore, Path(directory) / "live.snapshot"),
        "sqlite": (lambda: SQLiteStore(Path(directory) / "live.db"), None),
        "redis": (lambda: store_from_url("redis://127.0.0.1:6379/0"), None),
        "postgres": (lambda: store_from_url(f"postgresql://postgres@127.0.0.1:5432/test?table={table}"), None),
        "mysql": (lambda: store_from_url(f"mysql://root@127.0.0.1:3306/test?table={table}"), None),
    }
    return {name: known[name] for name in names}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    live, live_all, detached = await memory_per_session(args.sessions)
    report: dict[str, Any] = {
        "sessions": args.sessions,
        "bytes_per_live_session": round(live),
        "bytes_per_live_connection_all": round(live_all),
        "bytes_per_detached_session": round(detached),
        "evictions_per_second": round(await eviction_rate(args.sessions)),
        "persist_pass_seconds": [round(t, 3) for t in await persist_pass(args.sessions)],
        "shutdown_seconds": {},
    }
    with tempfile.TemporaryDirectory() as directory:
        for name, (make, snapshot) in _stores(args.stores.split(","), directory).items():
            try:
                report["shutdown_seconds"][name] = round(await shutdown_time(make, args.sessions, snapshot), 3)
            except Exception as exc:  # a store that is not available here: say so in the table
                report["shutdown_seconds"][name] = f"not measured: {type(exc).__name__}: {exc}"
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--stores", default="memory,sqlite,redis,postgres,mysql")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"### Live sessions ({report['sessions']:,} sessions)\n")
    print("| measure | value |\n|---|--:|")
    live, with_transport = report["bytes_per_live_session"], report["bytes_per_live_connection_all"]
    print(f"| memory per live session (allocated by clientstate and msgspec) | {live:,} B |")
    print(f"| memory per live connection, in-process transport included | {with_transport:,} B |")
    print(f"| memory per detached session | {report['bytes_per_detached_session']:,} B |")
    print(f"| evictions per second at the limit | {report['evictions_per_second']:,} |")
    written, idle, touched = report["persist_pass_seconds"]
    print(f"| persist pass, every session changed (written) | {written:.3f} s |")
    print(f"| persist pass, nothing changed (nothing sent) | {idle:.3f} s |")
    print(f"| persist pass, nothing changed, deadlines due (touched) | {touched:.3f} s |")
    for name, seconds in report["shutdown_seconds"].items():
        value = f"{seconds:.3f} s" if isinstance(seconds, float) else seconds
        print(f"| shutdown, {name} | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
