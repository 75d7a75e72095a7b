"""Litestar example: log in, count visits, a sudo-protected route, log out.

Run:  CLIENTSTATE_KEYS="$(python -m clientstate keygen)" python examples/litestar/litestar_example.py --port 8000
(uvicorn; ``--port 0`` picks a free port). Plain HTTP on loopback, so the
cookie is not ``Secure``; keep the default in production.
"""

import argparse
import os
import socket
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from clientstate import CookieAttributes, Keyring, State, StateSlot, client_stored, generate_key, sudo
from clientstate.integrations.litestar import ClientStatePlugin


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None


class Login(msgspec.Struct):
    user: str


keyring = Keyring.from_env() if os.environ.get("CLIENTSTATE_KEYS") else Keyring(generate_key())
session = ClientStatePlugin(
    State("session", Session), client_stored(keyring, name="session", attributes=CookieAttributes(secure=False))
)
Slot = NamedDependency[StateSlot[Session]]


@get("/me", sync_to_thread=False)
def me(session_slot: Slot) -> dict[str, Any]:
    return {"state": msgspec.to_builtins(session_slot.state), "error": session_slot.error and session_slot.error.kind}


@post("/login", status_code=200, sync_to_thread=False)
def login(data: JSONBody[Login], session_slot: Slot) -> dict[str, str]:
    session_slot.state = Session(user=data.user)
    return {"user": data.user}


@post("/visit", status_code=200, guards=[session.login_required], sync_to_thread=False)
def visit(session_slot: Slot) -> dict[str, int]:
    state = session_slot.state
    assert state is not None  # the guard answered 401 otherwise
    session_slot.state = msgspec.structs.replace(state, visits=state.visits + 1)
    return {"visits": state.visits + 1}


@post("/sudo", status_code=200, guards=[session.login_required], sync_to_thread=False)
def elevate(session_slot: Slot) -> dict[str, float]:
    assert session_slot.state is not None
    # A real application checks the password in the request body here.
    session_slot.state = sudo.grant(session_slot.state, 300, session_slot.now)
    return {"sudo_until": session_slot.now + 300}


@get("/admin", guards=[session.sudo_required], sync_to_thread=False)
def admin(session_slot: Slot) -> dict[str, str]:
    assert session_slot.state is not None
    return {"admin": session_slot.state.user}


@post("/logout", status_code=200, sync_to_thread=False)
def logout(session_slot: Slot) -> dict[str, bool]:
    session_slot.state = None
    return {"logged_out": True}


app = Litestar([me, login, visit, elevate, admin, logout], plugins=[session])

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    sock = socket.create_server(("127.0.0.1", parser.parse_args().port))
    print(f"serving http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
