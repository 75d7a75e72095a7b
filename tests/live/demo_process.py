"""The demo as a real process (uvicorn) and real WebSocket clients (``websockets``) for its live panel.

:class:`LiveDemo` runs ``python -m clientstate demo --port 0`` with the given
keys, arguments, environment and working directory, and stops it with
SIGTERM (or SIGKILL). :class:`Client` is one WebSocket connection to
``/ws/live``, from a chosen loopback source address and with chosen headers.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from clientstate import Keyring
from tests.servers import ServerProcess

STARTUP_TIMEOUT = 30.0
WAIT = 10.0


class LiveDemo(ServerProcess):
    """A demo process; ``url`` is its ``http://127.0.0.1:PORT``, ``ws`` its live panel, ``output`` what it printed."""

    def __init__(
        self, keyring: Keyring, cwd: str | os.PathLike[str], args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            [sys.executable, "-m", "clientstate", "demo", "--port", "0", "--interface", "asgi", *args],
            env={"CLIENTSTATE_KEYS": keyring.to_text(), **(env or {})}, cwd=cwd, startup_timeout=STARTUP_TIMEOUT,
        )
        self.ws = self.url.replace("http://", "ws://") + "/ws/live"

    def wait_for(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """The first line (from now on, or already printed) containing ``text``; AssertionError after ``timeout``."""
        return super().wait_for(text, timeout)

    def stop(self) -> int:  # type: ignore[override]
        """SIGTERM and wait (SIGKILL after ``STARTUP_TIMEOUT``, and the test fails); the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the demo did not stop on SIGTERM: {self.drain()}") from None
        self.drain()
        return self.process.returncode


class Refused(Exception):
    """The server closed the connection instead of answering: ``code`` and ``reason``."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


class Client:
    """One live-panel connection: ``token`` (announced), ``first`` (the first answer)."""

    def __init__(self, connection: ClientConnection, token: str, first: dict[str, Any]) -> None:
        self.connection = connection
        self.token = token
        self.first = first

    @classmethod
    async def open(
        cls, ws_url: str, *, token: str | None = None, source: str = "127.0.0.1",
        headers: Sequence[tuple[str, str]] = (),
    ) -> Client:
        """Connect from ``source`` (a loopback address), presenting ``token``.

        Raises:
            Refused: the handshake was refused (closed at once, as with 1013).
        """
        url = ws_url if token is None else f"{ws_url}?live_session={token}"
        connection = await connect(
            url, additional_headers=list(headers), open_timeout=WAIT, close_timeout=WAIT, proxy=None,
            local_addr=(source, 0),
        )
        try:
            announced = json.loads(await _recv(connection))
            first = json.loads(await _recv(connection))
        except ConnectionClosed as closed:
            received = closed.rcvd
            code, reason = (None, None) if received is None else (received.code, received.reason)
            raise Refused(code, reason) from None
        return cls(connection, announced["live_session"], first)

    async def say(self, command: str) -> dict[str, Any]:
        """Send ``command``; the answer."""
        await self.connection.send(command)
        answer: dict[str, Any] = json.loads(await _recv(self.connection))
        return answer

    async def close(self) -> None:
        await self.connection.close()


async def _recv(connection: ClientConnection) -> str:
    message = await asyncio.wait_for(connection.recv(), WAIT)
    assert isinstance(message, str)
    return message


async def refusal(ws_url: str, **options: Any) -> Refused | None:
    """The :class:`Refused` a connection gets, or ``None`` (then it was accepted and is closed again)."""
    try:
        client = await Client.open(ws_url, **options)
    except Refused as refused:
        return refused
    await client.close()
    return None
