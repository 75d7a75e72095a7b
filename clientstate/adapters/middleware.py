"""What the WSGI and ASGI middleware share: the wrapped application and its binding."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from clientstate._core.binding import Binding

__all__ = ["Middleware"]

App = TypeVar("App")


class Middleware(Generic[App]):
    """Base of :class:`clientstate.wsgi.StateMiddleware` and :class:`clientstate.asgi.StateMiddleware`.

    Attributes:
        app: the wrapped application.
        binding: the :class:`~clientstate.Binding` (descriptor, handler, clock);
            :meth:`Binding.check_nested` follows ``binding`` and ``app`` through
            nested clientstate layers.
    """

    __slots__ = ("app", "binding")

    def __init__(self, app: App, binding: Binding[Any]) -> None:
        self.app = app
        self.binding = binding
