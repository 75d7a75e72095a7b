"""The sqlite3 resource: a pinned connection inside BEGIN, guarded, read-only when asked, against real files."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from clientstate import ConfigurationError
from clientstate.batons import Limits, SQLiteResource, Stream, Streams, sqlite3_acquirer
from clientstate.testing import FrozenClock, fixed_keyring
from tests.batons.support import OWNER, SCOPE, kind


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript("PRAGMA journal_mode = WAL; CREATE TABLE notes (body TEXT);")
    connection.close()
    return path


@pytest.fixture
def streams(clock: FrozenClock) -> Iterator[Streams[SQLiteResource]]:
    registry: Streams[SQLiteResource] = Streams(fixed_keyring(1), Limits(idle_timeout=5), clock=clock)
    yield registry
    registry.close_all()


def _count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM notes").fetchone()
    connection.close()
    return int(count)


def _open(streams: Streams[SQLiteResource], database: Path, read_only: bool = False,
          **options: object) -> Stream[SQLiteResource]:
    stream = streams.open(sqlite3_acquirer(database, **options), principal=OWNER, scope=SCOPE,  # type: ignore[arg-type]
                          read_only=read_only)
    assert isinstance(stream, Stream)
    return stream


def test_work_spans_requests_and_commit_makes_it_visible(streams: Streams[SQLiteResource], database: Path) -> None:
    stream = _open(streams, database)
    assert stream.resource.in_transaction
    stream.resource.query("INSERT INTO notes VALUES (?)", ["one"])
    baton = streams.release(stream)
    assert isinstance(baton, str)
    assert _count(database) == 0  # not committed: another connection does not see it
    again = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(again, Stream)
    assert again.resource is stream.resource
    result = again.resource.query("SELECT body FROM notes WHERE body = :b", {"b": "one"})
    assert (result.columns, result.rows, result.truncated) == (("body",), (("one",),), False)
    again.resource.commit()
    streams.close(again)
    assert _count(database) == 1
    with pytest.raises(sqlite3.ProgrammingError):
        again.resource.connection.execute("SELECT 1")  # closed


def test_closing_without_commit_rolls_back(streams: Streams[SQLiteResource], database: Path) -> None:
    stream = _open(streams, database)
    assert stream.resource.query("INSERT INTO notes VALUES ('gone')").rowcount == 1
    streams.close(stream)
    assert _count(database) == 0


def test_the_reaper_rolls_back_an_idle_transaction(streams: Streams[SQLiteResource], database: Path,
                                                    clock: FrozenClock) -> None:
    stream = _open(streams, database)
    stream.resource.query("INSERT INTO notes VALUES ('idle')")
    baton = streams.release(stream)
    clock.advance(6)
    assert streams.reap() == 1
    assert _count(database) == 0
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "stream_expired"


def test_read_only_streams_cannot_write_and_cannot_switch_it_off(streams: Streams[SQLiteResource],
                                                                 database: Path) -> None:
    stream = _open(streams, database, read_only=True)
    assert stream.read_only
    assert stream.resource.read_only
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        stream.resource.query("INSERT INTO notes VALUES ('no')")
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        stream.resource.query("PRAGMA query_only = OFF")
    assert stream.resource.query("SELECT count(*) FROM notes").rows == ((0,),)


@pytest.mark.parametrize("sql", ["COMMIT", "ROLLBACK", "BEGIN", "END", "ATTACH DATABASE ':memory:' AS x",
                                 "PRAGMA journal_mode = DELETE"])
def test_the_guard_keeps_the_transaction_and_the_file(streams: Streams[SQLiteResource], database: Path,
                                                      sql: str) -> None:
    stream = _open(streams, database)
    stream.resource.query("INSERT INTO notes VALUES ('kept')")
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        stream.resource.query(sql)
    assert stream.resource.in_transaction
    assert _count(database) == 0
    stream.resource.commit()
    assert _count(database) == 1


def test_without_the_guard_sql_may_end_the_transaction(streams: Streams[SQLiteResource], database: Path) -> None:
    stream = _open(streams, database, guard=False)
    stream.resource.query("INSERT INTO notes VALUES ('x')")
    stream.resource.query("COMMIT")
    assert not stream.resource.in_transaction
    assert _count(database) == 1


def test_statement_timeout_interrupts_a_runaway_query(streams: Streams[SQLiteResource], database: Path) -> None:
    stream = _open(streams, database, statement_timeout=0.05)
    forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        stream.resource.query(forever)
    assert stream.resource.query("SELECT 7").rows == ((7,),)  # the next statement has its own budget


def test_max_rows_truncates(streams: Streams[SQLiteResource], database: Path) -> None:
    stream = _open(streams, database)
    for i in range(5):
        stream.resource.query("INSERT INTO notes VALUES (?)", [str(i)])
    result = stream.resource.query("SELECT body FROM notes ORDER BY body", max_rows=3)
    assert (result.rows, result.truncated) == ((("0",), ("1",), ("2",)), True)


def test_immediate_begin_takes_the_write_lock_at_open(streams: Streams[SQLiteResource], database: Path) -> None:
    _open(streams, database, begin="IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        streams.open(sqlite3_acquirer(database, begin="IMMEDIATE", timeout=0.01), principal="b", scope=SCOPE)
    assert len(streams.list()) == 1  # the failed acquire freed its place


def test_connections_move_between_threads(streams: Streams[SQLiteResource], database: Path) -> None:
    stream = _open(streams, database)
    baton = streams.release(stream)
    seen: list[object] = []

    def other_thread() -> None:
        again = streams.resume(baton, scope=SCOPE, principal=OWNER)
        assert isinstance(again, Stream)
        seen.append(again.resource.query("SELECT 1").rows)
        streams.close(again)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert seen == [((1,),)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"database": ":memory:"}, "memory"), ({"database": 5}, "database"), ({"begin": "LATER"}, "begin"),
     ({"statement_timeout": 0}, "statement_timeout"), ({"statement_timeout": True}, "statement_timeout"),
     ({"setup": "pragma"}, "setup")],
)
def test_bad_acquirer_arguments(database: Path, arguments: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"database": database, **arguments}
    with pytest.raises(ConfigurationError, match=message):
        sqlite3_acquirer(**options)  # type: ignore[arg-type]
