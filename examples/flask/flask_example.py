"""Flask example, with HTML pages: log in, count visits, a sudo-protected page, log out.

Run:  CLIENTSTATE_KEYS="$(python -m clientstate keygen)" python examples/flask/flask_example.py --port 8000
(waitress; ``--port 0`` picks a free port), then open http://127.0.0.1:8000/.
Plain HTTP on loopback, so the cookie is not ``Secure``; keep the default in production.
"""

from __future__ import annotations

import argparse
import os
import socket

import flask
import msgspec
import waitress
from flask.typing import ResponseReturnValue
from markupsafe import escape

from clientstate import CookieAttributes, Keyring, State, client_stored, generate_key, sudo
from clientstate.integrations.flask import ClientState


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None


keyring = Keyring.from_env() if os.environ.get("CLIENTSTATE_KEYS") else Keyring(generate_key())
app = flask.Flask(__name__)
session = ClientState(
    State("session", Session), client_stored(keyring, name="session", attributes=CookieAttributes(secure=False)), app
)
FORM = '<form method="post" action="{action}">{fields}<button id="{id}">{label}</button></form>'


def page(body: str, status: int = 200) -> tuple[str, int]:
    return f"<!doctype html><title>clientstate Flask example</title><main>{body}</main>", status


@app.get("/")
def home() -> tuple[str, int]:
    state = session.state
    if state is None:
        field = '<input id="user" name="user" required maxlength="64">'
        return page(FORM.format(action="/login", fields=field, id="login", label="Log in"))
    return page(
        f'<p id="who">{escape(state.user)}</p><p id="visits">{state.visits}</p>'
        + FORM.format(action="/visit", fields="", id="visit", label="Visit")
        + '<a id="admin" href="/admin">Admin</a>'
        + FORM.format(action="/logout", fields="", id="logout", label="Log out")
    )


@app.post("/login")
def login() -> ResponseReturnValue:
    session.state = Session(user=flask.request.form["user"][:64])
    return flask.redirect("/", 303)


@app.post("/visit")
@session.login_required
def visit() -> ResponseReturnValue:
    session.state = msgspec.structs.replace(session.current, visits=session.current.visits + 1)
    return flask.redirect("/", 303)


@app.get("/admin")
@session.login_required
def admin() -> tuple[str, int]:
    if not session.elevated:
        field = '<input id="password" name="password" type="password" required>'
        return page('<p id="sudo-required">Confirm your password</p>' + FORM.format(
            action="/sudo", fields=field, id="sudo", label="Confirm"), 403)
    return page(f'<p id="admin-page">Admin area of {escape(session.current.user)}</p>')


@app.post("/sudo")
@session.login_required
def elevate() -> ResponseReturnValue:
    # A real application checks flask.request.form["password"] here.
    session.state = sudo.grant(session.current, 300, session.slot.now)
    return flask.redirect("/admin", 303)


@app.post("/logout")
def logout() -> ResponseReturnValue:
    session.state = None
    return flask.redirect("/", 303)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    sock = socket.create_server(("127.0.0.1", parser.parse_args().port))
    print(f"serving http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    waitress.serve(app, sockets=[sock], _quiet=True)
