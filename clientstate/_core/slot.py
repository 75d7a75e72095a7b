"""The slot: one request's state as the application sees it, and how an application finds it.

Adapters put a :class:`StateSlot` in the WSGI ``environ`` or ASGI ``scope``
under ``"clientstate.<state name>"``; :func:`get_slot` finds it again and
checks that it belongs to the descriptor asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from clientstate._core.errors import ConfigurationError, LoadError, StateNotWritable
from clientstate._core.handler import Loaded, PlanHandler
from clientstate._core.state import State

if TYPE_CHECKING:
    from clientstate._core.binding import Binding

__all__ = ["StateSlot", "get_slot"]

T = TypeVar("T")


class StateSlot(Generic[T]):
    """One request's state, as the application sees it.

    Attributes:
        loaded: the :class:`~clientstate.Loaded` result (state or error).
        now: the request's time, seconds since the epoch, from the binding's clock.

    :attr:`state` starts as the loaded state; assign a new value to change it,
    or ``None`` to delete it. In-place changes to a mutable value count too:
    the comparison is by value, when the response starts.
    """

    __slots__ = ("_binding", "_cleared", "_closed", "_payload", "_rotate", "_state", "loaded", "now")

    def __init__(self, binding: Binding[T], loaded: Loaded[T], now: float) -> None:
        self._binding = binding
        self.loaded = loaded
        self.now = now
        self._state: T | None = loaded.state
        self._payload: bytes | None = None
        self._closed: str | None = None
        self._rotate = False
        self._cleared = False  # None was assigned: a logout, even after a failed load

    @property
    def state(self) -> T | None:
        """The state the response should leave the client with (``None``: no state).

        Assigning checks the value at once, so an error points at the
        assignment: the value is encoded (and the encoding kept for the save)
        and its cookie size checked.

        Raises (on assignment):
            StateEncodeError: the value does not encode as the state's type,
                or (server-stored) its principal breaks the principal rule
                (``clientstate._handlers.server_stored.principal_problem``).
            CookieTooLarge: the state cannot fit in the handler's cookie(s).
            StateTooLarge: (server-stored) the state is over ``max_state_bytes``.
            StateNotWritable: the response's headers were already sent, the
                request failed, or this is a WebSocket connection (read-only).
        """
        return self._state

    @state.setter
    def state(self, value: T | None) -> None:
        if self._closed is not None:
            raise StateNotWritable(self._binding.descriptor.name, self._closed)
        if value is None:
            self._payload = None
            self._cleared = True
        else:
            binding = self._binding
            descriptor = binding.descriptor
            payload = descriptor.encode(value)
            binding.handler.check_size(descriptor, payload)
            if binding.plans:  # a store-backed handler: what else the save needs (server_stored: the principal)
                cast(PlanHandler, binding.handler).check_state(descriptor, value)
            self._payload = payload
        self._state = value

    def rotate_id(self) -> None:
        """Give the session a new id when the response is saved: the defence against session fixation.

        Call it on a change of privilege — a login, a sudo elevation — (a
        server-stored handler also does it by itself when the session's
        principal changes). The state is kept under the new id; the old id
        keeps answering for the handler's ``rotation_grace`` (10 s by default)
        so requests already in flight with it neither fail nor bring it back,
        then it is dead. To log out, assign ``None`` instead: the session is deleted.

        Raises:
            StateNotWritable: the response's headers were already sent.
            ConfigurationError: the handler keeps the state in the cookie
                (client-stored): there is no server-side id to rotate; a new
                token is issued whenever the state changes.
        """
        if self._closed is not None:
            raise StateNotWritable(self._binding.descriptor.name, self._closed)
        if not self._binding.plans:
            raise ConfigurationError(
                f"state {self._binding.descriptor.name!r} is client-stored: there is no server-side session id "
                f"to rotate (a new token is issued whenever the state changes)"
            )
        self._rotate = True

    @property
    def session_handle(self) -> str | None:
        """For server-stored sessions, the public handle of this session (as in its sessions list), else ``None``."""
        ref = self.loaded.session
        return None if ref is None else getattr(ref, "handle", None)

    @property
    def error(self) -> LoadError | None:
        """The load error, or ``None``: a shortcut for ``loaded.error``."""
        return self.loaded.error

    @property
    def descriptor(self) -> State[T]:
        """The :class:`~clientstate.State` this slot holds."""
        return self._binding.descriptor

    @property
    def clock(self) -> Callable[[], float]:
        """The binding's clock (seconds since the epoch), the one :attr:`now` was read from."""
        return self._binding.clock

    @property
    def writable(self) -> bool:
        """Whether :attr:`state` may still be assigned."""
        return self._closed is None

    def close(self, reason: str) -> None:
        """Refuse assignments from now on, with ``reason`` in the :class:`StateNotWritable` message.

        The first reason given is kept.
        """
        if self._closed is None:
            self._closed = reason

    def __repr__(self) -> str:
        return f"StateSlot(state={self._state!r}, error={self.loaded.error!r})"


def get_slot(mapping: Mapping[str, Any], descriptor: State[T]) -> StateSlot[T]:
    """The :class:`StateSlot` for ``descriptor`` in a WSGI ``environ`` or ASGI ``scope``.

    Args:
        mapping: the WSGI environ or the ASGI scope (a Starlette/FastAPI
            ``Request`` or ``WebSocket`` is a mapping over its scope and works too).
        descriptor: the :class:`~clientstate.State` given to ``setup()``.

    Raises:
        ConfigurationError: ``mapping`` is not a mapping (a framework request
            object: pass ``request.environ`` for Flask/Werkzeug,
            ``request.scope`` for Starlette); no clientstate middleware for a
            state of this name wraps the application; or the slot there belongs
            to another :class:`~clientstate.State` object of the same name.
    """
    try:
        slot = mapping.get(descriptor.slot_key)
    except AttributeError:
        slot = None
    if type(slot) is StateSlot and slot._binding.descriptor is descriptor:  # the fast path
        return slot
    raise _slot_error(mapping, descriptor, slot)


def _slot_error(mapping: object, descriptor: object, slot: object) -> ConfigurationError:
    """Why :func:`get_slot` found no slot of ``descriptor`` in ``mapping``."""
    if not isinstance(mapping, Mapping):
        return ConfigurationError(
            f"get_slot needs the WSGI environ or the ASGI scope (a mapping), got {type(mapping).__name__}; "
            f"pass request.environ (Flask, Werkzeug), request.scope (Starlette, FastAPI) or the "
            f"environ/scope your framework exposes"
        )
    if not isinstance(descriptor, State):
        return ConfigurationError(f"get_slot needs a clientstate State, got {type(descriptor).__name__}")
    key = descriptor.slot_key
    if not isinstance(slot, StateSlot):
        return ConfigurationError(
            f"no clientstate middleware for state {descriptor.name!r} wraps this application "
            f"(looked for key {key!r})"
        )
    other = slot._binding.descriptor
    return ConfigurationError(
        f"the slot at {key!r} belongs to another State object named {descriptor.name!r} "
        f"(type {other.type!r}, not {descriptor.type!r}); define each State once "
        f"and pass that same object to setup() and get_slot()"
    )
