"""clientstate.testing: tools for testing applications that use clientstate.

Time and keys (no optional dependency):

* :class:`FrozenClock`: a clock that moves only when told to.
* :func:`fixed_key`, :func:`fixed_keyring`: fixed keys for tests.

Strategies (need ``hypothesis``):

* :func:`states`: every value of a ``State``'s type, for ``@given``.
* :func:`old_states`: values of an older schema version (a migration's type).
* :func:`from_type`: every value of any msgspec type.
* :class:`UnsupportedTypeError`: a type no value can be generated for.

Properties, one call each (need ``hypothesis``), raising ``AssertionError``:

* :func:`check_round_trip`, :func:`check_stable`, :func:`check_migrations`,
  :func:`check_fits_cookie`, :func:`check_all`.
* :func:`check_schema_snapshot`: fails when a state's type changed shape
  without a schema version bump (no Hypothesis needed).

Test clients (need Starlette + httpx for ASGI, Werkzeug for WSGI):

* :class:`StateClient`, :func:`asgi_client`, :func:`wsgi_client`,
  :class:`CookieChange`.

The pytest plugin (:mod:`clientstate.testing.plugin`) is registered
automatically and offers the ``clientstate_*`` fixtures.

Only the clock and keys are imported eagerly; every other name is imported
on first use, so ``import clientstate.testing`` never needs Hypothesis,
Starlette or Werkzeug.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clientstate.testing.clock import FrozenClock
from clientstate.testing.keys import fixed_key, fixed_keyring
from clientstate.testing.schema import check_schema_snapshot

if TYPE_CHECKING:
    from clientstate.testing._walk import UnsupportedTypeError
    from clientstate.testing.checks import (
        check_all,
        check_fits_cookie,
        check_migrations,
        check_round_trip,
        check_stable,
    )
    from clientstate.testing.client import CookieChange, StateClient, asgi_client, wsgi_client
    from clientstate.testing.strategies import from_type, old_states, states

__all__ = [
    "CookieChange",
    "FrozenClock",
    "StateClient",
    "UnsupportedTypeError",
    "asgi_client",
    "check_all",
    "check_fits_cookie",
    "check_migrations",
    "check_round_trip",
    "check_schema_snapshot",
    "check_stable",
    "fixed_key",
    "fixed_keyring",
    "from_type",
    "old_states",
    "states",
    "wsgi_client",
]

_LAZY = {
    "UnsupportedTypeError": "clientstate.testing._walk",
    "check_all": "clientstate.testing.checks",
    "check_fits_cookie": "clientstate.testing.checks",
    "check_migrations": "clientstate.testing.checks",
    "check_round_trip": "clientstate.testing.checks",
    "check_stable": "clientstate.testing.checks",
    "CookieChange": "clientstate.testing.client",
    "StateClient": "clientstate.testing.client",
    "asgi_client": "clientstate.testing.client",
    "wsgi_client": "clientstate.testing.client",
    "from_type": "clientstate.testing.strategies",
    "old_states": "clientstate.testing.strategies",
    "states": "clientstate.testing.strategies",
}

_NEEDS = {
    "clientstate.testing.checks": "hypothesis",
    "clientstate.testing.strategies": "hypothesis",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'clientstate.testing' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        needed = _NEEDS.get(module_name, exc.name or "a test dependency")
        raise ImportError(
            f"clientstate.testing.{name} needs {needed}: pip install {needed} ({exc})", name=exc.name
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
