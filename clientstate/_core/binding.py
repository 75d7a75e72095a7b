"""The core of ``setup()``: load, let the application run, compare, save. No I/O.

A :class:`Binding` ties a :class:`~clientstate.State` descriptor to a
:class:`~clientstate.Handler` and a clock. For each request an adapter (WSGI,
ASGI, or the plain service form) calls :meth:`Binding.begin` with the
request's ``Cookie`` field values, puts the resulting
:class:`~clientstate.StateSlot` where the application finds it
(:meth:`Binding.attach`), and when the application starts its response calls
:meth:`Binding.finish` to learn which ``Set-Cookie`` values to add (or
:meth:`Binding.abandon` for a failed request). Either one closes the slot:
a later assignment raises :class:`~clientstate.StateNotWritable`.

The save rule (from the seed design, made precise):

* after a load error: the new state is saved, which replaces the invalid
  cookie, or deletes it when the new state is ``None``; except that with an
  ``ambiguous`` error and no new state nothing is written, because a deletion
  could only remove one of several same-named cookies, and the survivor (which
  may be an attacker's) would then load;
* new state ``None``: the cookie is deleted if a state had loaded;
* otherwise the new state is encoded and compared with the canonical bytes of
  the loaded state; the cookie is written only if they differ.
* A write the application did not ask for — the loaded token is re-issued
  because it was verified with an older key, written at an older schema
  version, or is due for refresh — carries the loaded state unchanged, and
  is skipped when the request took longer than :data:`REISSUE_WINDOW`
  seconds, or when the re-issued token would no longer fit in a cookie (the
  cookie the client holds still loads). See "logout races" in the README's
  security model for what this narrows and what remains.

Failed requests: adapters call :meth:`Binding.abandon` for responses with a
5xx status (and, in WSGI, when ``start_response`` gets ``exc_info``): a
request that failed commits no state change.

Collisions: two bindings that meet in one request (nested middleware) must
serve different state names and different cookie names; :meth:`attach` raises
:class:`~clientstate.ConfigurationError` otherwise, and :meth:`check_nested`
does the same at start-up for middleware wrapped directly around another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping, MutableMapping, Sequence
from typing import Any, Final, Generic, TypeVar, cast

from clientstate._core.config import check_callable, check_type, read_clock
from clientstate._core.cookies import RequestCookies
from clientstate._core.errors import ConfigurationError, CookieTooLarge, ErrorKind
from clientstate._core.handler import NO_CHANGE, AnyHandler, Change, ChangeKind, Handler, Loaded, PlanHandler
from clientstate._core.slot import StateSlot
from clientstate._core.state import State
from clientstate._core.value import Immutable

__all__ = ["REISSUE_WINDOW", "Binding", "Clock"]

T = TypeVar("T")

#: A clock: returns seconds since the Unix epoch (like ``time.time``).
Clock = Callable[[], float]

#: Seconds a request may run and still re-issue a token the application did
#: not change (key rotation, migration, refresh). A slower request leaves the
#: re-issue to a later one, so it cannot re-set a state that a logout in the
#: meantime deleted.
REISSUE_WINDOW: Final = 1.0

# Where the bindings serving one request are listed (a tuple), in the environ or scope.
_BINDINGS: Final = "clientstate.bindings"

_DELETE: Final = Change(ChangeKind.DELETE)

_AFTER_HEADERS: Final = (
    "the response's headers were already sent (WSGI start_response called, ASGI "
    "http.response.start sent, or the service returned), so the new Set-Cookie could not reach "
    "the client; assign slot.state before starting the response"
)
_FAILED: Final = (
    "the request failed (a 5xx response or an error page), and a failed request commits no "
    "state change"
)


#: Load errors after which the response leaves the cookie alone unless the application assigns ``None``:
#: deleting could hand the request to a planted copy (ambiguous), log a user out over a store blip
#: (store_unavailable), delete the newer cookie the browser holds (session_moved), or log users out in a
#: rolling deploy while servers of the older release still write the older shape (schema_mismatch).
_KEEP_COOKIE: Final = frozenset(
    (ErrorKind.AMBIGUOUS, ErrorKind.STORE_UNAVAILABLE, ErrorKind.SESSION_MOVED, ErrorKind.SCHEMA_MISMATCH)
)


class Binding(Immutable, Generic[T]):
    """A state descriptor bound to a handler and a clock: the sans-I/O core of setup().

    Args:
        descriptor: the :class:`~clientstate.State` descriptor.
        handler: the :class:`~clientstate.Handler` that stores it.
        clock: returns seconds since the Unix epoch (default ``time.time``);
            tests inject a frozen one.

    Raises:
        ConfigurationError: an argument of the wrong kind, or ``handler``
            cannot serve ``descriptor`` (for ``client_stored``: it already
            serves a state of another name).
    """

    __slots__ = ("_with_io", "_without_io", "clock", "descriptor", "handler", "key", "plans")

    descriptor: State[T]
    handler: AnyHandler
    clock: Clock
    key: str
    #: Whether the handler keeps state in a store (its loads and saves are plans).
    plans: bool
    # The handler, typed once at construction (runtime Protocol checks cost ~30 µs a request).
    _without_io: Handler | None
    _with_io: PlanHandler | None

    def __init__(self, descriptor: State[T], handler: AnyHandler, clock: Clock = time.time) -> None:
        check_type(descriptor, State, "the state descriptor", "build one with clientstate.State(name, type)")
        plans = isinstance(handler, PlanHandler)
        if not plans:
            check_type(handler, Handler, "the handler", "build one with client_stored(...) or server_stored(...)")
        check_callable(clock, "clock", "clock() -> seconds since the epoch")
        handler.prepare(descriptor)
        self._set(
            descriptor=descriptor, handler=handler, clock=clock, key=descriptor.slot_key, plans=plans,
            _without_io=None if plans else cast(Handler, handler),
            _with_io=cast(PlanHandler, handler) if plans else None,
        )

    @classmethod
    def around(cls, app: object, descriptor: State[T], handler: AnyHandler, clock: Clock, shape: str) -> Binding[T]:
        """The binding of a middleware that will wrap ``app``, checked against the clientstate layers inside it.

        Args:
            app: the application to wrap; ``shape`` describes it for the error message.
            descriptor, handler, clock: as for :class:`Binding`.

        Raises:
            ConfigurationError: ``app`` is not callable, an argument is of the
                wrong kind, or :meth:`check_nested` finds a collision.
        """
        check_callable(app, "app", shape)
        binding = cls(descriptor, handler, clock)
        binding.check_nested(app)
        return binding

    def begin(self, cookie_headers: Sequence[str]) -> StateSlot[T]:
        """Load the state from a request's ``Cookie`` field values (handlers without I/O).

        Never raises for request input; raises ConfigurationError if the
        handler needs store I/O (use :meth:`begin_plan`).
        """
        now = read_clock(self.clock)
        if not cookie_headers:
            return StateSlot(self, Loaded.absent(), now)
        handler = self._without_io  # the per-request path: no _pure() call unless it must raise
        if handler is None:
            handler = self._pure()
        return StateSlot(self, handler.load(self.descriptor, RequestCookies(cookie_headers), now), now)

    def attach(self, mapping: MutableMapping[str, Any], slot: StateSlot[T]) -> None:
        """Put ``slot`` in a request's environ or scope, refusing a collision with another binding.

        Raises:
            ConfigurationError: another binding in this request serves a
                state of the same name, or a cookie name one of the two
                handlers claims.
        """
        others = mapping.get(_BINDINGS)
        if others:
            for other in others:
                if other is not self:
                    self.check_apart(other)
            mapping[_BINDINGS] = (*others, self)
        else:
            mapping[_BINDINGS] = (self,)
        mapping[self.key] = slot

    def attached(self, scope: Mapping[str, Any], slot: StateSlot[T]) -> dict[str, Any]:
        """A copy of ``scope`` with ``slot`` attached (ASGI passes the application a new scope); see :meth:`attach`."""
        if _BINDINGS not in scope:  # the usual case, one clientstate layer: one dict built
            return {**scope, _BINDINGS: (self,), self.key: slot}
        copy = dict(scope)
        self.attach(copy, slot)
        return copy

    def check_apart(self, other: Binding[Any]) -> None:
        """Raise :class:`~clientstate.ConfigurationError` if ``other`` shares a state or cookie name with this one."""
        if other.descriptor.name == self.descriptor.name:
            raise ConfigurationError(
                f"two clientstate layers serve a state named {self.descriptor.name!r}; each would overwrite "
                f"the other's slot. Give each State its own name"
            )
        mine, theirs = self.handler.name, other.handler.name
        if self.handler.claims(theirs) or other.handler.claims(mine):
            raise ConfigurationError(
                f"the handlers of states {self.descriptor.name!r} and {other.descriptor.name!r} use the same "
                f"cookie ({mine!r} and {theirs!r}): each would overwrite the other's cookie and log users "
                f"out on every request. Give each handler its own cookie name"
            )

    def check_nested(self, inner: object) -> None:
        """At start-up: check every clientstate middleware directly inside ``inner``'s chain.

        Follows ``inner.binding`` / ``inner.app`` through clientstate's own
        middleware objects (anything else ends the walk: what a framework
        wraps is checked on the first request instead).

        Raises:
            ConfigurationError: see :meth:`check_apart`.
        """
        seen = 0
        while isinstance(getattr(inner, "binding", None), Binding) and seen < 1000:
            self.check_apart(inner.binding)  # type: ignore[attr-defined]
            inner = getattr(inner, "app", None)
            seen += 1

    def decide(self, slot: StateSlot[T]) -> Change:
        """Close ``slot`` and decide what the response must do to the stored state (see the module docstring).

        Raises:
            StateEncodeError: the state, changed in place after its assignment,
                no longer encodes.
        """
        slot.close(_AFTER_HEADERS)
        descriptor = self.descriptor
        loaded = slot.loaded
        new = slot._state
        rotate = slot._rotate
        error = loaded.error
        if error is not None:
            if new is None:
                if error.kind in _KEEP_COOKIE and not slot._cleared:
                    return NO_CHANGE
                return _DELETE
            payload = descriptor.changed(None, new, slot._payload)
            return Change(ChangeKind.WRITE, payload, new, rotate)
        if new is None:
            return NO_CHANGE if loaded.state is None else _DELETE
        checked = slot._payload
        if checked is not None and descriptor.immutable:  # assigned, and it cannot have changed since
            payload = None if checked == loaded.payload else checked
        else:
            payload = descriptor.changed(loaded.payload, new, checked)
        if payload is not None or rotate:
            return Change(ChangeKind.WRITE, loaded.payload if payload is None else payload, new, rotate)
        if not loaded.reissue or not self.clock() - slot.now <= REISSUE_WINDOW:
            return NO_CHANGE
        return Change(ChangeKind.REISSUE, loaded.payload, new)

    def finish(self, slot: StateSlot[T]) -> list[str]:
        """Close ``slot`` and return the ``Set-Cookie`` values the response must carry (often none).

        For handlers without I/O; a store-backed handler's save is a plan
        (:meth:`finish_plan`), which ``clientstate._core.drive`` runs.

        Raises:
            StateEncodeError: the state, changed in place after its assignment,
                no longer encodes.
            CookieTooLarge: the state, changed in place, no longer fits.
            ConfigurationError: the handler needs store I/O.
        """
        change = self.decide(slot)
        kind = change.kind
        if kind is ChangeKind.NONE:
            return []
        handler = self._pure()
        if kind is ChangeKind.REISSUE:
            # Our own decision (older key or schema, refresh): if the re-issued
            # token no longer fits, keep the cookie that still loads.
            try:
                return handler.save(self.descriptor, slot.loaded, change.payload, slot.now)
            except CookieTooLarge:
                return []
        return handler.save(self.descriptor, slot.loaded, change.payload, slot.now)

    def begin_plan(self, cookie_headers: Sequence[str]) -> Generator[Any, Any, StateSlot[T]]:
        """The plan that loads the state with a store-backed handler (run it with ``clientstate._core.flow``)."""
        handler = self._planned()
        now = read_clock(self.clock)
        loaded = yield from handler.load_plan(self.descriptor, RequestCookies(cookie_headers), now)
        return StateSlot(self, loaded, now)

    def finish_plan(self, slot: StateSlot[T]) -> Generator[Any, Any, list[str]]:
        """The plan that saves ``slot`` with a store-backed handler; returns the ``Set-Cookie`` values.

        Raises (before the plan runs):
            StateEncodeError: as :meth:`decide`.
        """
        handler = self._planned()
        change = self.decide(slot)
        now = read_clock(self.clock)  # at save time: a slow request cannot outlive a deadline
        return (yield from handler.save_plan(self.descriptor, slot.loaded, change, now))

    @property
    def store(self) -> Any:
        """The store of a store-backed handler (what :mod:`clientstate._core.drive` performs plans on)."""
        return self._planned().store

    def _planned(self) -> PlanHandler:
        """The handler, known at construction to keep state in a store."""
        handler = self._with_io
        if handler is None:
            raise ConfigurationError(f"{self.handler!r} keeps no store: its state lives in the cookie")
        return handler

    def _pure(self) -> Handler:
        """The handler, known at construction to need no I/O (no per-request Protocol check: they are slow)."""
        handler = self._without_io
        if handler is None:
            raise ConfigurationError(
                f"{self.handler!r} keeps state in a store: load and save through clientstate.wsgi/asgi setup() or "
                f"clientstate._core.drive, which perform its store I/O"
            )
        return handler

    def abandon(self, slot: StateSlot[T]) -> list[str]:
        """Close ``slot`` for a failed request: nothing is saved. Returns ``[]``."""
        slot.close(_FAILED)
        return []

    def __repr__(self) -> str:
        return f"Binding({self.descriptor!r}, {self.handler!r})"
