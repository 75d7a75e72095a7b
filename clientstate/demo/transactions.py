"""The demo's interactive SQL transactions over HTTP: one small SQLite database, streams and batons.

Each logged-in user can open transactions on the demo's database and run
statements in them over several requests; the principal is the demo state's
``user``, the scope is the database name ``"demo"``. Every response carries
the next baton; a baton works once.

Routes (JSON bodies; ``401 {"error": "login_required"}`` without a logged-in state):

* ``POST /api/tx`` ``{"read_only": bool}`` (the body may be empty) → 200 ``{"baton"}``
* ``POST /api/tx/exec`` ``{"baton", "sql", "params"}`` → 200
  ``{"columns", "rows", "truncated", "baton"}``; ``params`` is a list (for
  ``?``) or an object (for ``:name``) of JSON scalars; at most 200 rows come
  back, ``bytes`` as hex, non-finite numbers as strings. A failing statement
  answers 400 ``{"error": "sql_error", "detail", "baton"}`` and the transaction
  goes on (without ``"baton"`` and with ``"ended": true`` when SQLite ended it).
* ``POST /api/tx/commit`` ``{"baton"}`` → 200 ``{"committed": true}``, or 409
  ``{"error": "commit_failed", "detail"}`` (the transaction is rolled back)
* ``POST /api/tx/rollback`` ``{"baton"}`` → 200 ``{"rolled_back": true}``
* ``GET /api/tx`` → 200 ``{"streams": [...], "limits": {...}}``: the user's open streams

Refused batons answer ``{"error": kind, "detail"}`` with a 4xx status:
``bad_baton`` 400, ``principal_mismatch`` and ``scope_mismatch`` 403,
``baton_reused`` and ``stream_busy`` 409, ``stream_expired`` and
``registry_closed`` 410, ``too_many_streams`` 429.

Limits come from the environment (seconds, or a count; zero or less means the
library default): ``CLIENTSTATE_DEMO_TX_IDLE_TIMEOUT`` (default 60),
``CLIENTSTATE_DEMO_TX_MAX_LIFETIME`` (default 600),
``CLIENTSTATE_DEMO_TX_MAX_STREAMS`` (default 8). Statements are interrupted
after 2 s. The database lives in a temporary directory of this process and is
removed at shutdown (or, after a kill, by the next demo process); its streams, like every stream, live
only in this process.
"""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec

from clientstate._core.errors import ConfigurationError
from clientstate._core.keys import Keyring, generate_key
from clientstate.batons import (
    BatonError,
    BatonErrorKind,
    Limits,
    SQLiteResource,
    Stream,
    Streams,
    sqlite3_acquirer,
)

__all__ = ["ENV_PREFIX", "MAX_ROWS", "SCOPE", "Transactions", "is_tx_path"]

#: The scope of every stream: the demo database's name.
SCOPE: Final = "demo"
#: Rows one ``exec`` returns at most.
MAX_ROWS: Final = 200
#: Prefix of the environment variables that set the limits.
ENV_PREFIX: Final = "CLIENTSTATE_DEMO_TX_"
_STATEMENT_SECONDS: Final = 2.0
_LOCK_WAIT_SECONDS: Final = 2.0
_MAX_SQL: Final = 10_000
_DIR_PREFIX: Final = "clientstate-demo-tx-"
_ROUTES: Final = {"/api/tx": ("GET", "POST"), "/api/tx/exec": ("POST",), "/api/tx/commit": ("POST",),
                  "/api/tx/rollback": ("POST",)}
_STATUS: Final = {
    BatonErrorKind.BAD_BATON: 400,
    BatonErrorKind.PRINCIPAL_MISMATCH: 403,
    BatonErrorKind.SCOPE_MISMATCH: 403,
    BatonErrorKind.BATON_REUSED: 409,
    BatonErrorKind.STREAM_BUSY: 409,
    BatonErrorKind.STREAM_EXPIRED: 410,
    BatonErrorKind.REGISTRY_CLOSED: 410,
    BatonErrorKind.TOO_MANY_STREAMS: 429,
}
_SCHEMA: Final = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, author TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO notes (author, body) VALUES ('clientstate', 'Hello from the demo database');
"""

Reply = tuple[int, dict[str, Any]]
Scalar = str | int | float | bool | None


class BeginBody(msgspec.Struct, forbid_unknown_fields=True):
    read_only: bool = False


class BatonBody(msgspec.Struct, forbid_unknown_fields=True):
    baton: str


class ExecBody(msgspec.Struct, forbid_unknown_fields=True):
    baton: str
    sql: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_SQL)]
    params: list[Scalar] | dict[str, Scalar] = []


def is_tx_path(path: str) -> bool:
    """Whether ``path`` belongs to the transaction API (``/api/tx`` and below)."""
    return path == "/api/tx" or path.startswith("/api/tx/")


def _setting(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(ENV_PREFIX + name, "").strip()
    try:
        return float(text) if text else float(default)
    except ValueError:
        raise ConfigurationError(f"{ENV_PREFIX}{name} must be a number, got {text!r}") from None


def _limits(environ: Mapping[str, str]) -> Limits:
    streams = _setting(environ, "MAX_STREAMS", 8)
    if not streams.is_integer():
        raise ConfigurationError(f"{ENV_PREFIX}MAX_STREAMS must be a whole number, got {streams!r}")
    return Limits(idle_timeout=_setting(environ, "IDLE_TIMEOUT", 60.0),
                  max_lifetime=_setting(environ, "MAX_LIFETIME", 600.0), max_streams=int(streams))


def _sweep_leftovers() -> None:
    """Remove the database directories of demo processes that are gone (a SIGTERM skips clean-up)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*"):
        pid = path.name[len(_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive under another user, or not ours to signal
            continue


def _cell(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _refused(error: BatonError) -> Reply:
    return _STATUS[error.kind], {"error": error.kind.value, "detail": error.detail}


class Transactions:
    """The transaction API of one demo app: its database, its :class:`~clientstate.batons.Streams`, its reaper.

    Args:
        keyring: the keys for batons (the demo passes its cookie keyring:
            batons use their own ``baton`` subkey); ``None`` draws a key for
            this process.
        environ: where the ``CLIENTSTATE_DEMO_TX_*`` limits are read
            (default ``os.environ``).

    Nothing is created until :meth:`start` (called by the ASGI lifespan, or by
    the first request).

    Raises:
        ConfigurationError: a limit in the environment is not a number.
    """

    def __init__(self, keyring: Keyring | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.limits = _limits(os.environ if environ is None else environ)
        self._keyring = keyring if keyring is not None else Keyring(generate_key(1))
        self._lock = threading.Lock()
        self._streams: Streams[SQLiteResource] | None = None
        self._acquire: Callable[[bool], SQLiteResource] | None = None
        self._directory: Path | None = None

    @property
    def database(self) -> Path | None:
        """The database file, once started."""
        return None if self._directory is None else self._directory / "demo.sqlite3"

    def start(self) -> tuple[Streams[SQLiteResource], Callable[[bool], SQLiteResource]]:
        """Create the database and the registry and start the reaper thread (once).

        Returns the registry and the acquirer of connections to the database.
        """
        with self._lock:
            if self._streams is not None and self._acquire is not None:
                return self._streams, self._acquire
            _sweep_leftovers()
            directory = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))
            database = directory / "demo.sqlite3"
            with sqlite3.connect(database) as connection:
                connection.executescript(_SCHEMA)
            connection.close()
            streams: Streams[SQLiteResource] = Streams(self._keyring, self.limits)
            acquire = sqlite3_acquirer(database, timeout=_LOCK_WAIT_SECONDS, statement_timeout=_STATEMENT_SECONDS)
            streams.start_reaper(min(1.0, self.limits.idle_timeout / 4))
            self._directory, self._streams, self._acquire = directory, streams, acquire
            atexit.register(self.stop)
            return streams, acquire

    def stop(self) -> None:
        """Stop the reaper, roll back and close every idle stream, remove the database (idempotent)."""
        with self._lock:
            streams, directory = self._streams, self._directory
            if streams is None or directory is None or streams.closed:
                return
        streams.close_all(timeout=10.0)
        shutil.rmtree(directory, ignore_errors=True)

    async def startup(self) -> None:
        """:meth:`start` for the ASGI lifespan (in a worker thread)."""
        await asyncio.to_thread(self.start)

    async def shutdown(self) -> None:
        """:meth:`stop` for the ASGI lifespan (in a worker thread)."""
        await asyncio.to_thread(self.stop)

    def handle(self, method: str, path: str, body: bytes, principal: str | None) -> Reply:
        """Answer one request of the transaction API; blocking (SQLite), so ASGI runs it in a thread.

        Args:
            method, path: the request's.
            body: the request body (JSON).
            principal: the logged-in user, or ``None``.

        Returns:
            ``(status, JSON object)``.
        """
        allowed = _ROUTES.get(path)
        if allowed is None:
            return 404, {"error": "not_found"}
        if method not in allowed:
            return 405, {"error": "method_not_allowed", "allowed": ", ".join(allowed)}
        if principal is None:
            return 401, {"error": "login_required"}
        streams, acquire = self.start()
        try:
            if path == "/api/tx" and method == "GET":
                return 200, self._listing(streams, principal)
            if path == "/api/tx":
                begin = msgspec.json.decode(body or b"{}", type=BeginBody)
                return self._begin(streams, acquire, principal, begin.read_only)
            if path == "/api/tx/exec":
                request = msgspec.json.decode(body, type=ExecBody)
                return self._exec(streams, principal, request)
            baton = msgspec.json.decode(body, type=BatonBody).baton
        except msgspec.DecodeError as exc:
            return 400, {"error": "bad_request", "detail": str(exc)}
        return self._end(streams, principal, baton, commit=path == "/api/tx/commit")

    def _listing(self, streams: Streams[SQLiteResource], principal: str) -> dict[str, Any]:
        mine = streams.list(lambda info: info.principal == principal and info.scope == SCOPE)
        return {
            "streams": [
                {"id": i.id, "read_only": i.read_only, "busy": i.busy, "generation": i.generation,
                 "age": round(i.age, 3), "idle_for": round(i.idle_for, 3)}
                for i in mine
            ],
            "limits": {"idle_timeout": self.limits.idle_timeout, "max_lifetime": self.limits.max_lifetime,
                       "max_streams": self.limits.max_streams},
        }

    def _begin(self, streams: Streams[SQLiteResource], acquire: Callable[[bool], SQLiteResource], principal: str,
               read_only: bool) -> Reply:
        try:
            stream = streams.open(acquire, principal=principal, scope=SCOPE, read_only=read_only)
        except sqlite3.Error as exc:
            return 503, {"error": "database_unavailable", "detail": str(exc)}
        if isinstance(stream, BatonError):
            return _refused(stream)
        return self._hand_back(streams, stream, 200, {"read_only": read_only})

    def _exec(self, streams: Streams[SQLiteResource], principal: str, request: ExecBody) -> Reply:
        stream = streams.resume(request.baton, scope=SCOPE, principal=principal)
        if isinstance(stream, BatonError):
            return _refused(stream)
        resource = stream.resource
        try:
            result = resource.query(request.sql, request.params, max_rows=MAX_ROWS)
        except sqlite3.Error as exc:
            failed = {"error": "sql_error", "detail": str(exc)}
            if resource.in_transaction:
                return self._hand_back(streams, stream, 400, failed)
            streams.close(stream)
            return 400, {**failed, "ended": True}
        except BaseException:
            streams.close(stream)
            raise
        rows = [[_cell(value) for value in row] for row in result.rows]
        data = {"columns": list(result.columns), "rows": rows, "truncated": result.truncated}
        return self._hand_back(streams, stream, 200, data)

    def _end(self, streams: Streams[SQLiteResource], principal: str, baton: str, *, commit: bool) -> Reply:
        stream = streams.resume(baton, scope=SCOPE, principal=principal)
        if isinstance(stream, BatonError):
            return _refused(stream)
        try:
            if commit:
                stream.resource.commit()
        except sqlite3.Error as exc:
            return 409, {"error": "commit_failed", "detail": str(exc)}
        finally:
            streams.close(stream)
        return 200, ({"committed": True} if commit else {"rolled_back": True})

    @staticmethod
    def _hand_back(streams: Streams[SQLiteResource], stream: Stream[SQLiteResource], status: int,
                   data: dict[str, Any]) -> Reply:
        baton = streams.release(stream)
        if isinstance(baton, BatonError):
            return _refused(baton)
        return status, {**data, "baton": baton}
