"""Live sessions: typed state per WebSocket connection, with limits, eviction, resume and a save at shutdown.

* :class:`SessionManager` — the manager; ``manager.websocket(STATE, app)`` wraps a
  WebSocket app, ``manager.lifespan(app)`` runs start-up and shutdown.
* :func:`get_live` / :class:`LiveSlot` — one connection's session, as the app sees it.
* :class:`ManagerStats`, :class:`Refusal`.
* :mod:`clientstate.live.address` — client addresses behind trusted proxies, IPv6 /64 groups.
* :mod:`clientstate.live.snapshot` — the authenticated snapshot file of a ``MemoryStore``.
"""

from __future__ import annotations

from clientstate.live.manager import LiveSlot, ManagerStats, Refusal, SessionManager, get_live

__all__ = ["LiveSlot", "ManagerStats", "Refusal", "SessionManager", "get_live"]
