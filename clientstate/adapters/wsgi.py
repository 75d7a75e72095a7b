"""WSGI adapter (PEP 3333): ``setup()`` as middleware. Public as ``clientstate.wsgi``.

The middleware loads the state before the application runs and puts a
:class:`~clientstate.StateSlot` in the environ under
``"clientstate.<state name>"`` (read it with :func:`clientstate.get_slot`).
The application reads ``slot.state`` / ``slot.error`` and assigns
``slot.state`` to change it, **before calling** ``start_response``: the
``Set-Cookie`` values are decided when ``start_response`` is called, and an
assignment after that (including inside a streaming body) raises
:class:`~clientstate.StateNotWritable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from clientstate._core.binding import Binding, Clock
from clientstate._core.config import checked
from clientstate._core.drive import begin_sync, finish_sync
from clientstate._core.handler import AnyHandler
from clientstate._core.headers import headers_to_add
from clientstate._core.state import State
from clientstate.adapters.middleware import Middleware

__all__ = ["Environ", "StartResponse", "StateMiddleware", "WSGIApp", "setup"]

T = TypeVar("T")

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

WSGIApp = WSGIApplication
Environ = WSGIEnvironment


class StateMiddleware(Middleware[WSGIApp]):
    """WSGI middleware that loads and saves one state around ``app`` (any WSGI application).

    The ``start_response`` it passes on raises
    :class:`~clientstate.ConfigurationError` when the application sets the
    handler's own cookie, and :class:`~clientstate.StateEncodeError` or
    :class:`~clientstate.CookieTooLarge` when a state changed in place after
    its assignment can no longer be saved.
    """

    __slots__ = ()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        binding = self.binding
        header = environ.get("HTTP_COOKIE")
        slot = begin_sync(binding, (header,) if header else ())
        binding.attach(environ, slot)

        def start_with_state(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: OptExcInfo | None = None,
            /,
        ) -> Callable[[bytes], object]:
            # A failed request (5xx, or start_response called with exc_info)
            # commits no state change: finish_sync abandons it, and nothing
            # here raises over the application's own error.
            set_cookies = finish_sync(binding, slot, status, exc_info is not None)
            extra = headers_to_add(headers, set_cookies, binding, check_names=exc_info is None)
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start_with_state)


@checked
def setup(
    descriptor: State[T], handler: AnyHandler, app: WSGIApp, *, clock: Clock = time.time
) -> StateMiddleware:
    """Wrap a WSGI ``app`` so it gets ``descriptor``'s state loaded and saved by ``handler``.

    Args:
        descriptor: the :class:`~clientstate.State` descriptor.
        handler: the handler (e.g. :func:`~clientstate.client_stored`).
        app: the WSGI application.
        clock: seconds since the epoch (default ``time.time``).

    Returns:
        the WSGI middleware; the slot is at ``environ["clientstate.<state name>"]``.

    Raises:
        ConfigurationError: an unknown argument or one of the wrong kind, or
            ``app`` is clientstate middleware (directly, or through other
            clientstate layers) serving the same state name or cookie name.
    """
    shape = "WSGI application app(environ, start_response)"
    return StateMiddleware(app, Binding.around(app, descriptor, handler, clock, shape))
