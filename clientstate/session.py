"""The core of ``setup()``: load, let the application run, compare, save. No I/O.

A :class:`Binding` ties a :class:`~clientstate.state.State` to a
:class:`~clientstate.handler.Handler` and a clock. For each request an adapter
(WSGI, ASGI, or the plain service form) calls :meth:`Binding.begin` with the
request's ``Cookie`` field values, gives the resulting :class:`StateSlot` to
the application, and after the application has answered calls
:meth:`Binding.finish` to learn which ``Set-Cookie`` values to add.

The save rule (from the seed design, made precise):

* after a load error: the new state is saved, which replaces the invalid
  cookie, or deletes it when the new state is ``None``; except that with an
  ``ambiguous`` error and no new state nothing is written, because a deletion
  could only remove one of several same-named cookies, and the survivor (which
  may be an attacker's) would then load;
* new state ``None``: the cookie is deleted if a state had loaded;
* otherwise the new state is encoded and compared with the canonical bytes of
  the loaded state; the cookie is written only if they differ, or if the
  loaded token must be re-issued (older key, older schema, refresh due). A
  re-issue of an unchanged state that would no longer fit in a cookie is
  skipped: the cookie the client holds still loads.

Failed requests: adapters do not call :meth:`Binding.finish` for responses
with a 5xx status (nor, in WSGI, when ``start_response`` gets ``exc_info``):
a request that failed commits no state change.

Cache safety: every response that passed through a binding depends on the
cookie, so adapters add ``Vary: Cookie`` (unless the response already varies on
it or on ``*``), and ``Cache-Control: private`` on responses that carry one of
our ``Set-Cookie`` lines when the application set no ``Cache-Control``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from clientstate.cookies import RequestCookies
from clientstate.errors import ConfigurationError, CookieTooLarge, ErrorKind, LoadError
from clientstate.handler import Handler, Loaded
from clientstate.state import State

__all__ = ["Binding", "Clock", "StateSlot", "get_slot", "headers_to_add", "state_headers", "vary_covers_cookie"]

T = TypeVar("T")

#: A clock: returns seconds since the Unix epoch (like ``time.time``).
Clock = Callable[[], float]


class StateSlot(Generic[T]):
    """One request's state, as the application sees it.

    Attributes:
        loaded: the :class:`~clientstate.handler.Loaded` result (state or error).
        state: the state the response should leave the client with. It starts
            as the loaded state; assign a new value to change it, or ``None``
            to delete the cookie. In-place changes to a mutable loaded value
            count too: the comparison is by value.
        now: the request's time, seconds since the epoch, from the binding's clock.
    """

    __slots__ = ("loaded", "now", "state")

    def __init__(self, loaded: Loaded[T], now: float) -> None:
        self.loaded = loaded
        self.state: T | None = loaded.state
        self.now = now

    @property
    def error(self) -> LoadError | None:
        """The load error, or ``None``: a shortcut for ``loaded.error``."""
        return self.loaded.error

    def __repr__(self) -> str:
        return f"StateSlot(state={self.state!r}, error={self.loaded.error!r})"


class Binding(Generic[T]):
    """A state descriptor bound to a handler and a clock: the sans-I/O core of setup().

    Args:
        state: the :class:`~clientstate.state.State` descriptor.
        handler: the :class:`~clientstate.handler.Handler` that stores it.
        clock: returns seconds since the Unix epoch (default ``time.time``);
            tests inject a frozen one.

    Raises:
        ConfigurationError: ``handler`` cannot serve ``state`` (for
            :func:`~clientstate.handler.client_stored`: it already serves a
            state of another name).
    """

    __slots__ = ("clock", "handler", "key", "state")

    def __init__(self, state: State[T], handler: Handler, clock: Clock = time.time) -> None:
        handler.prepare(state)
        self.state = state
        self.handler = handler
        self.clock = clock
        #: Where adapters put the :class:`StateSlot`: ``environ``/``scope`` key.
        self.key = f"clientstate.{state.name}"

    def begin(self, cookie_headers: Sequence[str]) -> StateSlot[T]:
        """Load the state from a request's ``Cookie`` field values. Never raises for request input."""
        now = self.clock()
        if not cookie_headers:
            return StateSlot(Loaded.absent(), now)
        return StateSlot(self.handler.load(self.state, RequestCookies(cookie_headers), now), now)

    def begin_cookies(self, cookies: RequestCookies) -> StateSlot[T]:
        """Like :meth:`begin`, from already-parsed cookies."""
        now = self.clock()
        return StateSlot(self.handler.load(self.state, cookies, now), now)

    def finish(self, slot: StateSlot[T]) -> list[str]:
        """The ``Set-Cookie`` values the response must carry (often none).

        Raises:
            StateEncodeError: ``slot.state`` is not a valid value of the state's type.
            CookieTooLarge: the new state does not fit in a cookie.
        """
        loaded = slot.loaded
        new = slot.state
        error = loaded.error
        if error is not None:
            if new is None:
                if error.kind is ErrorKind.AMBIGUOUS:
                    return []
                return self.handler.save(self.state, loaded, None, slot.now)
            return self.handler.save(self.state, loaded, self.state.encode(new), slot.now)
        if new is None:
            if loaded.state is None:
                return []
            return self.handler.save(self.state, loaded, None, slot.now)
        payload = self.state.changed(loaded.payload, new)
        if payload is None:
            if not loaded.reissue:
                return []
            # Our own decision (older key or schema, refresh): if the re-issued
            # token no longer fits, keep the cookie that still loads.
            try:
                return self.handler.save(self.state, loaded, loaded.payload, slot.now)
            except CookieTooLarge:
                return []
        return self.handler.save(self.state, loaded, payload, slot.now)


def vary_covers_cookie(vary_values: Iterable[str]) -> bool:
    """Whether ``Vary`` field values already name ``Cookie`` (or ``*``), case-insensitively."""
    for value in vary_values:
        for item in value.split(","):
            token = item.strip().lower()
            if token in ("cookie", "*"):
                return True
    return False


def state_headers(
    vary_values: Iterable[str], has_cache_control: bool, set_cookies: list[str]
) -> list[tuple[str, str]]:
    """The headers a binding adds to a response, in order.

    Args:
        vary_values: the response's ``Vary`` field values.
        has_cache_control: whether the response has a ``Cache-Control`` field.
        set_cookies: what :meth:`Binding.finish` returned.

    Returns:
        ``("Vary", "Cookie")`` unless the response already varies on Cookie or
        ``*``; then one ``("Set-Cookie", value)`` per value; then
        ``("Cache-Control", "private")`` if there were Set-Cookie values and no
        ``Cache-Control`` (RFC 9111 §5.2.2.7: shared caches must not store it).
        The application's own headers are never changed.
    """
    extra: list[tuple[str, str]] = []
    if not vary_values or not vary_covers_cookie(vary_values):
        extra.append(_VARY_COOKIE)
    if set_cookies:
        extra.extend(("Set-Cookie", value) for value in set_cookies)
        if not has_cache_control:
            extra.append(_CACHE_PRIVATE)
    return extra


_VARY_COOKIE = ("Vary", "Cookie")
_CACHE_PRIVATE = ("Cache-Control", "private")


def headers_to_add(headers: Iterable[tuple[str, str]], set_cookies: list[str]) -> list[tuple[str, str]]:
    """:func:`state_headers` for a response whose ``(name, value)`` headers are ``str`` (WSGI, services)."""
    vary = []
    has_cache_control = False
    for name, value in headers:
        name = name.lower()
        if name == "vary":
            vary.append(value)
        elif name == "cache-control":
            has_cache_control = True
    return state_headers(vary, has_cache_control, set_cookies)


def get_slot(mapping: Mapping[str, Any], state: State[T]) -> StateSlot[T]:
    """The :class:`StateSlot` for ``state`` in a WSGI ``environ`` or ASGI ``scope``.

    Adapters store it under the key ``"clientstate.<state name>"``.

    Raises:
        ConfigurationError: no clientstate middleware for ``state`` wraps this app.
    """
    slot = mapping.get(f"clientstate.{state.name}")
    if not isinstance(slot, StateSlot):
        raise ConfigurationError(
            f"no clientstate middleware for state {state.name!r} wraps this application "
            f"(looked for key 'clientstate.{state.name}')"
        )
    return slot
