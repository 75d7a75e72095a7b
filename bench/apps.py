"""Real framework apps for the request benchmarks: one Starlette app and one Flask app, each in four kinds.

The kinds serve the same routes and differ only in where the session lives:

* ``bare``: no session at all (every route answers ``ok``), the baseline; its
  view reads the request path as the session kinds' views do (in Flask,
  ``request.path`` costs about 1.6 µs), so an overhead is the session's alone;
* ``session``: the framework's own signed-cookie session (Starlette's
  ``SessionMiddleware``, Flask's ``session``), default settings;
* ``clientstate``: clientstate's middleware with the library's defaults
  (authenticated), the routes reading and writing the slot;
* ``clientstate-encrypted``: the same with ``encrypted=True``.

Routes (``GET``), each answering a short ``text/plain`` or Flask ``text/html`` body:

* ``/read``: the user id, or ``anonymous``; the state is not changed;
* ``/change``: one more of the first cart line (a new value on every request);
* ``/login``: sets the benchmark state (the way a load generator gets its cookie);
* ``/logout``: clears the state.

``bench/http_scenarios.py`` drives these in-process; ``bench/serve.py`` serves
them from a separate process for ``bench/http_real.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from bench.workload import PEER_SECRET, STATE, VALUE, VALUE_DICT, bump_cart, bump_cart_dict, handler
from clientstate import StateSlot, get_slot
from clientstate import asgi as cs_asgi
from clientstate import wsgi as cs_wsgi

__all__ = ["KINDS", "bare_route", "flask_app", "starlette_app"]

#: The kinds every app comes in, baseline first.
KINDS: Final = ("bare", "session", "clientstate", "clientstate-encrypted")
ROUTES: Final = ("/read", "/change", "/login", "/logout")


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown app kind {kind!r}; one of {', '.join(KINDS)}")


def bare_route(path: str, routes: tuple[str, ...] = ROUTES) -> str:
    """A route of the ``bare`` kind: the same path look-up as the session kinds (over ``routes``), and no session."""
    return "ok" if path in routes else "not found"


def _slot_route(slot: StateSlot[Any], path: str) -> str:
    """A route of the clientstate kinds."""
    if path == "/login":
        slot.state = VALUE
        return "welcome"
    state = slot.state
    if path == "/logout":
        slot.state = None
        return "bye"
    if state is None:
        return "anonymous"
    if path == "/change":
        slot.state = bump_cart(state)
        return "changed"
    return str(state.user_id)


def _dict_route(session: Any, path: str) -> str:
    """A route of the framework-session kinds (``session`` is the framework's dict-like session)."""
    if path == "/login":
        session.clear()
        session.update(VALUE_DICT)
        return "welcome"
    if path == "/logout":
        session.clear()
        return "bye"
    if "user_id" not in session:
        return "anonymous"
    if path == "/change":
        bump_cart_dict(session)
        return "changed"
    return str(session["user_id"])


def starlette_app(kind: str) -> Any:
    """The Starlette app of ``kind`` (an ASGI app)."""
    _check(kind)
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    route: Callable[[Request], str]
    middleware: list[Middleware] = []
    if kind == "bare":

        def route(request: Request) -> str:
            return bare_route(request.scope["path"])

    elif kind == "session":
        from starlette.middleware.sessions import SessionMiddleware

        middleware.append(Middleware(SessionMiddleware, secret_key=PEER_SECRET))

        def route(request: Request) -> str:
            return _dict_route(request.session, request.scope["path"])

    else:
        encrypted = kind == "clientstate-encrypted"

        def layer(app: Any) -> Any:
            return cs_asgi.setup(STATE, handler(encrypted=encrypted), app)

        middleware.append(Middleware(layer))

        def route(request: Request) -> str:
            return _slot_route(get_slot(request.scope, STATE), request.scope["path"])

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(route(request))

    return Starlette(routes=[Route(path, endpoint) for path in ROUTES], middleware=middleware)


def flask_app(kind: str) -> Any:
    """The Flask app of ``kind`` (a WSGI app).

    ``bare`` and the clientstate kinds set no secret key, so Flask uses its null
    session and does no cookie work of its own.
    """
    _check(kind)
    from flask import Flask, request, session

    app = Flask(f"bench_flask_{kind.replace('-', '_')}")
    view: Callable[[], str]
    if kind == "bare":

        def view() -> str:
            return bare_route(request.path)

    elif kind == "session":
        app.secret_key = PEER_SECRET

        def view() -> str:
            return _dict_route(session, request.path)

    else:
        encrypted = kind == "clientstate-encrypted"
        app.wsgi_app = cs_wsgi.setup(  # type: ignore[method-assign]
            STATE, handler(encrypted=encrypted), app.wsgi_app
        )

        def view() -> str:
            return _slot_route(get_slot(request.environ, STATE), request.path)

    for path in ROUTES:
        app.add_url_rule(path, path, view)
    return app
