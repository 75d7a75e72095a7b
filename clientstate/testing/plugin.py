"""pytest plugin for applications that use clientstate (entry point ``pytest11``: ``clientstate``).

Installed with clientstate, so these fixtures are available in every test
session without any import:

* ``clientstate_clock``: a fresh :class:`~clientstate.testing.FrozenClock`
  at 1_700_000_000 (2023-11-14T22:13:20Z).
* ``clientstate_keyring``: :func:`~clientstate.testing.fixed_keyring` ``(1)``.
* ``clientstate_handler``: ``client_stored(clientstate_keyring, name="session")``
  with the default (``Secure``) cookie attributes, authenticated mode.
* ``clientstate_asgi_client``: a factory ``(app, state, handler=None,
  clock=None, **kwargs) -> StateClient`` around Starlette's ``TestClient``
  (``https://testserver``); ``handler`` and ``clock`` default to the two
  fixtures above. Clients are closed when the test ends.
* ``clientstate_wsgi_client``: the same for WSGI apps, around Werkzeug's
  ``Client`` (``https://localhost``).

Importing this module is cheap: Hypothesis, Starlette, httpx and Werkzeug
are imported only when a client factory is called, so the plugin loads in
projects that do not have them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from clientstate._core.binding import Clock
from clientstate._core.handler import Handler
from clientstate._core.keys import Keyring
from clientstate._core.state import State
from clientstate._handlers.client_stored import ClientStored, client_stored
from clientstate.testing.clock import FrozenClock
from clientstate.testing.keys import fixed_keyring

if TYPE_CHECKING:
    from clientstate.testing.client import StateClient

__all__ = [
    "ClientFactory",
    "clientstate_asgi_client",
    "clientstate_clock",
    "clientstate_handler",
    "clientstate_keyring",
    "clientstate_wsgi_client",
]

#: ``factory(app, state, handler=None, clock=None, **kwargs) -> StateClient``
ClientFactory = Callable[..., "StateClient[Any]"]


@pytest.fixture
def clientstate_clock() -> FrozenClock:
    """A frozen clock at 1_700_000_000 seconds since the epoch; move it with ``advance``/``set``."""
    return FrozenClock()


@pytest.fixture
def clientstate_keyring() -> Keyring:
    """A keyring with one fixed test key (key id 1). Never use it in production."""
    return fixed_keyring(1)


@pytest.fixture
def clientstate_handler(clientstate_keyring: Keyring) -> ClientStored:
    """``client_stored(clientstate_keyring, name="session")``: authenticated, default ``Secure`` attributes."""
    return client_stored(clientstate_keyring, name="session")


def _factory(
    make: Callable[..., StateClient[Any]], default_handler: Handler, default_clock: FrozenClock
) -> Iterator[ClientFactory]:
    made: list[StateClient[Any]] = []

    def factory(
        app: Any, state: State[Any], handler: Handler | None = None, clock: Clock | None = None, **kwargs: Any
    ) -> StateClient[Any]:
        client = make(
            app,
            state,
            default_handler if handler is None else handler,
            default_clock if clock is None else clock,
            **kwargs,
        )
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def clientstate_asgi_client(
    clientstate_handler: ClientStored, clientstate_clock: FrozenClock
) -> Iterator[ClientFactory]:
    """A factory of :class:`~clientstate.testing.StateClient` s for ASGI apps (Starlette ``TestClient``).

    ``factory(app, state, handler=None, clock=None, **testclient_kwargs)``;
    build ``app`` with the same handler and clock (by default the
    ``clientstate_handler`` and ``clientstate_clock`` fixtures).
    """
    from clientstate.testing.client import asgi_client

    yield from _factory(asgi_client, clientstate_handler, clientstate_clock)


@pytest.fixture
def clientstate_wsgi_client(
    clientstate_handler: ClientStored, clientstate_clock: FrozenClock
) -> Iterator[ClientFactory]:
    """A factory of :class:`~clientstate.testing.StateClient` s for WSGI apps (Werkzeug ``Client``).

    ``factory(app, state, handler=None, clock=None, base_url="https://localhost")``.
    """
    from clientstate.testing.client import wsgi_client

    yield from _factory(wsgi_client, clientstate_handler, clientstate_clock)
