"""``clientstate.asgi``: the ASGI ``setup()`` middleware — load, run the application, save on change.

The implementation lives in :mod:`clientstate.adapters.asgi`; this module is its
public name, so ``import clientstate.asgi`` and ``from clientstate.asgi import
setup`` work as well as ``clientstate.asgi.setup`` after ``import clientstate``.
"""

from __future__ import annotations

from clientstate.adapters.asgi import ASGIApp, Message, Receive, Scope, Send, StateMiddleware, setup

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "StateMiddleware", "setup"]
