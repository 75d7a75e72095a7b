"""ASGI quick start with Starlette: login, a counter, and a sudo-protected route.

Run:  pip install starlette uvicorn
      CLIENTSTATE_KEYS="$(python -m clientstate keygen)" uvicorn examples.asgi_quickstart:app --port 8002
(Plain HTTP on loopback, so the example turns Secure off; keep the default in production.)
"""

from __future__ import annotations

import os

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import clientstate
from clientstate import CookieAttributes, Keyring, State, client_stored, get_slot, sudo


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None


SESSION = State("session", Session)


async def login(request: Request) -> JSONResponse:
    slot = get_slot(request.scope, SESSION)
    slot.state = Session(user=(await request.json())["user"])
    return JSONResponse({"user": slot.state.user})


async def visit(request: Request) -> JSONResponse:
    slot = get_slot(request.scope, SESSION)
    if slot.state is None:
        return JSONResponse({"error": "login_required", "load_error": slot.error and slot.error.kind}, 401)
    slot.state = msgspec.structs.replace(slot.state, visits=slot.state.visits + 1)
    return JSONResponse({"visits": slot.state.visits})


async def elevate(request: Request) -> JSONResponse:
    slot = get_slot(request.scope, SESSION)
    if slot.state is None:
        return JSONResponse({"error": "login_required"}, 401)
    # check the password here, then:
    slot.state = sudo.grant(slot.state, 300, slot.now)
    return JSONResponse({"sudo_until": slot.state.sudo_until})


async def admin(request: Request) -> JSONResponse:
    slot = get_slot(request.scope, SESSION)
    if not sudo.is_active(slot.state, slot.now):
        return JSONResponse({"error": "sudo_required"}, 403)
    return JSONResponse({"ok": True})


def build(keyring: Keyring) -> clientstate.asgi.StateMiddleware:
    routes = [
        Route("/login", login, methods=["POST"]),
        Route("/visit", visit, methods=["POST"]),
        Route("/sudo", elevate, methods=["POST"]),
        Route("/admin", admin),
    ]
    handler = client_stored(keyring, name="session", attributes=CookieAttributes(secure=False))
    return clientstate.asgi.setup(SESSION, handler, Starlette(routes=routes))


app = build(Keyring.from_env() if os.environ.get("CLIENTSTATE_KEYS") else Keyring(clientstate.generate_key()))
