"""Flask integration: an extension with typed per-request state, guards, and a ``SessionInterface``.

Typed state (the ``init_app`` pattern)::

    session = ClientState(SESSION, client_stored(keyring, name="__Host-session"))
    session.init_app(app)                       # or ClientState(SESSION, handler, app)

    @app.post("/visit")
    @session.login_required                     # 401 {"error": "login_required"} without a state
    def visit():
        state = session.current                 # Session (typed), never None here
        session.state = msgspec.structs.replace(state, visits=state.visits + 1)
        return {"visits": session.current.visits}

    @app.get("/admin")
    @session.sudo_required                      # 403 {"error": "sudo_required"} unless elevated
    def admin(): ...

``init_app`` wraps ``app.wsgi_app`` in :func:`clientstate.wsgi.setup`'s
middleware, so the behaviour is the core's (``Set-Cookie`` only on change,
``Vary: Cookie``, ``Cache-Control: private``, nothing committed on a 5xx —
including Flask's own 500 page for an unhandled exception —, Flask's own
cookies and headers untouched). The state is decided when Flask hands its
response to the WSGI server, after every ``after_request`` function, so it
may be assigned anywhere in the request, but not inside a streamed body.

``flask.session`` backed by clientstate, for apps that keep a dict::

    app.session_interface = SessionInterface(client_stored(keyring, name="__Host-session"))

The dict is compared by value when the response is saved (a nested change
counts, an unchanged dict writes nothing), an empty dict deletes the cookie,
a 5xx commits nothing. Values are kept as MessagePack: ``str``, numbers,
``bool``, ``None``, lists, dicts with ``str`` keys, ``bytes`` and
``datetime`` round-trip; a tuple comes back as a list. The interface loads
and saves through the core's drive functions, so a server-stored handler
can back it the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, ParamSpec, TypeVar

import flask
from flask.sessions import SessionInterface as _FlaskSessionInterface
from flask.sessions import SessionMixin
from werkzeug.exceptions import Forbidden, Unauthorized

from clientstate import sudo
from clientstate._core import drive
from clientstate._core.binding import Binding, Clock
from clientstate._core.config import check_type, checked
from clientstate._core.errors import ConfigurationError
from clientstate._core.handler import AnyHandler
from clientstate._core.headers import headers_to_add
from clientstate._core.slot import StateSlot, get_slot
from clientstate._core.state import State
from clientstate.adapters import wsgi
from clientstate.integrations._common import LOGIN_REQUIRED, SUDO_REQUIRED, check_window, elevated, guarded, with_legacy
from clientstate.legacy import LegacyCookie, flask_cookie

__all__ = ["SESSION_DICT", "ClientState", "ClientStateSession", "SessionInterface", "legacy_session_cookie"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: The default state behind ``flask.session``: a dict, named ``flask.session`` (bound into each token).
SESSION_DICT: Final[State[dict[str, Any]]] = State("flask.session", dict[str, Any])


def _json_error(exception: type[Unauthorized | Forbidden], word: str) -> Unauthorized | Forbidden:
    """A werkzeug HTTP exception whose default response is ``{"error": word}`` (an app errorhandler still wins)."""
    body = json.dumps({"error": word})
    response = flask.Response(body, exception.code, content_type="application/json")
    return exception(description=word, response=response)


class ClientState(Generic[T]):
    """A Flask extension serving one typed state to every request of the apps it is initialised on.

    Args:
        descriptor: the :class:`~clientstate.State`.
        handler: where it is kept, e.g. :func:`~clientstate.client_stored`
            (or :func:`clientstate.legacy.accept_legacy` around it while migrating).
        app: a Flask app to initialise at once (else call :meth:`init_app`).
        clock: seconds since the epoch (default ``time.time``).
        sudo_max_window: the longest sudo window honoured, seconds (default one hour).
        legacy: legacy session cookie format(s) to accept while migrating
            (:func:`legacy_session_cookie`, :mod:`clientstate.legacy`): the
            handler is wrapped with :func:`clientstate.legacy.accept_legacy`.

    Raises:
        ConfigurationError: an argument of the wrong kind, an unknown
            argument, a handler that cannot serve ``descriptor``, a bad
            ``legacy`` option, or ``app`` already serving a state of this
            name or this cookie.
    """

    @checked
    def __init__(
        self,
        descriptor: State[T],
        handler: AnyHandler,
        app: flask.Flask | None = None,
        *,
        clock: Clock = time.time,
        sudo_max_window: float = sudo.DEFAULT_MAX_WINDOW,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
    ) -> None:
        self.sudo_max_window = check_window(sudo_max_window)
        self.binding: Binding[T] = Binding(descriptor, with_legacy(handler, legacy), clock)
        self.descriptor = descriptor
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Wrap ``app.wsgi_app`` with the state's middleware; registers ``app.extensions["clientstate.<name>"]``.

        Raises:
            ConfigurationError: ``app`` is not a Flask app, or it already
                serves a state of this name or this cookie name (also when
                ``init_app`` is called twice).
        """
        check_type(app, flask.Flask, "app", "pass the Flask application")
        self.binding.check_nested(app.wsgi_app)
        app.wsgi_app = wsgi.StateMiddleware(app.wsgi_app, self.binding)  # type: ignore[method-assign]
        app.extensions[self.descriptor.slot_key] = self

    @property
    def slot(self) -> StateSlot[T]:
        """The current request's :class:`~clientstate.StateSlot`.

        Raises:
            RuntimeError: Flask's, outside a request context.
            ConfigurationError: the app was not initialised with this extension.
        """
        return get_slot(flask.request.environ, self.descriptor)

    @property
    def state(self) -> T | None:
        """The current request's state, or ``None``; assign to change it (``None`` deletes it).

        Raises (on assignment): what assigning ``slot.state`` raises
        (:class:`~clientstate.StateEncodeError`, :class:`~clientstate.CookieTooLarge`,
        :class:`~clientstate.StateNotWritable`).
        """
        return self.slot.state

    @state.setter
    def state(self, value: T | None) -> None:
        self.slot.state = value

    @property
    def current(self) -> T:
        """The current request's state; aborts with 401 ``{"error": "login_required"}`` when there is none.

        Raises:
            werkzeug.exceptions.Unauthorized: no state (Flask answers 401).
        """
        state = self.slot.state
        if state is None:
            raise _json_error(Unauthorized, LOGIN_REQUIRED)
        return state

    @property
    def elevated(self) -> bool:
        """Whether sudo is active for the current request (at the slot's ``now``)."""
        return elevated(self.slot, self.sudo_max_window)

    def login_required(self, view: Callable[P, R]) -> Callable[P, R]:
        """Decorate a view (sync or async) so that it runs only with a state; else 401 ``login_required``."""
        return guarded(view, self._check_login)

    def sudo_required(self, view: Callable[P, R]) -> Callable[P, R]:
        """Decorate a view (sync or async) so that it runs only while sudo is active.

        Without a state the answer is 401 ``login_required``; with one but not
        elevated, 403 ``{"error": "sudo_required"}`` (``werkzeug.exceptions.Forbidden``,
        so an ``@app.errorhandler(403)`` can render it).
        """
        return guarded(view, self._check_sudo)

    def _check_login(self, *args: Any, **kwargs: Any) -> None:
        self.current  # noqa: B018 - raises Unauthorized without a state

    def _check_sudo(self, *args: Any, **kwargs: Any) -> None:
        slot = self.slot
        if slot.state is None:
            raise _json_error(Unauthorized, LOGIN_REQUIRED)
        if not elevated(slot, self.sudo_max_window):
            raise _json_error(Forbidden, SUDO_REQUIRED)

    def __repr__(self) -> str:
        return f"ClientState({self.binding!r})"


class ClientStateSession(dict[str, Any], SessionMixin):
    """The ``flask.session`` dict of one request, backed by a clientstate slot.

    ``modified`` is always ``True`` for Flask's sake: clientstate compares the
    dict's value with what loaded, so nothing is written unless it changed.
    A session the view neither changed nor wrote to (no ``session[...] =``,
    ``del``, ``clear()``, ``pop()``, ``update()``, ``setdefault()``...) is not
    assigned back at all, so a cookie that did not load for a reason that keeps
    it (``ambiguous``, ``store_unavailable``) is kept; a ``clear()`` is a logout
    even then.

    Attributes:
        slot: the request's :class:`~clientstate.StateSlot` (``slot.error`` tells
            why a cookie did not load).
        written: a mutating method was called on the dict this request.
    """

    modified = True

    def __init__(self, slot: StateSlot[dict[str, Any]]) -> None:
        super().__init__(slot.state or {})
        self.slot = slot
        self.written = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.written = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.written = True
        super().__delitem__(key)

    def __ior__(self, other: Any) -> ClientStateSession:  # type: ignore[override,misc]
        self.written = True
        super().__ior__(other)
        return self

    def clear(self) -> None:
        self.written = True
        super().clear()

    def pop(self, *args: Any) -> Any:
        self.written = True
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self.written = True
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.written = True
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.written = True
        super().update(*args, **kwargs)


class SessionInterface(_FlaskSessionInterface):
    """A Flask ``SessionInterface`` keeping ``flask.session`` in a clientstate handler.

    Args:
        handler: where the dict is kept, e.g. :func:`~clientstate.client_stored`
            (or :func:`clientstate.legacy.accept_legacy` around it, with
            :func:`~clientstate.legacy.flask_cookie`, to take over Flask's own
            session cookies without logging anyone out).
        descriptor: the dict state (default :data:`SESSION_DICT`); any
            ``State`` whose type is a ``dict`` with ``str`` keys.
        clock: seconds since the epoch (default ``time.time``).
        legacy: legacy cookie format(s) to accept while migrating, usually
            ``legacy_session_cookie(app)`` (Flask's own session cookies).

    Flask's ``SESSION_COOKIE_*`` settings and ``SECRET_KEY`` are not used:
    the handler's name and attributes and its keyring are.

    Raises:
        ConfigurationError: an argument of the wrong kind, an unknown
            argument, or a bad ``legacy`` option.
    """

    @checked
    def __init__(
        self,
        handler: AnyHandler,
        descriptor: State[dict[str, Any]] = SESSION_DICT,
        *,
        clock: Clock = time.time,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
    ) -> None:
        self.binding: Binding[dict[str, Any]] = Binding(descriptor, with_legacy(handler, legacy), clock)

    def open_session(self, app: flask.Flask, request: flask.Request) -> ClientStateSession:
        """Load the request's dict (never fails: a bad cookie gives an empty dict and ``session.slot.error``).

        Raises:
            ConfigurationError: another clientstate layer of this request
                serves a state of the same name or cookie.
        """
        environ = request.environ
        header = environ.get("HTTP_COOKIE")
        slot = drive.begin_sync(self.binding, (header,) if header else ())
        self.binding.attach(environ, slot)
        return ClientStateSession(slot)

    def save_session(self, app: flask.Flask, session: SessionMixin, response: flask.Response) -> None:
        """Save the dict if it changed (an empty dict deletes the cookie) and add clientstate's headers.

        On a 5xx response nothing is saved (``Vary: Cookie`` is still added).

        Raises:
            StateEncodeError: the dict holds a value MessagePack cannot carry.
            CookieTooLarge: the dict does not fit in the handler's cookie(s).
            ConfigurationError: the app set its own cookie of the handler's name.
        """
        if not isinstance(session, ClientStateSession):
            return
        binding, slot = self.binding, session.slot
        if not slot.writable:  # already saved (Flask finalising an error response)
            return
        status = response.status_code
        if not drive.failed(status):  # a failed (5xx) request commits nothing: finish_sync abandons it
            new = dict(session) if session else None
            if session.written or new != slot.state:  # untouched: leave the slot alone (see ClientStateSession)
                slot.state = new
        set_cookies = drive.finish_sync(binding, slot, status)
        for name, value in headers_to_add(response.headers.items(), set_cookies, binding):
            response.headers.add(name, value)


def legacy_session_cookie(
    app: flask.Flask, *, convert: Callable[[dict[str, Any]], Any] | None = None
) -> LegacyCookie:
    """Flask's own session cookie format, read from ``app``'s configuration, to accept while migrating.

    Uses ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, ``SESSION_COOKIE_NAME``,
    ``SESSION_COOKIE_PATH`` (or ``APPLICATION_ROOT``), ``SESSION_COOKIE_DOMAIN``,
    ``SESSION_COOKIE_SECURE`` and ``PERMANENT_SESSION_LIFETIME``: see
    :func:`clientstate.legacy.flask_cookie`. ``convert`` turns the old
    session dict into the new state (``None``: keep the dict).

    Raises:
        ConfigurationError: ``app`` has no ``SECRET_KEY``, or as :func:`~clientstate.legacy.flask_cookie`.
    """
    check_type(app, flask.Flask, "app", "pass the Flask application")
    config = app.config
    if not app.secret_key:
        raise ConfigurationError("legacy_session_cookie(): the app has no SECRET_KEY, so it issued no session cookies")
    keys = [*(config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key]
    domain = config.get("SESSION_COOKIE_DOMAIN") or None
    return flask_cookie(
        keys,
        convert=convert,
        name=config["SESSION_COOKIE_NAME"],
        max_age=int(app.permanent_session_lifetime.total_seconds()),
        path=config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/",
        domain=domain,
        secure=bool(config.get("SESSION_COOKIE_SECURE")),
    )
