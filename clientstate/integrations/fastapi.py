"""FastAPI integration: the Starlette integration plus typed dependencies and an OpenAPI security scheme.

::

    session = ClientState(SESSION, client_stored(keyring, name="__Host-session"))
    app = FastAPI()
    session.install(app)

    SessionSlot = Annotated[StateSlot[Session], session.slot]      # read, assign, see slot.error
    LoggedIn = Annotated[Session, session.logged_in]               # 401 without a state
    Elevated = Annotated[Session, session.elevated]                # 401, or 403 without sudo

    @app.post("/visit")
    def visit(user: LoggedIn, slot: SessionSlot) -> dict[str, int]:
        slot.state = msgspec.structs.replace(user, visits=user.visits + 1)
        return {"visits": slot.state.visits}

``session.slot``, ``session.state``, ``session.logged_in`` and
``session.elevated`` are ``Depends(...)`` markers, so they go straight into
``Annotated``; FastAPI caches each per request. ``logged_in`` and
``elevated`` carry a ``Security`` sub-dependency on an
``APIKeyCookie`` (``auto_error=False``: the guard, not the scheme, decides),
so the OpenAPI document lists the cookie as an API key in a cookie, by name
only, on exactly the operations that need it; nothing about the token's
format appears. The 401 and 403 are ``HTTPException`` s, rendered by FastAPI as
``{"detail": "login_required"}`` / ``{"detail": "sudo_required"}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final, TypeVar

from fastapi import Depends, Security
from fastapi.params import Depends as DependsMarker
from fastapi.security import APIKeyCookie
from starlette.requests import HTTPConnection

from clientstate import sudo
from clientstate._core.binding import Clock
from clientstate._core.config import checked
from clientstate._core.handler import AnyHandler
from clientstate._core.slot import StateSlot
from clientstate._core.state import State
from clientstate.integrations import starlette as _starlette
from clientstate.integrations._common import LOGIN_REQUIRED, SUDO_REQUIRED
from clientstate.legacy import LegacyCookie

__all__ = ["LOGIN_REQUIRED", "SUDO_REQUIRED", "ClientState", "ClientStateMiddleware"]

T = TypeVar("T")

ClientStateMiddleware = _starlette.ClientStateMiddleware

_DESCRIPTION: Final = (
    "The session cookie this API sets (on login, for instance). Browsers send it back by themselves; "
    "other clients keep it and send it unchanged. Its value is opaque."
)


class ClientState(_starlette.ClientState[T]):
    """One state served to a FastAPI application: middleware, guards and typed dependencies.

    Args:
        descriptor, handler, clock, sudo_max_window, legacy: as for
            :class:`clientstate.integrations.starlette.ClientState`.
        scheme_name: the security scheme's name in the OpenAPI document
            (default ``"sessionCookie"``).
        description: its description (default: a sentence saying the value is opaque).

    Attributes:
        slot: ``Depends`` marker giving the request's :class:`~clientstate.StateSlot`.
        state: ``Depends`` marker giving the state, or ``None``.
        logged_in: ``Depends`` marker giving the state, or answering 401.
        elevated: ``Depends`` marker giving the state while sudo is active,
            or answering 401 (no state) / 403 (not elevated).
        scheme: the ``APIKeyCookie`` shown in the OpenAPI document.

    Raises:
        ConfigurationError: as the Starlette ``ClientState``.
    """

    @checked
    def __init__(
        self,
        descriptor: State[T],
        handler: AnyHandler,
        *,
        clock: Clock = time.time,
        sudo_max_window: float = sudo.DEFAULT_MAX_WINDOW,
        scheme_name: str = "sessionCookie",
        description: str = _DESCRIPTION,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
    ) -> None:
        super().__init__(descriptor, handler, clock=clock, sudo_max_window=sudo_max_window, legacy=legacy)
        scheme = APIKeyCookie(name=handler.name, scheme_name=scheme_name, description=description, auto_error=False)
        self.scheme = scheme

        def get_slot(connection: HTTPConnection) -> StateSlot[T]:
            return self.get_slot(connection)

        def get_state(connection: HTTPConnection) -> T | None:
            return self.get_state(connection)

        def logged_in(connection: HTTPConnection, _cookie: str | None = Security(scheme)) -> T:
            return self.require_state(connection)

        def elevated(connection: HTTPConnection, _cookie: str | None = Security(scheme)) -> T:
            return self.require_sudo(connection)

        self.slot: DependsMarker = Depends(get_slot)
        self.state: DependsMarker = Depends(get_state)
        self.logged_in: DependsMarker = Depends(logged_in)
        self.elevated: DependsMarker = Depends(elevated)
