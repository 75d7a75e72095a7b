"""The few HTTP chores the demo does itself: status lines, bounded request bodies, lifespan.

Not part of clientstate's adapters (which are middleware only); the demo
needs them because it is a bare WSGI and ASGI app without a framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

__all__ = ["lifespan", "read_asgi_body", "read_wsgi_body", "status_line"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def status_line(status: int) -> str:
    """``"200 OK"`` for ``200``; the reason phrase is empty for codes :mod:`http` does not know."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def read_wsgi_body(environ: MutableMapping[str, Any], max_body: int) -> bytes | None:
    """A WSGI request's body, or ``None`` when its declared length exceeds ``max_body`` bytes."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_body:
        return None
    data: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    return data


async def read_asgi_body(receive: Receive, max_body: int) -> bytes | None:
    """An ASGI ``http`` request's body; ``None`` if it exceeds ``max_body`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def lifespan(receive: Receive, send: Send, startup: Callable[[], Awaitable[None]] | None = None,
                   shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve an ASGI ``lifespan`` scope: run ``startup``/``shutdown`` (if given) and acknowledge both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown is not None:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
