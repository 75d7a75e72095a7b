"""The demo's live panel: a counter kept in a live session over the WebSocket ``/ws/live``.

A :class:`~clientstate.live.SessionManager` holds one :data:`LIVE_STATE`
(``LiveCounter``) per connection. The wire protocol, all JSON text frames:

* server, right after accepting: ``{"live_session": "<token>"}`` (the
  manager's announcement), then ``{"count": n, "resumed": bool, "error": kind
  or null, "handle": "...", "stats": {...}}``;
* client ``"inc"`` → one more, ``"reset"`` → the state set to ``None`` (the
  stored record is deleted), ``"stats"`` → the same answer, unchanged state.
  Every answer has the shape above (``stats`` is :meth:`SessionManager.stats`).
  Anything else is answered ``{"error": "unknown_command"}``.

The page keeps the token in ``localStorage`` and reconnects with
``/ws/live?live_session=<token>``: closing the tab and opening it again
within ``resume_window`` (300 s) gets the count back. A refused handshake is
closed with code 1013 and the refusal's kind as the reason.

Where live sessions are kept: in the demo's ``--store`` when one is given
(SQLite, PostgreSQL, Redis, MySQL: saved there at shutdown in one atomic
batch); without one, or with ``--store memory``, in a ``MemoryStore`` of
their own whose authenticated snapshot is the
file :data:`SNAPSHOT_FILE` in the current directory, written at shutdown
(Ctrl+C, SIGTERM) and restored at start-up. Either way a restart with the
same ``CLIENTSTATE_KEYS`` restores every session; with a generated
development key the old snapshot is refused (logged) and nothing is restored.

Two environment variables tune it (documented options of the demo):

* :data:`ENV_TRUSTED_PROXIES` — comma-separated addresses or networks whose
  ``Forwarded``/``X-Forwarded-For`` headers are believed (default: none).
* :data:`ENV_PERSIST_INTERVAL` — seconds between write-behind passes (default 30).

Limits are the manager's defaults: 100 sessions per address (IPv6 by /64),
10,000 in memory.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final

import msgspec

from clientstate._core.errors import ConfigurationError
from clientstate._core.keys import Keyring
from clientstate._core.state import State
from clientstate._core.store import Store
from clientstate.live import SessionManager, get_live
from clientstate.stores.memory import MemoryStore

__all__ = [
    "ENV_PERSIST_INTERVAL",
    "ENV_TRUSTED_PROXIES",
    "LIVE_PATH",
    "LIVE_STATE",
    "SNAPSHOT_FILE",
    "LiveCounter",
    "LiveDemo",
    "make_live",
]

#: The WebSocket path of the live panel.
LIVE_PATH: Final = "/ws/live"
#: The snapshot file of the embedded store (no ``--store``), in the current directory.
SNAPSHOT_FILE: Final = "clientstate-demo-live.snapshot"
#: Comma-separated trusted proxies (addresses or CIDR networks).
ENV_TRUSTED_PROXIES: Final = "CLIENTSTATE_DEMO_TRUSTED_PROXIES"
#: Seconds between the manager's write-behind passes.
ENV_PERSIST_INTERVAL: Final = "CLIENTSTATE_DEMO_PERSIST_INTERVAL"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LiveCounter(msgspec.Struct):
    """The live panel's state: how many times "+1" was pressed in this session."""

    count: int = 0


#: The live panel's state.
LIVE_STATE: Final = State("demo_live", LiveCounter)


class LiveDemo:
    """The live panel: its manager, its WebSocket app, and the lifespan hooks.

    Attributes:
        manager: the :class:`~clientstate.live.SessionManager`.
        app: the ASGI app to mount at :data:`LIVE_PATH` (``websocket`` scopes).
    """

    def __init__(self, manager: SessionManager, say: Callable[[str], None]) -> None:
        self.manager = manager
        self._say = say
        self.app = manager.websocket(LIVE_STATE, self._panel, initial=LiveCounter)

    async def startup(self) -> None:
        """Restore the snapshot (if any) and start the manager's background passes."""
        restored = await self.manager.startup()
        if self.manager.snapshot_path is not None:
            self._say(f"live: {restored} live sessions restored from {self.manager.snapshot_path}")

    async def shutdown(self) -> None:
        """Save every live session in one atomic batch (and the snapshot); announces how many."""
        saved = await self.manager.shutdown()
        self._say(f"live: {saved} live sessions saved")

    async def _panel(self, scope: Scope, receive: Receive, send: Send) -> None:
        slot = get_live(scope, LIVE_STATE)
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})

        def answer() -> dict[str, Any]:
            state = slot.state
            return {
                "count": 0 if state is None else state.count,
                "resumed": slot.resumed,
                "error": None if slot.error is None else slot.error.kind.value,
                "handle": slot.handle,
                "stats": msgspec.to_builtins(self.manager.stats()),
            }

        await send({"type": "websocket.send", "text": json.dumps(answer())})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            command = message.get("text")
            if command == "inc":
                slot.state = LiveCounter((slot.state or LiveCounter()).count + 1)
            elif command == "reset":
                slot.state = None
            elif command != "stats":
                await send({"type": "websocket.send", "text": json.dumps({"error": "unknown_command"})})
                continue
            await send({"type": "websocket.send", "text": json.dumps(answer())})


def _interval(environ: Mapping[str, str]) -> float | None:
    text = environ.get(ENV_PERSIST_INTERVAL, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(f"{ENV_PERSIST_INTERVAL} must be a number of seconds, got {text!r:.60}") from None


def make_live(
    keyring: Keyring, store: Store | None, environ: Mapping[str, str], say: Callable[[str], None],
    directory: str | Path = ".",
) -> LiveDemo:
    """The demo's live panel on ``store`` (or an embedded ``MemoryStore`` with a snapshot in ``directory``).

    Args:
        keyring: the demo's keys (tokens, stored state and the snapshot are authenticated with them).
        store: the demo's ``--store``, or ``None`` (a ``MemoryStore`` counts as ``None``).
        environ: where :data:`ENV_TRUSTED_PROXIES` and :data:`ENV_PERSIST_INTERVAL` are read.
        say: announces the choices made (one line each).
        directory: where the embedded store's :data:`SNAPSHOT_FILE` is kept.

    Raises:
        ConfigurationError: a bad trusted proxy or persist interval in ``environ``.
    """
    proxies = [entry.strip() for entry in environ.get(ENV_TRUSTED_PROXIES, "").split(",") if entry.strip()]
    snapshot: Path | None = None
    if store is None or isinstance(store, MemoryStore):
        # Its own MemoryStore: the snapshot holds live sessions only (``--store memory``'s cookie
        # sessions still end with the process, as the demo announces).
        store = MemoryStore()
        snapshot = Path(directory) / SNAPSHOT_FILE
    manager = SessionManager(
        store, keyring, trusted_proxies=proxies, persist_interval=_interval(environ), snapshot_path=snapshot,
    )
    where = f"a MemoryStore saved to {snapshot} at shutdown" if snapshot is not None else type(store).__name__
    say(
        f"live: a counter per WebSocket at {LIVE_PATH} in {where}; resumable for {manager.resume_window:g} s, "
        f"at most {manager.max_per_ip} per address, persisted every {manager.persist_interval:g} s"
        + (f", trusting forwarding headers from {', '.join(proxies)}" if proxies else "")
    )
    return LiveDemo(manager, say)
