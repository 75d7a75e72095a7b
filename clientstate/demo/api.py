"""The demo's JSON API, written once over a :class:`~clientstate._core.binding.StateSlot`.

The WSGI and ASGI apps in :mod:`clientstate.demo.apps` only move bytes; every
decision is here. State type: ``{"user": str, "visits": int, "sudo_until": number | null}``.

Routes:

* ``GET /api/state`` → 200 ``{"state": <object or null>, "error": <error kind or null>}``
* ``POST /api/login`` ``{"user": "<name>"}`` → 200, a fresh state; bad body (a name over 64 characters,
  or holding a control character) → 400
* ``POST /api/visit`` → 200, ``visits + 1``; 401 without state
* ``POST /api/sudo`` ``{"password": "<non-empty>", "seconds": 1..3600}`` → 200,
  ``sudo_until = now + seconds``; 401 without state; 400 on a bad body
* ``GET /api/admin`` → 200 ``{"ok": true}`` while elevated, else 403
  ``{"error": "sudo_required"}`` (answered by the sudo guard, not here)
* ``POST /api/logout`` → 200, state ``None``: the cookie is deleted

With a store (``python -m clientstate demo --store ...``) the principal of a
session is its ``user``, and two more routes list and end that user's sessions
(:func:`sessions_api`; without a store both answer 404 ``{"error": "needs_store"}``):

* ``GET /api/sessions`` → 200 ``{"sessions": [{"handle", "created_at",
  "last_touch", "idle_deadline", "absolute_deadline", "current"}, ...]}``, one
  object per unexpired session of the logged-in user, oldest first; times are
  whole seconds since the epoch, ``current`` marks the session of this request;
  401 without state
* ``POST /api/logout-everywhere`` → 200 ``{"state": null, "ended": <count>}``:
  every session of the user is deleted, this one included, and the cookie with
  it; 401 without state

A store that does not answer gives 503 ``{"error": "store_unavailable"}``.
"""

from __future__ import annotations

from collections.abc import Generator
from importlib import resources
from typing import Annotated, Any, Final, Literal

import msgspec

from clientstate import sudo
from clientstate._core.errors import ErrorKind, StoreUnavailable
from clientstate._core.slot import StateSlot
from clientstate._core.state import State
from clientstate._core.store import SessionInfo
from clientstate._handlers.sessions import AsyncSessions, Sessions

__all__ = [
    "DEMO_STATE",
    "MAX_USER",
    "MAX_VISITS",
    "SESSIONS_ROUTES",
    "DemoState",
    "SessionsCall",
    "SessionsPlan",
    "handle_api",
    "page",
    "run_sessions_async",
    "run_sessions_sync",
    "sessions_api",
]


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


#: What a user name may hold: no control characters (NUL included), so it prints and stores as typed.
USER_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]+$"


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER, pattern=USER_PATTERN)]


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
    "/api/sessions": "GET",
    "/api/logout-everywhere": "POST",
}

#: The routes :func:`sessions_api` answers (they need store I/O); every other route is :func:`handle_api`'s.
SESSIONS_ROUTES: Final = frozenset({"/api/sessions", "/api/logout-everywhere"})


def _state_json(state: DemoState | None) -> dict[str, Any] | None:
    return None if state is None else msgspec.structs.asdict(state)


def _bad_body(exc: Exception) -> Reply:
    return 400, {"error": "bad_request", "detail": str(exc)}


def _new_privilege(slot: StateSlot[DemoState]) -> None:
    """A login or an elevation: a server-stored session gets a new id (no session fixation).

    A client-stored state has no id to rotate (every change is a new token), and
    a request without a session creates one with a fresh id anyway.
    """
    if slot.loaded.session is not None:
        slot.rotate_id()


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
    if path in SESSIONS_ROUTES:  # the apps send these to sessions_api; answered the same way without a store
        return _NEEDS_STORE
    state = slot.state
    if path == "/api/state":
        error = slot.error
        return 200, {"state": _state_json(state), "error": None if error is None else error.kind}
    if path == "/api/login":
        try:
            login = msgspec.json.decode(body, type=LoginBody)
        except msgspec.DecodeError as exc:
            return _bad_body(exc)
        if slot.error is not None and slot.error.kind is ErrorKind.STORE_UNAVAILABLE:
            return _no_state(slot)  # a session made now would not be saved (and could replace the real one)
        slot.state = DemoState(user=login.user)
        _new_privilege(slot)
        return 200, {"state": _state_json(slot.state)}
    if path == "/api/logout":
        slot.state = None
        return 200, {"state": None}
    if path == "/api/admin":
        return 200, {"ok": True}
    if state is None:
        return _no_state(slot)
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
    _new_privilege(slot)
    return 200, {"state": _state_json(slot.state)}


class SessionsCall(msgspec.Struct, frozen=True):
    """What a sessions route asks of the store; the app performs it with ``Sessions`` or ``AsyncSessions``.

    Attributes:
        action: ``"list"`` (→ ``list[SessionInfo]``) or ``"end"`` (→ the number of sessions deleted).
        principal: whose sessions.
    """

    action: Literal["list", "end"]
    principal: str


#: The plan of a sessions route: yields :class:`SessionsCall` values, receives their results, returns the reply.
SessionsPlan = Generator[SessionsCall, Any, Reply]

_NEEDS_STORE: Final[Reply] = (
    404,
    {"error": "needs_store", "detail": "this demo keeps its state in the cookie; start it with --store"},
)


def _session_json(info: SessionInfo, current: str | None) -> dict[str, Any]:
    return {
        "handle": info.handle,
        "created_at": info.created_at,
        "last_touch": info.last_touch,
        "idle_deadline": info.idle_deadline,
        "absolute_deadline": info.absolute_deadline,
        "current": info.handle == current,
    }


def sessions_api(method: str, path: str, slot: StateSlot[DemoState], *, has_store: bool) -> SessionsPlan:
    """The plan answering ``GET /api/sessions`` and ``POST /api/logout-everywhere`` (see the module docstring).

    Written once for both apps: it yields what it needs from the store and
    returns ``(status, json object)``; :func:`run_sessions_sync` and
    :func:`run_sessions_async` perform it.
    """
    refused = route_allowed(method, path)
    if refused is not None:
        return refused
    if not has_store or path not in SESSIONS_ROUTES:
        return _NEEDS_STORE
    state = slot.state
    if state is None:
        return _no_state(slot)
    if path == "/api/sessions":
        infos: list[SessionInfo] = yield SessionsCall("list", state.user)
        current = slot.session_handle
        return 200, {"sessions": [_session_json(info, current) for info in infos]}
    ended: int = yield SessionsCall("end", state.user)  # this session too: then the cookie goes as well
    slot.state = None
    return 200, {"state": None, "ended": ended}


def _no_state(slot: StateSlot[DemoState]) -> Reply:
    """401 for a request without a session; 503 when the store could not say whether there is one."""
    error = slot.error
    if error is not None and error.kind is ErrorKind.STORE_UNAVAILABLE:
        return 503, {"error": "store_unavailable", "detail": error.detail}
    return 401, {"error": "login_required"}


def _unavailable(exc: StoreUnavailable) -> Reply:
    return 503, {"error": "store_unavailable", "detail": str(exc)}


def _perform(call: SessionsCall, sessions: Sessions | AsyncSessions | None) -> Any:
    """What ``call`` asks of ``sessions``: the result, or (``AsyncSessions``) an awaitable of it."""
    assert sessions is not None  # a plan only asks when the demo has a store
    return sessions.list(call.principal) if call.action == "list" else sessions.end(call.principal)


def run_sessions_sync(plan: SessionsPlan, sessions: Sessions | None) -> Reply:
    """Perform a :func:`sessions_api` plan with blocking store I/O (the WSGI app); a store outage is a 503."""
    try:
        call = next(plan)
        while True:
            call = plan.send(_perform(call, sessions))
    except StopIteration as stop:
        reply: Reply = stop.value
        return reply
    except StoreUnavailable as exc:
        return _unavailable(exc)


async def run_sessions_async(plan: SessionsPlan, sessions: AsyncSessions | None) -> Reply:
    """Perform a :func:`sessions_api` plan awaiting the store (the ASGI app): never blocks the loop; 503 on outage."""
    try:
        call = next(plan)
        while True:
            call = plan.send(await _perform(call, sessions))
    except StopIteration as stop:
        reply: Reply = stop.value
        return reply
    except StoreUnavailable as exc:
        return _unavailable(exc)


def page() -> bytes:
    """The demo's HTML page."""
    return resources.files("clientstate.demo").joinpath("page.html").read_bytes()
