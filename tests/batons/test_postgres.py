"""The psycopg 3 resources against the real PostgreSQL server (127.0.0.1:5432): blocking and async."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from clientstate import ConfigurationError
from clientstate.batons import (
    AsyncStreams,
    Limits,
    Stream,
    Streams,
    psycopg_acquirer,
    psycopg_async_acquirer,
)
from clientstate.testing import FrozenClock, fixed_keyring
from tests.batons.support import OWNER, kind


@pytest.fixture
def table(pg_conninfo: str) -> Iterator[str]:
    name = f"batons_{secrets.token_hex(6)}"
    with psycopg.connect(pg_conninfo, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {name} (body text)")
    yield name
    with psycopg.connect(pg_conninfo, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {name}")


def _rows(conninfo: str, table: str) -> list[str]:
    with psycopg.connect(conninfo) as connection:
        return [row[0] for row in connection.execute(f"SELECT body FROM {table} ORDER BY body")]


def test_commit_across_requests_is_visible_and_the_connection_closes(pg_conninfo: str, table: str,
                                                                      clock: FrozenClock) -> None:
    streams: Streams[psycopg.Connection[Any]] = Streams(fixed_keyring(1), clock=clock)
    stream = streams.open(psycopg_acquirer(pg_conninfo), principal=OWNER, scope="test")
    assert isinstance(stream, Stream)
    stream.resource.execute(f"INSERT INTO {table} VALUES ('one')")
    baton = streams.release(stream)
    assert _rows(pg_conninfo, table) == []  # open transaction: not visible yet
    again = streams.resume(baton, scope="test", principal=OWNER)
    assert isinstance(again, Stream)
    assert again.resource is stream.resource
    again.resource.execute(f"INSERT INTO {table} VALUES ('two')")
    again.resource.commit()
    streams.close(again)
    assert again.resource.closed
    assert _rows(pg_conninfo, table) == ["one", "two"]


def test_close_and_reaper_roll_back(pg_conninfo: str, table: str, clock: FrozenClock) -> None:
    streams: Streams[psycopg.Connection[Any]] = Streams(fixed_keyring(1), Limits(idle_timeout=5), clock=clock)
    acquire = psycopg_acquirer(pg_conninfo)
    closed = streams.open(acquire, principal=OWNER, scope="test")
    reaped = streams.open(acquire, principal="bob", scope="test")
    assert isinstance(closed, Stream)
    assert isinstance(reaped, Stream)
    closed.resource.execute(f"INSERT INTO {table} VALUES ('closed')")
    reaped.resource.execute(f"INSERT INTO {table} VALUES ('reaped')")
    streams.close(closed)
    baton = streams.release(reaped)
    clock.advance(6)
    assert streams.reap() == 1
    assert reaped.resource.closed
    assert _rows(pg_conninfo, table) == []
    assert kind(streams.resume(baton, scope="test", principal="bob")) == "stream_expired"


def test_read_only_streams_run_read_only_transactions(pg_conninfo: str, table: str, clock: FrozenClock) -> None:
    streams: Streams[psycopg.Connection[Any]] = Streams(fixed_keyring(1), clock=clock)
    stream = streams.open(psycopg_acquirer(pg_conninfo), principal=OWNER, scope="test", read_only=True)
    assert isinstance(stream, Stream)
    assert stream.resource.execute("SHOW transaction_read_only").fetchone() == ("on",)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        stream.resource.execute(f"INSERT INTO {table} VALUES ('no')")
    streams.close(stream)
    assert _rows(pg_conninfo, table) == []


def test_the_cap_bites_before_any_connection_is_made(pg_conninfo: str, clock: FrozenClock) -> None:
    streams: Streams[psycopg.Connection[Any]] = Streams(fixed_keyring(1), Limits(max_streams=2), clock=clock)
    connects: list[bool] = []
    inner = psycopg_acquirer(pg_conninfo)

    def counting(read_only: bool) -> psycopg.Connection[Any]:
        connects.append(read_only)
        return inner(read_only)

    held = [streams.open(counting, principal=f"u{i}", scope="test") for i in range(2)]
    assert all(isinstance(s, Stream) for s in held)
    assert kind(streams.open(counting, principal="u2", scope="test")) == "too_many_streams"
    assert connects == [False, False]
    streams.close_all()
    assert kind(streams.open(counting, principal="u3", scope="test")) == "registry_closed"
    for stream in held:
        assert isinstance(stream, Stream)
        streams.close(stream)
        assert stream.resource.closed


def test_a_statement_waiting_on_a_lock_keeps_its_stream_from_the_reaper(pg_conninfo: str, table: str,
                                                                         clock: FrozenClock) -> None:
    key = secrets.randbelow(2**31)
    streams: Streams[psycopg.Connection[Any]] = Streams(fixed_keyring(1), Limits(idle_timeout=5), clock=clock)
    stream = streams.open(psycopg_acquirer(pg_conninfo), principal=OWNER, scope="test")
    assert isinstance(stream, Stream)
    stream.resource.execute(f"INSERT INTO {table} VALUES ('kept')")
    with psycopg.connect(pg_conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        done = threading.Event()

        def slow() -> None:
            stream.resource.execute("SELECT pg_advisory_xact_lock(%s)", [key])  # waits for the holder
            done.set()

        worker = threading.Thread(target=slow)
        worker.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s"
        for _ in range(400):  # bounded: until the server reports the statement waiting (at most ~20 s)
            if holder.execute(waiting, ["%pg_advisory_xact_lock%"]).fetchone() == (1,):
                break
            done.wait(0.05)
        else:
            raise AssertionError("the statement never started waiting")
        clock.advance(1000)
        assert streams.reap() == 0
        assert kind(streams.kill(stream.id)) == "stream_busy"
        assert not stream.resource.closed
        holder.execute("SELECT pg_advisory_unlock(%s)", [key])
        assert done.wait(20)
        worker.join(20)
    stream.resource.commit()
    streams.close(stream)
    assert _rows(pg_conninfo, table) == ["kept"]


def test_async_connections_under_async_streams(pg_conninfo: str, table: str) -> None:
    async def main() -> None:
        clock = FrozenClock()
        streams: AsyncStreams[psycopg.AsyncConnection[Any]] = AsyncStreams(
            fixed_keyring(1), Limits(idle_timeout=5), clock=clock)
        acquire = psycopg_async_acquirer(pg_conninfo)
        stream = await streams.open(acquire, principal=OWNER, scope="test")
        assert isinstance(stream, Stream)
        await stream.resource.execute(f"INSERT INTO {table} VALUES ('async')")
        baton = await streams.release(stream)
        again = await streams.resume(baton, scope="test", principal=OWNER)
        assert isinstance(again, Stream)
        await again.resource.commit()
        await streams.close(again)
        assert again.resource.closed

        reader = await streams.open(acquire, principal=OWNER, scope="test", read_only=True)
        assert isinstance(reader, Stream)
        cursor = await reader.resource.execute("SHOW transaction_read_only")
        assert await cursor.fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await reader.resource.execute(f"INSERT INTO {table} VALUES ('no')")
        idle = await streams.release(reader)
        assert isinstance(idle, str)
        clock.advance(6)
        ended = asyncio.Event()
        streams.start_reaper(0.005, on_pass=lambda count: ended.set() if count else None)
        await asyncio.wait_for(ended.wait(), 20)
        assert reader.resource.closed
        assert kind(await streams.resume(idle, scope="test", principal=OWNER)) == "stream_expired"
        drained = await streams.close_all()
        assert (drained.closed, drained.failed, drained.busy) == (0, 0, 0)

    asyncio.run(main())
    assert _rows(pg_conninfo, table) == ["async"]


def test_autocommit_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="autocommit"):
        psycopg_acquirer("host=127.0.0.1", autocommit=True)
    with pytest.raises(ConfigurationError, match="conninfo"):
        psycopg_async_acquirer(5)  # type: ignore[arg-type]
