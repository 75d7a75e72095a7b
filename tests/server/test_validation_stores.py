"""Stores under damage: corrupt SQL rows, unwritable SQLite files, bad store URLs — clear errors, never a crash."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from clientstate import Binding, ConfigurationError, ErrorKind, StoreUnavailable
from clientstate._core.flow import perform_sync
from clientstate._core.store import CountSessions, Create, Get, ListSessions, Record
from clientstate.stores import SQLiteStore, store_from_url
from clientstate.stores.postgres import PostgresStore
from clientstate.testing import FrozenClock
from tests.server.conftest import Driver
from tests.server.test_behaviour import ACCOUNT, T0, handler, log_in

SID = b"s" * 16
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

# A table like the store's, without its constraints, so that a damaged row can be written into it.
LOOSE_TABLE = (
    "CREATE TABLE {table} (sid, version, principal, created_at, absolute_deadline, idle_deadline, last_touch, "
    "schema_version, blob, moved_to)"
)
GOOD = (SID, 1, "ada", T0, T0 + 100, T0 + 50, T0, 1, b"blob", None)


def damaged_sqlite(column: int, value: object, table: str = "clientstate_sessions") -> SQLiteStore:
    path = os.path.join(tempfile.mkdtemp(), "damaged.db")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(LOOSE_TABLE.format(table=table))
        row: list[Any] = list(GOOD)
        row[column] = value
        db.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        db.commit()
    return SQLiteStore(path, table=table)


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        (1, None, "version"),
        (1, "three", "version"),
        (3, 1.5, "created_at"),
        (5, b"\x01", "idle_deadline"),
        (7, None, "schema_version"),
        (8, None, "blob"),
        (8, "text, not binary", "blob"),
        (2, 42, "principal"),
        (2, b"\xff\xfe", "principal"),
        (9, b"short", "moved_to"),
        (9, 7, "moved_to"),
    ],
)
def test_a_corrupt_sqlite_row_is_store_unavailable_naming_the_table(column: int, value: object, named: str) -> None:
    store = damaged_sqlite(column, value, table="app_sessions")
    with pytest.raises(StoreUnavailable, match=rf"table 'app_sessions' holds a corrupt row: column {named}"):
        perform_sync(store, Get(SID))
    store.close()


def test_a_corrupt_id_in_a_listing_is_store_unavailable() -> None:
    store = damaged_sqlite(0, b"\x00" * 3)
    with pytest.raises(StoreUnavailable, match="column sid is 3 bytes, not 16 bytes"):
        perform_sync(store, ListSessions("ada", T0))
    assert perform_sync(store, CountSessions("ada", T0)) == 1
    store.close()


def test_an_intact_row_of_the_loose_table_still_loads() -> None:
    store = damaged_sqlite(1, 1)
    assert perform_sync(store, Get(SID)) == Record(*GOOD)
    store.close()


def test_a_request_over_a_corrupt_row_gets_store_unavailable_not_a_500(driver: Driver) -> None:
    path = os.path.join(tempfile.mkdtemp(), "s.db")
    store = SQLiteStore(path)
    binding = Binding(ACCOUNT, handler(store), FrozenClock(T0))
    cookie = log_in(driver, binding)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE clientstate_sessions SET version = 'garbage'")
        db.commit()
    slot, lines = driver.request(binding, cookie)
    assert slot.error is not None
    assert slot.error.kind is ErrorKind.STORE_UNAVAILABLE
    assert "table 'clientstate_sessions' holds a corrupt row: column version" in slot.error.detail
    assert lines == []  # the cookie is kept: a damaged row is not a logout
    store.close()


def test_a_corrupt_postgres_row_is_store_unavailable() -> None:
    table = f"corrupt_{os.getpid()}"
    store = PostgresStore.from_url(f"{PG_URL}?table={table}")
    try:
        perform_sync(store, Create(Record(*GOOD)))
        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f"UPDATE {table} SET sid = %s, moved_to = %s", (SID, b"xyz"))
        with pytest.raises(StoreUnavailable, match=rf"table '{table}' holds a corrupt row: column moved_to is 3"):
            perform_sync(store, Get(SID))
    finally:
        store.close()
        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f"DROP TABLE IF EXISTS {table}")


# --- SQLite files that cannot be written ----------------------------------------------------------


@contextlib.contextmanager
def read_only_directory() -> Iterator[Path]:
    """A directory holding an existing SQLite file, both really read-only for this process.

    As root (which ignores permission bits) the directory is a tmpfs mounted read-only; otherwise
    its permission bits are cleared.
    """
    directory = Path(tempfile.mkdtemp())
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)], check=True, timeout=30)
    try:
        seeded = SQLiteStore(directory / "existing.db")
        perform_sync(seeded, Get(SID))
        seeded.close()
        if root:
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True, timeout=30)
        else:
            (directory / "existing.db").chmod(0o444)
            directory.chmod(0o555)
        yield directory
    finally:
        if root:
            subprocess.run(["umount", "-l", str(directory)], check=True, timeout=30)  # lazy: even if a file is open
        else:
            directory.chmod(0o755)
        with contextlib.suppress(OSError):
            directory.rmdir()


@pytest.mark.parametrize("name", ["existing.db", "new.db"])
def test_a_read_only_sqlite_file_is_a_clear_store_unavailable(name: str) -> None:
    record = Record(*GOOD)
    with read_only_directory() as directory:
        store = SQLiteStore(directory / name)
        for _ in range(2):  # and again: a failed first connection is not kept half set up
            with pytest.raises(StoreUnavailable, match="cannot be written: the file system holding .* read-only"
                               if os.geteuid() == 0 else "cannot be written: the (file|directory)"):
                perform_sync(store, Create(record))
        assert store._connections == []
        store.close()


def test_a_missing_directory_is_named() -> None:
    store = SQLiteStore("/nonexistent-clientstate-dir/sessions.db")
    with pytest.raises(StoreUnavailable, match="directory '/nonexistent-clientstate-dir' does not exist"):
        perform_sync(store, Get(SID))


@pytest.mark.parametrize("path", ["", ":memory:", "a\x00b", 3, None])
def test_bad_sqlite_paths_are_configuration_errors(path: Any) -> None:
    with pytest.raises(ConfigurationError, match="SQLiteStore"):
        SQLiteStore(path)


def test_a_directory_is_not_a_sqlite_file() -> None:
    with pytest.raises(ConfigurationError, match="is a directory"):
        SQLiteStore(tempfile.mkdtemp())


# --- store URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [("sqlit:///x.db", "sqlite"), ("memroy://", "memory"), ("postgressql://h/db", "postgresql"),
     ("rediss+cluster://h", "redis+cluster"), ("Redis+Clustr://h", "redis+cluster")],
)
def test_a_misspelt_scheme_gets_a_suggestion(url: str, suggestion: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"did you mean {suggestion!r}?")):
        store_from_url(url)


def test_an_unknown_scheme_without_a_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown store URL scheme 'ftp' \(known: memory, sqlite, ") as info:
        store_from_url("ftp://host/x")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "named"),
    [("memory://?size=10", "size"), ("sqlite:///x.db?timout=3", "timout"),
     ("redis://127.0.0.1:6379/0?socket_timout=1", "socket_timout"),
     ("postgresql://postgres@127.0.0.1/test?sslmod=disable", "sslmod")],
)
def test_an_unknown_query_parameter_is_refused_by_name(url: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"unknown query parameter {named!r}"):
        store_from_url(url)


def test_known_query_parameters_still_work() -> None:
    store = store_from_url(f"sqlite:///{tempfile.mkdtemp()}/x.db?table=app_sessions&timeout=2")
    assert isinstance(store, SQLiteStore)
    assert store.table == "app_sessions"
    assert store.timeout == 2.0


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("unix://", "a unix:// store URL needs the socket's path: unix:///path/to/redis.sock"),
        ("unix:///", "a unix:// store URL needs the socket's path: unix:///path/to/redis.sock"),
        ("unix://tmp/redis.sock", "a unix:// store URL names no host: the socket path follows three slashes"),
        ("redis+cluster://", "a redis+cluster:// store URL needs a host: redis+cluster://host:port names a seed node"),
        ("redis+cluster://:6379", "a cluster has no default one"),
        ("redis+cluster://:s3cret@", "a redis+cluster:// store URL needs a host"),
        ("memory://x", "a memory:// store URL names no host or path, got a host: write memory://"),
        ("memory:///x", "a memory:// store URL names no host or path, got a path: write memory://"),
        ("memory://u:p@", "a memory:// store URL names no host or path, got a host"),
        ("sqlite:///x.db?table=x&table=y", "query parameter 'table' is given twice in a sqlite:// store URL; give it"),
        ("redis://127.0.0.1:6379/0?prefix=a:&prefix=b:", "query parameter 'prefix' is given twice in a redis://"),
        ("redis://127.0.0.1:6379/0?password=a&password=b", "query parameter 'password' is given twice"),
        ("postgresql://postgres@127.0.0.1/test?table=a&table=b", "'table' is given twice in a postgresql:// store"),
        ("mysql://root@127.0.0.1/test?table=a&table=b", "query parameter 'table' is given twice in a mysql://"),
        ("memory://?a&a", "query parameter 'a' is given twice in a memory:// store URL"),
        ("memory://#x", "a store URL takes no #fragment (no store reads one)"),
        ("sqlite:///x.db#main", "a store URL takes no #fragment"),
        ("redis://127.0.0.1:6379/0#", "a store URL takes no #fragment"),
        ("redis://:pa#ss@127.0.0.1:6379/0", "percent-encode a '#' in a password as %23"),
        ("mysql://root@127.0.0.1/test#x", "a store URL takes no #fragment"),
        ("memory", "a store URL starts with a scheme and '://' (did you mean 'memory://'?)"),
        ("Memory", "did you mean 'memory://'?"),
        ("memroy", "did you mean 'memory://'?"),
        ("sqlite", "did you mean 'sqlite:///file.db'?"),
        ("redis", "did you mean 'redis://host:port'?"),
        ("sessions.db", "a store URL starts with a scheme and '://', got none (known: memory, sqlite, "),
        ("", "a store URL starts with a scheme and '://', got none"),
    ],
)
def test_a_store_url_with_a_silently_dropped_part_is_refused(url: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)) as info:
        store_from_url(url)
    for secret in ("s3cret", "pa#ss", "ss@"):  # neither a password nor what follows an unencoded '#'
        assert secret not in str(info.value)


def test_every_store_url_in_use_still_works(tmp_path: Path) -> None:
    """The URL shapes README.md, the CLI and the tests use: each still builds its store (none connects yet)."""
    from clientstate.stores import MemoryStore
    from clientstate.stores.mysql import MySQLStore
    from clientstate.stores.redis import RedisStore

    built: list[tuple[str, type]] = [
        ("memory://", MemoryStore),
        ("memory:", MemoryStore),
        (f"sqlite:///{tmp_path}/a.db", SQLiteStore),
        (f"sqlite:///{tmp_path}/b.db?table=app_sessions&timeout=2", SQLiteStore),
        ("redis://127.0.0.1:6379/0", RedisStore),
        ("redis://127.0.0.1:6379/3?prefix=app:&timeout=0.5&max_connections=7", RedisStore),
        ("redis://:pw@h:6379/0", RedisStore),
        ("rediss://:pw@example.invalid:6380", RedisStore),
        ("redis+cluster://127.0.0.1:7000", RedisStore),
        ("redis+cluster://user:pw@127.0.0.1:7000?hash_tag=live&prefix=x:", RedisStore),
        (f"unix://{tmp_path}/redis.sock?password=pw", RedisStore),
        ("unix://:pw@/tmp/redis.sock", RedisStore),
        (f"{PG_URL}?table=cs_url_check&sslmode=disable", PostgresStore),
        ("postgres://postgres@127.0.0.1:5432/test?table=cs_x&max_size=3&timeout=2", PostgresStore),
        ("mysql://root@127.0.0.1:3306/test?table=cs_x&max_size=3&read_timeout=2", MySQLStore),
        ("mariadb://u:p%40ss@db.example:3307/app", MySQLStore),
    ]
    for url, kind in built:
        store = store_from_url(url)
        assert type(store) is kind, url
        close = getattr(store, "close", None)
        if close is not None:
            close()
    clustered = store_from_url("redis+cluster://127.0.0.1:7000")
    assert isinstance(clustered, RedisStore)
    assert (clustered.cluster, clustered._url) == (True, "redis://127.0.0.1:7000")
