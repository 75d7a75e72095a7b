"""``clientstate.wsgi``: the WSGI ``setup()`` middleware — load, run the application, save on change.

The implementation lives in :mod:`clientstate.adapters.wsgi`; this module is its
public name, so ``import clientstate.wsgi`` and ``from clientstate.wsgi import
setup`` work as well as ``clientstate.wsgi.setup`` after ``import clientstate``.
"""

from __future__ import annotations

from clientstate.adapters.wsgi import Environ, StartResponse, StateMiddleware, WSGIApp, setup

__all__ = ["Environ", "StartResponse", "StateMiddleware", "WSGIApp", "setup"]
