"""Server-stored sessions: store operations and latency per request kind, clientstate next to its peers.

Usage::

    .venv/bin/python bench/stores.py [--quick] [--rounds N] [--requests N] [--stores memory,sqlite,...]
                                     [--markdown out.md] [--json out.json]

Prints a Markdown report. For every store clientstate has (memory, SQLite,
Redis, PostgreSQL, and MariaDB/MySQL when ``clientstate.stores.mysql`` is in
the tree; a store whose module or server is missing is reported and skipped)
and for each request kind — anonymous (no session cookie), forged (the session
cookie with one character changed), read-only, touching (a read when the idle
deadline is due to slide) and changing (one cart line changed) — it gives:

1. **Store operations per request**, counted in a separate pass: clientstate's
   store-protocol operations (a counting wrapper around the store, see
   :class:`CountingStore`), and, for clientstate and every peer alike, what
   went over the wire: Redis commands and round trips (redis-py's
   ``execute_command`` and pipeline ``execute``), SQL statements (psycopg and
   PyMySQL ``execute``, plus ``COMMIT`` and psycopg's implicit ``BEGIN``).
2. **Latency per request, p50 and p99**, and the **overhead** over the same
   framework without sessions (p50 − bare p50, same request). What is timed:
   one in-process call of the app — ASGI ``await app(scope, receive, send)``
   (Starlette, on one asyncio loop, store I/O awaited for real) or WSGI
   ``app(environ, start_response)`` with the body iterated and closed (Flask,
   Django) — from the call to the end of the response body, including the
   session middleware's load and save and every store round trip over
   loopback TCP (Redis, PostgreSQL, MariaDB) or the file (SQLite, WAL). Not
   timed: building the request dict; HTTP parsing and serialisation.

Peers, on the same store and the same state (``bench.workload.VALUE``, about
300 bytes as JSON): starsessions + Redis (Starlette), Flask-Session + Redis
(Flask), Django's ``db`` backend on PostgreSQL and ``cache`` backend on Redis
(Django). clientstate runs in each of those frameworks too, so every overhead
has a baseline of its own framework. See ``bench/stores_apps.py`` for the apps
and what "touching" means for each system.

Rounds are interleaved: each round runs one batch of every case, in an order
rotated from round to round; per case the report gives the **median over
rounds** of each round's p50 and p99. The targets (issue 9): anonymous and
forged requests 0 store operations, read-only 1 read, changing 1 write, and an
overhead per request at most half of the best peer's on the same store. The
exit status is 0 whether or not they are met (benchmark targets, not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):
    # Run as a script: import the bench package from the repository root, and keep
    # bench/ itself off sys.path (bench/profile.py would shadow the stdlib module).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.stores_apps import (
    FRAMEWORKS,
    PEERS,
    POSTGRES,
    REDIS_URL,
    RUN_PREFIX,
    app_for,
    cleanup_redis,
    django_cleanup,
)
from bench.workload import COOKIE_NAME, OTHER_COOKIES, tamper
from clientstate._core.store import Op, Steps, Store
from clientstate.stores.url import store_from_url

__all__ = ["CountingStore", "main"]

#: Request kinds, in report order.
KINDS: Final = ("anonymous", "forged", "read-only", "touching", "changing")
#: Stores in report order.
STORES: Final = ("memory", "sqlite", "redis", "postgres", "mysql")
#: A store's optional module (a store whose module is not in the tree yet is skipped, and the report says so).
STORE_MODULES: Final = {
    "redis": "clientstate.stores.redis",
    "postgres": "clientstate.stores.postgres",
    "mysql": "clientstate.stores.mysql",
}
#: clientstate's tables on the SQL servers (dropped at the end).
TABLE: Final = f"bench_stores_{os.getpid()}"
#: Store operations that write (everything else reads).
WRITES: Final = frozenset({"Create", "Update", "Touch", "Retire", "Delete", "DeleteSessions", "Sweep", "PutAll"})
PACKAGES: Final = (
    "clientstate", "msgspec", "cryptography", "redis", "psycopg", "psycopg-pool", "PyMySQL", "starlette",
    "starsessions", "flask", "Flask-Session", "django",
)
SUBJECT_NAMES: Final = {
    "clientstate": "clientstate", "starsessions": "starsessions", "flask-session": "Flask-Session",
    "django-db": "Django db", "django-cache": "Django cache", "bare": "bare",
}


# ----------------------------------------------------------------------------- counting


class CountingStore:
    """A store that counts the protocol operations asked of it, then lets ``inner`` perform them.

    ``steps`` counts the operation and yields ``inner``'s own commands, which
    :meth:`execute` / :meth:`aexecute` hand to ``inner``: so the commands are
    exactly ``inner``'s. Closing is left to the owner of ``inner``.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.shared = inner.shared
        self.ops: Counter[str] = Counter()

    def steps(self, op: Op) -> Steps:
        """Count ``op``, then run ``inner``'s steps for it."""
        self.ops[type(op).__name__] += 1
        result = yield from self.inner.steps(op)
        return result

    def execute(self, command: Any) -> Any:
        """``inner.execute``."""
        return self.inner.execute(command)

    async def aexecute(self, command: Any) -> Any:
        """``inner.aexecute``."""
        return await self.inner.aexecute(command)

    def close(self) -> None:
        """Nothing: ``inner`` belongs to the caller."""

    async def aclose(self) -> None:
        """Nothing: ``inner`` belongs to the caller."""


class Wire:
    """What goes to the servers while :meth:`watching`: Redis commands and round trips, SQL statements."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.trips = 0

    def reset(self) -> None:
        self.commands.clear()
        self.trips = 0

    def _redis(self, args: Sequence[Any]) -> None:
        name = args[0]
        self.commands[(name.decode() if isinstance(name, bytes) else str(name)).upper()] += 1

    def _sql(self, query: Any) -> None:
        text = query.decode() if isinstance(query, bytes) else str(query)
        self.commands[(text.split(None, 1) or ["?"])[0].upper()] += 1
        self.trips += 1

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Patch the client libraries' send paths to count (only for the counting pass: it costs time)."""
        patches: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
            original = owner.__dict__[name]
            patches.append((owner, name, original))
            setattr(owner, name, make(original))

        wire = self
        with suppress(ImportError):
            import redis
            import redis.asyncio
            import redis.asyncio.client
            import redis.client

            def sync_command(original: Any) -> Any:
                def counted(client: Any, *args: Any, **options: Any) -> Any:
                    wire._redis(args)
                    wire.trips += 1
                    return original(client, *args, **options)
                return counted

            def async_command(original: Any) -> Any:
                async def counted(client: Any, *args: Any, **options: Any) -> Any:
                    wire._redis(args)
                    wire.trips += 1
                    return await original(client, *args, **options)
                return counted

            def sync_pipeline(original: Any) -> Any:
                def counted(pipe: Any, *args: Any, **kwargs: Any) -> Any:
                    for command, _ in pipe.command_stack:
                        wire._redis(command)
                    wire.trips += 1
                    return original(pipe, *args, **kwargs)
                return counted

            def async_pipeline(original: Any) -> Any:
                async def counted(pipe: Any, *args: Any, **kwargs: Any) -> Any:
                    for command, _ in pipe.command_stack:
                        wire._redis(command)
                    wire.trips += 1
                    return await original(pipe, *args, **kwargs)
                return counted

            patch(redis.client.Redis, "execute_command", sync_command)
            patch(redis.asyncio.client.Redis, "execute_command", async_command)
            patch(redis.client.Pipeline, "execute", sync_pipeline)
            patch(redis.asyncio.client.Pipeline, "execute", async_pipeline)
        with suppress(ImportError):
            import psycopg
            from psycopg.pq import TransactionStatus

            def begins(connection: Any) -> None:
                if not connection.autocommit and connection.info.transaction_status == TransactionStatus.IDLE:
                    wire.commands["BEGIN"] += 1  # psycopg sends it before the statement, same round trip
                    wire.trips += 1

            def sync_execute(original: Any) -> Any:
                def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                    begins(cursor.connection)
                    wire._sql(query)
                    return original(cursor, query, *args, **kwargs)
                return counted

            def async_execute(original: Any) -> Any:
                async def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                    begins(cursor.connection)
                    wire._sql(query)
                    return await original(cursor, query, *args, **kwargs)
                return counted

            def sync_commit(original: Any) -> Any:
                def counted(connection: Any) -> Any:
                    if connection.info.transaction_status != TransactionStatus.IDLE:
                        wire._sql("COMMIT")
                    return original(connection)
                return counted

            def async_commit(original: Any) -> Any:
                async def counted(connection: Any) -> Any:
                    if connection.info.transaction_status != TransactionStatus.IDLE:
                        wire._sql("COMMIT")
                    return await original(connection)
                return counted

            patch(psycopg.Cursor, "execute", sync_execute)
            patch(psycopg.AsyncCursor, "execute", async_execute)
            patch(psycopg.Connection, "commit", sync_commit)
            patch(psycopg.AsyncConnection, "commit", async_commit)
        with suppress(ImportError):
            import pymysql.cursors

            def mysql_execute(original: Any) -> Any:
                def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                    wire._sql(query)
                    return original(cursor, query, *args, **kwargs)
                return counted

            patch(pymysql.cursors.Cursor, "execute", mysql_execute)
        try:
            yield
        finally:
            for owner, name, original in reversed(patches):
                setattr(owner, name, original)


# ----------------------------------------------------------------------------- requests


@dataclass
class Request:
    """One request kind against one app: what is sent and what must come back."""

    path: str
    cookie: str
    body: bytes


def _scope(request: Request) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": request.path, "raw_path": request.path.encode(),
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"bench"), (b"user-agent", b"bench/stores"), (b"cookie", request.cookie.encode())],
    }


def _environ(request: Request) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": request.path, "QUERY_STRING": "",
        "SERVER_NAME": "bench", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "bench", "HTTP_USER_AGENT": "bench/stores", "HTTP_COOKIE": request.cookie,
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }


class Driver:
    """Calls an ASGI app (on the run's event loop) or a WSGI app, one request at a time."""

    def __init__(self, app: Any, asgi: bool, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.asgi = asgi
        self.loop = loop

    def exchange(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request, untimed: status, headers, body."""
        if self.asgi:
            return self.loop.run_until_complete(self._asgi_exchange(request))
        return self._wsgi_exchange(request)

    async def _asgi_exchange(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        sent: list[dict[str, Any]] = []
        done = False

        async def receive() -> dict[str, Any]:
            nonlocal done
            if done:
                return {"type": "http.disconnect"}
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(_scope(request), receive, send)
        start = sent[0]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])

    def _wsgi_exchange(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        got: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            got[:] = [status, headers]
            return None

        result = self.app(_environ(request), start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(got[0].split()[0]), list(got[1]), body

    def batch(self, request: Request, n: int) -> list[float]:
        """``n`` timed requests; seconds each (see the module docstring for what is timed)."""
        if self.asgi:
            return self.loop.run_until_complete(self._asgi_batch(request, n))
        return self._wsgi_batch(request, n)

    async def _asgi_batch(self, request: Request, n: int) -> list[float]:
        app = self.app
        times = []
        clock = time.perf_counter
        for _ in range(n):
            scope = _scope(request)
            state = [False]

            async def receive(state: list[bool] = state) -> dict[str, Any]:
                if state[0]:
                    return {"type": "http.disconnect"}
                state[0] = True
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                return None

            start = clock()
            await app(scope, receive, send)
            times.append(clock() - start)
        return times

    def _wsgi_batch(self, request: Request, n: int) -> list[float]:
        app = self.app
        times = []
        clock = time.perf_counter

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return None

        for _ in range(n):
            environ = _environ(request)
            start = clock()
            result = app(environ, start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
            times.append(clock() - start)
        return times


def _session_cookie(headers: list[tuple[str, str]]) -> str:
    for name, raw in headers:
        value = raw.strip()  # Django's lines start with a space
        if name.lower() == "set-cookie" and value.startswith(f"{COOKIE_NAME}="):
            return value.split(";", 1)[0].split("=", 1)[1].strip("'\"")
    raise AssertionError(f"no {COOKIE_NAME} cookie in {headers!r}")


def _cookie(value: str | None) -> str:
    return OTHER_COOKIES if value is None else f"{OTHER_COOKIES}; {COOKIE_NAME}={value}"


@dataclass
class Subject:
    """One session system on one framework and store: its two apps (fixed and sliding) and its requests."""

    store: str
    framework: str
    kind: str
    fixed: Driver
    sliding: Driver
    requests: dict[str, Request] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{SUBJECT_NAMES[self.kind]} ({self.framework})"

    def driver(self, kind: str) -> Driver:
        return self.sliding if kind == "touching" else self.fixed

    def login(self) -> None:
        """Log in on both apps and build the requests of every kind from the cookies they set."""
        if self.kind == "bare":
            value = "x" * 60  # the same cookie header shape, ignored
            fixed = sliding = value
        else:
            fixed, sliding = (self._login(driver) for driver in (self.fixed, self.sliding))
        answer = "ok" if self.kind == "bare" else None
        self.requests = {
            "anonymous": Request("/read", _cookie(None), (answer or "anonymous").encode()),
            "forged": Request("/read", _cookie(tamper(fixed)), (answer or "anonymous").encode()),
            "read-only": Request("/read", _cookie(fixed), (answer or "48213").encode()),
            "touching": Request("/read", _cookie(sliding), (answer or "48213").encode()),
            "changing": Request("/change", _cookie(fixed), (answer or "changed").encode()),
        }

    @staticmethod
    def _login(driver: Driver) -> str:
        status, headers, body = driver.exchange(Request("/login", OTHER_COOKIES, b"welcome"))
        assert (status, body) == (200, b"welcome"), (status, body)
        return _session_cookie(headers)

    def check(self) -> None:
        """Every request kind once: status 200 and the expected body (the session really loaded)."""
        for kind, request in self.requests.items():
            status, _, body = self.driver(kind).exchange(request)
            if (status, body) != (200, request.body):
                raise AssertionError(f"{self.store}/{self.label}/{kind}: got {status} {body!r}, want {request.body!r}")


# ----------------------------------------------------------------------------- stores


def store_url(name: str, directory: str) -> str:
    """clientstate's store URL for ``name`` (own prefix or table, so nothing of other users is touched)."""
    return {
        "memory": "memory://",
        "sqlite": f"sqlite:///{directory}/bench-stores.db",
        "redis": f"{REDIS_URL}?prefix={RUN_PREFIX}cs:",
        "postgres": f"postgresql://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{POSTGRES['dbname']}"
        f"?table={TABLE}",
        "mysql": f"mysql://root@127.0.0.1:3306/test?table={TABLE}",
    }[name]


def why_unavailable(name: str) -> str | None:
    """Why store ``name`` cannot run here (its module is not in the tree yet, or its client is missing), or None."""
    module = STORE_MODULES.get(name)
    if module is None:
        return None
    try:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not in the tree yet"
        importlib.import_module(module)
    except ImportError as exc:
        return f"{module} cannot be imported ({exc})"
    return None


def drop_tables(names: Sequence[str]) -> None:
    """Drop clientstate's tables of this run on PostgreSQL and MariaDB."""
    if "postgres" in names:
        with suppress(Exception):
            import psycopg

            with psycopg.connect(**POSTGRES, autocommit=True) as connection:  # type: ignore[arg-type]
                connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
    if "mysql" in names:
        with suppress(Exception):
            import pymysql

            mysql = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")
            try:
                with mysql.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
            finally:
                mysql.close()


# ----------------------------------------------------------------------------- the run


@dataclass
class Result:
    """One case's figures: p50/p99 per round (seconds)."""

    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)

    @property
    def median_p50(self) -> float:
        return statistics.median(self.p50)

    @property
    def median_p99(self) -> float:
        return statistics.median(self.p99)


class Run:
    """Builds every subject, counts, times, reports."""

    def __init__(self, stores: Sequence[str], rounds: int, requests: int, say: Callable[[str], None]) -> None:
        self.say = say
        self.rounds = rounds
        self.requests = requests
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.directory = tempfile.mkdtemp(prefix="clientstate-bench-stores-")
        self.skipped: dict[str, str] = {}
        self.stores: list[str] = []
        for name in stores:
            reason = why_unavailable(name)
            if reason is None:
                self.stores.append(name)
            else:
                self.skipped[name] = reason
        self.opened: dict[str, Store] = {}
        self.redis_sync: Any = None
        self.redis_async: Any = None
        if "redis" in self.stores:
            import redis
            import redis.asyncio

            self.redis_sync = redis.Redis.from_url(REDIS_URL)
            self.redis_async = redis.asyncio.Redis.from_url(REDIS_URL)
        self.counts: dict[tuple[str, str, str], tuple[Counter[str], Counter[str], float]] = {}
        self.results: dict[tuple[str, str, str, str], Result] = {}

    # --- building ------------------------------------------------------------------------------

    def frameworks(self, store: str) -> list[tuple[str, str]]:
        """(framework, kind) of every subject on ``store``: clientstate on each framework a peer of this store
        uses (Starlette and Flask everywhere), and the peers of this store."""
        peers = [(framework, kind) for kind, (framework, on) in PEERS.items() if on == store]
        used = {framework for framework, _ in peers} | {"starlette", "flask"}
        return [(f, "clientstate") for f in FRAMEWORKS if f in used] + peers

    def store(self, name: str) -> Store:
        if name not in self.opened:
            self.opened[name] = store_from_url(store_url(name, self.directory))
        return self.opened[name]

    def subject(self, store: str, framework: str, kind: str, *, counting: bool) -> tuple[Subject, list[Any]]:
        """A logged-in, checked subject; with ``counting``, clientstate's store is wrapped by a CountingStore."""
        counters: list[Any] = []

        def make(sliding: bool) -> Driver:
            inner: Store | None = self.store(store) if kind == "clientstate" else None
            if inner is not None and counting:
                inner = CountingStore(inner)
                counters.append(inner)
            app = app_for(framework, kind, inner, sliding=sliding, redis_sync=self.redis_sync,
                          redis_async=self.redis_async)
            return Driver(app, framework == "starlette", self.loop)

        subject = Subject(store, framework, kind, make(False), make(True))
        subject.login()
        subject.check()
        return subject, counters

    # --- counting ------------------------------------------------------------------------------

    def count(self) -> None:
        """Store operations and wire commands per request, every subject and kind (steady state: after warm-up)."""
        per = 10
        wire = Wire()
        for store in self.stores:
            for framework, kind in self.frameworks(store):
                subject, counters = self.subject(store, framework, kind, counting=True)
                for request_kind in KINDS:
                    driver, request = subject.driver(request_kind), subject.requests[request_kind]
                    for _ in range(3):
                        driver.exchange(request)  # warm-up: script loading, pool connections, first reads
                    for counter in counters:
                        counter.ops.clear()
                    with wire.watching():
                        wire.reset()
                        for _ in range(per):
                            driver.exchange(request)
                    ops: Counter[str] = Counter()
                    for counter in counters:
                        ops.update(counter.ops)
                    self.counts[(store, subject.label, request_kind)] = (
                        Counter({k: v / per for k, v in ops.items()}),
                        Counter({k: v / per for k, v in wire.commands.items()}),
                        wire.trips / per,
                    )
            self.say(f"counted {store}")

    # --- timing --------------------------------------------------------------------------------

    def time(self) -> None:
        """Interleaved rounds over every case; per case and round, p50 and p99 of a batch."""
        cases: list[tuple[tuple[str, str, str, str], Driver, Request]] = []
        for framework in FRAMEWORKS:
            if framework == "django" and not any(
                f == "django" for store in self.stores for f, _ in self.frameworks(store)
            ):
                continue
            bare, _ = self.subject("-", framework, "bare", counting=False)
            for request_kind in KINDS:
                cases.append((("-", framework, bare.label, request_kind), bare.driver(request_kind),
                              bare.requests[request_kind]))
        for store in self.stores:
            for framework, kind in self.frameworks(store):
                subject, _ = self.subject(store, framework, kind, counting=False)
                for request_kind in KINDS:
                    cases.append(((store, framework, subject.label, request_kind), subject.driver(request_kind),
                                  subject.requests[request_kind]))
        for _key, driver, request in cases:
            driver.batch(request, max(10, self.requests // 5))  # warm-up
        self.say(f"{len(cases)} cases, {self.rounds} rounds of {self.requests} requests each")
        for key, _, _ in cases:
            self.results[key] = Result()
        for round_no in range(self.rounds):
            shift = (round_no * 7) % len(cases)
            for key, driver, request in cases[shift:] + cases[:shift]:
                gc.collect()
                gc.disable()
                try:
                    times = driver.batch(request, self.requests)
                finally:
                    gc.enable()
                result = self.results[key]
                result.p50.append(statistics.median(times))
                result.p99.append(statistics.quantiles(times, n=100, method="inclusive")[98])
            self.say(f"round {round_no + 1}/{self.rounds} done")

    # --- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        for store in self.opened.values():
            with suppress(Exception):
                self.loop.run_until_complete(store.aclose())
            with suppress(Exception):
                store.close()
        if self.redis_async is not None:
            with suppress(Exception):
                self.loop.run_until_complete(self.redis_async.aclose())
        if self.redis_sync is not None:
            self.redis_sync.close()
        django_cleanup()
        if "redis" in self.stores:
            cleanup_redis()
        drop_tables(self.stores)
        with suppress(Exception):
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


# ----------------------------------------------------------------------------- report


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}" if seconds >= 1e-4 else f"{seconds * 1e6:.1f}"


def _signed(seconds: float) -> str:
    return ("+" if seconds >= 0 else "−") + _us(abs(seconds))


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def _ops(ops: Counter[str]) -> str:
    if not ops:
        return "none"
    reads = sum(v for k, v in ops.items() if k not in WRITES)
    writes = sum(v for k, v in ops.items() if k in WRITES)
    detail = " + ".join(f"{_number(v)} {k}" if v != 1 else k for k, v in sorted(ops.items()))
    return f"{_number(reads)} R / {_number(writes)} W ({detail})"


def _commands(commands: Counter[str], trips: float) -> str:
    if not commands:
        return "nothing"
    detail = ", ".join(f"{_number(v)}×{k}" if v != 1 else k for k, v in sorted(commands.items()))
    return f"{detail} ({_number(trips)} RTT)"


def _same(cells: dict[str, str]) -> str:
    """One cell if every framework gave the same text, else ``framework: text`` for each."""
    if len(set(cells.values())) == 1:
        return next(iter(cells.values()))
    return "; ".join(f"{framework}: {text}" for framework, text in cells.items())


def machine() -> list[str]:
    """The report's top lines: date, machine, CPython, this benchmark's packages, git commit."""
    from bench.machine import machine_info, machine_lines

    meta = machine_info(PACKAGES)
    return [f"- date: {meta['date']}", *machine_lines(meta)]


@dataclass
class Target:
    store: str
    what: str
    measured: str
    met: bool
    rounds: str = ""


def report(run: Run, args: argparse.Namespace) -> tuple[list[str], list[Target]]:
    lines = ["# Server-stored sessions: store operations and latency per request", "", *machine(),
             f"- rounds: {run.rounds} × {run.requests} requests per case{' (--quick: rough)' if args.quick else ''}",
             ""]
    for name, reason in run.skipped.items():
        lines.append(f"- **{name}: skipped**: {reason}")
    if run.skipped:
        lines.append("")
    targets: list[Target] = []
    bare = {(framework, kind): run.results[key] for key in run.results
            for framework, kind in [(key[1], key[3])] if key[0] == "-"}
    for store in run.stores:
        subjects = [label for (s, _f, label, k) in run.results if s == store and k == KINDS[0]]
        frameworks = {label: f for (s, f, label, k) in run.results if s == store and k == KINDS[0]}
        lines += [f"## {store}: `{store_url(store, '<tmp>').replace(RUN_PREFIX, '<run>:')}`", ""]
        # Operations.
        mine = [label for label in subjects if label.startswith("clientstate")]
        peers = [label for label in subjects if not label.startswith("clientstate")]
        wired = store in ("redis", "postgres", "mysql")
        lines += ["Store operations per request. clientstate: protocol operations (R reads, W writes), the same in "
                  f"every framework it ran in ({', '.join(frameworks[label] for label in mine)}) unless shown per "
                  "framework" + ("; everyone: what was sent to the server (RTT: round trips)" if wired else "") + ":",
                  ""]
        heads = ["clientstate: operations", *(["clientstate: sent"] if wired else []), *peers]
        lines.append("| request | " + " | ".join(heads) + " |")
        lines.append("|---|" + "---|" * len(heads))
        for kind in KINDS:
            counts = {label: run.counts[(store, label, kind)] for label in subjects}
            row = [_same({frameworks[label]: _ops(counts[label][0]) for label in mine})]
            if wired:
                row.append(_same({frameworks[label]: _commands(*counts[label][1:]) for label in mine}))
            row += [_commands(*counts[label][1:]) for label in peers]
            lines.append(f"| {kind} | " + " | ".join(row) + " |")
        lines.append("")
        # Latency.
        lines += ["Latency per request, µs: p50 / p99, and the overhead over the same framework without sessions "
                  "(p50 − bare p50):", ""]
        lines.append("| subject | " + " | ".join(KINDS) + " |")
        lines.append("|---|" + "---|" * len(KINDS))
        for framework in FRAMEWORKS:
            if any(f == framework for f in frameworks.values()):
                row = [f"{_us(bare[(framework, k)].median_p50)} / {_us(bare[(framework, k)].median_p99)}"
                       for k in KINDS]
                lines.append(f"| bare ({framework}) | " + " | ".join(row) + " |")
        for label in subjects:
            framework = frameworks[label]
            row = []
            for kind in KINDS:
                result = run.results[(store, framework, label, kind)]
                overhead = result.median_p50 - bare[(framework, kind)].median_p50
                row.append(f"{_us(result.median_p50)} / {_us(result.median_p99)} ({_signed(overhead)})")
            lines.append(f"| {label} | " + " | ".join(row) + " |")
        lines.append("")
        targets += store_targets(run, store, subjects, frameworks, bare)
    lines += ["## Targets", "", "| store | target | measured | rounds meeting it | met |", "|---|---|---|---|---|"]
    for target in targets:
        lines.append(f"| {target.store} | {target.what} | {target.measured} | {target.rounds} | "
                     f"{'**yes**' if target.met else 'NO'} |")
    met = sum(t.met for t in targets)
    lines += ["", f"{met} of {len(targets)} targets met."]
    return lines, targets


def store_targets(
    run: Run, store: str, subjects: list[str], frameworks: dict[str, str], bare: dict[tuple[str, str], Result]
) -> list[Target]:
    targets = []
    mine = [label for label in subjects if label.startswith("clientstate")]
    for kind, want in (("anonymous", (0, 0)), ("forged", (0, 0)), ("read-only", (1, 0)), ("changing", (None, 1))):
        figures = set()
        ok = True
        for label in mine:
            ops = run.counts[(store, label, kind)][0]
            reads = sum(v for k, v in ops.items() if k not in WRITES)
            writes = sum(v for k, v in ops.items() if k in WRITES)
            figures.add(f"{_number(reads)} R / {_number(writes)} W")
            ok = ok and (want[0] is None or reads == want[0]) and writes == want[1]
        what = {"anonymous": "anonymous: 0 store operations", "forged": "forged: 0 store operations",
                "read-only": "read-only: 1 read, no write", "changing": "changing: 1 write"}[kind]
        targets.append(Target(store, what, ", ".join(sorted(figures)), ok))
    peers = [label for label in subjects if not label.startswith("clientstate")]
    if not peers:
        return targets
    for kind in KINDS:
        def overhead(label: str, round_no: int | None = None, kind: str = kind) -> float:
            result = run.results[(store, frameworks[label], label, kind)]
            base = bare[(frameworks[label], kind)]
            if round_no is None:
                return result.median_p50 - base.median_p50
            return result.p50[round_no] - base.p50[round_no]

        def verdict(round_no: int | None = None) -> tuple[float, float, str]:
            best = min(peers, key=lambda label: overhead(label, round_no))
            ours = max(overhead(label, round_no) for label in mine)
            return ours, overhead(best, round_no), best

        ours, theirs, best = verdict()
        rounds = sum(1 for r in range(run.rounds) if verdict(r)[0] <= 0.5 * verdict(r)[1])
        ratio = ours / theirs if theirs > 0 else float("inf")
        targets.append(Target(
            store, f"{kind}: overhead ≤ ½ of the best peer's",
            f"clientstate {_us(ours)} µs (worst framework) vs {best} {_us(theirs)} µs = {ratio:.2f}×",
            ours <= 0.5 * theirs, f"{rounds} of {run.rounds}",
        ))
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/stores.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 rounds of 40 requests (under a minute)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 7; --quick 3)")
    parser.add_argument("--requests", type=int, default=None,
                        help="requests per case and round (default 200; --quick 40)")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated stores (default: all)")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    requests = args.requests or (40 if args.quick else 200)
    names = [name.strip() for name in args.stores.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STORES))
    if unknown:
        parser.error(f"unknown stores: {', '.join(unknown)} (known: {', '.join(STORES)})")
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {line}", file=sys.stderr, flush=True)

    run = Run(names, rounds, requests, say)
    try:
        run.count()
        run.time()
    finally:
        run.close()
    lines, targets = report(run, args)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json is not None:
        raw = {
            "counts": {"/".join(k): {"ops": dict(v[0]), "wire": dict(v[1]), "round_trips": v[2]}
                       for k, v in run.counts.items()},
            "latency": {"/".join(k): {"p50": v.p50, "p99": v.p99} for k, v in run.results.items()},
            "targets": [t.__dict__ for t in targets],
            "skipped": run.skipped,
        }
        args.json.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
