"""Stopping and starting a real demo process: every live session restored, per store; what kill -9 loses.

SIGTERM makes uvicorn close the WebSockets and run the lifespan's shutdown:
the manager saves every session in one atomic batch (and, for the embedded
``MemoryStore``, writes the authenticated snapshot file). A new process with
the same ``CLIENTSTATE_KEYS`` and store gets them all back. PostgreSQL
(``test`` database) and Redis (127.0.0.1:6379) are shared with other
suites: the sessions made here are reset at the end, which deletes their
records. A store server that does not answer is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from clientstate import Keyring, generate_key
from clientstate.demo.live import SNAPSHOT_FILE
from tests.live.demo_process import Client, LiveDemo

KEYRING = Keyring(generate_key(7))
STORES = {"memory": [], "sqlite": ["--store", "sqlite"], "postgres": ["--store", "postgres"],
          "redis": ["--store", "redis"]}
SESSIONS = 6


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 120))


async def open_sessions(demo: LiveDemo, count: int) -> tuple[list[str], list[Client]]:
    """``count`` sessions, session n counted to n + 1; the first half closed (detached), the rest left open."""
    tokens, still_open = [], []
    for n in range(count):
        client = await Client.open(demo.ws, source="127.0.0.30")
        for _ in range(n + 1):
            await client.say("inc")
        tokens.append(client.token)
        if n < count // 2:
            await client.close()
        else:
            still_open.append(client)
    return tokens, still_open


async def resumed_counts(demo: LiveDemo, tokens: list[str], *, reset: bool = False) -> list[tuple[int, bool]]:
    """``(count, resumed)`` each token gets back; ``reset`` clears each session afterwards (deleting its record)."""
    found = []
    for token in tokens:
        client = await Client.open(demo.ws, token=token, source="127.0.0.31")
        found.append((client.first["count"], client.first["resumed"]))
        if reset:
            assert (await client.say("reset"))["count"] == 0
        await client.close()
    return found


@pytest.mark.parametrize("store", list(STORES))
def test_sigterm_then_start_again_restores_every_live_session(store: str, tmp_path: Path) -> None:
    first = LiveDemo(KEYRING, tmp_path, STORES[store])
    tokens, still_open = run(open_sessions(first, SESSIONS))
    assert first.stop() == 0  # a graceful stop: uvicorn's shutdown ran, and the demo exits 0
    assert f"live: {SESSIONS} live sessions saved" in first.drain()
    del still_open  # closed by the server at shutdown
    second = LiveDemo(KEYRING, tmp_path, STORES[store])
    try:
        if store == "memory":
            second.wait_for(f"live: {SESSIONS} live sessions restored")
            assert (tmp_path / SNAPSHOT_FILE).exists()
        assert run(resumed_counts(second, tokens, reset=store in ("postgres", "redis"))) == [
            (n + 1, True) for n in range(SESSIONS)
        ]
    finally:
        assert second.stop() == 0


def test_a_snapshot_under_the_previous_key_restores_and_a_tampered_one_is_refused(tmp_path: Path) -> None:
    first = LiveDemo(KEYRING, tmp_path)
    tokens, _ = run(open_sessions(first, 2))
    assert first.stop() == 0
    rotated = Keyring(generate_key(8), (KEYRING.current,))  # the next deploy: key 8 current, 7 still accepted
    second = LiveDemo(rotated, tmp_path)
    second.wait_for("live: 2 live sessions restored")
    assert run(resumed_counts(second, tokens)) == [(1, True), (2, True)]
    assert second.stop() == 0  # the snapshot is now sealed under key 8
    snapshot = tmp_path / SNAPSHOT_FILE
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0x01
    snapshot.write_bytes(bytes(data))
    third = LiveDemo(rotated, tmp_path)
    try:
        third.wait_for("snapshot not restored, nothing loaded from it")
        third.wait_for("live: 0 live sessions restored")

        async def fresh() -> dict[str, Any]:
            client = await Client.open(third.ws, token=tokens[1], source="127.0.0.32")
            await client.close()
            return client.first

        first_answer = run(fresh())
        assert (first_answer["count"], first_answer["error"]) == (0, "unknown_session")
    finally:
        assert third.stop() == 0


def test_kill_9_loses_at_most_the_changes_of_the_last_persist_interval(tmp_path: Path) -> None:
    interval = 1.0
    env = {"CLIENTSTATE_DEMO_PERSIST_INTERVAL": str(interval)}
    first = LiveDemo(KEYRING, tmp_path, ["--store", "sqlite"], env=env)

    async def count_for(seconds: float) -> tuple[str, list[float]]:
        client = await Client.open(first.ws, source="127.0.0.33")
        acked: list[float] = []  # acked[i]: when count i + 1 was acknowledged (monotonic seconds)
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(acked) < 100_000:
            answer = await client.say("inc")
            acked.append(time.monotonic())
            assert answer["count"] == len(acked)
        first.kill()  # kill -9 with the connection open
        return client.token, acked

    token, acked = run(count_for(3.5 * interval))
    killed_at = time.monotonic()
    second = LiveDemo(KEYRING, tmp_path, ["--store", "sqlite"], env=env)
    try:
        (restored, resumed), = run(resumed_counts(second, [token]))
    finally:
        assert second.stop() == 0
    lost = len(acked) - restored
    assert resumed
    assert 0 < restored <= len(acked)  # some pass ran, and nothing unacknowledged appears
    lost_span = killed_at - acked[restored] if lost else 0.0
    print(f"\nkill -9: {lost} of {len(acked)} increments lost, acknowledged in the last {lost_span:.3f} s "
          f"(persist_interval {interval} s)")
    assert lost_span <= interval + 1.0  # only changes newer than the last pass (plus its own duration)


def test_kill_9_on_the_embedded_store_loses_what_came_after_the_last_clean_stop(tmp_path: Path) -> None:
    first = LiveDemo(KEYRING, tmp_path)
    tokens, _ = run(open_sessions(first, 2))
    assert first.stop() == 0  # snapshot: counts 1 and 2
    second = LiveDemo(KEYRING, tmp_path)
    second.wait_for("live: 2 live sessions restored")

    async def more() -> None:
        client = await Client.open(second.ws, token=tokens[1], source="127.0.0.34")
        assert (await client.say("inc"))["count"] == 3
        second.kill()

    run(more())
    third = LiveDemo(KEYRING, tmp_path)
    try:
        third.wait_for("live: 2 live sessions restored")  # the snapshot of the last clean stop
        assert run(resumed_counts(third, tokens)) == [(1, True), (2, True)]
    finally:
        assert third.stop() == 0
