"""clientstate: typed session state in authenticated or encrypted cookies.

The public API is what this module exports; everything under
``clientstate._core`` and ``clientstate._handlers`` is private. Submodules
with public names: :mod:`clientstate.wsgi` and :mod:`clientstate.asgi` (the
``setup()`` middleware; real modules, so ``import clientstate.wsgi`` works;
implemented in :mod:`clientstate.adapters`),
:mod:`clientstate.sudo`, :mod:`clientstate.testing`.

* :class:`State`, :class:`Migration`: what a state is (name, type, schema version).
* :class:`Key`, :class:`Keyring`, :func:`generate_key`: key ids, rotation, HKDF subkeys.
* :func:`client_stored`: the handler that keeps the state in the cookie.
* :func:`server_stored`: the handler that keeps it in a store (:mod:`clientstate.stores`)
  behind a signed session id; :class:`Sessions` / :class:`AsyncSessions` list and end a
  principal's sessions.
* :func:`setup` (service form), ``wsgi.setup``, ``asgi.setup``: load, run, save on change.
* :class:`StateSlot`, :func:`get_slot`: one request's state as the application sees it.
* :class:`LoadError`, :class:`ErrorKind` and the exceptions.
* :class:`Binding`, :class:`RequestCookies`: the sans-I/O core, for writing adapters.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from clientstate import asgi, sudo, wsgi
from clientstate._core.binding import Binding
from clientstate._core.cookies import CookieAttributes, RequestCookies
from clientstate._core.errors import (
    ClientStateError,
    ConfigurationError,
    CookieTooLarge,
    ErrorKind,
    KeyFormatError,
    LoadError,
    StateEncodeError,
    StateNotWritable,
    StateTooLarge,
    StoreUnavailable,
)
from clientstate._core.handler import Handler, Loaded
from clientstate._core.keys import Key, Keyring, generate_key
from clientstate._core.slot import StateSlot, get_slot
from clientstate._core.state import Migration, State
from clientstate._handlers.client_stored import ClientStored, client_stored
from clientstate._handlers.server_stored import MAX_PRINCIPAL_BYTES, ServerStored, server_stored
from clientstate._handlers.sessions import AsyncSessions, Sessions
from clientstate.adapters.service import ServiceRequest, ServiceResponse, setup

try:
    __version__: str = _metadata.version("clientstate")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "MAX_PRINCIPAL_BYTES",
    "AsyncSessions",
    "Binding",
    "ClientStateError",
    "ClientStored",
    "ConfigurationError",
    "CookieAttributes",
    "CookieTooLarge",
    "ErrorKind",
    "Handler",
    "Key",
    "KeyFormatError",
    "Keyring",
    "LoadError",
    "Loaded",
    "Migration",
    "RequestCookies",
    "ServerStored",
    "ServiceRequest",
    "ServiceResponse",
    "Sessions",
    "State",
    "StateEncodeError",
    "StateNotWritable",
    "StateSlot",
    "StateTooLarge",
    "StoreUnavailable",
    "__version__",
    "asgi",
    "client_stored",
    "generate_key",
    "get_slot",
    "server_stored",
    "setup",
    "sudo",
    "wsgi",
]
