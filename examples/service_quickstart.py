"""The plain service form: service(loaded, request) -> (new_state, response).

Run:  python examples/service_quickstart.py   (serves on http://127.0.0.1:8003/ with waitress)

A service is framework-free; ``as_wsgi`` below is the few lines that run one
under any WSGI server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import msgspec

import clientstate
from clientstate import CookieAttributes, Keyring, Loaded, ServiceRequest, ServiceResponse, State, client_stored


class Theme(msgspec.Struct):
    name: str = "light"


THEME = State("theme", Theme)


def service(loaded: Loaded[Theme], request: ServiceRequest) -> tuple[Theme | None, ServiceResponse]:
    current = loaded.state or Theme()
    if request.method == "POST" and request.path == "/toggle":
        new = Theme("dark" if current.name == "light" else "light")
        return new, ServiceResponse.json({"theme": new.name})
    if request.method == "POST" and request.path == "/reset":
        return None, ServiceResponse.json({"theme": None})  # None deletes the cookie
    error = None if loaded.error is None else loaded.error.kind
    return loaded.state, ServiceResponse.json({"theme": current.name, "error": error})


def as_wsgi(handle: Callable[[ServiceRequest], ServiceResponse]) -> WSGIApplication:
    """Run ``handle(request) -> response`` as a WSGI application (no request body is read here)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        cookie = environ.get("HTTP_COOKIE")
        request = ServiceRequest(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/"),
            [("Cookie", cookie)] if cookie else [],
        )
        response = handle(request)
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
        start_response(status, [*response.headers, ("Content-Length", str(len(response.body)))])
        return [response.body]

    return app


def build(keyring: Keyring) -> WSGIApplication:
    handler = client_stored(keyring, name="theme", attributes=CookieAttributes(secure=False))
    return as_wsgi(clientstate.setup(THEME, handler, service))


if __name__ == "__main__":
    from waitress import serve

    print("serving http://127.0.0.1:8003/")
    serve(build(Keyring(clientstate.generate_key())), host="127.0.0.1", port=8003)
