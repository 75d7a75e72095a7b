"""sudo-until through the WSGI and ASGI guards: the window boundary, and replay of an older cookie.

A client-stored state cannot be revoked by itself: an older, still-elevated
cookie replayed after the application revoked elevation in a newer cookie is
*accepted* (documented in :mod:`clientstate.sudo`). With a ``validate=``
revocation hook that rejects tokens issued before a server-side instant, the
same replay is the ``rejected`` load error and the guard refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from clientstate import asgi, get_slot, sudo, wsgi
from clientstate._core.token import Mode
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock
from tests.security.support import (
    ACCOUNT,
    ALICE,
    T0,
    call_asgi,
    call_wsgi,
    cookie_value,
    describe,
    make_handler,
    set_cookies,
)

WINDOW = 300
DENIED = json.dumps({"error": "sudo_required"}).encode()


def act(path: str, slot: Any) -> None:
    """What the unguarded routes do to the state."""
    if path == "/grant":
        slot.state = sudo.grant(slot.state if slot.state is not None else ALICE, WINDOW, slot.now)
    elif path == "/revoke":
        slot.state = sudo.revoke(slot.state)


def admin_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"admin"]


async def admin_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"admin"})


def wsgi_site(handler: ClientStored, clock: FrozenClock, on_revoke: Callable[[Any], None]) -> Any:
    guarded = sudo.require_sudo_wsgi(admin_wsgi, ACCOUNT)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/admin":
            return guarded(environ, start_response)
        slot = get_slot(environ, ACCOUNT)
        body = describe(slot.state, slot.error)
        if path == "/revoke":
            on_revoke(slot)
        act(path, slot)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return wsgi.setup(ACCOUNT, handler, app, clock=clock)


def asgi_site(handler: ClientStored, clock: FrozenClock, on_revoke: Callable[[Any], None]) -> Any:
    guarded = sudo.require_sudo_asgi(admin_asgi, ACCOUNT)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        if path == "/admin":
            await guarded(scope, receive, send)
            return
        slot = get_slot(scope, ACCOUNT)
        body = describe(slot.state, slot.error)
        if path == "/revoke":
            on_revoke(slot)
        act(path, slot)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return asgi.setup(ACCOUNT, handler, app, clock=clock)


@dataclass
class Browser:
    """Drives one site (WSGI or ASGI) and keeps the cookies it was sent, as an attacker would."""

    site: Any
    kind: str

    def get(self, path: str, cookie: str | None) -> tuple[int, str | None, bytes]:
        """``(status, new cookie value or None, body)`` for ``GET path`` with ``cs=<cookie>``."""
        header = None if cookie is None else f"cs={cookie}"
        if self.kind == "wsgi":
            result = call_wsgi(self.site, header, path)
        else:
            result = call_asgi(self.site, [] if header is None else [header.encode()], path)
        written = set_cookies(result)
        return result[0], cookie_value(written[0]) if written else None, result[2]


def make_browser(kind: str, handler: ClientStored, clock: FrozenClock, on_revoke: Callable[[Any], None]) -> Browser:
    build = wsgi_site if kind == "wsgi" else asgi_site
    return Browser(build(handler, clock, on_revoke), kind)


@pytest.fixture(params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_grant_of_w_seconds_is_active_at_t0_plus_w_minus_1_and_not_at_t0_plus_w(mode: Mode, server: str) -> None:
    clock = FrozenClock(T0)
    browser = make_browser(server, make_handler(mode), clock, lambda slot: None)
    status, elevated, _ = browser.get("/grant", None)
    assert status == 200
    assert elevated is not None
    assert browser.get("/admin", None)[0] == 403
    clock.set(T0 + WINDOW - 1)
    assert browser.get("/admin", elevated) == (200, None, b"admin")
    clock.set(T0 + WINDOW - 0.001)
    assert browser.get("/admin", elevated)[0] == 200
    clock.set(T0 + WINDOW)
    assert browser.get("/admin", elevated) == (403, None, DENIED)
    clock.set(T0 + WINDOW + 1)
    assert browser.get("/admin", elevated)[0] == 403


def test_granting_again_while_elevated_extends_the_window_with_a_new_cookie(mode: Mode, server: str) -> None:
    clock = FrozenClock(T0)
    browser = make_browser(server, make_handler(mode), clock, lambda slot: None)
    _, first, _ = browser.get("/grant", None)
    clock.set(T0 + 200)
    _, extended, _ = browser.get("/grant", first)
    assert extended is not None
    clock.set(T0 + WINDOW + 100)
    assert browser.get("/admin", first)[0] == 403
    assert browser.get("/admin", extended)[0] == 200
    clock.set(T0 + 200 + WINDOW)
    assert browser.get("/admin", extended)[0] == 403


def test_replayed_elevated_cookie_after_revocation_is_accepted_without_a_validator(mode: Mode, server: str) -> None:
    """Documented limitation of client-stored state: the older cookie still authenticates."""
    clock = FrozenClock(T0)
    browser = make_browser(server, make_handler(mode), clock, lambda slot: None)
    _, elevated, _ = browser.get("/grant", None)
    clock.set(T0 + 10)
    _, revoked, _ = browser.get("/revoke", elevated)
    assert revoked is not None
    clock.set(T0 + 20)
    assert browser.get("/admin", revoked)[0] == 403
    assert browser.get("/admin", elevated) == (200, None, b"admin")  # the replay works
    clock.set(T0 + WINDOW)
    assert browser.get("/admin", elevated)[0] == 403  # ... until the granted window ends


def test_replayed_elevated_cookie_after_revocation_is_rejected_by_a_revocation_hook(mode: Mode, server: str) -> None:
    revoked_at: dict[int, float] = {}  # server-side: per user, tokens issued before this are void

    def validate(value: Any, issued_at: int) -> bool:
        return issued_at >= revoked_at.get(value.user_id, 0)

    def on_revoke(slot: Any) -> None:
        revoked_at[slot.state.user_id] = slot.now

    clock = FrozenClock(T0)
    browser = make_browser(server, make_handler(mode, validate=validate), clock, on_revoke)
    _, elevated, _ = browser.get("/grant", None)
    assert browser.get("/admin", elevated)[0] == 200
    clock.set(T0 + 10)
    _, revoked, _ = browser.get("/revoke", elevated)
    assert revoked is not None
    clock.set(T0 + 20)
    # The replay now fails to load with the `rejected` kind; the guard refuses it and the
    # response deletes the replayed cookie (an empty Set-Cookie value with Max-Age=0).
    assert browser.get("/admin", elevated) == (403, "", DENIED)
    assert browser.get("/whoami", elevated) == (200, "", b"rejected -")
    # The newer cookie still loads (not elevated), and a fresh grant works again.
    assert browser.get("/whoami", revoked)[2] == b"- 1"
    clock.set(T0 + 30)
    _, regranted, _ = browser.get("/grant", revoked)
    clock.set(T0 + 40)
    assert browser.get("/admin", regranted)[0] == 200
