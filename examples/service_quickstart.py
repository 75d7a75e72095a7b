"""The plain service form: service(loaded, request) -> (new_state, response).

Run:  python examples/service_quickstart.py   (serves on http://127.0.0.1:8003/ with wsgiref)
"""

from __future__ import annotations

from wsgiref.simple_server import make_server

import msgspec

import clientstate
from clientstate import CookieAttributes, Keyring, Loaded, Request, Response, State, client_stored


class Theme(msgspec.Struct):
    name: str = "light"


THEME = State("theme", Theme)


def service(loaded: Loaded[Theme], request: Request) -> tuple[Theme | None, Response]:
    current = loaded.state or Theme()
    if request.method == "POST" and request.path == "/toggle":
        new = Theme("dark" if current.name == "light" else "light")
        return new, Response.json({"theme": new.name})
    if request.method == "POST" and request.path == "/reset":
        return None, Response.json({"theme": None})  # None deletes the cookie
    error = None if loaded.error is None else loaded.error.kind
    return loaded.state, Response.json({"theme": current.name, "error": error})


def build(keyring: Keyring) -> clientstate.wsgi.WSGIApp:
    handler = client_stored(keyring, name="theme", attributes=CookieAttributes(secure=False))
    return clientstate.wsgi.serve(clientstate.setup(THEME, handler, service))


if __name__ == "__main__":
    with make_server("127.0.0.1", 8003, build(Keyring(clientstate.generate_key()))) as server:
        print("serving http://127.0.0.1:8003/")
        server.serve_forever()
