"""Batons: replay-proof handles for work that spans requests, pinned to one server resource.

An interactive SQL transaction over HTTP (``BEGIN`` in one request, a few
statements in the next ones, ``COMMIT`` in the last) needs the same database
connection for all of them. A **stream** pins that connection (any
*resource*) in the server process; the client addresses it with a **baton**,
an HMAC-tagged handle that changes on every response. Presenting a baton
consumes it, so a replayed or duplicated request is refused and use stays
serial; a baton also names its scope and principal, and another principal's
request is refused without consuming anything.

* :class:`Streams` (blocking) and :class:`AsyncStreams` (``await``): ``open``,
  ``resume``, ``peek``, ``release``, ``close``, ``kill``, ``list``,
  ``close_all``, ``reap`` and a reaper thread or task, over one registry
  (:mod:`clientstate.batons.registry`, where every rule is written down).
* :class:`Limits`: idle timeout, maximum lifetime, per-scope cap, tombstones.
* :class:`BatonError` / :class:`BatonErrorKind`: refusals, returned as values.
* Resources: :class:`Resource`, :class:`AsyncResource`, and acquirers for
  ``sqlite3`` (:func:`sqlite3_acquirer`) and psycopg 3
  (:func:`psycopg_acquirer`, :func:`psycopg_async_acquirer`).
* :mod:`clientstate.batons.baton`: the byte layout (58 bytes, 78 characters).

Streams live in the process that opened them: behind a load balancer, route
every request of a stream to that process (sticky routing); elsewhere, or
after a restart, its baton is refused as ``bad_baton``.
"""

from __future__ import annotations

from clientstate.batons.aio import AsyncStreams
from clientstate.batons.baton import BATON_BYTES, BATON_CHARS, Baton, peek_baton
from clientstate.batons.errors import BatonError, BatonErrorKind
from clientstate.batons.limits import Limits
from clientstate.batons.registry import Drained, Stream, StreamInfo
from clientstate.batons.resources import (
    AsyncResource,
    QueryResult,
    Resource,
    SQLiteResource,
    psycopg_acquirer,
    psycopg_async_acquirer,
    sqlite3_acquirer,
)
from clientstate.batons.sync import Streams

__all__ = [
    "BATON_BYTES",
    "BATON_CHARS",
    "AsyncResource",
    "AsyncStreams",
    "Baton",
    "BatonError",
    "BatonErrorKind",
    "Drained",
    "Limits",
    "QueryResult",
    "Resource",
    "SQLiteResource",
    "Stream",
    "StreamInfo",
    "Streams",
    "peek_baton",
    "psycopg_acquirer",
    "psycopg_async_acquirer",
    "sqlite3_acquirer",
]
