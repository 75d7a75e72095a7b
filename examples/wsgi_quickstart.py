"""WSGI quick start: a visit counter kept in an authenticated cookie.

Run:  CLIENTSTATE_KEYS="$(python -m clientstate keygen)" python examples/wsgi_quickstart.py
then open http://127.0.0.1:8001/ and reload. (Plain HTTP on loopback, so the
example turns Secure off; keep the default Secure in production.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import msgspec

import clientstate
from clientstate import CookieAttributes, Keyring, State, client_stored, get_slot


class Visits(msgspec.Struct):
    count: int = 0


VISITS = State("visits", Visits)


def counter(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    slot = get_slot(environ, VISITS)
    if slot.error is not None:  # tampered, expired, unknown key...: a value, never a 500
        print("cookie rejected:", slot.error)
    current = slot.state or Visits()
    slot.state = Visits(current.count + 1)  # assign before start_response
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [f"visit number {slot.state.count}\n".encode()]


def build(keyring: Keyring) -> clientstate.wsgi.StateMiddleware:
    handler = client_stored(keyring, name="visits", attributes=CookieAttributes(secure=False))
    return clientstate.wsgi.setup(VISITS, handler, counter)


if __name__ == "__main__":
    keys = Keyring.from_env() if os.environ.get("CLIENTSTATE_KEYS") else Keyring(clientstate.generate_key())
    from waitress import serve  # a production WSGI server (pip install waitress)

    print("serving http://127.0.0.1:8001/")
    serve(build(keys), host="127.0.0.1", port=8001)
