"""Django example, in one file: log in, count visits, a sudo-protected view, log out.

Run:  CLIENTSTATE_KEYS="$(python -m clientstate keygen)" python examples/django/django_example.py --port 8000
(waitress; ``--port 0`` picks a free port). No database: the session is the
typed state in its cookie. Plain HTTP on loopback, so the cookie is not
``Secure``; keep the default in production.
"""

from __future__ import annotations

import argparse
import json
import os
import socket

import msgspec
import waitress
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from clientstate import CookieAttributes, Keyring, State, client_stored, generate_key, sudo
from clientstate.integrations.django import ClientState


class Session(msgspec.Struct):
    user: str
    visits: int = 0
    sudo_until: float | None = None


keyring = Keyring.from_env() if os.environ.get("CLIENTSTATE_KEYS") else Keyring(generate_key())
session = ClientState(
    State("session", Session), client_stored(keyring, name="session", attributes=CookieAttributes(secure=False))
)


def me(request: HttpRequest) -> JsonResponse:
    slot = session.get_slot(request)
    return JsonResponse({"state": msgspec.to_builtins(slot.state), "error": slot.error and slot.error.kind})


def login(request: HttpRequest) -> JsonResponse:
    user = str(json.loads(request.body)["user"])
    session.get_slot(request).state = Session(user=user)
    return JsonResponse({"user": user})


@session.login_required
def visit(request: HttpRequest) -> JsonResponse:
    slot = session.get_slot(request)
    assert slot.state is not None  # the decorator answered 401 otherwise
    slot.state = msgspec.structs.replace(slot.state, visits=slot.state.visits + 1)
    return JsonResponse({"visits": slot.state.visits})


@session.login_required
def elevate(request: HttpRequest) -> JsonResponse:
    slot = session.get_slot(request)
    assert slot.state is not None
    # A real application checks the password in the request body here.
    slot.state = sudo.grant(slot.state, 300, slot.now)
    return JsonResponse({"sudo_until": slot.now + 300})


@session.sudo_required
def admin(request: HttpRequest) -> JsonResponse:
    state = session.get_state(request)
    assert state is not None
    return JsonResponse({"admin": state.user})


def logout(request: HttpRequest) -> JsonResponse:
    session.get_slot(request).state = None
    return JsonResponse({"logged_out": True})


urlpatterns = [
    path("me", me), path("login", login), path("visit", visit), path("sudo", elevate), path("admin", admin),
    path("logout", logout),
]
settings.configure(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.session"], ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "unused: clientstate keeps the session"),
)
application = get_wsgi_application()  # sets Django up

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    sock = socket.create_server(("127.0.0.1", parser.parse_args().port))
    print(f"serving http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    waitress.serve(application, sockets=[sock], _quiet=True)
