"""``RedisStore``: sessions in Redis or a Redis Cluster, through the ``redis`` library (``clientstate[redis]``).

Every session operation is **one Lua script on one key** (or one plain
single-key command), so each is atomic on a single server and on a Redis
Cluster alike; no script and no command ever names two keys, and the store
never sends ``KEYS`` or ``SCAN``. Redis's own expiry (``PEXPIREAT``) follows
each record's deadline, so expired sessions free their memory without a
sweeper.

Key layout (``prefix`` is ``cs:`` unless told otherwise; ``<sid>`` is the
session id in 32 lowercase hex digits; the part in braces is the Redis Cluster
hash tag, so a session's key lives in the slot of its id — or, with the
``hash_tag`` option, ``{prefix}{<hash_tag>}s:<sid>`` and
``{prefix}{<hash_tag>}p:<principal>``: every key of the store in one slot)::

    {prefix}s:{<sid>}        HASH   one per session, or tombstone of a rotated-away id
        v   version, integer: 1 at creation, +1 per update (the compare-and-set counter)
        c   created_at, seconds since the Unix epoch
        a   absolute_deadline, seconds: the session ends here whatever its activity
        i   idle_deadline, seconds: min(last touch + idle timeout, a); a tombstone's end
        t   last_touch, seconds
        s   schema_version of the state in b
        b   the state, authenticated and bound to the id (a tombstone: its authenticated tombstone)
        p   principal, UTF-8 (absent for an anonymous session and in a tombstone)
        m   moved_to: the successor's raw 16-byte id (only in a tombstone)
        TTL PEXPIREAT (i + expiry_margin) * 1000 ms, written by every create,
            update, touch and retire: Redis drops the key at its deadline

    {prefix}p:{<principal>}  ZSET   the principal index: one per principal with sessions
        member  a session id, 32 hex digits
        score   that session's absolute deadline, seconds
        TTL PEXPIREAT (highest score + expiry_margin) * 1000 ms

The index is scored by the *absolute* deadline, which never moves, so a touch
has nothing to update there, and ``ZREMRANGEBYSCORE -inf now`` drops only
sessions that are certainly over. On a Redis Cluster a principal's index lives
in another slot (usually on another node) than its sessions, so it cannot be
written in the same atomic step: it is written **after** the session
(creation, a change of principal, and every touch, which re-adds a member a
failed write lost), **best-effort** (a failure there is logged at warning and
never fails the request), and **repaired lazily**: listing, counting and
ending a principal's sessions read each member's own key (one ``HMGET`` per
key, pipelined; per-key commands only, never a multi-key command) and drop the
members whose session is gone, belongs to someone else, or is a tombstone.
Ending sessions deletes them key by key, each only if it still belongs to the
principal. A session is therefore never listed, counted or ended wrongly; a
session whose index write failed is missing from its principal's list until
its next touch re-adds it (the **index repair guarantee**: every touch of a
session with a principal re-adds it to that principal's index).

Round trips: a ``Get`` is one (``HMGET``); a ``Touch``, an ``Update`` and a
``Delete`` one each; a ``Create`` with a principal one when every key is on
one server (no cluster, or a ``hash_tag``) and two on a cluster (the session,
then its index: a listing never meets an index member before its session). A
lone command goes as a plain command, several in one pipeline. The index
write of a touch, or of an update that sets a new principal, rides in the
touch's or update's own pipeline — no round trip of its own — when the store
knows the principal: from the ``Get`` of the same session it served just
before (every request reads before it writes), remembered for the last 4,096
sessions read (:data:`HINTS`). Without that hint a touch costs a second round
trip for the index write, as the touch's reply names the principal. On a
cluster without a hash tag the touch's pipeline spans two masters; if the
index's master fails, the touch is sent again alone (it is idempotent) and
the index write is logged as lost, so an index outage never fails a touch;
updates and creates on a cluster write the index after the session (sent
twice they would not be idempotent).

The Lua scripts (sent with ``EVALSHA``, and with ``EVAL`` — which also loads
them — when a server answers ``NOSCRIPT``) each take exactly one key,
``KEYS[1]``: ``create``, ``update``, ``touch``, ``retire`` on a session key;
``delete_owned`` and ``delete_expired`` on a session key (ending a principal's
sessions, sweeping); ``index_add`` and ``index_trim`` on a principal index.
``Delete`` is a plain ``DEL`` of the one key and ``Get`` a plain ``HMGET``:
each is already atomic. The one exception is ``put_all``
(:class:`~clientstate._core.store.PutAll`, the live-session manager's save at
shutdown), one script over the keys of one hash slot. On a single server, and
on a cluster with a ``hash_tag`` (every key in one slot), a ``PutAll`` is
**one script: atomic**, as a ``MULTI``/``EXEC`` would be — Redis runs a script
with no other command in between, and its writes reach the replicas and the
append-only file as one transaction. Its contract is the store protocol's:
per-record compare-and-set (a record whose stored version is not the expected
one is skipped, the others written) and all-or-nothing on failure: the script
checks every key before its first write, so an error (a key of another type,
memory full at the first write) leaves nothing written, and a connection lost
before the reply leaves all or nothing. On a cluster without a ``hash_tag``
it is one script per hash slot, in one pipeline: atomic per slot only (a
master failing midway leaves the other slots' writes done). The written
sessions' index entries follow in one pipeline, best-effort as always.

The ``hash_tag`` trade-off: one slot lives on one master, so a tagged store
holds no more sessions and serves no more commands than that one master (its
replicas can take over, not share the load). Use it when an atomic shutdown
save on a cluster matters more than spreading sessions over the masters —
a live-session manager with a modest number of sessions — and leave it unset
to scale out.

Deadlines come from the operation (the handler's clock, seconds); expiry in
Redis is judged by the Redis server's clock. The handler judges expiry itself,
so the TTL only frees memory: ``expiry_margin`` keeps keys that many seconds
past their deadline, a cushion for clocks that disagree.

``Sweep`` has nothing to do for the sessions Redis has already dropped. It
deletes only sessions that are past the given ``now`` but still in Redis (a
clock behind the application's, or ``expiry_margin``), and only those it can
find without a scan: the members of the principal indexes this ``RedisStore``
object has written to (the last 1,024 principals). It reads each of those
indexes (one ``ZRANGE`` each, pipelined), deletes each member whose record's
deadline is at or before ``now`` (the ``delete_expired`` script, pipelined, at
most ``limit``), removes the deleted and vanished members from the index, and
returns how many records it deleted — 0 when Redis's TTL got there first,
which is the usual case. Anonymous sessions and tombstones are left to the TTL.

Clients: a blocking one (``redis.Redis`` or ``redis.cluster.RedisCluster``)
for :meth:`RedisStore.execute`, an asyncio one for
:meth:`RedisStore.aexecute`, each built on first use from the same settings,
so a WSGI application never builds an event-loop client and an ASGI one never
a blocking client. Every call has a timeout (``socket_timeout`` and
``socket_connect_timeout``; the asyncio client for one server has no socket
timeout — redis-py would run every send in an ``asyncio.wait_for``, a task of
its own — and :meth:`RedisStore.aexecute` bounds each of its round trips,
connecting included, with one ``asyncio.timeout`` of ``timeout`` seconds
instead), a refused connection is retried once without
delay (a server that restarted closes pooled connections) and a timeout is not
retried (on a cluster nothing is retried: the client refreshes its slot table
after a failure, and the next request finds the node again), so a request
meets a dead or hung server within about ``timeout`` seconds — a hung cluster
master within about twice that, as the slot-table refresh may wait on it
too. Every connection, timeout or server error becomes
:class:`~clientstate.StoreUnavailable`, with the server named and no password
in its message, its cause or its repr (nor in a ConfigurationError for a
malformed URL, nor in the store's repr).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
import redis.connection
import redis.retry
from redis._parsers import AsyncCommandsParser
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clientstate._core import store as ops
from clientstate._core.config import MAX_SECONDS, check_int, check_type
from clientstate._core.errors import ConfigurationError, StoreUnavailable
from clientstate._core.session_id import handle_of
from clientstate._core.value import Value
from clientstate.stores._server import unavailable

__all__ = ["SCRIPTS", "Batch", "Call", "LuaScript", "RedisStore", "Script"]

log = logging.getLogger("clientstate")

#: The server when neither a client nor a URL is given.
DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"
#: Principals whose index :class:`Sweep <clientstate._core.store.Sweep>` visits, at most (the latest written).
KNOWN_PRINCIPALS: Final = 1024
_FIELDS: Final = (b"v", b"p", b"c", b"a", b"i", b"t", b"s", b"b", b"m")
_OWN_OPTIONS: Final = ("socket_timeout", "socket_connect_timeout", "retry", "retry_on_timeout", "decode_responses")
_FAILURES: Final = (RedisError, RedisClusterException, OSError)
#: The query options of a store URL that :meth:`RedisStore.from_url` reads (the client library takes the rest).
_URL_OPTIONS: Final = ("prefix", "hash_tag", "timeout")
#: Sessions whose principal the store remembers from their last ``Get``, at most (see :meth:`RedisStore.steps`).
HINTS: Final = 4096


class LuaScript(Value, frozen=True):
    """One of the store's Lua scripts: its name, its source, and the source's SHA-1 (what ``EVALSHA`` names)."""

    name: str
    source: str
    sha: str


def _lua(name: str, source: str) -> LuaScript:
    return LuaScript(name, source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


# Every script takes exactly one key, KEYS[1]. Times in ARGV are seconds (deadlines) or milliseconds (expiry).
_CREATE = _lua("create", """
-- a session key; ARGV: expiry (ms), then field/value pairs. Insert only.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
""")
_UPDATE = _lua("update", """
-- a session key; ARGV: expected version, now (s), expiry (ms), '1' if the record has a principal,
-- then field/value pairs. Update only, compare-and-set on v. -> {1, old principal} | {0} conflict | {-1} gone
local cur = redis.call('HMGET', KEYS[1], 'v', 'i', 'm', 'p')
if not cur[1] or not cur[2] or cur[3] or tonumber(ARGV[2]) >= tonumber(cur[2]) then return {-1} end
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then return {0} end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if ARGV[4] ~= '1' then redis.call('HDEL', KEYS[1], 'p') end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return {1, cur[4]}
""")
_TOUCH = _lua("touch", """
-- a session key; ARGV: idle deadline (s), now = last touch (s), expiry margin (ms).
-- The idle deadline is clamped to the absolute one. -> {1, principal, absolute deadline} | {0} gone
local cur = redis.call('HMGET', KEYS[1], 'i', 'a', 'm', 'p')
if not cur[1] or not cur[2] or cur[3] or tonumber(ARGV[2]) >= tonumber(cur[1]) then return {0} end
local idle = ARGV[1]
if tonumber(cur[2]) < tonumber(idle) then idle = cur[2] end
redis.call('HSET', KEYS[1], 'i', idle, 't', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(idle) * 1000 + tonumber(ARGV[3])))
return {1, cur[4], cur[2]}
""")
_RETIRE = _lua("retire", """
-- a session key; ARGV: expected version, successor id, tombstone end (s), expiry (ms), tombstone blob.
-- Compare-and-set: only a session (not a tombstone) at the expected version. -> 1 | 0 unchanged
local cur = redis.call('HMGET', KEYS[1], 'v', 'm')
if not cur[1] or cur[2] or tonumber(cur[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HDEL', KEYS[1], 'p')
redis.call('HSET', KEYS[1], 'i', ARGV[3], 'b', ARGV[5], 'm', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
""")
_DELETE_OWNED = _lua("delete_owned", """
-- a session key; ARGV: principal. Deletes the session only if it still belongs to the principal. -> 1 | 0
local cur = redis.call('HMGET', KEYS[1], 'p', 'm')
if cur[1] == ARGV[1] and not cur[2] then redis.call('DEL', KEYS[1]) return 1 end
return 0
""")
_DELETE_EXPIRED = _lua("delete_expired", """
-- a session key; ARGV: now (s). Deletes the record if its deadline is at or before now. -> 1 | 0 alive | -1 missing
local cur = redis.call('HMGET', KEYS[1], 'i', 'a')
if not cur[1] or not cur[2] then return -1 end
if math.min(tonumber(cur[1]), tonumber(cur[2])) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
return 0
""")
_INDEX_ADD = _lua("index_add", """
-- a principal index; ARGV: score (the session's absolute deadline, s), member (sid hex), expiry margin (ms).
-- The index's TTL follows its latest member.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(last[2]) * 1000 + tonumber(ARGV[3])))
return 1
""")
_INDEX_TRIM = _lua("index_trim", """
-- a principal index; ARGV: now (s). Drops the members past their absolute deadline; -> the others
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
""")

_PUT_ALL = _lua("put_all", """
-- session keys (all of one hash slot on a cluster); ARGV, for each key in turn: expected version (0: no
-- record), expiry (ms), the number n of field/value pairs, then the n pairs. Writes each record whose
-- stored version is the expected one, replacing the whole hash. Every key is checked before the first
-- write, so an error (a key of another type) stops the script with nothing written. -> {1 written | 0, ...}
local due, first, last, at = {}, {}, {}, 1
for k = 1, #KEYS do
  first[k] = at + 3
  last[k] = at + 2 + 2 * tonumber(ARGV[at + 2])
  due[k] = tonumber(redis.call('HGET', KEYS[k], 'v') or '0') == tonumber(ARGV[at])
  at = last[k] + 1
end
local written = {}
for k = 1, #KEYS do
  written[k] = 0
  if due[k] then
    redis.call('DEL', KEYS[k])
    redis.call('HSET', KEYS[k], unpack(ARGV, first[k], last[k]))
    redis.call('PEXPIREAT', KEYS[k], ARGV[first[k] - 2])
    written[k] = 1
  end
end
return written
""")

#: Every Lua script of the store, by name.
SCRIPTS: Final = {
    s.name: s
    for s in (_CREATE, _UPDATE, _TOUCH, _RETIRE, _DELETE_OWNED, _DELETE_EXPIRED, _INDEX_ADD, _INDEX_TRIM, _PUT_ALL)
}


class _Hint(NamedTuple):
    """What a session's last ``Get`` said, kept so its touch or update can pipeline the index write."""

    principal: str
    absolute_deadline: int
    version: int


class Call(Value, frozen=True):
    """One plain Redis command naming one key, e.g. ``("HMGET", key, "v", ...)``; the reply is Redis's."""

    args: tuple[Any, ...]


class Script(Value, frozen=True):
    """Run ``script`` on ``keys`` (one key, but for ``put_all``: keys of one hash slot) with ``args``.

    The reply is the script's.
    """

    script: LuaScript
    keys: tuple[bytes, ...]
    args: tuple[Any, ...] = ()


class Batch(Value, frozen=True):
    """Commands sent together in one pipeline — one round trip (no transaction: each is atomic on its own key).

    The reply is the list of their replies, in order. On a cluster the client
    sends each command to the node of its key (all nodes written before any is
    read: still one round trip of waiting). With ``tolerant`` a command that
    failed on the server has its error (an exception) in its place in the
    reply; otherwise the first such error is raised. A connection that fails
    fails the whole batch either way.
    """

    commands: tuple[Call | Script, ...]
    tolerant: bool = False


def _wire(command: Call | Script, load: bool = False) -> tuple[Any, ...]:
    """The arguments of ``execute_command`` for ``command`` (``EVAL`` with the source when ``load``)."""
    if type(command) is Call:
        return command.args
    assert isinstance(command, Script)
    head = ("EVAL", command.script.source) if load else ("EVALSHA", command.script.sha)
    return (*head, len(command.keys), *command.keys, *command.args)


def _exchange(command: Call | Script | Batch) -> Generator[list[tuple[Any, ...]], list[Any], Any]:
    """The calls that perform ``command``, for either client: yields a list of calls to pipeline, receives
    their replies (an exception in place of each that failed), and returns the command's reply.

    A script the server does not hold (``NOSCRIPT``: restarted, flushed, a node
    that never ran it) is sent again with ``EVAL``, which also loads it.
    """
    parts: tuple[Call | Script, ...] = command.commands if isinstance(command, Batch) else (command,)
    replies = list((yield [_wire(part) for part in parts]))
    missing = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        again = yield [_wire(parts[n], load=True) for n in missing]
        for n, reply in zip(missing, again, strict=True):
            replies[n] = reply
    if type(command) is Batch and command.tolerant:
        return replies
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return replies if type(command) is Batch else replies[0]


class _Exchange:
    """An :func:`_exchange` being stepped by a client: its pending calls, or its reply once done."""

    __slots__ = ("calls", "done", "gen", "reply")

    def __init__(self, command: Any) -> None:
        if type(command) not in (Call, Script, Batch):
            raise ConfigurationError(f"RedisStore cannot execute {command!r}")
        self.gen = _exchange(command)
        self.calls = next(self.gen)
        self.done = False
        self.reply: Any = None

    def single_error(self, error: ResponseError) -> None:
        """Resume with the server error a plain command raised (a pipeline's errors come as replies)."""
        if len(self.calls) != 1:
            raise error
        self.resume([error])

    def answer(self, sent: Any) -> None:
        """Resume with what :func:`_send` returned for :attr:`calls`: a plain reply, or a pipeline's replies."""
        self.resume([sent] if len(self.calls) == 1 else sent)

    def resume(self, replies: list[Any]) -> None:
        try:
            self.calls = self.gen.send(replies)
        except StopIteration as stop:
            self.done = True
            self.reply = stop.value


def _queue(client: Any, calls: list[tuple[Any, ...]]) -> Any:
    """A pipeline of ``client`` (blocking or asyncio) holding ``calls``.

    A blocking cluster pipeline would ask a server (``COMMAND GETKEYS``, one
    round trip each) where every script goes; the store names each call's
    node itself, from the client's slot table (its key: the first argument of
    a command, the fourth of ``EVAL``/``EVALSHA``). A redirection still
    follows the client's own routing.
    """
    pipe = client.pipeline(transaction=False)
    routed = isinstance(client, redis.cluster.RedisCluster)
    for call in calls:
        if routed:
            key = call[3] if call[0] in ("EVAL", "EVALSHA") else call[1]
            pipe.execute_command(*call, target_nodes=client.get_node_from_key(key))
        else:
            pipe.execute_command(*call)
    return pipe


def _send(client: Any, calls: list[tuple[Any, ...]]) -> Any:
    """Send ``calls`` with ``client``: one call as a plain command, several in one pipeline.

    Returns what the client returns — for the asyncio client, an awaitable of
    it: a plain command's reply, or the pipeline's list of replies (an
    exception in place of each server error). A plain command costs no
    pipeline object, about a third of a read's client-side time; its server
    error is raised, and :meth:`_Exchange.answer` puts it in its place.
    """
    if len(calls) == 1:
        return client.execute_command(*calls[0])
    return _queue(client, calls).execute(raise_on_error=False)


async def _within(seconds: float, reply: Any) -> Any:
    """Await ``reply`` (a round trip), for at most ``seconds``; a redis ``TimeoutError`` past that.

    Cancelled midway, the client drops the connection (it never goes back to
    the pool with a reply pending), as a socket timeout of its own would.
    """
    limit = asyncio.timeout(seconds)
    try:
        async with limit:
            return await reply
    except TimeoutError:
        if not limit.expired():
            raise
        raise RedisTimeoutError(f"no reply within {seconds:g} s") from None


class _KnownCommands(AsyncCommandsParser):
    """The command table (``COMMAND``) another asyncio cluster client of the store already read.

    A cluster client reads the server's whole command table when it starts —
    tens of milliseconds — to find the keys of commands; the store starts one
    client per event loop, and the table does not change between them.
    """

    __slots__ = ()

    def __init__(self, commands: dict[str, Any]) -> None:
        super().__init__()
        self.commands = commands

    async def initialize(self, node: Any = None) -> None:
        if node is not None:
            self.node = node


async def _closed_with_loop(client: Any) -> AsyncGenerator[None, None]:
    """Closes ``client`` when its event loop shuts down (``asyncio.run`` finalizes async generators)."""
    try:
        yield
    finally:
        await client.aclose()


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogatepass")


def _record(sid: bytes, reply: list[Any]) -> ops.Record | None:
    """The record of ``sid`` from ``HMGET`` of :data:`_FIELDS`, or ``None`` if missing (or incomplete)."""
    version, principal, created, absolute, idle, touched, schema, blob, moved = reply
    if None in (version, created, absolute, idle, touched, schema, blob):
        return None
    return ops.Record(
        sid, int(version), None if principal is None else _text(principal), int(created), int(absolute),
        int(idle), int(touched), int(schema), bytes(blob), None if moved is None else bytes(moved),
    )


def _pairs(record: ops.Record) -> tuple[Any, ...]:
    """The HASH fields and values of ``record`` (``p`` and ``m`` only when set)."""
    pairs: tuple[Any, ...] = (
        b"v", record.version, b"c", record.created_at, b"a", record.absolute_deadline, b"i", record.idle_deadline,
        b"t", record.last_touch, b"s", record.schema_version, b"b", record.blob,
    )
    if record.principal is not None:
        pairs += (b"p", record.principal.encode("utf-8", "surrogatepass"))
    if record.moved_to is not None:
        pairs += (b"m", record.moved_to)
    return pairs


def _sid_of(member: bytes) -> bytes | None:
    """The session id an index member names, or ``None`` for anything else."""
    try:
        sid = bytes.fromhex(member.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return sid if len(sid) == 16 else None


def _described(client: Any) -> tuple[str, str]:
    """Where a given client points (``host:port/db``, without credentials), and its password (to mask)."""
    nodes = getattr(client, "nodes_manager", None)
    if nodes is not None:  # a cluster client
        settings = getattr(nodes, "connection_kwargs", None) or {}
        first = next(iter(getattr(nodes, "startup_nodes", None) or {"?": None}))
        return f"cluster node {first}", str(settings.get("password") or "")
    settings = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    where = settings.get("path") or f"{settings.get('host', '?')}:{settings.get('port', '?')}/{settings.get('db', 0)}"
    return str(where), str(settings.get("password") or "")


def _split(url: str) -> SplitResult:
    """``urlsplit(url)``, with ConfigurationError (no password in it) for a URL it cannot split."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"malformed Redis URL: {_masked(str(exc), url, _passwords(url))}") from None


def _passwords(url: str) -> tuple[str, ...]:
    """Every form of a password ``url`` carries — in its userinfo or its ``password=`` query — longest first.

    Read without trusting the URL to be well formed (it is also what masks a malformed one's error).
    """
    rest = url.partition("://")[2]
    authority, _, query = rest.partition("?")
    userinfo = authority.partition("/")[0].rpartition("@")[0]
    found = {userinfo.partition(":")[2], *(value for key, value in parse_qsl(query) if key == "password")}
    found |= {unquote(secret) for secret in found}
    return tuple(sorted((secret for secret in found if secret), key=len, reverse=True))


def _masked(text: str, url: str, secrets: tuple[str, ...]) -> str:
    """``text`` with ``url`` and every secret in it replaced."""
    text = text.replace(url, "<url>")
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise ConfigurationError(f"timeout must be a number of seconds above 0 and at most 60, got {timeout!r}")
    return float(timeout)


def _check_key_part(value: object, label: str, choices: str = "") -> str:
    """``value`` if it is 1 to 64 printable characters without spaces or braces (a key prefix or hash tag)."""
    check_type(value, str, label)
    assert isinstance(value, str)
    if not 0 < len(value) <= 64 or not value.isprintable() or any(c in value for c in "{} "):
        raise ConfigurationError(
            f"{label} must be {choices}1 to 64 printable characters without spaces or braces, got {value!r}"
        )
    return value


def _check_hash_tag(tag_text: object) -> str | None:
    return None if tag_text is None else _check_key_part(tag_text, "hash_tag", "None or ")


def _check_prefix(prefix: object) -> str:
    return _check_key_part(prefix, "prefix")


class RedisStore:
    """Sessions in Redis or a Redis Cluster (``shared`` is ``True``); see the module docstring for the keys.

    Args:
        client: a blocking client to use (``redis.Redis`` or
            ``redis.cluster.RedisCluster``, built with ``decode_responses=False``
            and a ``socket_timeout``: its own timeouts and retries apply). It
            stays the caller's: :meth:`close` does not close it.
        url: the server, when no client is given (default
            ``redis://127.0.0.1:6379/0``): ``redis://[[user]:password@]host[:port][/db]``,
            ``rediss://…`` (TLS), ``unix:///path/to/socket``; with ``cluster=True``
            any one node of the cluster.
        async_client: an asyncio client to use (``redis.asyncio.Redis`` or
            ``redis.asyncio.cluster.RedisCluster``), with the same caveats as ``client``.
            With only one of ``client`` / ``async_client`` given, the other kind
            of use raises :class:`~clientstate.ConfigurationError`.
        cluster: ``url`` names a node of a Redis Cluster (default ``False``;
            ignored when clients are given: their type says it).
        prefix: the start of every key (default ``cs:``; 1–64 printable
            characters, no spaces or braces).
        hash_tag: ``None`` (default): each session's key hashes by its own id,
            so on a cluster the sessions spread over every master. A string
            (1–64 printable characters, no spaces or braces): every key of the
            store — sessions and principal indexes — carries it as its Redis
            Cluster hash tag, ``{prefix}{<hash_tag>}s:<sid>``, so all of them
            live in **one slot, on one master**. Then a :class:`PutAll
            <clientstate._core.store.PutAll>` is one atomic script even on a
            cluster, and a session and its index share a server (one round
            trip for a login). The price: the store can hold and serve no more
            than that one master's memory and throughput, and replicas are the
            only failover; use it for a manager's shutdown save on a cluster,
            not to scale out. On a single server it only changes key names.
        timeout: seconds for connecting and for each reply (default 2, at most 60).
        expiry_margin: seconds keys are kept past their deadline (default 0), a
            cushion for a Redis clock ahead of the application's.
        client_options: more keyword arguments for the clients the store builds
            from ``url`` (``max_connections``, ``ssl_ca_certs``, ``username``…);
            not the timeouts, the retry policy or ``decode_responses``, which the store sets.

    Raises:
        ConfigurationError: a malformed or unsupported URL, both a URL and a
            client, a client of the wrong kind or with ``decode_responses=True``,
            or an option out of range.
    """

    shared = True

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        async_client: Any = None,
        cluster: bool = False,
        prefix: str = "cs:",
        hash_tag: str | None = None,
        timeout: float = 2.0,
        expiry_margin: int = 0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_type(cluster, bool, "cluster")
        self.prefix = _check_prefix(prefix)
        self.hash_tag = _check_hash_tag(hash_tag)
        self.timeout = _check_timeout(timeout)
        self.expiry_margin = check_int(expiry_margin, "expiry_margin", 0, MAX_SECONDS, "seconds")
        options = dict(client_options or {})
        clashes = sorted(set(options) & set(_OWN_OPTIONS))
        if clashes:
            raise ConfigurationError(f"client_options cannot set {', '.join(clashes)}: RedisStore sets them")
        self._options = options
        self._given, self._agiven = client, async_client
        if client is not None or async_client is not None:
            if url is not None:
                raise ConfigurationError("RedisStore takes a url or clients, not both")
            self.cluster = self._check_clients(client, async_client)
            self._url, (self._where, secret) = "", _described(client if client is not None else async_client)
            self._secrets: tuple[str, ...] = (secret,) if secret else ()
        else:
            self.cluster = cluster
            self._url, self._where, self._secrets = self._check_url(DEFAULT_URL if url is None else url, cluster)
        self._p = self.prefix.encode()
        if self.hash_tag is not None:
            self._p += b"{%s}" % self.hash_tag.encode()
        #: Every key on one server (no cluster, or one hash tag): pipelined commands run in order there.
        self.one_server = not self.cluster or self.hash_tag is not None
        self._lock = threading.Lock()
        self._sync: Any = client
        self._async: dict[asyncio.AbstractEventLoop, tuple[Any, AsyncGenerator[None, None]]] = {}
        self._known: OrderedDict[str, None] = OrderedDict()
        self._hints: dict[bytes, _Hint] = {}  # sid -> what its last Get said; see steps()
        self._commands: dict[str, Any] = {}  # the command table an asyncio cluster client read (COMMAND)
        #: Seconds aexecute gives each round trip itself: the asyncio clients it builds for one server have no
        #: socket timeout (see _settings); ``None`` for a given asyncio client or a cluster (their own timeouts).
        self._round_trip = None if async_client is not None or self.cluster else self.timeout

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """The store a URL names (what :func:`~clientstate.stores.store_from_url` calls).

        Args:
            url: ``redis://…`` or ``rediss://…`` (one server, optional ``/db``),
                ``redis+cluster://host:port`` (any node of a Redis Cluster),
                ``unix:///path/to/redis.sock``; the query may set ``prefix``,
                ``hash_tag`` and ``timeout`` (seconds); the client library takes
                the rest of the query (``password``, ``db``, ``max_connections``…).

        Raises:
            ConfigurationError: an unknown scheme, a malformed URL or option.
        """
        check_type(url, str, "url")
        parts = _split(url)
        scheme = parts.scheme.lower()
        cluster = scheme.endswith("+cluster")
        base = scheme.removesuffix("+cluster")
        if base not in ("redis", "rediss", "unix") or (cluster and base == "unix"):
            raise ConfigurationError(
                "a Redis store URL is redis://host:port/db, rediss://… or redis+cluster://host:port"
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in query if k in _URL_OPTIONS}
        rest = urlencode([(k, v) for k, v in query if k not in own])
        try:
            timeout = float(own.get("timeout", "2"))
        except ValueError:
            raise ConfigurationError(f"timeout in a Redis URL must be a number, got {own['timeout']!r}") from None
        return cls(
            # by hand: urlunsplit drops the "//" of unix:///path (an empty host)
            url=f"{base}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else ""),
            cluster=cluster,
            prefix=own.get("prefix", "cs:"),
            hash_tag=own.get("hash_tag"),
            timeout=timeout,
        )

    @staticmethod
    def _check_url(url: str, cluster: bool) -> tuple[str, str, tuple[str, ...]]:
        """``url`` checked, where it points (without credentials), and its passwords (to keep out of messages)."""
        check_type(url, str, "url")
        secrets = _passwords(url)
        try:
            parts = urlsplit(url)
            redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise ConfigurationError(f"malformed Redis URL: {_masked(str(exc), url, secrets)}") from None
        if cluster and parts.scheme not in ("redis", "rediss"):
            raise ConfigurationError("a Redis Cluster URL is redis://host:port or rediss://host:port")
        if parts.scheme != "unix" and not re.fullmatch(r"/?|/\d+", parts.path):
            raise ConfigurationError(  # the client library would silently use db 0
                f"the path of a Redis URL is a database number (/0, /1 …), got {_masked(parts.path, url, secrets)!r}"
            )
        named = sorted({key for key, _ in parse_qsl(parts.query)} & set(_URL_OPTIONS))
        if named:
            raise ConfigurationError(
                f"{', '.join(named)} in a Redis URL is read by RedisStore.from_url (and store_from_url); "
                "RedisStore(url=...) takes it as an argument"
            )
        where = parts.path if parts.scheme == "unix" else f"{host or 'localhost'}:{port or 6379}{parts.path}"
        return url, f"{parts.scheme}://{where}", secrets

    @staticmethod
    def _check_clients(client: Any, async_client: Any) -> bool:
        """Whether the given clients are cluster clients; ConfigurationError for a wrong kind or mix."""
        kinds = []
        for given, plain, clustered, label in (
            (client, redis.Redis, redis.cluster.RedisCluster, "client"),
            (async_client, redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster, "async_client"),
        ):
            if given is None:
                continue
            if not isinstance(given, plain | clustered):
                raise ConfigurationError(
                    f"{label} must be a {plain.__module__}.{plain.__name__} or "
                    f"{clustered.__module__}.{clustered.__name__}, got {type(given).__name__}"
                )
            if given.get_encoder().decode_responses:
                raise ConfigurationError(f"{label} must be built with decode_responses=False (states are bytes)")
            kinds.append(isinstance(given, clustered))
        if len(set(kinds)) > 1:
            raise ConfigurationError("client and async_client must both be cluster clients, or neither")
        return kinds[0]

    # --- keys ----------------------------------------------------------------------------------

    def key(self, sid: bytes) -> bytes:
        """The key of the session (or tombstone) ``sid``: ``{prefix}s:{<sid hex>}``.

        With a ``hash_tag``: ``{prefix}{<hash_tag>}s:<sid hex>``.
        """
        if self.hash_tag is not None:
            return b"%ss:%s" % (self._p, sid.hex().encode())
        return b"%ss:{%s}" % (self._p, sid.hex().encode())

    def index_key(self, principal: str) -> bytes:
        """The key of ``principal``'s index: ``{prefix}p:{<principal>}``.

        With a ``hash_tag``: ``{prefix}{<hash_tag>}p:<principal>``.
        """
        if self.hash_tag is not None:
            return b"%sp:%s" % (self._p, principal.encode("utf-8", "surrogatepass"))
        return b"%sp:{%s}" % (self._p, principal.encode("utf-8", "surrogatepass"))

    def _expiry(self, deadline: int) -> int:
        return (deadline + self.expiry_margin) * 1000

    # --- the store protocol: the commands of each operation, written once ------------------------

    def steps(self, op: ops.Op) -> ops.Steps:
        """The commands of ``op`` (see :mod:`clientstate._core.store` for each operation's contract).

        One round trip for a ``Get``, a ``Touch``, an ``Update`` and, with every
        key on one server, a ``Create`` (two on a cluster without a hash tag:
        the session, then its index). For that the store remembers, for the
        last :data:`HINTS` sessions it read, their principal, absolute deadline
        and version (a *hint*): the ``Touch`` or ``Update`` that follows a
        request's ``Get`` sends the principal-index write in the same pipeline
        as its own script instead of after it. A hint only decides what is
        sent: each reply is checked, so a stale or missing one costs a round
        trip, never a wrong result.

        Raises:
            ConfigurationError: ``op`` is not a store operation.
        """
        if isinstance(op, ops.Get):
            record = _record(op.sid, (yield Call(("HMGET", self.key(op.sid), *_FIELDS))))
            if record is not None and record.principal is not None and record.moved_to is None:
                with self._lock:
                    if len(self._hints) >= HINTS:
                        del self._hints[next(iter(self._hints))]
                    self._hints[op.sid] = _Hint(record.principal, record.absolute_deadline, record.version)
            return record
        if isinstance(op, ops.Create):
            return (yield from self._create(op.record))
        if isinstance(op, ops.Update):
            return (yield from self._update(op.record, op.expected_version))
        if isinstance(op, ops.Touch):
            return (yield from self._touch(op))
        if isinstance(op, ops.Retire):
            args = (op.expected_version, op.moved_to, op.until, self._expiry(op.until), op.blob)
            return (yield Script(_RETIRE, (self.key(op.sid),), args)) == 1
        if isinstance(op, ops.Delete):
            return (yield Call(("DEL", self.key(op.sid)))) == 1
        if isinstance(op, ops.ListSessions):
            return (yield from self._sessions(op.principal, op.now))
        if isinstance(op, ops.CountSessions):
            return len((yield from self._sessions(op.principal, op.now)))
        if isinstance(op, ops.DeleteSessions):
            return (yield from self._delete_sessions(op.principal, op.keep))
        if isinstance(op, ops.Sweep):
            return (yield from self._sweep(op.now, op.limit))
        if isinstance(op, ops.PutAll):
            return (yield from self._put_all(op.items))
        raise ConfigurationError(f"RedisStore cannot perform {op!r}")

    def _hint(self, sid: bytes) -> _Hint | None:
        """The hint the last ``Get`` of ``sid`` left (taken: a hint serves one write)."""
        with self._lock:
            return self._hints.pop(sid, None)

    def _failed(self, error: BaseException) -> StoreUnavailable:
        """The :class:`StoreUnavailable` for a client or server error, naming the server, no password in it."""
        text = f"{type(error).__name__}: {error}"
        secret = next((secret for secret in self._secrets if secret in text), "")
        return unavailable(f"Redis {self._where}", error, secret)

    def _index_add(self, principal: str, sid: bytes, absolute: int) -> Script:
        return Script(_INDEX_ADD, (self.index_key(principal),), (absolute, sid.hex(), self.expiry_margin * 1000))

    def _with_index(self, command: Script, principal: str, sid: bytes, absolute: int) -> ops.Steps:
        """Send ``command`` and the index write of ``sid`` in one pipeline; returns ``command``'s reply.

        The index write is best-effort (:meth:`_indexed`). On a cluster without
        a hash tag the index lives on another master; if the pipeline fails
        there, ``command`` — which must be safe to repeat — is sent again alone.
        """
        try:
            reply, added = yield Batch((command, self._index_add(principal, sid, absolute)), tolerant=True)
        except StoreUnavailable as exc:
            if self.one_server:
                raise
            reply, added = (yield command), exc
        if isinstance(reply, BaseException):
            raise self._failed(reply)
        self._indexed(principal, sid, added)
        return reply

    def _create(self, record: ops.Record) -> ops.Steps:
        create = Script(_CREATE, (self.key(record.sid),), (self._expiry(record.deadline), *_pairs(record)))
        principal = record.principal
        if principal is None:
            return (yield create) == 1
        if self.one_server:  # one pipeline, run in order: the index names the session once it exists
            return (yield from self._with_index(create, principal, record.sid, record.absolute_deadline)) == 1
        created = (yield create) == 1  # a cluster: the index (another master) only after the session
        if created:
            yield from self._index(principal, record.sid, record.absolute_deadline)
        return created

    def _update(self, record: ops.Record, expected: int) -> ops.Steps:
        args = (expected, record.last_touch, self._expiry(record.deadline), int(record.principal is not None))
        update = Script(_UPDATE, (self.key(record.sid),), (*args, *_pairs(record)))
        principal, hint = record.principal, self._hint(record.sid)
        unchanged = hint is not None and (hint.principal, hint.version) == (principal, expected)
        pipelined = principal is not None and not unchanged and self.one_server
        if pipelined:  # a (possibly) new principal: its index write in the same round trip
            assert principal is not None
            reply = yield from self._with_index(update, principal, record.sid, record.absolute_deadline)
        else:
            reply = yield update
        if reply[0] == 0:
            return ops.UpdateResult.CONFLICT
        if reply[0] != 1:
            return ops.UpdateResult.GONE
        before = None if reply[1] is None else _text(reply[1])
        if principal is not None and principal != before and not pipelined:
            yield from self._index(principal, record.sid, record.absolute_deadline)
        return ops.UpdateResult.OK

    def _touch(self, op: ops.Touch) -> ops.Steps:
        """Slide the idle deadline; re-add the session to its index, in case the write after its creation failed."""
        touch = Script(_TOUCH, (self.key(op.sid),), (op.idle_deadline, op.last_touch, self.expiry_margin * 1000))
        hint = self._hint(op.sid)
        if hint is None:
            reply = yield touch
        else:  # the principal known: its index write in the same round trip (the touch is safe to repeat)
            reply = yield from self._with_index(touch, hint.principal, op.sid, hint.absolute_deadline)
        if reply[0] != 1:
            return False
        if reply[1] is not None and (hint is None or _text(reply[1]) != hint.principal):
            yield from self._index(_text(reply[1]), op.sid, int(reply[2]))
        return True

    def _index(self, principal: str, sid: bytes, absolute: int) -> ops.Steps:
        """Add ``sid`` to ``principal``'s index, best-effort: a failure is logged, never raised."""
        try:
            added = yield self._index_add(principal, sid, absolute)
        except StoreUnavailable as exc:
            added = exc
        self._indexed(principal, sid, added)

    def _indexed(self, principal: str, sid: bytes, added: object) -> None:
        """Note the outcome of adding ``sid`` to ``principal``'s index: log a failure, remember the principal."""
        if isinstance(added, BaseException):
            log.warning(
                "clientstate: RedisStore could not add session %s to its principal index (it is missing from "
                "the principal's list until its next touch): %s", handle_of(sid),
                added if isinstance(added, StoreUnavailable) else self._failed(added),
            )
            return
        with self._lock:
            self._known[principal] = None
            self._known.move_to_end(principal)
            while len(self._known) > KNOWN_PRINCIPALS:
                self._known.popitem(last=False)

    def _unindex(self, index: bytes, members: list[bytes]) -> ops.Steps:
        """Remove ``members`` from ``index``, best-effort (the next listing repairs what fails)."""
        if not members:
            return
        try:
            yield Call(("ZREM", index, *members))
        except StoreUnavailable as exc:
            log.warning("clientstate: RedisStore could not trim a principal index: %s", exc)

    def _sessions(self, principal: str, now: int) -> ops.Steps:
        """The unexpired sessions of ``principal``, oldest first; repairs the index on the way."""
        index = self.index_key(principal)
        members = yield Script(_INDEX_TRIM, (index,), (now,))
        sids = [_sid_of(member) for member in members]
        wanted = [sid for sid in sids if sid is not None]
        replies = (
            (yield Batch(tuple(Call(("HMGET", self.key(sid), b"p", b"c", b"t", b"i", b"a", b"m")) for sid in wanted)))
            if wanted else []
        )
        found = iter(replies)
        live: list[tuple[bytes, ops.SessionInfo]] = []
        stale: list[bytes] = []
        for member, sid in zip(members, sids, strict=True):
            reply = None if sid is None else next(found)
            if sid is None or reply is None or reply[0] is None or reply[5] is not None or _text(reply[0]) != principal:
                stale.append(member)  # gone, a tombstone, someone else's, or not a session id
            elif now < int(reply[3]):  # an expired session still in Redis is not listed; its TTL removes it
                live.append((sid, ops.SessionInfo(handle_of(sid), *(int(value) for value in reply[1:5]))))
        yield from self._unindex(index, stale)
        live.sort(key=lambda item: (item[1].created_at, item[0]))
        return live

    def _delete_sessions(self, principal: str, keep: bytes | None) -> ops.Steps:
        """Delete ``principal``'s sessions but ``keep``, key by key, each only if it still is theirs."""
        index = self.index_key(principal)
        members = yield Call(("ZRANGE", index, 0, -1))
        doomed = [member for member in members if keep is None or _sid_of(member) != keep]
        sids = [_sid_of(member) for member in doomed]
        scripts = tuple(Script(_DELETE_OWNED, (self.key(sid),), (principal.encode("utf-8", "surrogatepass"),))
                        for sid in sids if sid is not None)
        results = (yield Batch(scripts)) if scripts else []
        yield from self._unindex(index, doomed)
        return sum(1 for result in results if result == 1)

    def _sweep(self, now: int, limit: int) -> ops.Steps:
        """Delete up to ``limit`` expired records found in the indexes this store wrote; see the module docstring."""
        with self._lock:
            principals = list(self._known)
        if not principals or limit <= 0:
            return 0
        indexes = [self.index_key(principal) for principal in principals]
        lists = yield Batch(tuple(Call(("ZRANGE", index, 0, -1)) for index in indexes))
        candidates: list[tuple[bytes, bytes, bytes]] = []
        gone: dict[bytes, list[bytes]] = {}
        for principal, index, members in zip(principals, indexes, lists, strict=True):
            if not members:
                with self._lock:
                    self._known.pop(principal, None)
            for member in members:
                sid = _sid_of(member)
                if sid is None:
                    gone.setdefault(index, []).append(member)
                else:
                    candidates.append((index, member, sid))
        deleted = 0
        while candidates and deleted < limit:
            chunk, candidates = candidates[: limit - deleted], candidates[limit - deleted :]
            results = yield Batch(tuple(Script(_DELETE_EXPIRED, (self.key(sid),), (now,)) for _, _, sid in chunk))
            for (index, member, _), result in zip(chunk, results, strict=True):
                if result != 0:  # deleted now, or already gone
                    gone.setdefault(index, []).append(member)
                deleted += result == 1
        for index, members in gone.items():
            yield from self._unindex(index, members)
        return deleted

    def _put_all(self, items: tuple[tuple[ops.Record, int], ...]) -> ops.Steps:
        """Write every record whose stored version is the expected one: one script per hash slot.

        One slot — one script, atomic — on a single server and with a
        ``hash_tag``; on a cluster without one, a script per slot in one
        pipeline. Then the index writes of the written sessions, in one
        pipeline, best-effort.
        """
        groups: dict[int, list[tuple[ops.Record, int]]] = {}
        for record, expected in items:
            slot = 0 if self.one_server else key_slot(self.key(record.sid))
            groups.setdefault(slot, []).append((record, expected))
        scripts = []
        for group in groups.values():
            args: list[Any] = []
            for record, expected in group:
                pairs = _pairs(record)
                args += (expected, self._expiry(record.deadline), len(pairs) // 2, *pairs)
            scripts.append(Script(_PUT_ALL, tuple(self.key(record.sid) for record, _ in group), tuple(args)))
        replies = (yield Batch(tuple(scripts))) if scripts else []
        written = [record for group, flags in zip(groups.values(), replies, strict=True)
                   for (record, _), flag in zip(group, flags, strict=True) if flag == 1]
        indexed = [record for record in written if record.principal is not None and record.moved_to is None]
        if indexed:
            adds = tuple(self._index_add(r.principal, r.sid, r.absolute_deadline) for r in indexed if r.principal)
            try:
                outcomes = yield Batch(adds, tolerant=True)
            except StoreUnavailable as exc:
                outcomes = [exc] * len(adds)
            for record, added in zip(indexed, outcomes, strict=True):
                assert record.principal is not None
                self._indexed(record.principal, record.sid, added)
        return len(written)

    # --- performing commands: the only place blocking and asyncio differ -------------------------

    def execute(self, command: ops.Command) -> Any:
        """Perform one :class:`Call`, :class:`Script` or :class:`Batch` with the blocking client.

        Raises:
            StoreUnavailable: the server refused, timed out (after ``timeout``
                seconds), or answered with an error.
            ConfigurationError: ``command`` is not one of this store's, or the
                store was given only an asyncio client.
        """
        exchange, client = _Exchange(command), self._client()
        with self._failures():
            while not exchange.done:
                try:
                    sent = _send(client, exchange.calls)
                except ResponseError as exc:  # a plain command's server error, NOSCRIPT included
                    exchange.single_error(exc)
                else:
                    exchange.answer(sent)
        return exchange.reply

    async def aexecute(self, command: ops.Command) -> Any:
        """Perform one command with the asyncio client of the running event loop, as :meth:`execute`.

        Raises:
            StoreUnavailable: as :meth:`execute`.
            ConfigurationError: as :meth:`execute` (given only a blocking client).
        """
        exchange, client = _Exchange(command), await self._aclient()
        limit = self._round_trip
        with self._failures():
            while not exchange.done:
                try:
                    if limit is None:
                        sent = await _send(client, exchange.calls)
                    else:
                        sent = await _within(limit, _send(client, exchange.calls))
                except ResponseError as exc:  # a plain command's server error, NOSCRIPT included
                    exchange.single_error(exc)
                else:
                    exchange.answer(sent)
        return exchange.reply

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn the client library's errors into :class:`StoreUnavailable` naming the server (no credentials)."""
        try:
            yield
        except _FAILURES as exc:
            raise self._failed(exc)  # noqa: B904 (it sets its own cause)

    def _settings(self, asynchronous: bool) -> dict[str, Any]:
        retry = redis.asyncio.retry.Retry if asynchronous else redis.retry.Retry
        return {
            **self._options,
            # An asyncio client with a socket_timeout wraps every send in asyncio.wait_for (a task of its own on
            # Python 3.11: some 40-80 µs a round trip); the store's asyncio client for one server has none and
            # aexecute bounds each round trip with one asyncio.timeout instead (see _within).
            "socket_timeout": None if asynchronous and not self.cluster else self.timeout,
            "socket_connect_timeout": self.timeout,
            # One server: a refused connection once more at once (a restarted server drops pooled connections),
            # no timeout twice. A cluster client's retry would repeat timeouts too (a hung master: twice the
            # timeout, more for asyncio), so it has none: it refreshes its slot table after a failure instead.
            "retry": retry(NoBackoff(), 0 if self.cluster else 1, (RedisConnectionError,)),
        }

    def _client(self) -> Any:
        """The blocking client, built on first use."""
        if self._sync is not None:
            return self._sync
        if not self._url:
            raise ConfigurationError("this RedisStore was given only an asyncio client; pass client= for WSGI use")
        with self._lock, self._failures():
            if self._sync is None:
                kind = redis.cluster.RedisCluster if self.cluster else redis.Redis
                self._sync = kind.from_url(self._url, **self._settings(False))
            return self._sync

    async def _aclient(self) -> Any:
        """The asyncio client of the running event loop, built on first use in that loop.

        asyncio clients belong to the loop they first ran in, so the store keeps
        one per loop and closes it when that loop shuts down.
        """
        if self._agiven is not None:
            return self._agiven
        if not self._url:
            raise ConfigurationError("this RedisStore was given only a blocking client; pass async_client= for ASGI")
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is not None:
            return entry[0]
        kind: Any = redis.asyncio.cluster.RedisCluster if self.cluster else redis.asyncio.Redis
        with self._failures():
            client = kind.from_url(self._url, **self._settings(True))
        guard = _closed_with_loop(client)
        with self._lock:
            for other, _ in self._async.values():
                self._commands = self._commands or getattr(getattr(other, "commands_parser", None), "commands", {})
            if self._commands and isinstance(getattr(client, "commands_parser", None), AsyncCommandsParser):
                client.commands_parser = _KnownCommands(self._commands)
            for other_loop in [other_loop for other_loop in self._async if other_loop.is_closed()]:
                del self._async[other_loop]
            self._async[loop] = (client, guard)
        await anext(guard)
        return client

    def close(self) -> None:
        """Close the blocking client the store built (a given client stays open)."""
        with self._lock:
            client, self._sync = (self._sync, None) if self._given is None else (None, self._sync)
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the asyncio client the store built for the running event loop (a given client stays open)."""
        entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()

    def __repr__(self) -> str:
        kind = "cluster " if self.cluster else ""
        tag = "" if self.hash_tag is None else f", hash_tag={self.hash_tag!r}"
        return f"RedisStore({kind}{self._where}, prefix={self.prefix!r}{tag})"
