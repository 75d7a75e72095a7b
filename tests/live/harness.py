"""An in-process WebSocket peer for the live-session manager: an ASGI app driven through queues.

A :class:`Peer` plays the server side's transport: it feeds ``websocket.connect``,
``websocket.receive`` and ``websocket.disconnect`` messages to the app and
collects what the app sends. Every wait is bounded (``WAIT`` seconds).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec

from clientstate import State
from clientstate.live import SessionManager, get_live

WAIT = 5.0


class Counter(msgspec.Struct):
    count: int = 0
    user: str | None = None


COUNTER = State("counter", Counter)


async def counter_app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts; each "inc" adds one and answers the count; "login:<name>" sets the user; "clear" sets ``None``."""
    slot = get_live(scope, COUNTER)
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text", "")
        state = slot.state or Counter()
        if text == "inc":
            slot.state = msgspec.structs.replace(state, count=state.count + 1)
        elif text.startswith("login:"):
            slot.state = msgspec.structs.replace(state, user=text[6:])
        elif text == "clear":  # a logout: the state is gone
            slot.state = None
        current = slot.state or Counter()
        await send({"type": "websocket.send", "text": json.dumps({"count": current.count, "user": current.user})})


def wrap(manager: SessionManager) -> Any:
    return manager.websocket(COUNTER, counter_app, initial=Counter, principal=lambda s: s.user)


#: Connections whose app task still runs, held as a server holds its connections: asyncio keeps only weak
#: references to tasks, so a pending task of a dropped Peer could be garbage collected mid-test.
_RUNNING: set[asyncio.Task[None]] = set()


class Peer:
    """One WebSocket connection to ``app``."""

    def __init__(self, app: Any, *, token: str | None = None,
                 client: tuple[str, int] | None = ("203.0.113.7", 50000),
                 headers: list[tuple[bytes, bytes]] | None = None, query: bytes | None = None) -> None:
        if query is None:
            query = b"" if token is None else f"live_session={token}".encode()
        self.scope = {"type": "websocket", "path": "/ws", "query_string": query, "client": client,
                      "headers": headers or []}
        self.app = app
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.token: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def _receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def _send(self, message: Any) -> None:
        await self.outgoing.put(dict(message))

    async def open(self) -> Peer:
        """Connect; returns once the app accepted (and announced its token) or closed."""
        self.task = asyncio.ensure_future(self.app(self.scope, self._receive, self._send))
        _RUNNING.add(self.task)
        self.task.add_done_callback(_RUNNING.discard)
        await self.incoming.put({"type": "websocket.connect"})
        first = await asyncio.wait_for(self.outgoing.get(), WAIT)
        if first["type"] == "websocket.accept":
            second = await asyncio.wait_for(self.outgoing.get(), WAIT)
            if second["type"] == "websocket.close":
                self.close_code, self.close_reason = second.get("code"), second.get("reason")
                return self
            self.token = json.loads(second["text"])["live_session"]
        else:
            self.close_code, self.close_reason = first.get("code"), first.get("reason")
        return self

    async def say(self, text: str) -> dict[str, Any]:
        await self.incoming.put({"type": "websocket.receive", "text": text})
        reply: dict[str, Any] = json.loads((await asyncio.wait_for(self.outgoing.get(), WAIT))["text"])
        return reply

    async def close(self) -> None:
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT)

    @property
    def refused(self) -> bool:
        return self.close_code == 1013
