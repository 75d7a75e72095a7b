"""The handler protocol, and :class:`Loaded`, what a handler's load found.

A :class:`Handler` is sans-I/O: it reads a :class:`~clientstate._core.cookies.RequestCookies`
and returns ``Set-Cookie`` field values. Handlers live in
:mod:`clientstate._handlers`; this module holds only what every handler and
the setup() core share.

Loading never raises for anything the client sends: every failure is a
:class:`~clientstate.LoadError` inside the returned :class:`Loaded`.
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from clientstate._core.cookies import RequestCookies
from clientstate._core.errors import LoadError
from clientstate._core.state import State
from clientstate._core.value import Value

__all__ = ["AnyHandler", "Change", "ChangeKind", "Handler", "Loaded", "PlanHandler"]

T = TypeVar("T")


class Loaded(Value, Generic[T], frozen=True):
    """What loading found for one request: the state, or why there is none. Frozen.

    Attributes:
        state: the loaded value, or ``None`` (no cookie, or a load error).
        error: the :class:`~clientstate.LoadError`, or ``None``.
        present: whether the request carried a non-empty cookie for this state.
        issued_at: the token's issued-at (seconds since the epoch), if loaded.
        expires_at: when the token stops loading (seconds since the epoch):
            the earlier of its own expires-at and issued-at plus the handler's
            current lifetime; ``None`` for no limit.
        key_id: the id of the key that verified the token, if loaded.
        schema_version: the schema version the token was written at, if loaded.
        payload: canonical encoding of ``state`` at the current schema version
            (what an unchanged state is compared against).
        reissue: the cookie should be written again even if the state is
            unchanged: it was verified with an older key, migrated from an
            older schema version, or is due for refresh. The application did
            not ask for this write (see ``setup()`` for when it is skipped).
        keep_times: when re-issued unchanged, keep ``issued_at`` and
            ``expires_at`` (key rotation, migration), rather than restarting
            them (refresh).
        chunks: how many chunk cookies beyond the first the request carried
            (chunked handlers only), so stale ones can be deleted.
        session: what a server-stored handler knows about the session it
            loaded (its record, how the cookie was signed); ``None`` otherwise.
    """

    state: T | None = None
    error: LoadError | None = None
    present: bool = False
    issued_at: int | None = None
    expires_at: int | None = None
    key_id: int | None = None
    schema_version: int | None = None
    payload: bytes | None = None
    reissue: bool = False
    keep_times: bool = False
    chunks: int = 0
    session: Any = None

    @staticmethod
    def absent() -> Loaded[Any]:
        """The load of a request without the cookie: no state, no error (one shared instance)."""
        return _ABSENT

    @staticmethod
    def failed(error: LoadError, *, chunks: int = 0, session: Any = None) -> Loaded[Any]:
        """A load that found a cookie but no valid state."""
        return Loaded(None, error, True, chunks=chunks, session=session)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"Loaded(error={self.error!r})"
        return f"Loaded(state={self.state!r}, issued_at={self.issued_at}, key_id={self.key_id})"


_ABSENT: Loaded[Any] = Loaded()


@runtime_checkable
class Handler(Protocol):
    """Loads state from request cookies and saves it as ``Set-Cookie`` values. Sans-I/O.

    ``setup()`` calls :meth:`prepare` once at start-up, :meth:`load` once per
    request that carries a ``Cookie`` header (a request without one loads
    :meth:`Loaded.absent`), :meth:`check_size` when the application assigns a
    new state, and :meth:`save` at most once per response, only when a cookie
    must be written or deleted.

    Attributes:
        name: the cookie name (the first one, for handlers that use several).
    """

    name: str

    def prepare(self, descriptor: State[Any]) -> None:
        """Get ready to serve ``descriptor``; called once by ``setup()`` at start-up.

        Raises:
            ConfigurationError: this handler cannot serve ``descriptor``.
        """
        ...

    def claims(self, cookie_name: str) -> bool:
        """Whether ``cookie_name`` is one of the cookies this handler reads and writes."""
        ...

    def load(self, descriptor: State[T], cookies: RequestCookies, now: float) -> Loaded[T]:
        """Load ``descriptor``'s state from ``cookies`` at time ``now`` (seconds since the epoch).

        Must not raise for any request input; failures go in ``Loaded.error``.
        """
        ...

    def check_size(self, descriptor: State[Any], payload: bytes) -> None:
        """Raise :class:`~clientstate.CookieTooLarge` if a state encoded as ``payload`` cannot be saved."""
        ...

    def save(self, descriptor: State[T], loaded: Loaded[T], payload: bytes | None, now: float) -> list[str]:
        """Return the ``Set-Cookie`` field values that store ``payload`` (``None``: delete).

        Args:
            descriptor: the state descriptor.
            loaded: what :meth:`load` returned for this request.
            payload: the new state's canonical encoding (:meth:`State.encode`),
                or ``None`` to delete the stored state.
            now: seconds since the epoch.

        Raises:
            CookieTooLarge: the state does not fit in a cookie.
        """
        ...


class ChangeKind(enum.Enum):
    """What a response must do to the stored state (decided by ``Binding.decide``)."""

    #: Nothing the application asked for (a server-stored handler may still touch the session).
    NONE = "none"
    #: Store a new or changed state.
    WRITE = "write"
    #: Delete the state (the application set ``None``, or a bad cookie must be cleared).
    DELETE = "delete"
    #: Write the loaded state again, unchanged, for the handler's own reasons
    #: (older key, older schema version, refresh): the application did not ask.
    REISSUE = "reissue"


class Change(Value, frozen=True):
    """The decision for one response. Frozen.

    Attributes:
        kind: see :class:`ChangeKind`.
        payload: the canonical encoding to store (``WRITE``, ``REISSUE``), else ``None``.
        value: the state value to store (``WRITE``, ``REISSUE``), else ``None``.
        rotate: the application asked for a new session id (``StateSlot.rotate_id``).
    """

    kind: ChangeKind
    payload: bytes | None = None
    value: Any = None
    rotate: bool = False


NO_CHANGE: Change = Change(ChangeKind.NONE)


@runtime_checkable
class PlanHandler(Protocol):
    """A handler whose loads and saves need store I/O, described as plans (see ``clientstate._core.flow``).

    ``setup()`` and the framework integrations run the plans with blocking I/O
    (WSGI) or ``await`` (ASGI) through ``clientstate._core.drive``; the logic is
    the same generator either way.

    Attributes:
        name: the cookie name.
        store: the :class:`~clientstate._core.store.Store` the plans' operations go to.
    """

    name: str
    store: Any

    def prepare(self, descriptor: State[Any]) -> None:
        """Get ready to serve ``descriptor`` (at start-up); ``ConfigurationError`` if it cannot."""
        ...

    def claims(self, cookie_name: str) -> bool:
        """Whether ``cookie_name`` is this handler's cookie."""
        ...

    def check_size(self, descriptor: State[Any], payload: bytes) -> None:
        """Raise :class:`~clientstate.StateTooLarge` if a state encoded as ``payload`` cannot be stored."""
        ...

    def check_state(self, descriptor: State[Any], value: Any) -> None:
        """Check an assigned state ``value`` (already encoded and size-checked) for what else its save needs.

        ``slot.state = value`` calls it after :meth:`check_size`, so the error
        points at the assignment. A server-stored handler checks the state's
        principal here.

        Raises:
            StateEncodeError: ``value`` cannot be saved by this handler (for
                ``server_stored``: its principal breaks the principal rule).
        """
        ...

    def load_plan(
        self, descriptor: State[T], cookies: RequestCookies, now: float
    ) -> Generator[Any, Any, Loaded[T]]:
        """The plan that loads ``descriptor``'s state; never raises for request input or store failures."""
        ...

    def save_plan(
        self, descriptor: State[T], loaded: Loaded[T], change: Change, now: float
    ) -> Generator[Any, Any, list[str]]:
        """The plan that applies ``change``; returns the ``Set-Cookie`` values."""
        ...


#: Any handler ``setup()`` accepts: one without I/O, or one backed by a store.
AnyHandler = Handler | PlanHandler
