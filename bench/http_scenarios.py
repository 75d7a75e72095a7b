"""In-process request scenarios (ASGI and WSGI) and the Set-Cookie request mix.

Responses are serialised as a server does, so the cost of every header a
middleware adds is counted:

* ASGI apps run inside uvicorn's own httptools request cycle
  (``uvicorn.protocols.http.httptools_impl.RequestResponseCycle.run_asgi``)
  over an in-memory transport: uvicorn checks every header name and value,
  lower-cases it and writes the status line, its ``date``/``server`` headers,
  the app's headers and the body into bytes. The coroutine is driven without
  an event loop (started with ``send(None)``, it must finish with
  ``StopIteration``: nothing here suspends). Access logging is off, as in the
  real-HTTP bench.
* WSGI apps are called as ``app(environ, start_response)``, their body
  iterated and closed, and the status and headers checked and rendered into
  HTTP/1.1 bytes the way a WSGI server does (:func:`serialise_wsgi`).

Every implementation serves the same routes, each of which reads the session
and answers a short text body:

* ``/read``: the user id (or ``anonymous``), state unchanged;
* ``/change``: one more of the first cart line (a new value every time);
* ``/logout``: clears the state (deletes the cookie);
* anything else in the bare baselines, which use no session at all.

Besides these bare function apps, the real framework apps of
:mod:`bench.apps` are driven the same way (Starlette bare / with
``SessionMiddleware`` / with clientstate; Flask with clientstate).
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import itertools
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from bench import apps
from bench.workload import (
    COOKIE_NAME,
    OTHER_COOKIES,
    PEER_SECRET,
    STATE,
    VALUE,
    VALUE_DICT,
    bump_cart,
    bump_cart_dict,
    foreign_tokens,
    handler,
    tamper,
)
from clientstate import StateSlot, get_slot
from clientstate import asgi as cs_asgi
from clientstate import wsgi as cs_wsgi
from clientstate._core.handler import Loaded

__all__ = [
    "MixResult",
    "RequestCase",
    "build_request_cases",
    "check_case",
    "run_mix",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
_HEADERS = (
    ("host", "shop.example"),
    ("user-agent", _UA),
    ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
)
_TEXT = "text/plain; charset=utf-8"


# ----------------------------------------------------------------------------- ASGI plumbing


def drive(awaitable: Awaitable[None]) -> None:
    """Run a coroutine that never suspends to completion, without an event loop."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration:
        return
    steps.close()
    raise RuntimeError("the ASGI app suspended; the direct driver needs it to finish at once")


class Wire:
    """The in-memory transport uvicorn's request cycle writes the response to."""

    __slots__ = ("chunks", "keep")

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        """What the server would hand the socket (kept only when checking)."""
        if self.keep:
            self.chunks.append(data)

    def is_closing(self) -> bool:
        """Never: the connection is kept alive."""
        return False

    def close(self) -> None:
        """Not called on a kept-alive connection."""
        raise AssertionError("the server closed the connection")


class _Flow:
    """uvicorn's flow control as it stands when the socket is writable."""

    write_paused = False

    def resume_reading(self) -> None:
        """Nothing to resume."""


_FLOW: Final = _Flow()
_QUIET: Final = logging.getLogger("bench.uvicorn")
# uvicorn's default headers (refreshed once a second by the server): date, then server.
_DEFAULT_HEADERS: Final = [
    (b"date", email.utils.formatdate(usegmt=True).encode("latin-1")),
    (b"server", b"uvicorn"),
]


def _nothing() -> None:
    return None


def _cycle(scope: Scope, wire: Wire) -> RequestResponseCycle:
    """The request cycle uvicorn's httptools protocol builds once a request's headers are parsed."""
    cycle = RequestResponseCycle(
        scope=dict(scope),  # type: ignore[arg-type]
        transport=wire,  # type: ignore[arg-type]
        flow=_FLOW,  # type: ignore[arg-type]
        logger=_QUIET,
        access_logger=_QUIET,
        access_log=False,
        default_headers=_DEFAULT_HEADERS,
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=_nothing,
    )
    cycle.more_body = False  # a GET: the (empty) body is complete
    cycle.message_event.set()
    return cycle


def asgi_scope(path: str, cookie: str | None) -> Scope:
    """An ``http`` scope for ``GET path``; ``cookie`` is the session cookie's value (``None``: no Cookie header)."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in _HEADERS]
    if cookie is not None:
        headers.append((b"cookie", f"{OTHER_COOKIES}; {COOKIE_NAME}={cookie}".encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.9", 51200),
        "server": ("shop.example", 443),
        "state": {},
    }


_DROP: Final = Wire()


def asgi_request(app: ASGIApp, scope: Scope) -> None:
    """One request served by uvicorn's request cycle, the bytes written discarded (what is timed)."""
    drive(_cycle(scope, _DROP).run_asgi(app))  # type: ignore[arg-type]


def parse_response(data: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` of one serialised HTTP/1.1 response (Content-Length framed)."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines)]
    return int(status_line.split()[1]), headers, body


def asgi_exchange(app: ASGIApp, scope: Scope) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request; returns ``(status, headers, body)`` parsed back from the bytes uvicorn wrote."""
    wire = Wire(keep=True)
    drive(_cycle(scope, wire).run_asgi(app))  # type: ignore[arg-type]
    return parse_response(b"".join(wire.chunks))


async def _respond(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI baseline: no middleware, no session."""
    await _respond(send, b"ok")


class VaryOnlyASGI:
    """Reference: the least an ASGI middleware that adds one response header does (no session)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"vary", b"Cookie")]}
            await send(message)

        await self.app(scope, receive, send_vary)


def _route(slot: StateSlot[Any], path: str) -> bytes:
    """What both inner apps do: read the state, or change it on /change, delete it on /logout."""
    state = slot.state
    if state is None:
        return b"anonymous"
    if path == "/change":
        slot.state = bump_cart(state)
        return b"changed"
    if path == "/logout":
        slot.state = None
        return b"bye"
    return str(state.user_id).encode("ascii")


async def clientstate_asgi_inner(scope: Scope, receive: Receive, send: Send) -> None:
    """The app clientstate's ASGI middleware wraps: reads/changes the slot per route."""
    await _respond(send, _route(get_slot(scope, STATE), scope["path"]))


async def starlette_inner(scope: Scope, receive: Receive, send: Send) -> None:
    """The app Starlette's SessionMiddleware wraps: the same routes on ``scope["session"]``."""
    session = scope["session"]
    path = scope["path"]
    if "user_id" not in session:
        body = b"anonymous"
    elif path == "/change":
        bump_cart_dict(session)
        body = b"changed"
    elif path == "/logout":
        session.clear()
        body = b"bye"
    else:
        body = str(session["user_id"]).encode("ascii")
    await _respond(send, body)


# ----------------------------------------------------------------------------- WSGI plumbing


_HOP_BY_HOP: Final = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade",
))


class _Responder:
    """A server's ``start_response``: checks the status and headers as PEP 3333 asks, and keeps them."""

    __slots__ = ("headers", "status")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if type(status) is not str or "\r" in status or "\n" in status:
            raise ValueError(f"bad status {status!r}")
        for name, value in headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"header {(name, value)!r} is not a pair of str")
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
                raise ValueError(f"bad header {(name, value)!r}")
            if name.lower() in _HOP_BY_HOP:
                raise ValueError(f"hop-by-hop header {name!r} from the application")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write`` callable; unused by these apps."""


def serialise_wsgi(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The bytes a WSGI server writes for a kept-alive HTTP/1.1 response.

    Header names are normalised to ``Title-Case``, the server adds ``Date``
    and ``Server`` (the date rendered once a second, as servers cache it), and
    the head is encoded as latin-1 (PEP 3333).
    """
    lines = [f"HTTP/1.1 {status}"]
    lines.extend(f"{'-'.join(part.capitalize() for part in name.split('-'))}: {value}" for name, value in headers)
    lines.append(f"Date: {_date()}")
    lines.append("Server: bench")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_DATE: list[Any] = [0, ""]


def _date() -> str:
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[0], _DATE[1] = now, email.utils.formatdate(now, usegmt=True)
    return str(_DATE[1])


def wsgi_environ(path: str, cookie: str | None) -> dict[str, Any]:
    """A WSGI environ for ``GET path``; ``cookie`` as in :func:`asgi_scope`."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in _HEADERS:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if cookie is not None:
        environ["HTTP_COOKIE"] = f"{OTHER_COOKIES}; {COOKIE_NAME}={cookie}"
    return environ


def wsgi_request(app: WSGIApp, environ: dict[str, Any], responder: _Responder) -> bytes:
    """One request through a WSGI app: call, iterate the body, close it, serialise the response."""
    environ = dict(environ)
    environ["wsgi.input"] = io.BytesIO(b"")
    result = app(environ, responder)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return serialise_wsgi(responder.status, responder.headers, body)


def wsgi_exchange(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request; returns ``(status, headers, body)`` parsed back from the serialised response."""
    return parse_response(wsgi_request(app, environ, _Responder()))


def bare_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI baseline: a plain function app, no session."""
    start_response("200 OK", [("Content-Type", _TEXT), ("Content-Length", "2")])
    return [b"ok"]


def vary_only_wsgi(app: WSGIApp) -> WSGIApp:
    """Reference: the least a WSGI middleware that adds one response header does (no session)."""

    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("Vary", "Cookie")], exc_info)

        return app(environ, start)

    return wrapped


def clientstate_wsgi_inner(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The app clientstate's WSGI middleware wraps (same routes as the ASGI one)."""
    body = _route(get_slot(environ, STATE), environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", _TEXT), ("Content-Length", str(len(body)))])
    return [body]


def flask_app(*, sessions: bool) -> Any:
    """The Flask app with sessions on (Flask's own session) or off (its baseline); see :mod:`bench.apps`."""
    return apps.flask_app("session" if sessions else "bare")


# ----------------------------------------------------------------------------- cases


@dataclass
class RequestCase:
    """One timed request scenario.

    Attributes:
        key: unique id (``asgi.clientstate.read``...).
        label: row label.
        group: ``"asgi"`` or ``"wsgi"``.
        baseline: key of the case whose time is subtracted for the overhead
            (``None`` for baselines).
        role: ``"baseline"``, ``"ref"``, ``"no_cookie"``, ``"read"``, ``"change"`` or ``"tamper"``.
        call: one request (timed).
        exchange: one request returning ``(status, headers, body)`` (checks).
        expect_set_cookie: whether the response must carry ``Set-Cookie``.
        check_extra: further checks of ``(headers, body)``; raises AssertionError.
    """

    key: str
    label: str
    group: str
    baseline: str | None
    role: str
    call: Callable[[], object]
    exchange: Callable[[], tuple[int, list[tuple[str, str]], bytes]]
    expect_set_cookie: bool
    check_extra: Callable[[list[tuple[str, str]], bytes], None] | None = None


def set_cookies(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The ``Set-Cookie`` values among ``headers``."""
    return [v for k, v in headers if k.lower() == "set-cookie"]


def check_case(case: RequestCase) -> None:
    """Run ``case`` once and check status 200 and Set-Cookie presence.

    Raises:
        AssertionError: the response is not what the scenario expects.
    """
    status, headers, body = case.exchange()
    assert status == 200, f"{case.label}: status {status}"
    found = set_cookies(headers)
    assert bool(found) == case.expect_set_cookie, f"{case.label}: Set-Cookie {found!r}"
    if case.check_extra is not None:
        case.check_extra(headers, body)


def _cookie_value(header: str) -> str:
    pair = header.split(";", 1)[0]
    name, _, value = pair.partition("=")
    assert name.strip() == COOKIE_NAME, header
    return value.strip()


def _anonymous(headers: list[tuple[str, str]], body: bytes) -> None:
    """The app answered as for a request without a session."""
    assert body == b"anonymous", body


def _clientstate_checks(
    encrypted: bool,
) -> dict[str, Callable[[list[tuple[str, str]], bytes], None]]:
    reader = handler(encrypted=encrypted)

    def read(headers: list[tuple[str, str]], body: bytes) -> None:
        assert body == str(VALUE.user_id).encode(), body

    def change(headers: list[tuple[str, str]], body: bytes) -> None:
        (header,) = set_cookies(headers)
        loaded = reader.load_value(STATE, _cookie_value(header), time.time())
        assert loaded.state == bump_cart(VALUE), loaded

    def deleted(headers: list[tuple[str, str]], body: bytes) -> None:
        (header,) = set_cookies(headers)
        assert _cookie_value(header) == "", header
        assert "Max-Age=0" in header, header
        _anonymous(headers, body)

    return {"read": read, "change": change, "tamper": deleted, "no_cookie": _anonymous}


def clientstate_token(encrypted: bool) -> str:
    """A fresh clientstate cookie value for :data:`VALUE`."""
    h = handler(encrypted=encrypted)
    return h.seal(STATE, Loaded(), STATE.encode(VALUE), time.time())[0]


def _starlette_cookie(middleware: Any) -> str:
    import base64
    import json

    data = base64.b64encode(json.dumps(VALUE_DICT).encode("utf-8"))
    return str(middleware.signer.sign(data).decode("utf-8"))


def _flask_cookie(app: Any) -> str:
    return str(app.session_interface.get_signing_serializer(app).dumps(dict(VALUE_DICT)))


def _asgi_case(
    key: str, label: str, app: ASGIApp, scope: Scope, role: str, expect: bool,
    extra: Callable[[list[tuple[str, str]], bytes], None] | None = None,
    baseline: str | None = "asgi.bare",
    more_scopes: list[Scope] | None = None,
) -> RequestCase:
    """An ASGI case; with ``more_scopes`` the timed call takes ``scope`` and those in turn."""
    call: Callable[[], object]
    if more_scopes:
        following = itertools.cycle([scope, *more_scopes]).__next__

        def call() -> None:
            asgi_request(app, following())

    else:

        def call() -> None:
            asgi_request(app, scope)

    def exchange() -> tuple[int, list[tuple[str, str]], bytes]:
        results = [asgi_exchange(app, one) for one in (scope, *(more_scopes or ()))]
        assert all(r[0] == results[0][0] and r[2] == results[0][2] for r in results), key
        return results[0]

    return RequestCase(key, label, "asgi", baseline, role, call, exchange, expect, extra)


def _wsgi_case(
    key: str, label: str, app: WSGIApp, environ: dict[str, Any], role: str, expect: bool,
    extra: Callable[[list[tuple[str, str]], bytes], None] | None = None,
    baseline: str | None = "wsgi.bare",
) -> RequestCase:
    responder = _Responder()
    return RequestCase(
        key, label, "wsgi", baseline, role,
        lambda: wsgi_request(app, environ, responder),
        lambda: wsgi_exchange(app, environ),
        expect, extra,
    )


_ROLES = (
    ("no_cookie", "/read", "no cookie", False),
    ("read", "/read", "read-only, valid cookie", False),
    ("change", "/change", "changes the state", True),
    ("tamper", "/read", "tampered cookie", True),
)
#: The peers' scenarios: a tampered cookie is ignored (an empty session), and
#: neither Starlette nor Flask sends a Set-Cookie for it.
_PEER_ROLES = (
    _ROLES[1],
    _ROLES[2],
    ("tamper", "/read", "tampered cookie", False),
)


def _cookie_for(role: str, value: str) -> str | None:
    """The request's cookie value in scenario ``role``: none, ``value`` with one character changed, or ``value``."""
    return None if role == "no_cookie" else tamper(value) if role == "tamper" else value


def _peer_check(role: str) -> Callable[[list[tuple[str, str]], bytes], None] | None:
    """A peer's body check: a tampered cookie must read as anonymous; other roles check status and Set-Cookie only."""
    return _anonymous if role == "tamper" else None


def build_request_cases(encrypted_extra: bool = True) -> tuple[list[RequestCase], list[str]]:
    """Every request scenario, baselines first, and a message per skipped peer."""
    cases: list[RequestCase] = []
    skipped: list[str] = []
    token = clientstate_token(False)
    asgi_baseline_scope = asgi_scope("/read", token)
    cases.append(_asgi_case(
        "asgi.bare", "ASGI bare app (baseline)", bare_asgi, asgi_baseline_scope, "baseline",
        False, baseline=None,
    ))
    cases.append(_asgi_case(
        "asgi.ref.vary_only", "ASGI ref: pass-through middleware adding Vary: Cookie, no session",
        VaryOnlyASGI(bare_asgi), asgi_baseline_scope, "ref", False,
    ))
    modes = [(False, "")] + ([(True, " encrypted")] if encrypted_extra else [])
    for encrypted, suffix in modes:
        app = cs_asgi.setup(STATE, handler(encrypted=encrypted), clientstate_asgi_inner)
        checks = _clientstate_checks(encrypted)
        value = clientstate_token(encrypted)
        for role, path, what, expect in _ROLES:
            if encrypted and role in ("no_cookie", "tamper"):
                continue  # the same as authenticated: no cryptography runs / fails early
            cookie = _cookie_for(role, value)
            cases.append(_asgi_case(
                f"asgi.clientstate{suffix.replace(' ', '.')}.{role}",
                f"ASGI clientstate{suffix}, {what}", app, asgi_scope(path, cookie), role, expect,
                checks[role],
            ))
        if encrypted:
            others = [asgi_scope("/read", token) for token in foreign_tokens(7)]
            cases.append(_asgi_case(
                "asgi.clientstate.encrypted.read_mix",
                "ASGI clientstate encrypted, read-only, tokens of 8 processes in turn (7 others)",
                app, asgi_scope("/read", value), "read", False, checks["read"], more_scopes=others,
            ))
    try:
        from starlette.middleware.sessions import SessionMiddleware

        middleware = SessionMiddleware(starlette_inner, secret_key=PEER_SECRET)
        cookie = _starlette_cookie(middleware)
        for role, path, what, expect in _PEER_ROLES:
            cases.append(_asgi_case(
                f"asgi.starlette.{role}", f"ASGI Starlette SessionMiddleware, {what}", middleware,
                asgi_scope(path, _cookie_for(role, cookie)), role, expect, _peer_check(role),
            ))
    except ImportError as exc:
        skipped.append(f"starlette (ASGI requests): skipped, not installed ({exc})")
    try:
        cases.extend(_starlette_app_cases(token))
    except ImportError as exc:
        skipped.append(f"starlette (Starlette app requests): skipped, not installed ({exc})")

    cases.append(_wsgi_case(
        "wsgi.bare", "WSGI bare function app (baseline)", bare_wsgi,
        wsgi_environ("/read", token), "baseline", False, baseline=None,
    ))
    cases.append(_wsgi_case(
        "wsgi.ref.vary_only", "WSGI ref: pass-through middleware adding Vary: Cookie, no session",
        vary_only_wsgi(bare_wsgi), wsgi_environ("/read", token), "ref", False,
    ))
    wsgi_app = cs_wsgi.setup(STATE, handler(), clientstate_wsgi_inner)
    checks = _clientstate_checks(False)
    for role, path, what, expect in _ROLES:
        cases.append(_wsgi_case(
            f"wsgi.clientstate.{role}", f"WSGI clientstate, {what}", wsgi_app,
            wsgi_environ(path, _cookie_for(role, token)), role, expect, checks[role],
        ))
    try:
        flask_bare, flask_sessions = flask_app(sessions=False), flask_app(sessions=True)
        cookie = _flask_cookie(flask_sessions)
        cases.append(_wsgi_case(
            "wsgi.flask.baseline", "WSGI Flask, sessions off (Flask's baseline)", flask_bare,
            wsgi_environ("/read", cookie), "baseline", False, baseline=None,
        ))
        for role, path, what, expect in _PEER_ROLES:
            cases.append(_wsgi_case(
                f"wsgi.flask.{role}", f"WSGI Flask session, {what}", flask_sessions,
                wsgi_environ(path, _cookie_for(role, cookie)), role, expect, _peer_check(role),
                baseline="wsgi.flask.baseline",
            ))
        flask_cs = apps.flask_app("clientstate")
        for role, path, what, expect in _ROLES:
            cases.append(_wsgi_case(
                f"flask_app.clientstate.{role}", f"WSGI Flask app + clientstate (sessions off), {what}",
                flask_cs, wsgi_environ(path, _cookie_for(role, token)), role, expect, checks[role],
                baseline="wsgi.flask.baseline",
            ))
    except ImportError as exc:
        skipped.append(f"flask (WSGI requests): skipped, not installed ({exc})")
    return cases, skipped


def _starlette_app_cases(token: str) -> list[RequestCase]:
    """The real Starlette app (:func:`bench.apps.starlette_app`): bare, with SessionMiddleware, with clientstate."""
    bare = apps.starlette_app("bare")
    peer = apps.starlette_app("session")
    mine = apps.starlette_app("clientstate")
    peer_cookie = _starlette_cookie(_session_middleware_of(peer))
    checks = _clientstate_checks(False)
    base = "starlette_app.bare"
    cases = [_asgi_case(
        base, "Starlette app, bare (its baseline)", bare, asgi_scope("/read", token), "baseline",
        False, baseline=None,
    )]
    for role, path, what, expect in _PEER_ROLES:
        cases.append(_asgi_case(
            f"starlette_app.session.{role}", f"Starlette app + SessionMiddleware, {what}", peer,
            asgi_scope(path, _cookie_for(role, peer_cookie)), role, expect, _peer_check(role), baseline=base,
        ))
    for role, path, what, expect in _ROLES:
        cases.append(_asgi_case(
            f"starlette_app.clientstate.{role}", f"Starlette app + clientstate, {what}", mine,
            asgi_scope(path, _cookie_for(role, token)), role, expect, checks[role], baseline=base,
        ))
    return cases


def _session_middleware_of(app: Any) -> Any:
    """The SessionMiddleware instance inside a built Starlette app (its signer makes the peer's cookie)."""
    from starlette.middleware.sessions import SessionMiddleware

    asgi_request(app, asgi_scope("/read", None))  # builds the middleware stack
    layer = app.middleware_stack
    while not isinstance(layer, SessionMiddleware):
        layer = layer.app
    return layer


# ----------------------------------------------------------------------------- the request mix


@dataclass
class MixResult:
    """What one implementation emitted over the request mix.

    Attributes:
        name: the implementation.
        requests: requests sent.
        responses_with_set_cookie: responses carrying at least one Set-Cookie.
        set_cookie_headers: Set-Cookie header lines in all.
        set_cookie_bytes: bytes of those lines as sent in HTTP/1.1
            (``Set-Cookie: <value>\\r\\n``).
        by_kind: responses with Set-Cookie, per request kind.
        logged_out: whether the final logout deleted the client's cookie.
    """

    name: str
    requests: int
    responses_with_set_cookie: int
    set_cookie_headers: int
    set_cookie_bytes: int
    by_kind: dict[str, int]
    logged_out: bool


def mix_kinds(seed: int = 4) -> list[str]:
    """The request mix: 80 read-only, 15 changing, 5 anonymous in a fixed shuffled order, then a logout."""
    kinds = ["read"] * 80 + ["change"] * 15 + ["anon"] * 5
    random.Random(seed).shuffle(kinds)
    return [*kinds, "logout"]


_PATHS = {"read": "/read", "change": "/change", "anon": "/read", "logout": "/logout"}

# exchange(path, session cookie value or None) -> response headers
Exchange = Callable[[str, str | None], list[tuple[str, str]]]


def _is_deletion(header: str) -> bool:
    value = _cookie_value(header)
    attrs = header.lower()
    return value in ("", "null") or "max-age=0" in attrs or "expires=thu, 01 jan 1970" in attrs


def run_mix(name: str, exchange: Exchange, first_cookie: str) -> MixResult:
    """Send the mix as a logged-in browser (plus an anonymous one) and count Set-Cookie output."""
    jar: str | None = first_cookie
    kinds = mix_kinds()
    by_kind = dict.fromkeys(("read", "change", "anon", "logout"), 0)
    responses = lines = size = 0
    for kind in kinds:
        headers = exchange(_PATHS[kind], None if kind == "anon" else jar)
        found = set_cookies(headers)
        if found:
            responses += 1
            by_kind[kind] += 1
        for header in found:
            lines += 1
            size += len("Set-Cookie: ") + len(header.encode("latin-1")) + 2
            if kind != "anon":
                jar = None if _is_deletion(header) else _cookie_value(header)
    return MixResult(name, len(kinds), responses, lines, size, by_kind, jar is None)


def build_mix_runs() -> tuple[list[Callable[[], MixResult]], list[str]]:
    """One zero-argument callable per implementation that runs the mix."""
    runs: list[Callable[[], MixResult]] = []
    skipped: list[str] = []
    cs_asgi_app = cs_asgi.setup(STATE, handler(), clientstate_asgi_inner)
    cs_wsgi_app = cs_wsgi.setup(STATE, handler(), clientstate_wsgi_inner)

    def asgi_exchange_of(app: ASGIApp) -> Exchange:
        return lambda path, cookie: asgi_exchange(app, asgi_scope(path, cookie))[1]

    def wsgi_exchange_of(app: WSGIApp) -> Exchange:
        return lambda path, cookie: wsgi_exchange(app, wsgi_environ(path, cookie))[1]

    runs.append(lambda: run_mix(
        "clientstate ASGI", asgi_exchange_of(cs_asgi_app), clientstate_token(False)
    ))
    runs.append(lambda: run_mix(
        "clientstate WSGI", wsgi_exchange_of(cs_wsgi_app), clientstate_token(False)
    ))
    try:
        from starlette.middleware.sessions import SessionMiddleware

        middleware = SessionMiddleware(starlette_inner, secret_key=PEER_SECRET)
        runs.append(lambda: run_mix(
            "Starlette SessionMiddleware", asgi_exchange_of(middleware),
            _starlette_cookie(middleware),
        ))
    except ImportError as exc:
        skipped.append(f"starlette (mix): skipped, not installed ({exc})")
    try:
        app = flask_app(sessions=True)
        runs.append(lambda: run_mix("Flask session", wsgi_exchange_of(app), _flask_cookie(app)))
    except ImportError as exc:
        skipped.append(f"flask (mix): skipped, not installed ({exc})")
    return runs, skipped
