"""The server-stored handler: the state in a store, the cookie a signed session id.

The logic is sans-I/O: :meth:`ServerStored.load_plan` and
:meth:`ServerStored.save_plan` are generators that yield the store operations
of :mod:`clientstate._core.store` and receive their results;
``clientstate._core.drive`` runs them with blocking I/O (WSGI) or ``await``
(ASGI). The rules, each enforced on the server:

* **Lazy.** A request without a cookie costs nothing and writes nothing; the
  record and the cookie appear on the first save of a state. A cookie that
  fails its MAC, is malformed or too long costs no store access.
* **Timeouts.** ``idle_timeout`` (default 7 days) and ``absolute_timeout``
  (default 30 days) are checked against the record with the handler's clock.
  Sliding the idle deadline is a *touch*: it never rewrites the state, happens
  at most once per ``touch_interval`` (default a tenth of the idle timeout)
  per session, and never goes past the absolute deadline. An expired or
  deleted session loads as ``session_expired`` / ``unknown_session`` and its
  cookie is cleared.
* **No lost session, no resurrection.** Creates are insert-only (a colliding
  id is retried with a new one); updates are compare-and-set on the record's
  version and update-only, so a request that finishes after a logout or an
  expiry does not bring the session back (its cookie is cleared instead).
* **Two writers.** When another request wrote the session since this one
  read it, this request's write is retried on a fresh read: for a
  ``msgspec.Struct`` or ``dict`` state, the fields (keys) this request changed
  are applied onto the fresh state, so changes to different fields both
  persist and a field changed by both takes this request's value; any other
  state type is replaced whole. Up to eight attempts, then the write is given
  up and logged (``clientstate`` logger, warning). No attempt writes a state
  that does not encode as the type (no torn state).
* **Id rotation.** ``slot.rotate_id()`` — and, by default, any change of the
  session's principal (a login, a logout to anonymous) — moves the state to a
  new id; the old id becomes a tombstone that serves in-flight requests for
  ``rotation_grace`` seconds (default 10) and is dead after that.
* **Principals.** What ``principal(state)`` returns is checked by one rule
  (:func:`principal_problem`: a non-empty str of valid UTF-8, no NUL, at most
  :data:`MAX_PRINCIPAL_BYTES` bytes) when the state is assigned, and again
  before a save of a state changed in place: a principal every store keeps,
  indexes and finds exactly, or :class:`~clientstate.StateEncodeError`.
* **Store failures** reach the application as ``store_unavailable`` within
  the store's timeout; the cookie is kept. A save that fails is logged and
  leaves the cookie as it was.
* **Keys.** The cookie's MAC and the stored state's MAC use the keyring's
  ``sid`` and ``record`` subkeys; a cookie or record under an older accepted
  key is re-signed under the current one on that response.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator
from typing import Any, Final, TypeVar

import msgspec

from clientstate._core.config import MAX_SECONDS, check_callable, check_int, check_seconds, check_type, checked
from clientstate._core.cookies import CookieAttributes, CookieWriter, RequestCookies
from clientstate._core.errors import (
    AMBIGUOUS_COOKIE,
    ConfigurationError,
    ErrorKind,
    LoadError,
    StateEncodeError,
    StateTooLarge,
    StoreUnavailable,
)
from clientstate._core.handler import Change, ChangeKind, Loaded
from clientstate._core.keys import Keyring
from clientstate._core.record import BLOB_OVERHEAD, RecordCodec
from clientstate._core.session_id import SessionIdCodec, handle_of, new_sid
from clientstate._core.state import State
from clientstate._core.store import Create, Delete, Get, Record, Retire, Store, Touch, Update, UpdateResult
from clientstate._core.value import Immutable, Value

__all__ = [
    "DEFAULT_ABSOLUTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "MAX_PRINCIPAL_BYTES",
    "PRINCIPAL_RULE",
    "ServerStored",
    "SessionRef",
    "principal_problem",
    "server_stored",
]

T = TypeVar("T")

#: Default idle timeout, seconds: 7 days.
DEFAULT_IDLE_TIMEOUT: Final = 7 * 24 * 3600
#: Default absolute timeout, seconds: 30 days.
DEFAULT_ABSOLUTE_TIMEOUT: Final = 30 * 24 * 3600
#: Default state size limit, bytes: 1 MiB.
DEFAULT_MAX_STATE_BYTES: Final = 1 << 20
_ATTEMPTS: Final = 3
#: Compare-and-set attempts of one write before it is given up (logged): each retry re-reads and merges.
_WRITE_ATTEMPTS: Final = 8

log = logging.getLogger("clientstate")

#: ``principal(state) -> str | None``: who a state belongs to (None: anonymous).
Principal = Callable[[Any], "str | None"]

#: The longest principal, in bytes of UTF-8: 1024.
#:
#: Every store keeps and indexes a principal this long losslessly, with room to
#: spare: PostgreSQL's ``text`` column has a btree index whose entries must fit
#: in a third of a page (2704 bytes; longer fails the write); MySQL/MariaDB's
#: ``BLOB`` holds 65,535 bytes (longer is cut short by ``INSERT IGNORE``, so the
#: session would be missing from its principal's list) and indexes a 255-byte
#: prefix, the comparison being on the whole value; Redis puts the principal in
#: the key of its index (``{prefix}p:{<principal>}``); SQLite and the memory
#: store have no limit. A user id — a number, a UUID, an e-mail address (at
#: most 254 characters) — is far shorter.
MAX_PRINCIPAL_BYTES: Final = 1024
#: The principal rule in words, for the messages of whatever refuses a principal.
PRINCIPAL_RULE: Final = f"a non-empty str of valid UTF-8 without NUL, at most {MAX_PRINCIPAL_BYTES} bytes"


def principal_problem(principal: object) -> str | None:
    """Why ``principal`` cannot be a session's principal, or ``None`` when it can: the one principal rule.

    A principal is a non-empty ``str`` that is valid as UTF-8 (no lone
    surrogate, U+D800 to U+DFFF, which Python's ``json`` module produces from
    ``"\\udcff"`` in a request body), holds no NUL (U+0000, which PostgreSQL
    cannot store in text), and is at most :data:`MAX_PRINCIPAL_BYTES` bytes
    of UTF-8. Every store then stores, indexes and finds it exactly.

    Args:
        principal: the candidate (what ``server_stored(principal=...)``
            returned, or a ``Sessions`` method's argument).

    Returns:
        ``None`` if ``principal`` follows the rule; else a short English
        reason, starting lower-case, to put in the caller's exception.
    """
    if not isinstance(principal, str):
        return f"it is a {type(principal).__name__}, not a str"
    if not principal:
        return "it is empty"
    if len(principal) > MAX_PRINCIPAL_BYTES:  # at least one byte of UTF-8 per character: too long already
        return f"it is {len(principal)} characters, over the {MAX_PRINCIPAL_BYTES}-byte limit (MAX_PRINCIPAL_BYTES)"
    try:
        size = len(principal.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return (
            f"it holds a lone surrogate (U+{ord(principal[exc.start]):04X} at index {exc.start}), "
            f"which is not valid UTF-8"
        )
    nul = principal.find("\x00")
    if nul >= 0:
        return f"it holds NUL (U+0000 at index {nul}), which PostgreSQL cannot store"
    if size > MAX_PRINCIPAL_BYTES:
        return f"it is {size} bytes of UTF-8, over the {MAX_PRINCIPAL_BYTES}-byte limit (MAX_PRINCIPAL_BYTES)"
    return None


class SessionRef(Value, frozen=True):
    """What loading found about the session behind a cookie (``Loaded.session``). Frozen.

    Attributes:
        record: the session's record (the successor's, if the cookie named a rotated-away id).
        cookie_sid: the id the cookie carried.
        cookie_key_id: the key id of the cookie's MAC.
        blob_key_id: the key id of the stored state's MAC.
        moved: the cookie named a rotated-away id still in its grace period.
        touch_due: the idle deadline should slide on this response.
        handle: the session's public handle (:func:`handle_of`).
    """

    record: Record
    cookie_sid: bytes
    cookie_key_id: int
    blob_key_id: int
    moved: bool
    touch_due: bool
    handle: str


class CookieSession(Value, frozen=True):
    """The session a cookie named when loading it gave an error (``Loaded.session`` of that load). Frozen.

    Attributes:
        cookie_sid: the id the cookie carried (its MAC verified).
        writable: whether a state assigned on this request may be saved as a
            new session. ``False`` when the store did not answer, or when a
            login moved the session to a new id moments ago: a new session
            would replace the browser's newer cookie (a logout over a blip or
            a race). Such an assignment is logged and not saved.
    """

    cookie_sid: bytes
    writable: bool


_UNKNOWN: Final = LoadError(ErrorKind.UNKNOWN_SESSION, "no such session in the store (deleted or swept)")
_FORGED_TOMBSTONE: Final = LoadError(
    ErrorKind.AUTHENTICATION_FAILED, "the stored record of a rotated-away id failed its MAC (edited in the store)"
)
_MOVED_BY_LOGIN: Final = LoadError(
    ErrorKind.SESSION_MOVED, "a login moved the session to a new id moments ago; the old id does not reach it"
)
_MOVED: Final = LoadError(ErrorKind.SESSION_MOVED, "the session moved to a new id, past the rotation grace")
_MOVED_TOO_OFTEN: Final = LoadError(
    ErrorKind.SESSION_MOVED, "the session moved to a new id more often within its grace than are followed"
)
#: Tombstones followed at most, from the cookie's id to the session (rotations within one grace period).
_HOPS: Final = 4
_UNDECODED: Final = object()


class ServerStored(Immutable):
    """The handler that keeps the state in a store. Build it with :func:`server_stored`.

    Immutable; the attributes are the settings :func:`server_stored` documents.
    """

    __slots__ = (
        "_ids",
        "_records",
        "_writer",
        "absolute_timeout",
        "attributes",
        "idle_timeout",
        "keyring",
        "max_state_bytes",
        "name",
        "principal",
        "rotate_on_principal_change",
        "rotation_grace",
        "store",
        "touch_interval",
    )

    store: Store
    keyring: Keyring
    name: str
    attributes: CookieAttributes
    idle_timeout: int
    absolute_timeout: int
    touch_interval: int
    rotation_grace: int
    principal: Principal | None
    rotate_on_principal_change: bool
    max_state_bytes: int
    _ids: SessionIdCodec
    _writer: CookieWriter
    _records: dict[str, RecordCodec]

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ConfigurationError(
            "build a server-stored handler with clientstate.server_stored(store, keyring, name=...)"
        )

    # --- set-up -------------------------------------------------------------------------------

    def prepare(self, descriptor: State[Any]) -> None:
        """Bind this handler to ``descriptor`` (``setup()`` calls it once, at start-up).

        Raises:
            ConfigurationError: the handler already serves a state of another name.
        """
        self._codec(descriptor)

    def _codec(self, descriptor: State[Any]) -> RecordCodec:
        codec = self._records.get(descriptor.name)
        if codec is None:
            if self._records:
                other = next(iter(self._records))
                raise ConfigurationError(
                    f"handler for cookie {self.name!r} already serves state {other!r}; state "
                    f"{descriptor.name!r} needs its own handler (its own cookie name)"
                )
            codec = RecordCodec(self.keyring, descriptor)
            self._records[descriptor.name] = codec
        elif codec.descriptor is not descriptor:
            raise ConfigurationError(f"handler for cookie {self.name!r} serves another State named {descriptor.name!r}")
        return codec

    def claims(self, cookie_name: str) -> bool:
        """Whether ``cookie_name`` is this handler's cookie."""
        return cookie_name == self.name

    def check_size(self, descriptor: State[Any], payload: bytes) -> None:
        """Raise :class:`~clientstate.StateTooLarge` if the stored state would exceed ``max_state_bytes``."""
        size = len(payload) + BLOB_OVERHEAD
        if size > self.max_state_bytes:
            raise StateTooLarge(
                f"state {descriptor.name!r} would be {size} bytes in the store, over max_state_bytes "
                f"({self.max_state_bytes}); keep less in it or raise the limit",
                size,
                self.max_state_bytes,
            )

    def check_state(self, descriptor: State[Any], value: Any) -> None:
        """Check that ``value``'s principal follows the principal rule (:func:`principal_problem`).

        ``setup()`` calls it when the application assigns ``slot.state =
        value`` (after the size check), so a bad principal — one that came
        from request input, say — raises at the application's line, and
        nothing is saved.

        Raises:
            StateEncodeError: ``server_stored(principal=...)`` returned a str
                that is empty, holds a lone surrogate or NUL, or is longer
                than :data:`MAX_PRINCIPAL_BYTES` bytes of UTF-8.
            ConfigurationError: ``principal`` returned neither a str nor ``None``.
        """
        self._principal_of(descriptor, value)

    # --- load ---------------------------------------------------------------------------------

    def load_plan(self, descriptor: State[T], cookies: RequestCookies, now: float) -> Generator[Any, Any, Loaded[T]]:
        """The plan that loads the session named by the request's cookie; see the module docstring.

        Never raises for request input or a store failure: those are ``Loaded.error`` values.
        """
        values = cookies.get_values(self.name)
        if not values:
            return Loaded.absent()
        if len(values) > 1:
            return Loaded.failed(AMBIGUOUS_COOKIE)
        opened = self._ids.open(values[0])
        if isinstance(opened, LoadError):
            return Loaded.failed(opened)  # no store access for a cookie we did not sign
        cookie_sid, cookie_key_id = opened
        codec = self._codec(descriptor)
        try:
            found = yield from self._follow(codec, cookie_sid, now)
        except StoreUnavailable as exc:
            return Loaded.failed(
                LoadError(ErrorKind.STORE_UNAVAILABLE, str(exc)), session=CookieSession(cookie_sid, False)
            )
        if isinstance(found, LoadError):
            return Loaded.failed(found, session=CookieSession(cookie_sid, found is not _MOVED_BY_LOGIN))
        record, moved = found
        if not now < record.deadline:  # "not (ok)": a NaN clock fails too
            which = "absolute" if record.absolute_deadline <= record.idle_deadline else "idle"
            return Loaded.failed(
                LoadError(ErrorKind.SESSION_EXPIRED, f"past its {which} deadline by {now - record.deadline:.0f} s")
            )
        blob = codec.open(record)
        if isinstance(blob, LoadError):
            return Loaded.failed(blob)
        payload, blob_key_id = blob
        decoded = descriptor.decode(payload, record.schema_version)
        if isinstance(decoded, LoadError):
            return Loaded.failed(decoded)
        migrated = record.schema_version != descriptor.version
        touch_due = (
            not moved
            and now - record.last_touch >= self.touch_interval
            and record.idle_deadline < record.absolute_deadline
        )
        ref = SessionRef(record, cookie_sid, cookie_key_id, blob_key_id, moved, touch_due, handle_of(record.sid))
        reissue = migrated or blob_key_id != codec.current_key_id or (
            not moved and cookie_key_id != self._ids.current_key_id
        )
        return Loaded(
            decoded,
            None,
            True,
            record.created_at,
            record.deadline,
            cookie_key_id,
            record.schema_version,
            descriptor.encode(decoded) if migrated else payload,
            reissue,
            True,
            0,
            ref,
        )

    # --- save ---------------------------------------------------------------------------------

    def _follow(
        self, codec: RecordCodec, sid: bytes, now: float
    ) -> Generator[Any, Any, tuple[Record, bool] | LoadError]:
        """``(record, moved)`` of the session ``sid`` names, following tombstones in their grace; else the error.

        ``moved``: ``sid`` itself was rotated away. A tombstone whose MAC fails
        is ``authentication_failed``; one past its grace, or a login's (not
        followed), ``session_moved``; no record ``unknown_session``.

        Raises:
            StoreUnavailable: the store did not answer.
        """
        record = yield Get(sid)
        moved = False
        for _ in range(_HOPS):
            if record is None:
                return _UNKNOWN
            if record.moved_to is None:
                return record, moved
            follow = codec.open_tombstone(record)
            if follow is None:
                return _FORGED_TOMBSTONE
            if not now < record.idle_deadline:
                return _MOVED
            if not follow:
                return _MOVED_BY_LOGIN
            moved = True
            record = yield Get(record.moved_to)
        return _MOVED_TOO_OFTEN

    # --- save ---------------------------------------------------------------------------------

    def save_plan(
        self, descriptor: State[T], loaded: Loaded[T], change: Change, now: float
    ) -> Generator[Any, Any, list[str]]:
        """The plan that applies ``change`` to the store; returns the ``Set-Cookie`` values.

        Store failures are logged; a failed write leaves the cookie as it was,
        a logout (``ChangeKind.DELETE``) clears the cookie even when the store
        cannot delete the record. Nothing raises for them.

        Raises (before any store operation):
            StateEncodeError: the state to write, changed in place after its
                assignment, has a principal :meth:`check_state` refuses.
            ConfigurationError: ``principal`` returned neither a str nor ``None``.
        """
        session = loaded.session
        kind = change.kind
        moment = math.floor(now)
        if kind is ChangeKind.DELETE:
            return (yield from self._delete(descriptor, session, moment))
        if isinstance(session, CookieSession) and kind is ChangeKind.WRITE and not session.writable:
            assert loaded.error is not None
            log.warning(
                "clientstate: state %r not saved: its session could not be loaded (%s: %s), and a new session "
                "would replace the browser's cookie", descriptor.name, loaded.error.kind, loaded.error.detail,
            )
            return []
        ref = session if isinstance(session, SessionRef) else None
        # Before any store operation: a state changed in place after its assignment may no longer have a valid
        # principal; that raises here, as a state that no longer encodes does (StateEncodeError, nothing written).
        principal = self._principal_of(descriptor, change.value) if kind is ChangeKind.WRITE else None
        try:
            if kind is ChangeKind.NONE:
                return (yield from self._touch(descriptor, ref, moment))
            assert change.payload is not None
            if ref is None:
                record = yield from self._create(descriptor, change.payload, principal, moment, None)
                return self._new_cookie(record)
            return (yield from self._write(descriptor, loaded, change, ref, principal, moment))
        except StoreUnavailable as exc:
            log.error("clientstate: state %r not saved, the store is unavailable: %s", descriptor.name, exc)
            return []

    def _touch(self, descriptor: State[Any], ref: SessionRef | None, now: int) -> Generator[Any, Any, list[str]]:
        if ref is None or not ref.touch_due:
            return []
        record = ref.record
        if (yield Touch(record.sid, min(now + self.idle_timeout, record.absolute_deadline), now)):
            return []
        found = yield from self._follow(self._codec(descriptor), record.sid, now)
        if isinstance(found, LoadError) and found.kind is not ErrorKind.SESSION_MOVED:
            return [self._writer.delete_cookie(self.name)]  # ended during the request
        return []  # rotated during the request: the browser gets (or has) the new cookie

    def _delete(self, descriptor: State[Any], session: Any, now: int) -> Generator[Any, Any, list[str]]:
        """A logout: delete the session the cookie named, along its tombstones, and clear the cookie."""
        if isinstance(session, SessionRef | CookieSession):
            codec = self._codec(descriptor)
            sid: bytes | None = session.cookie_sid
            try:
                for _ in range(_HOPS + 1):
                    if sid is None:
                        break
                    try:
                        current = yield Get(sid)  # rotated meanwhile? then its successor is this session too
                    except StoreUnavailable:
                        current = None  # still delete the id the cookie names
                    yield Delete(sid)
                    # Only a tombstone the load would follow (genuine, not a login's, in its grace) leads on: an id
                    # from before a login, or past the grace, must not log the newer session out.
                    followed = (
                        current is not None and now < current.idle_deadline and codec.open_tombstone(current) is True
                    )
                    sid = current.moved_to if followed and current is not None else None
                if isinstance(session, SessionRef) and session.record.sid != session.cookie_sid:
                    yield Delete(session.record.sid)
            except StoreUnavailable as exc:
                log.error(
                    "clientstate: logout of state %r: the cookie is cleared but the store could not delete the "
                    "session (it ends at its deadline, or with the next 'log out everywhere'): %s",
                    descriptor.name, exc,
                )
        return [self._writer.delete_cookie(self.name)]

    def _create(
        self, descriptor: State[Any], payload: bytes, principal: str | None, now: int, keep: Record | None
    ) -> Generator[Any, Any, Record]:
        """Insert a new session (retrying on an id collision); returns its record.

        ``keep``: the record of the session being rotated, whose creation time
        and absolute deadline carry over; ``None`` for a new session.
        """
        codec = self._codec(descriptor)
        created, absolute = (now, now + self.absolute_timeout) if keep is None else (
            keep.created_at, keep.absolute_deadline
        )
        for _ in range(_ATTEMPTS):
            sid = new_sid()
            record = Record(
                sid, 1, principal, created, absolute, min(now + self.idle_timeout, absolute), now,
                descriptor.version, codec.seal(sid, descriptor.version, payload, principal, created, absolute),
            )
            if (yield Create(record)):
                return record
        raise StoreUnavailable(f"{_ATTEMPTS} new session ids in a row already existed in the store")

    def _new_cookie(self, record: Record) -> list[str]:
        max_age = record.absolute_deadline - record.last_touch
        return [self._writer.set_cookie(self.name, self._ids.sign(record.sid), max_age)]

    def _rotate(
        self, descriptor: State[Any], record: Record, payload: bytes, principal: str | None, now: int
    ) -> Generator[Any, Any, Record | None]:
        """Move the state to a new id; the old one becomes a tombstone for ``rotation_grace`` seconds.

        The successor is created first, then the old session retired by
        compare-and-set on its version; if that fails (deleted, written or
        rotated meanwhile) the successor is deleted again and ``None`` returned.
        A login (a change of principal) starts a new absolute timeout, and its
        tombstone is not followed; any other rotation keeps both.
        """
        login = principal != record.principal
        successor = yield from self._create(descriptor, payload, principal, now, None if login else record)
        until = now + self.rotation_grace
        tombstone = self._codec(descriptor).seal_tombstone(record.sid, successor.sid, until, follow=not login)
        if (yield Retire(record.sid, record.version, successor.sid, until, tombstone)):
            return successor
        yield Delete(successor.sid)
        return None

    def _write(
        self, descriptor: State[Any], loaded: Loaded[Any], change: Change, ref: SessionRef, principal: str | None,
        now: int,
    ) -> Generator[Any, Any, list[str]]:
        """Write the state by compare-and-set (rotating the id when due); on a conflict, retry on a fresh read.

        See the module docstring. The fields this request changed are those
        that differ from a fresh decode of the payload it loaded (so in-place
        edits of ``loaded.state`` count), applied each time onto the latest state.
        ``principal``: the checked principal of ``change.value`` (unused for a
        ``REISSUE``, which keeps the record's). A merged state whose principal
        the rule refuses is not saved (logged at warning).
        """
        assert change.payload is not None
        codec = self._codec(descriptor)
        record, payload, value = ref.record, change.payload, change.value
        unrequested = change.kind is ChangeKind.REISSUE
        if unrequested and ref.blob_key_id == codec.current_key_id and record.schema_version == descriptor.version:
            return self._cookie_lines(ref, record, now)  # only the cookie is under an older key
        moved = ref.moved
        base: Any = _UNDECODED
        if unrequested:  # a re-issue keeps the record's principal (and makes one attempt: see below)
            principal = record.principal
        for _ in range(_WRITE_ATTEMPTS):
            login = self.rotate_on_principal_change and principal != record.principal
            if not unrequested and (login or (change.rotate and not moved)):
                successor = yield from self._rotate(descriptor, record, payload, principal, now)
                if successor is not None:
                    return self._new_cookie(successor)
            else:
                updated = msgspec.structs.replace(
                    record,
                    version=record.version + 1,
                    principal=principal,
                    last_touch=now,
                    idle_deadline=min(now + self.idle_timeout, record.absolute_deadline),
                    schema_version=descriptor.version,
                    blob=codec.seal(
                        record.sid, descriptor.version, payload, principal, record.created_at, record.absolute_deadline
                    ),
                )
                if (yield Update(updated, record.version)) is UpdateResult.OK:
                    return [] if moved else self._cookie_lines(ref, updated, now)
            if unrequested:
                return []  # another request wrote the session meanwhile, and re-signed it
            fresh = yield from self._reread(descriptor, record.sid, now)
            if isinstance(fresh, LoadError):
                if fresh.kind is ErrorKind.SESSION_MOVED:
                    log.warning(
                        "clientstate: state %r not saved: a login moved the session to a new id during the request "
                        "(the old id does not reach it)", descriptor.name,
                    )
                    return []  # the browser gets (or has) the new cookie; leave it
                log.info("clientstate: the session of %r ended during the request; not saved", descriptor.name)
                return [self._writer.delete_cookie(self.name)]
            record, theirs, hopped = fresh
            moved = moved or hopped
            if base is _UNDECODED:
                base = descriptor.decode(loaded.payload, descriptor.version) if loaded.payload else None
            value = _merge(descriptor, base, change.value, theirs)
            payload = descriptor.encode(value)
            try:
                principal = self._principal_of(descriptor, value)
            except StateEncodeError as exc:
                log.warning("clientstate: state %r not saved: merged with a concurrent write, %s", descriptor.name, exc)
                return []
        log.warning(
            "clientstate: state %r not saved after %d conflicting writes to one session", descriptor.name,
            _WRITE_ATTEMPTS,
        )
        return []

    def _reread(
        self, descriptor: State[Any], sid: bytes, now: int
    ) -> Generator[Any, Any, tuple[Record, Any, bool] | LoadError]:
        """``(record, state, moved)`` of the session ``sid`` names now, or why there is none to write to."""
        codec = self._codec(descriptor)
        found = yield from self._follow(codec, sid, now)
        if isinstance(found, LoadError):
            return found
        record, moved = found
        if not now < record.deadline:
            return _UNKNOWN
        blob = codec.open(record)
        if isinstance(blob, LoadError):
            return blob
        state = descriptor.decode(blob[0], record.schema_version)
        return state if isinstance(state, LoadError) else (record, state, moved)

    def _cookie_lines(self, ref: SessionRef, record: Record, now: int) -> list[str]:
        """After a write: re-sign the cookie if it was under an older key (not for a rotated-away id)."""
        if ref.moved or ref.cookie_key_id == self._ids.current_key_id:
            return []
        return [self._writer.set_cookie(self.name, self._ids.sign(record.sid), record.absolute_deadline - now)]

    def _principal_of(self, descriptor: State[Any], value: Any) -> str | None:
        """``value``'s principal (``None``: anonymous, or no ``principal`` function), checked by the principal rule.

        Raises:
            StateEncodeError: a str the rule refuses (:func:`principal_problem`).
            ConfigurationError: neither a str nor ``None``.
        """
        if self.principal is None or value is None:
            return None
        principal = self.principal(value)
        if principal is None:
            return None
        if not isinstance(principal, str):
            raise ConfigurationError(
                f"server_stored(principal=...) returned a {type(principal).__name__}; it must return a str or None"
            )
        problem = principal_problem(principal)
        if problem is not None:
            raise StateEncodeError(
                descriptor.name,
                f"its principal (server_stored(principal=...) returned {principal!r:.60}) cannot be stored: "
                f"{problem}. A principal is {PRINCIPAL_RULE}; return None for an anonymous state",
            )
        return principal

    def __repr__(self) -> str:
        return f"ServerStored(name={self.name!r}, store={self.store!r}, keyring={self.keyring!r})"


def _merge(descriptor: State[Any], base: Any, ours: Any, theirs: Any) -> Any:
    """``theirs`` with the fields (keys) ``ours`` changed from ``base`` applied; ``ours`` for other types."""
    encode = descriptor._unordered.encode
    if isinstance(ours, msgspec.Struct) and type(base) is type(ours) is type(theirs):
        changed = {
            name: getattr(ours, name)
            for name in ours.__struct_fields__
            if encode(getattr(ours, name)) != encode(getattr(base, name))
        }
        return msgspec.structs.replace(theirs, **changed)
    if isinstance(ours, dict) and isinstance(base, dict) and isinstance(theirs, dict):
        merged = dict(theirs)
        for key in base.keys() - ours.keys():
            merged.pop(key, None)
        for key, item in ours.items():
            if key not in base or encode(item) != encode(base[key]):
                merged[key] = item
        return merged
    return ours


@checked
def server_stored(
    store: Store,
    keyring: Keyring,
    *,
    name: str,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
    absolute_timeout: int = DEFAULT_ABSOLUTE_TIMEOUT,
    touch_interval: int | None = None,
    rotation_grace: int = 10,
    principal: Principal | None = None,
    rotate_on_principal_change: bool = True,
    attributes: CookieAttributes | None = None,
    max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
) -> ServerStored:
    """Build a handler that keeps the state in ``store`` behind a signed session-id cookie.

    Args:
        store: where sessions live (``MemoryStore``, ``SQLiteStore``,
            ``RedisStore``, ``PostgresStore``, ``LayeredStore``, or
            ``store_from_url(...)``).
        keyring: keys for the cookie's MAC and the stored state's MAC (their
            own HKDF subkeys, ``sid`` and ``record``).
        name: the cookie name (an RFC 9110 token; ``__Host-`` recommended).
        idle_timeout: seconds without a request before the session ends
            (default 7 days, 2 s to 2**32 s).
        absolute_timeout: seconds after the session's creation when it ends
            whatever its activity (default 30 days); at least ``idle_timeout``.
            An id rotation (``slot.rotate_id()``) keeps the creation time and
            this deadline; a login (a change of principal, which rotates the
            id while ``rotate_on_principal_change``) starts a new session with
            its own.
        touch_interval: at most one touch (idle-deadline write) per session per
            this many seconds (default a tenth of ``idle_timeout``, at least 1).
        rotation_grace: seconds an old id keeps answering after a rotation (default 10).
        principal: ``principal(state) -> str | None``, who a state belongs to
            (the logged-in user id), for listing and ending a user's sessions.
            It must return ``None`` (anonymous) or a non-empty str of valid
            UTF-8 without NUL and at most :data:`MAX_PRINCIPAL_BYTES` (1024)
            bytes (:func:`principal_problem`); any other str raises
            :class:`~clientstate.StateEncodeError` when the state is assigned
            (or, for a state changed in place, when it is saved).
        rotate_on_principal_change: give the session a new id whenever its
            principal changes (default ``True``: a login or logout is a new id).
        attributes: ``Set-Cookie`` attributes (default ``Path=/; Secure;
            HttpOnly; SameSite=Lax``); the cookie's ``Max-Age`` is the time left
            to the absolute deadline (or the attributes' ``max_age`` if shorter).
        max_state_bytes: the largest stored state, bytes (default 1 MiB);
            a larger one raises :class:`~clientstate.StateTooLarge` when assigned.

    Raises:
        ConfigurationError: an unknown argument, a store that does not follow
            the store protocol, an invalid cookie name or attributes, or a
            time setting out of range (``absolute_timeout`` shorter than
            ``idle_timeout``, ``touch_interval`` not shorter than ``idle_timeout``).
    """
    if not isinstance(store, Store):
        raise ConfigurationError(
            f"store must be a clientstate store (MemoryStore, SQLiteStore, RedisStore, PostgresStore, "
            f"LayeredStore, store_from_url(...)), got {type(store).__name__}"
        )
    check_type(keyring, Keyring, "keyring", "read one with Keyring.from_env() or Keyring.from_text(...)")
    attributes = CookieAttributes() if attributes is None else attributes
    check_type(attributes, CookieAttributes, "attributes")
    attributes.check_name(name)
    check_seconds(idle_timeout, "idle_timeout", 2)  # room for a touch_interval of 1 s below it
    check_seconds(absolute_timeout, "absolute_timeout", 2)
    if absolute_timeout < idle_timeout:
        raise ConfigurationError(
            f"absolute_timeout ({absolute_timeout} s) must be at least idle_timeout ({idle_timeout} s)"
        )
    if touch_interval is None:
        touch_interval = max(1, idle_timeout // 10)
    check_seconds(touch_interval, "touch_interval", 1, MAX_SECONDS)
    if touch_interval >= idle_timeout:
        raise ConfigurationError(
            f"touch_interval ({touch_interval} s) must be shorter than idle_timeout ({idle_timeout} s)"
        )
    check_seconds(rotation_grace, "rotation_grace", 0, 3600)
    if principal is not None:
        check_callable(principal, "principal", "principal(state) -> str | None")
    check_type(rotate_on_principal_change, bool, "rotate_on_principal_change")
    check_int(max_state_bytes, "max_state_bytes", 1024, 1 << 30, "bytes")
    handler = object.__new__(ServerStored)
    handler._set(
        store=store,
        keyring=keyring,
        name=name,
        attributes=attributes,
        idle_timeout=idle_timeout,
        absolute_timeout=absolute_timeout,
        touch_interval=touch_interval,
        rotation_grace=rotation_grace,
        principal=principal,
        rotate_on_principal_change=rotate_on_principal_change,
        max_state_bytes=max_state_bytes,
        _ids=SessionIdCodec(keyring, name),
        _writer=CookieWriter(attributes),
        _records={},
    )
    return handler
