"""FastAPI example: log in, count visits, a sudo-protected route, log out.

Run:  CLIENTSTATE_KEYS="$(python -m clientstate keygen)" python examples/fastapi/fastapi_example.py --port 8000
(uvicorn; ``--port 0`` picks a free port). The OpenAPI page is at /docs.
Plain HTTP on loopback, so the cookie is not ``Secure``; keep the default in production.
"""

import argparse
import os
import socket
from typing import Annotated, Any

import msgspec
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

from clientstate import CookieAttributes, Keyring, State, StateSlot, client_stored, generate_key, sudo
from clientstate.integrations.fastapi import ClientState


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None


class Login(BaseModel):
    user: str = Field(min_length=1, max_length=64)


class Password(BaseModel):
    password: str = Field(min_length=1)


keyring = Keyring.from_env() if os.environ.get("CLIENTSTATE_KEYS") else Keyring(generate_key())
session = ClientState(
    State("session", Session), client_stored(keyring, name="session", attributes=CookieAttributes(secure=False))
)
SessionSlot = Annotated[StateSlot[Session], session.slot]
LoggedIn = Annotated[Session, session.logged_in]  # 401 without a session
Elevated = Annotated[Session, session.elevated]  # 401, or 403 without sudo

app = FastAPI(title="clientstate FastAPI example")
session.install(app)


@app.get("/me")
def me(slot: SessionSlot) -> dict[str, Any]:
    return {"state": msgspec.to_builtins(slot.state), "error": slot.error and slot.error.kind}


@app.post("/login")
def login(body: Login, slot: SessionSlot) -> dict[str, str]:
    slot.state = Session(user=body.user)
    return {"user": body.user}


@app.post("/visit")
def visit(user: LoggedIn, slot: SessionSlot) -> dict[str, int]:
    slot.state = msgspec.structs.replace(user, visits=user.visits + 1)
    return {"visits": user.visits + 1}


@app.post("/sudo")
def elevate(body: Password, user: LoggedIn, slot: SessionSlot) -> dict[str, float]:
    # A real application checks body.password against the user's password here.
    slot.state = sudo.grant(user, 300, slot.now)
    return {"sudo_until": slot.now + 300}


@app.get("/admin")
def admin(user: Elevated) -> dict[str, str]:
    return {"admin": user.user}


@app.post("/logout")
def logout(slot: SessionSlot) -> dict[str, bool]:
    slot.state = None
    return {"logged_out": True}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    sock = socket.create_server(("127.0.0.1", parser.parse_args().port))
    print(f"serving http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
