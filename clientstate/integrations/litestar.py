"""Litestar integration: a plugin that adds the middleware, a typed dependency, and guards.

::

    session = ClientStatePlugin(SESSION, client_stored(keyring, name="__Host-session"))

    @post("/visit", guards=[session.login_required])        # 401 without a state
    async def visit(session_slot: NamedDependency[StateSlot[Session]]) -> dict[str, int]:
        state = session_slot.state
        assert state is not None                             # the guard saw to it
        session_slot.state = msgspec.structs.replace(state, visits=state.visits + 1)
        return {"visits": state.visits + 1}

    @get("/admin", guards=[session.sudo_required])         # 401, or 403 without sudo
    async def admin() -> dict[str, bool]: ...

    app = Litestar([visit, admin], plugins=[session])

The plugin (``InitPluginProtocol``) appends :class:`clientstate.asgi.StateMiddleware`
to the application's middleware, so the behaviour is the core's (``Set-Cookie``
only on change, ``Vary: Cookie``, ``Cache-Control: private``, nothing
committed on 5xx — Litestar turns an unhandled exception into a 500 inside
the middleware, which then commits nothing —, the handler's own headers and
cookies untouched), and registers an app-level dependency, by default named
``session_slot``, that gives a handler the request's
:class:`~clientstate.StateSlot` (read it, assign ``slot.state``, see
``slot.error``); mark the parameter with Litestar's
``litestar.di.NamedDependency[...]``. The guards raise Litestar's ``NotAuthorizedException``
(401, ``detail="login_required"``) and ``PermissionDeniedException`` (403,
``detail="sudo_required"``). On a WebSocket the slot is read-only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins import InitPluginProtocol
from litestar.types import ASGIApp, Scope

from clientstate import sudo
from clientstate._core.binding import Binding, Clock
from clientstate._core.config import checked
from clientstate._core.errors import ConfigurationError
from clientstate._core.handler import AnyHandler
from clientstate._core.slot import StateSlot, get_slot
from clientstate._core.state import State
from clientstate.adapters import asgi
from clientstate.integrations._common import LOGIN_REQUIRED, SUDO_REQUIRED, check_window, elevated, with_legacy
from clientstate.legacy import LegacyCookie

__all__ = ["LOGIN_REQUIRED", "SUDO_REQUIRED", "ClientStatePlugin"]

T = TypeVar("T")


class ClientStatePlugin(InitPluginProtocol, Generic[T]):
    """One typed state served to a Litestar application: middleware, dependency and guards.

    Args:
        descriptor: the :class:`~clientstate.State`.
        handler: where it is kept, e.g. :func:`~clientstate.client_stored`.
        dependency: the name under which handlers receive the
            :class:`~clientstate.StateSlot` (default ``"session_slot"``; a
            Python identifier that is not one of Litestar's reserved names).
        clock: seconds since the epoch (default ``time.time``).
        sudo_max_window: the longest sudo window honoured, seconds (default one hour).
        legacy: legacy cookie format(s) to accept while migrating (:mod:`clientstate.legacy`).

    Raises:
        ConfigurationError: an argument of the wrong kind, an unknown
            argument, a bad dependency name, a handler that cannot serve
            ``descriptor``, or a bad ``legacy`` option.
    """

    __slots__ = ("binding", "dependency", "descriptor", "sudo_max_window")

    _RESERVED = frozenset({"request", "socket", "scope", "state", "headers", "cookies", "query", "body", "data"})

    @checked
    def __init__(
        self,
        descriptor: State[T],
        handler: AnyHandler,
        *,
        dependency: str = "session_slot",
        clock: Clock = time.time,
        sudo_max_window: float = sudo.DEFAULT_MAX_WINDOW,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
    ) -> None:
        if not isinstance(dependency, str) or not dependency.isidentifier() or dependency in self._RESERVED:
            raise ConfigurationError(
                f"dependency must be a Python identifier other than Litestar's reserved names, got {dependency!r}"
            )
        self.sudo_max_window = check_window(sudo_max_window)
        self.binding: Binding[T] = Binding(descriptor, with_legacy(handler, legacy), clock)
        self.descriptor = descriptor
        self.dependency = dependency

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the middleware and the dependency to the application's configuration (Litestar calls this).

        Raises:
            ConfigurationError: the application already has a dependency of that name.
        """
        if self.dependency in app_config.dependencies:
            raise ConfigurationError(f"the application already has a dependency named {self.dependency!r}")
        app_config.middleware.append(self.middleware)
        app_config.dependencies[self.dependency] = Provide(self.provide_slot, sync_to_thread=False)
        return app_config

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap one of Litestar's route applications in the state's ASGI middleware.

        Raises:
            ConfigurationError: ``app`` is clientstate middleware serving the same state or cookie name.
        """
        self.binding.check_nested(app)
        return asgi.StateMiddleware(app, self.binding)  # type: ignore[arg-type, return-value]

    def provide_slot(self, scope: Scope) -> StateSlot[T]:
        """The request's :class:`~clientstate.StateSlot` (the dependency).

        Raises:
            ConfigurationError: the middleware did not run for this request.
        """
        return get_slot(scope, self.descriptor)

    def login_required(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """A Litestar guard: raises ``NotAuthorizedException`` (401 ``login_required``) without a state."""
        if get_slot(connection.scope, self.descriptor).state is None:
            raise NotAuthorizedException(LOGIN_REQUIRED)

    def sudo_required(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """A Litestar guard: 401 without a state, 403 ``sudo_required`` (PermissionDeniedException) if not elevated."""
        slot = get_slot(connection.scope, self.descriptor)
        if slot.state is None:
            raise NotAuthorizedException(LOGIN_REQUIRED)
        if not elevated(slot, self.sudo_max_window):
            raise PermissionDeniedException(SUDO_REQUIRED)

    def __repr__(self) -> str:
        return f"ClientStatePlugin({self.binding!r}, dependency={self.dependency!r})"
