"""The demo: a small web app keeping typed state in a cookie or a store, served over real HTTP.

Run it with ``python -m clientstate demo [--host H] [--port P] [--interface asgi|wsgi]
[--store memory|sqlite|redis|postgres|URL]``. ASGI is served by uvicorn, WSGI by
waitress (both production servers, from ``pip install 'clientstate[demo]'``).
Under ASGI the page also has a live panel, a counter in a live session over
the WebSocket ``/ws/live`` (:mod:`clientstate.demo.live`).

Without ``--store`` the state lives in the cookie (``client_stored``). With
it, the state lives in the store and the cookie carries a signed session id
(``server_stored``, principal = the state's ``user``); :data:`STORE_SHORTCUTS`
names the stores a word stands for, and any other value is a store URL
(:func:`clientstate.stores.store_from_url`). With the same ``CLIENTSTATE_KEYS``
and a store that outlives the process, sessions survive a restart.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Final, TextIO, overload
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clientstate._core.cookies import CookieAttributes
from clientstate._core.errors import ConfigurationError, KeyFormatError
from clientstate._core.handler import AnyHandler
from clientstate._core.keys import ENV_VAR, Keyring, generate_key
from clientstate._core.store import Store
from clientstate._handlers.client_stored import ClientStored, client_stored
from clientstate._handlers.server_stored import ServerStored, server_stored
from clientstate.demo.api import DEMO_STATE, DemoState
from clientstate.demo.apps import make_asgi_app, make_wsgi_app
from clientstate.demo.live import LiveDemo, make_live

__all__ = [
    "COOKIE_NAME",
    "DEMO_STATE",
    "SQLITE_FILE",
    "STORE_SHORTCUTS",
    "DemoState",
    "build_handler",
    "open_store",
    "redact_url",
    "run",
    "store_url",
]

#: The demo's cookie name.
COOKIE_NAME = "clientstate_demo"

#: The SQLite file ``--store sqlite`` keeps, in the current directory.
SQLITE_FILE: Final = "clientstate-demo.db"

#: What ``--store WORD`` stands for; anything else is taken as a store URL.
STORE_SHORTCUTS: Final[Mapping[str, str]] = {
    "memory": "memory://",
    "sqlite": f"sqlite:///{SQLITE_FILE}",
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
}


_SECRET_PARAMS: Final = frozenset({"password", "passwd", "pass", "secret"})

_ENCRYPTED_WITH_STORE: Final = (
    "--encrypted applies to client-stored cookies; with --store the state stays on the server "
    "and the cookie holds only a signed session id"
)


def store_url(spec: str) -> str:
    """The store URL ``spec`` names: a word of :data:`STORE_SHORTCUTS`, or ``spec`` itself (a URL)."""
    return STORE_SHORTCUTS.get(spec.strip().lower(), spec.strip())


def redact_url(url: str) -> str:
    """``url`` with any password — in the user part or a ``password=`` query parameter — shown as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<a store URL that does not parse>"
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret = any(k.lower() in _SECRET_PARAMS for k, _ in query)
    if password is None and not secret:
        return url  # unchanged (urlunsplit would also drop the empty authority of sqlite:///)
    if password is not None:
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostinfo}")
    if secret:
        masked = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in query]
        parts = parts._replace(query=urlencode(masked, safe="*:/"))
    return urlunsplit(parts)


def open_store(spec: str) -> Store:
    """The store ``--store spec`` names (see :func:`store_url`).

    Raises:
        ConfigurationError: an unknown scheme, a bad URL, or the store's client
            library is missing (the message names the extra to install).
    """
    from clientstate.stores.url import store_from_url

    url = store_url(spec)
    if not url:
        raise ConfigurationError("--store needs memory, sqlite, redis, postgres or a store URL")
    return store_from_url(url)


def _describe(store: Store, url: str) -> str:
    where = redact_url(url)
    if not store.shared:
        return f"store: {where} ({type(store).__name__}: this process only, sessions end with the demo)"
    return f"store: {where} ({type(store).__name__}: sessions survive a restart with the same {ENV_VAR})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@overload
def build_handler(
    environ: Mapping[str, str], host: str, say: Callable[[str], None], *, encrypted: bool = False,
    store: None = None, store_label: str | None = None,
) -> ClientStored: ...


@overload
def build_handler(
    environ: Mapping[str, str], host: str, say: Callable[[str], None], *, encrypted: bool = False,
    store: Store, store_label: str | None = None,
) -> ServerStored: ...


@overload
def build_handler(
    environ: Mapping[str, str], host: str, say: Callable[[str], None], *, encrypted: bool = False,
    store: Store | None, store_label: str | None = None,
) -> ClientStored | ServerStored: ...


def build_handler(
    environ: Mapping[str, str],
    host: str,
    say: Callable[[str], None],
    *,
    encrypted: bool = False,
    store: Store | None = None,
    store_label: str | None = None,
) -> ClientStored | ServerStored:
    """The demo's handler: keys from ``CLIENTSTATE_KEYS`` or a generated development key.

    Without ``store``: ``client_stored`` (the state in the cookie, ``encrypted``
    or authenticated). With one: ``server_stored(store, keyring,
    name=COOKIE_NAME, principal=<the state's user>)``; ``store_label`` (the
    store's URL, announced with any password masked) defaults to the store's repr.

    The demo serves plain HTTP, so its cookies are sent without ``Secure``
    (browsers would drop a ``Secure`` cookie set over ``http://``); the
    library's default stays ``Secure``. Both facts are announced through ``say``.

    Raises:
        KeyFormatError: ``CLIENTSTATE_KEYS`` is set but invalid.
        ConfigurationError: ``encrypted`` with a ``store`` (server-stored state
            never leaves the server, so there is nothing to encrypt in the cookie).
    """
    if store is not None and encrypted:
        raise ConfigurationError(_ENCRYPTED_WITH_STORE)
    if environ.get(ENV_VAR, "").strip():
        keyring = Keyring.from_env(environ=environ)
        say(f"keys: from {ENV_VAR} (current key id {keyring.current.key_id})")
    else:
        keyring = Keyring(generate_key(1))
        text = keyring.to_text()
        say(
            f"keys: {ENV_VAR} is not set, so a development key was generated; "
            f"{'sessions' if store is not None else 'cookies'} will "
            f"not survive a restart (set {ENV_VAR}, see `python -m clientstate keygen`)"
        )
        if store is None:
            say(
                f"keys: to inspect this demo's cookies: python -m clientstate inspect --keys '{text}' "
                f"--state-name {DEMO_STATE.name} '{COOKIE_NAME}=<value>'"
            )
        else:
            say(f"keys: to keep these sessions across a restart: export {ENV_VAR}='{text}'")
    if store is not None:
        label = repr(store) if store_label is None else store_label
        say(_describe(store, label))
        if store.shared:
            say(f"sessions: to list or end a user's sessions: python -m clientstate sessions --store "
                f"'{redact_url(label)}' list <user>")
    if _is_loopback(host):
        say("cookies: plain HTTP on loopback, so cookies are set WITHOUT Secure (demo only; "
            "the library default is Secure)")
    else:
        say(f"WARNING: serving plain HTTP on {host}, a non-loopback address: cookies are set "
            f"without Secure and cross the network in clear text. Use this for a demo only.")
    attributes = CookieAttributes(secure=False)
    if store is not None:
        return server_stored(store, keyring, name=COOKIE_NAME, principal=_principal, attributes=attributes)
    return client_stored(keyring, name=COOKIE_NAME, attributes=attributes, encrypted=encrypted)


def _principal(state: DemoState) -> str:
    """The demo's principal: the logged-in user."""
    return state.user


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    interface: str = "asgi",
    *,
    encrypted: bool = False,
    store: str | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the demo until interrupted (Ctrl+C or SIGTERM: a graceful stop, then a normal return).

    Args:
        host: address to listen on (default loopback).
        port: TCP port; 0 picks a free one. The actual URL is printed as
            ``clientstate demo: serving http://HOST:PORT/ ...`` once listening.
        interface: ``"asgi"`` (uvicorn) or ``"wsgi"`` (waitress).
        encrypted: use the encrypted mode instead of the authenticated one (client-stored only).
        store: ``None`` for client-stored cookies, else a word of
            :data:`STORE_SHORTCUTS` or a store URL: the state is then kept there
            behind a signed session-id cookie.
        environ: environment to read ``CLIENTSTATE_KEYS`` from (default ``os.environ``).
        out: where to print start-up messages (default stdout).

    Raises:
        ValueError: unknown ``interface``.
        KeyFormatError: ``CLIENTSTATE_KEYS`` is set but invalid.
        ConfigurationError: a bad ``store`` (unknown scheme, missing client
            library), ``encrypted`` together with a ``store``, or a bad
            ``CLIENTSTATE_DEMO_TRUSTED_PROXIES`` / ``CLIENTSTATE_DEMO_PERSIST_INTERVAL``.
        SystemExit: uvicorn (``asgi``) or waitress (``wsgi``) is not installed.
        OSError: the address cannot be bound.
    """
    import os

    stream = out if out is not None else sys.stdout

    def say(line: str) -> None:
        print(f"clientstate demo: {line}", file=stream, flush=True)

    if interface not in ("asgi", "wsgi"):
        raise ValueError(f"interface must be 'asgi' or 'wsgi', got {interface!r}")
    if store is not None and encrypted:
        raise ConfigurationError(_ENCRYPTED_WITH_STORE)
    opened = None if store is None else open_store(store)
    try:
        handler = build_handler(
            dict(os.environ if environ is None else environ), host, say, encrypted=encrypted, store=opened,
            store_label=None if store is None else store_url(store),
        )
        if opened is None:
            mode = "encrypted (AES-256-GCM)" if encrypted else "authenticated (HMAC-SHA256)"
            say(f"state {DEMO_STATE.name!r} in cookie {COOKIE_NAME!r}, {mode}")
        else:
            say(f"state {DEMO_STATE.name!r} in the store, cookie {COOKIE_NAME!r} holds a signed session id; "
                f"principal: the state's user")
        if interface == "wsgi":
            say("live: the live panel (/ws/live) needs a WebSocket: run with --interface asgi")
            _serve_wsgi(handler, host, port, say)
        else:
            live = make_live(handler.keyring, opened, dict(os.environ if environ is None else environ), say)
            _serve_asgi(handler, host, port, say, opened, live)
    finally:
        if opened is not None:
            opened.close()


def _serve_asgi(
    handler: AnyHandler, host: str, port: int, say: Callable[[str], None], store: Store | None, live: LiveDemo,
) -> None:
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
    app = make_asgi_app(handler, on_shutdown=None if store is None else store.aclose, live=live)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    say(f"serving http://{_url_host(host)}:{bound_port}/ (asgi, uvicorn) - Ctrl+C stops")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM (WebSockets closed, lifespan shutdown: live sessions
    # saved, store closed), then restores the handlers it found and raises the signal again. With SIGTERM
    # turned into KeyboardInterrupt, as under WSGI, that second delivery ends run() here: exit status 0,
    # no traceback, for Ctrl+C and SIGTERM alike.
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve_wsgi(handler: AnyHandler, host: str, port: int, say: Callable[[str], None]) -> None:
    try:
        from waitress.server import create_server
    except ImportError:
        raise SystemExit(
            "the WSGI demo needs waitress: pip install 'clientstate[demo]' (or run with --interface asgi)"
        ) from None
    server = create_server(make_wsgi_app(handler), host=host, port=port, threads=8, ident="clientstate-demo")
    bound_port = server.effective_port
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops as Ctrl+C does: the store is closed
    try:
        say(f"serving http://{_url_host(host)}:{bound_port}/ (wsgi, waitress) - Ctrl+C stops")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":  # pragma: no cover
    try:
        run()
    except KeyFormatError as exc:
        raise SystemExit(str(exc)) from None
