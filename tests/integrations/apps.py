"""The contract routes of ``support`` as a Starlette, FastAPI, Flask and Litestar app (Django: ``django_project``).

No ``from __future__ import annotations`` here: FastAPI and Litestar read the
endpoints' annotations, and these name aliases local to the app builders.
"""

from typing import Annotated, Any

import flask
from fastapi import FastAPI
from litestar import Litestar, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from clientstate import Handler, StateSlot
from clientstate.integrations import fastapi as cs_fastapi
from clientstate.integrations import flask as cs_flask
from clientstate.integrations import litestar as cs_litestar
from clientstate.integrations import starlette as cs_starlette
from clientstate.testing import FrozenClock
from tests.integrations import support
from tests.integrations.support import OWN_COOKIE_LINE, SESSION, Session


def _own(response: Any) -> None:
    """What ``GET /read`` adds of its own (Starlette and FastAPI responses)."""
    response.headers["X-App"] = "kept"
    response.headers["Vary"] = "Accept-Language"
    response.headers.append("set-cookie", OWN_COOKIE_LINE)


def starlette_app(handler: Handler, clock: FrozenClock) -> Starlette:
    session = cs_starlette.ClientState(SESSION, handler, clock=clock)

    async def body(request: StarletteRequest) -> Any:
        return await request.json()

    async def read(request: StarletteRequest) -> JSONResponse:
        response = JSONResponse(support.read(session.get_slot(request)))
        _own(response)
        return response

    async def login(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(support.login(session.get_slot(request), await body(request)))

    def visit(request: StarletteRequest) -> JSONResponse:
        session.require_state(request)
        return JSONResponse(support.visit(session.get_slot(request)))

    def simple(function: Any, status: int = 200) -> Any:
        def endpoint(request: StarletteRequest) -> JSONResponse:
            return JSONResponse(function(session.get_slot(request)), status)

        return endpoint

    def admin(request: StarletteRequest) -> JSONResponse:
        session.require_sudo(request)
        return JSONResponse(support.admin())

    routes = [
        Route("/read", read),
        Route("/login", login, methods=["POST"]),
        Route("/visit", visit, methods=["POST"]),
        Route("/tag", simple(support.tag), methods=["POST"]),
        Route("/same", simple(support.same), methods=["POST"]),
        Route("/fail", simple(support.fail, 500), methods=["POST"]),
        Route("/crash", simple(support.crash), methods=["POST"]),
        Route("/sudo", simple(support.elevate), methods=["POST"]),
        Route("/admin", admin),
        Route("/logout", simple(support.logout), methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[session.middleware])


def fastapi_app(handler: Handler, clock: FrozenClock) -> FastAPI:
    from fastapi import Response as FastAPIResponse
    from fastapi.responses import JSONResponse as FastAPIJSON

    session = cs_fastapi.ClientState(SESSION, handler, clock=clock)
    SessionSlot = Annotated[StateSlot[Session], session.slot]
    LoggedIn = Annotated[Session, session.logged_in]
    Elevated = Annotated[Session, session.elevated]
    app = FastAPI()
    session.install(app)

    @app.get("/read")
    def read(slot: SessionSlot, response: FastAPIResponse) -> dict[str, Any]:
        _own(response)
        return support.read(slot)

    @app.post("/login")
    def login(slot: SessionSlot, body: dict[str, Any]) -> dict[str, Any]:
        return support.login(slot, body)

    @app.post("/visit")
    def visit(user: LoggedIn, slot: SessionSlot) -> dict[str, Any]:
        assert slot.state is user
        return support.visit(slot)

    @app.post("/tag")
    def tag(slot: SessionSlot) -> dict[str, Any]:
        return support.tag(slot)

    @app.post("/same")
    def same(slot: SessionSlot) -> dict[str, Any]:
        return support.same(slot)

    @app.post("/fail")
    def fail(slot: SessionSlot) -> FastAPIJSON:
        return FastAPIJSON(support.fail(slot), 500)

    @app.post("/crash")
    def crash(slot: SessionSlot) -> None:
        support.crash(slot)

    @app.post("/sudo")
    def elevate(user: LoggedIn, slot: SessionSlot) -> dict[str, Any]:
        return support.elevate(slot)

    @app.get("/admin")
    async def admin(user: Elevated) -> dict[str, Any]:
        return support.admin()

    @app.post("/logout")
    def logout(slot: SessionSlot) -> dict[str, Any]:
        return support.logout(slot)

    return app


def flask_app(handler: Handler, clock: FrozenClock) -> flask.Flask:
    app = flask.Flask("contract")
    session = cs_flask.ClientState(SESSION, handler, app, clock=clock)

    @app.get("/read")
    def read() -> flask.Response:
        response = flask.jsonify(support.read(session.slot))
        response.headers["X-App"] = "kept"
        response.headers["Vary"] = "Accept-Language"
        response.headers.add("Set-Cookie", OWN_COOKIE_LINE)
        return response

    @app.post("/login")
    def login() -> Any:
        return support.login(session.slot, flask.request.get_json())

    @app.post("/visit")
    @session.login_required
    def visit() -> Any:
        assert session.current.user
        return support.visit(session.slot)

    @app.post("/tag")
    def tag() -> Any:
        return support.tag(session.slot)

    @app.post("/same")
    def same() -> Any:
        return support.same(session.slot)

    @app.post("/fail")
    def fail() -> Any:
        return support.fail(session.slot), 500

    @app.post("/crash")
    def crash() -> Any:
        support.crash(session.slot)

    @app.post("/sudo")
    @session.login_required
    def elevate() -> Any:
        return support.elevate(session.slot)

    @app.get("/admin")
    @session.sudo_required
    async def admin() -> Any:  # an async view: the guard keeps it async
        return support.admin()

    @app.post("/logout")
    def logout() -> Any:
        return support.logout(session.slot)

    return app


def litestar_app(handler: Handler, clock: FrozenClock) -> Litestar:
    plugin = cs_litestar.ClientStatePlugin(SESSION, handler, clock=clock)
    Slot = NamedDependency[StateSlot[Session]]

    @get("/read", sync_to_thread=False)
    def read(session_slot: Slot) -> Response[dict[str, Any]]:
        headers = {"X-App": "kept", "Vary": "Accept-Language"}
        response = Response(support.read(session_slot), headers=headers)
        response.set_cookie("theme", "dark", path="/", httponly=False, samesite="lax")
        return response

    @post("/login", status_code=200, sync_to_thread=False)
    def login(session_slot: Slot, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return support.login(session_slot, data)

    @post("/visit", status_code=200, guards=[plugin.login_required], sync_to_thread=False)
    def visit(session_slot: Slot) -> dict[str, Any]:
        return support.visit(session_slot)

    @post("/tag", status_code=200, sync_to_thread=False)
    def tag(session_slot: Slot) -> dict[str, Any]:
        return support.tag(session_slot)

    @post("/same", status_code=200, sync_to_thread=False)
    def same(session_slot: Slot) -> dict[str, Any]:
        return support.same(session_slot)

    @post("/fail", status_code=500, sync_to_thread=False)
    def fail(session_slot: Slot) -> dict[str, Any]:
        return support.fail(session_slot)

    @post("/crash", status_code=200, sync_to_thread=False)
    def crash(session_slot: Slot) -> None:
        support.crash(session_slot)

    @post("/sudo", status_code=200, guards=[plugin.login_required], sync_to_thread=False)
    def elevate(session_slot: Slot) -> dict[str, Any]:
        return support.elevate(session_slot)

    @get("/admin", guards=[plugin.sudo_required], sync_to_thread=False)
    def admin(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return support.admin()

    @post("/logout", status_code=200, sync_to_thread=False)
    def logout(session_slot: Slot) -> dict[str, Any]:
        return support.logout(session_slot)

    handlers = [read, login, visit, tag, same, fail, crash, elevate, admin, logout]
    return Litestar(handlers, plugins=[plugin], debug=False)


def litestar_reader(plugin: cs_litestar.ClientStatePlugin[Session]) -> Litestar:
    """A Litestar app with only ``GET /read`` (no app cookie or headers), for the migration tests."""

    @get("/read", sync_to_thread=False)
    def read(session_slot: NamedDependency[StateSlot[Session]]) -> dict[str, Any]:
        return support.read(session_slot)

    return Litestar([read], plugins=[plugin])
