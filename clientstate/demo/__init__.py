"""The demo: a small web app keeping typed state in a cookie, served over real HTTP.

Run it with ``python -m clientstate demo [--host H] [--port P] [--interface asgi|wsgi]``.
ASGI is served by uvicorn, WSGI by waitress (both production servers, from
``pip install 'clientstate[demo]'``).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import TextIO

from clientstate._core.cookies import CookieAttributes
from clientstate._core.errors import KeyFormatError
from clientstate._core.keys import ENV_VAR, Keyring, generate_key
from clientstate._handlers.client_stored import ClientStored, client_stored
from clientstate.demo.api import DEMO_STATE, DemoState
from clientstate.demo.apps import make_asgi_app, make_wsgi_app

__all__ = ["COOKIE_NAME", "DEMO_STATE", "DemoState", "build_handler", "run"]

#: The demo's cookie name.
COOKIE_NAME = "clientstate_demo"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_handler(
    environ: dict[str, str], host: str, say: Callable[[str], None], *, encrypted: bool = False
) -> ClientStored:
    """The demo's handler: keys from ``CLIENTSTATE_KEYS`` or a generated development key.

    The demo serves plain HTTP, so its cookies are sent without ``Secure``
    (browsers would drop a ``Secure`` cookie set over ``http://``); the
    library's default stays ``Secure``. Both facts are announced through ``say``.

    Raises:
        KeyFormatError: ``CLIENTSTATE_KEYS`` is set but invalid.
    """
    if environ.get(ENV_VAR, "").strip():
        keyring = Keyring.from_env(environ=environ)
        say(f"keys: from {ENV_VAR} (current key id {keyring.current.key_id})")
    else:
        keyring = Keyring(generate_key(1))
        text = keyring.to_text()
        say(
            f"keys: {ENV_VAR} is not set, so a development key was generated; cookies will "
            f"not survive a restart (set {ENV_VAR}, see `python -m clientstate keygen`)"
        )
        say(
            f"keys: to inspect this demo's cookies: python -m clientstate inspect --keys '{text}' "
            f"--state-name {DEMO_STATE.name} '{COOKIE_NAME}=<value>'"
        )
    if _is_loopback(host):
        say("cookies: plain HTTP on loopback, so cookies are set WITHOUT Secure (demo only; "
            "the library default is Secure)")
    else:
        say(f"WARNING: serving plain HTTP on {host}, a non-loopback address: cookies are set "
            f"without Secure and cross the network in clear text. Use this for a demo only.")
    return client_stored(
        keyring,
        name=COOKIE_NAME,
        attributes=CookieAttributes(secure=False),
        encrypted=encrypted,
    )


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    interface: str = "asgi",
    *,
    encrypted: bool = False,
    environ: dict[str, str] | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the demo until interrupted.

    Args:
        host: address to listen on (default loopback).
        port: TCP port; 0 picks a free one. The actual URL is printed as
            ``clientstate demo: serving http://HOST:PORT/ ...`` once listening.
        interface: ``"asgi"`` (uvicorn) or ``"wsgi"`` (waitress).
        encrypted: use the encrypted mode instead of the authenticated one.
        environ: environment to read ``CLIENTSTATE_KEYS`` from (default ``os.environ``).
        out: where to print start-up messages (default stdout).

    Raises:
        ValueError: unknown ``interface``.
        KeyFormatError: ``CLIENTSTATE_KEYS`` is set but invalid.
        SystemExit: uvicorn (``asgi``) or waitress (``wsgi``) is not installed.
        OSError: the address cannot be bound.
    """
    import os

    stream = out if out is not None else sys.stdout

    def say(line: str) -> None:
        print(f"clientstate demo: {line}", file=stream, flush=True)

    if interface not in ("asgi", "wsgi"):
        raise ValueError(f"interface must be 'asgi' or 'wsgi', got {interface!r}")
    handler = build_handler(dict(os.environ if environ is None else environ), host, say,
                            encrypted=encrypted)
    mode = "encrypted (AES-256-GCM)" if encrypted else "authenticated (HMAC-SHA256)"
    say(f"state {DEMO_STATE.name!r} in cookie {COOKIE_NAME!r}, {mode}")
    if interface == "wsgi":
        _serve_wsgi(handler, host, port, say)
        return
    try:
        import uvicorn
    except ImportError:
        raise SystemExit(
            "the ASGI demo needs uvicorn: pip install 'clientstate[demo]' "
            "(or run with --interface wsgi)"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the backlog while the lifespan starts: none is refused
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(make_asgi_app(handler), log_level="warning", lifespan="on")
    say(f"serving http://{_url_host(host)}:{bound_port}/ (asgi, uvicorn) - Ctrl+C stops")
    uvicorn.Server(config).run(sockets=[sock])


def _serve_wsgi(handler: ClientStored, host: str, port: int, say: Callable[[str], None]) -> None:
    try:
        from waitress.server import create_server
    except ImportError:
        raise SystemExit(
            "the WSGI demo needs waitress: pip install 'clientstate[demo]' (or run with --interface asgi)"
        ) from None
    server = create_server(make_wsgi_app(handler), host=host, port=port, threads=8, ident="clientstate-demo")
    bound_port = server.effective_port
    say(f"serving http://{_url_host(host)}:{bound_port}/ (wsgi, waitress) - Ctrl+C stops")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":  # pragma: no cover
    try:
        run()
    except KeyFormatError as exc:
        raise SystemExit(str(exc)) from None
