"""The demo's JSON API, written once over a :class:`~clientstate._core.binding.StateSlot`.

The WSGI and ASGI apps in :mod:`clientstate.demo.apps` only move bytes; every
decision is here. State type: ``{"user": str, "visits": int, "sudo_until": number | null}``.

Routes:

* ``GET /api/state`` → 200 ``{"state": <object or null>, "error": <error kind or null>}``
* ``POST /api/login`` ``{"user": "<name>"}`` → 200, a fresh state; bad body → 400
* ``POST /api/visit`` → 200, ``visits + 1``; 401 without state
* ``POST /api/sudo`` ``{"password": "<non-empty>", "seconds": 1..3600}`` → 200,
  ``sudo_until = now + seconds``; 401 without state; 400 on a bad body
* ``GET /api/admin`` → 200 ``{"ok": true}`` while elevated, else 403
  ``{"error": "sudo_required"}`` (answered by the sudo guard, not here)
* ``POST /api/logout`` → 200, state ``None``: the cookie is deleted
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

import msgspec

from clientstate import sudo
from clientstate._core.slot import StateSlot
from clientstate._core.state import State

__all__ = ["DEMO_STATE", "MAX_USER", "MAX_VISITS", "DemoState", "handle_api", "page"]


#: Longest user name /api/login accepts, in characters.
MAX_USER = 64
#: The visit counter stops here (the largest integer a JSON number carries exactly).
MAX_VISITS = 2**53 - 1


class DemoState(msgspec.Struct):
    """The demo's state: who is logged in, a visit counter, and the sudo-until instant.

    Every field is bounded, so the state always fits in one cookie.
    """

    user: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER)]
    visits: Annotated[int, msgspec.Meta(ge=0, le=MAX_VISITS)] = 0
    sudo_until: float | None = None


DEMO_STATE: State[DemoState] = State("demo", DemoState, version=1)


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER)]


class SudoBody(msgspec.Struct, forbid_unknown_fields=True):
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)]


Reply = tuple[int, dict[str, Any]]

_ROUTES = {
    "/api/state": "GET",
    "/api/login": "POST",
    "/api/visit": "POST",
    "/api/sudo": "POST",
    "/api/logout": "POST",
    "/api/admin": "GET",
}


def _state_json(state: DemoState | None) -> dict[str, Any] | None:
    return None if state is None else msgspec.structs.asdict(state)


def _bad_body(exc: Exception) -> Reply:
    return 400, {"error": "bad_request", "detail": str(exc)}


def route_allowed(method: str, path: str) -> Reply | None:
    """``None`` if ``method path`` is a route, else the 404 or 405 reply."""
    expected = _ROUTES.get(path)
    if expected is None:
        return 404, {"error": "not_found"}
    if method != expected:
        return 405, {"error": "method_not_allowed", "allowed": expected}
    return None


def handle_api(method: str, path: str, body: bytes, slot: StateSlot[DemoState]) -> Reply:
    """Answer one API request, changing ``slot.state`` as the route says.

    Returns ``(status, json object)``. ``/api/admin`` is answered here only
    when the sudo guard let it through.
    """
    refused = route_allowed(method, path)
    if refused is not None:
        return refused
    state = slot.state
    if path == "/api/state":
        error = slot.error
        return 200, {"state": _state_json(state), "error": None if error is None else error.kind}
    if path == "/api/login":
        try:
            login = msgspec.json.decode(body, type=LoginBody)
        except msgspec.DecodeError as exc:
            return _bad_body(exc)
        slot.state = DemoState(user=login.user)
        return 200, {"state": _state_json(slot.state)}
    if path == "/api/logout":
        slot.state = None
        return 200, {"state": None}
    if path == "/api/admin":
        return 200, {"ok": True}
    if state is None:
        return 401, {"error": "login_required"}
    if path == "/api/visit":
        slot.state = msgspec.structs.replace(state, visits=min(state.visits + 1, MAX_VISITS))
        return 200, {"state": _state_json(slot.state)}
    # /api/sudo
    try:
        request = msgspec.json.decode(body, type=SudoBody)
    except msgspec.DecodeError as exc:
        return _bad_body(exc)
    # A real application checks the password here; the demo accepts any.
    slot.state = sudo.grant(state, request.seconds, slot.now)
    return 200, {"state": _state_json(slot.state)}


def page() -> bytes:
    """The demo's HTML page."""
    return resources.files("clientstate.demo").joinpath("page.html").read_bytes()
