"""The ASGI sudo guard on a real WebSocket served by uvicorn: refused without elevation, closed with 1008
when the window ends, and the application's receive/send see the end too."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clientstate import Loaded, asgi, client_stored, get_slot, sudo
from clientstate.testing import fixed_keyring
from tests.conftest import ACCOUNT, Account
from tests.servers import uvicorn_server

HANDLER = client_stored(fixed_keyring(1), name="cs")


def cookie_for(value: Account) -> str:
    line = HANDLER.save(ACCOUNT, Loaded(), ACCOUNT.encode(value), time.time())[0]
    return line.split(";", 1)[0]


class Observed:
    def __init__(self) -> None:
        self.events: list[Any] = []


def make_app(observed: Observed, *, push: bool = False) -> Any:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        if push:  # an application that only sends, never receives
            try:
                while True:
                    await send({"type": "websocket.send", "text": "tick"})
                    await asyncio.sleep(0.05)
            except sudo.SudoExpired as exc:
                observed.events.append(("send-raised", str(exc)))
                return
        while True:
            message = await receive()
            observed.events.append(message)
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo:" + message.get("text", "")})

    guarded = sudo.require_sudo_asgi(echo, ACCOUNT)

    async def routes(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            assert get_slot(scope, ACCOUNT) is not None
        await guarded(scope, receive, send)

    return asgi.setup(ACCOUNT, HANDLER, routes)


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


def test_a_websocket_without_elevation_is_refused_at_the_handshake() -> None:
    observed = Observed()
    with uvicorn_server(make_app(observed)) as base:
        for cookie in (None, cookie_for(Account(1, "ada")), cookie_for(Account(1, "ada", sudo_until=time.time() - 1))):
            headers = {"Cookie": cookie} if cookie else {}
            with pytest.raises(Exception, match="403"):
                connect(ws_url(base), additional_headers=headers, open_timeout=10)


def test_the_guard_closes_the_connection_with_1008_when_the_window_ends() -> None:
    observed = Observed()
    window = 1.0
    with uvicorn_server(make_app(observed)) as base:
        cookie = cookie_for(Account(1, "ada", sudo_until=time.time() + window))
        with connect(ws_url(base), additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
            opened = time.monotonic()
            ws.send("hi")
            assert ws.recv(timeout=5) == "echo:hi"  # elevated: served
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)  # nothing sent: the guard's timer ends the connection
            elapsed = time.monotonic() - opened
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == "sudo_expired"
        assert 0.5 < elapsed < 5
        deadline = time.monotonic() + 5
        while not observed.events or observed.events[-1]["type"] != "websocket.disconnect":
            assert time.monotonic() < deadline, observed.events
            time.sleep(0.01)
        assert observed.events[-1] == {"type": "websocket.disconnect", "code": 1008}


def count_ticks(ws: Any) -> int:
    """Read "tick" messages until the connection closes; how many arrived."""
    ticks = 0
    try:
        while True:
            assert ws.recv(timeout=10) == "tick"
            ticks += 1
    except ConnectionClosed:
        return ticks


def test_an_application_that_only_sends_gets_sudo_expired_from_send() -> None:
    observed = Observed()
    with uvicorn_server(make_app(observed, push=True)) as base:
        cookie = cookie_for(Account(1, "ada", sudo_until=time.time() + 0.5))
        with connect(ws_url(base), additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
            ticks = count_ticks(ws)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert ticks >= 1
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        deadline = time.monotonic() + 5
        while not observed.events:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert observed.events[0][0] == "send-raised"
