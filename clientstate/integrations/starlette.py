"""Starlette integration: the ASGI middleware as a Starlette ``Middleware``, and guards.

::

    session = ClientState(SESSION, client_stored(keyring, name="__Host-session"))
    app = Starlette(routes=routes, middleware=[session.middleware])

    async def visit(request: Request) -> JSONResponse:
        state = session.require_state(request)        # 401 without a state
        session.get_slot(request).state = msgspec.structs.replace(state, visits=state.visits + 1)
        ...

The middleware is :class:`clientstate.asgi.StateMiddleware` (so the
behaviour is the core's: ``Set-Cookie`` only on change, ``Vary: Cookie``,
``Cache-Control: private``, nothing committed on 5xx, the application's own
headers untouched). Starlette builds its middleware stack on the first ASGI
call (the lifespan start-up under a server), so :class:`ClientState` checks
its arguments when it is built, and the collision checks of nested layers run
then. Starlette's own ``SessionMiddleware`` can stay alongside for another
cookie name; to migrate its cookies see :func:`clientstate.legacy.starlette_cookie`.

Assign ``slot.state`` in the endpoint (or a dependency), before the response
starts: an assignment in a background task raises
:class:`~clientstate.StateNotWritable`. On a WebSocket the slot is read-only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from clientstate import sudo
from clientstate._core.binding import Binding, Clock
from clientstate._core.config import checked
from clientstate._core.handler import AnyHandler
from clientstate._core.slot import StateSlot, get_slot
from clientstate._core.state import State
from clientstate.adapters import asgi
from clientstate.integrations._common import LOGIN_REQUIRED, SUDO_REQUIRED, check_window, elevated, with_legacy
from clientstate.legacy import LegacyCookie

__all__ = ["LOGIN_REQUIRED", "SUDO_REQUIRED", "ClientState", "ClientStateMiddleware"]

T = TypeVar("T")

# RFC 9110 §15.5.2: a 401 carries WWW-Authenticate; FastAPI's cookie API-key scheme says "APIKey".
_CHALLENGE: Final = {"WWW-Authenticate": "APIKey"}


class ClientStateMiddleware(asgi.StateMiddleware):
    """:class:`clientstate.asgi.StateMiddleware` built from a :class:`ClientState`, for Starlette's ``Middleware``.

    Args:
        app: the wrapped ASGI application (Starlette passes it).
        integration: the :class:`ClientState` whose binding this layer runs.

    Raises:
        ConfigurationError: ``app`` is clientstate middleware (directly or
            through other clientstate layers) serving the same state or cookie name.
    """

    __slots__ = ()

    def __init__(self, app: ASGIApp, integration: ClientState[Any]) -> None:
        integration.binding.check_nested(app)
        super().__init__(app, integration.binding)


class ClientState(Generic[T]):
    """One state served to a Starlette application: its middleware and the guards that read it.

    Args:
        descriptor: the :class:`~clientstate.State`.
        handler: where it is kept, e.g. :func:`~clientstate.client_stored`
            (or :func:`clientstate.legacy.accept_legacy` around it while migrating).
        clock: seconds since the epoch (default ``time.time``).
        sudo_max_window: the longest sudo window honoured, seconds (default one hour).
        legacy: legacy session cookie format(s) to accept while migrating,
            e.g. :func:`clientstate.legacy.starlette_cookie` for the cookies of
            Starlette's ``SessionMiddleware``: the handler is wrapped with
            :func:`clientstate.legacy.accept_legacy`.

    Raises:
        ConfigurationError: an argument of the wrong kind, an unknown
            argument, a handler that cannot serve ``descriptor``, or a bad
            ``legacy`` option.
    """

    @checked
    def __init__(
        self,
        descriptor: State[T],
        handler: AnyHandler,
        *,
        clock: Clock = time.time,
        sudo_max_window: float = sudo.DEFAULT_MAX_WINDOW,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
    ) -> None:
        self.sudo_max_window = check_window(sudo_max_window)
        self.binding: Binding[T] = Binding(descriptor, with_legacy(handler, legacy), clock)
        self.descriptor = descriptor

    @property
    def middleware(self) -> Middleware:
        """The Starlette ``Middleware`` entry: ``Starlette(middleware=[state.middleware])``."""
        return Middleware(ClientStateMiddleware, integration=self)

    def install(self, app: Any) -> None:
        """Add the middleware to a Starlette (or FastAPI) ``app`` with ``app.add_middleware``.

        Raises:
            RuntimeError: Starlette's own, when the application has already started.
        """
        app.add_middleware(ClientStateMiddleware, integration=self)

    def get_slot(self, connection: HTTPConnection | Mapping[str, Any]) -> StateSlot[T]:
        """The request's :class:`~clientstate.StateSlot` (a ``Request``, ``WebSocket`` or the scope).

        Raises:
            ConfigurationError: the middleware does not wrap this application.
        """
        scope = connection.scope if isinstance(connection, HTTPConnection) else connection
        return get_slot(scope, self.descriptor)

    def get_state(self, connection: HTTPConnection | Mapping[str, Any]) -> T | None:
        """The request's state, or ``None`` (no state, or a load error: see ``get_slot(...).error``)."""
        return self.get_slot(connection).state

    def require_state(self, connection: HTTPConnection | Mapping[str, Any]) -> T:
        """The request's state; raises ``HTTPException(401, "login_required")`` when there is none.

        Raises:
            HTTPException: 401, with ``WWW-Authenticate: APIKey``, when the
                request has no state (no cookie, or a load error).
        """
        state = self.get_slot(connection).state
        if state is None:
            raise HTTPException(401, LOGIN_REQUIRED, headers=_CHALLENGE)
        return state

    def require_sudo(self, connection: HTTPConnection | Mapping[str, Any]) -> T:
        """The request's state while sudo is active (:func:`clientstate.sudo.is_active` at the slot's ``now``).

        Raises:
            HTTPException: 401 without a state; 403 ``"sudo_required"`` when not elevated.
        """
        slot = self.get_slot(connection)
        state = slot.state
        if state is None:
            raise HTTPException(401, LOGIN_REQUIRED, headers=_CHALLENGE)
        if not elevated(slot, self.sudo_max_window):
            raise HTTPException(403, SUDO_REQUIRED)
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.binding!r})"
