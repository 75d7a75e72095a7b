"""clientstate: typed session state in authenticated or encrypted cookies.

Quick map (one concept per module):

* :mod:`clientstate.state` — :class:`State`, :class:`Migration`: what the state is.
* :mod:`clientstate.keys` — :class:`Key`, :class:`Keyring`: key ids, rotation, HKDF subkeys.
* :mod:`clientstate.token` — the wire format (authenticated and encrypted modes).
* :mod:`clientstate.cookies` — ``Cookie`` parsing, ``Set-Cookie`` rendering, attributes.
* :mod:`clientstate.errors` — :class:`LoadError` values and the exceptions.
* :mod:`clientstate.handler` — :class:`Handler`, :func:`client_stored`.
* :mod:`clientstate.session` — the sans-I/O core of ``setup()``.
* :mod:`clientstate.service`, :mod:`clientstate.wsgi`, :mod:`clientstate.asgi` — the three ``setup()`` forms.
* :mod:`clientstate.sudo` — sudo-until elevation.
"""

from clientstate import asgi, sudo, wsgi
from clientstate.cookies import CookieAttributes, RequestCookies
from clientstate.errors import (
    ClientStateError,
    ConfigurationError,
    CookieTooLarge,
    ErrorKind,
    KeyFormatError,
    LoadError,
    StateEncodeError,
)
from clientstate.handler import ClientStored, Handler, Loaded, client_stored
from clientstate.keys import Key, Keyring, generate_key
from clientstate.service import Request, Response, setup
from clientstate.session import Binding, StateSlot, get_slot
from clientstate.state import Migration, State

__version__ = "0.1.0.dev0"

__all__ = [
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
    "Request",
    "RequestCookies",
    "Response",
    "State",
    "StateEncodeError",
    "StateSlot",
    "__version__",
    "asgi",
    "client_stored",
    "generate_key",
    "get_slot",
    "setup",
    "sudo",
    "wsgi",
]
