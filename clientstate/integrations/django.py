"""Django integration: typed-state middleware and decorators, and a session engine for ``request.session``.

Typed state::

    # myapp/state.py
    session = ClientState(SESSION, client_stored(Keyring.from_env(), name="__Host-session"))

    # settings.py
    MIDDLEWARE = [..., "myapp.state.session"]     # the ClientState object is the middleware factory

    # views.py
    @session.login_required                        # 401 {"error": "login_required"} (or login_url)
    def visit(request):
        slot = session.get_slot(request)           # StateSlot[Session]
        slot.state = msgspec.structs.replace(slot.state, visits=slot.state.visits + 1)

``request.session`` kept by clientstate (a replacement for the
``signed_cookies`` engine, working with ``django.contrib.auth``'s
``login()``/``logout()`` and Django's test client)::

    SESSION_ENGINE = "clientstate.integrations.django"
    MIDDLEWARE = [..., "clientstate.integrations.django.SessionMiddleware", ...]  # in place of Django's
    CLIENTSTATE_KEYS = "..."       # or the CLIENTSTATE_KEYS environment variable

Both middlewares are ``MiddlewareMixin`` classes with one synchronous code
path (Django runs it in a thread under ASGI); they load and save through the
core's drive functions, so the behaviour is the core's: ``Set-Cookie`` only
when the value changed, load errors as values (``slot.error``), ``Vary:
Cookie`` (merged into an existing ``Vary``), ``Cache-Control: private`` when
the cookie is written and the view set none, nothing committed on a 5xx, the
view's own headers and cookies untouched (a view that sets the handler's own
cookie is refused with :class:`~clientstate.ConfigurationError`). The
``Set-Cookie`` lines are clientstate's own, byte for byte: they are placed in
``response.cookies`` as morsels that print exactly that line.

The session engine's handler is ``settings.CLIENTSTATE_SESSION_HANDLER`` (a
dotted path to a handler, or to a function returning one) or else
:func:`session_handler_from_settings`: ``client_stored`` (encrypted, unless
``CLIENTSTATE_SESSION_ENCRYPTED = False``) named ``SESSION_COOKIE_NAME`` with
``SESSION_COOKIE_PATH``, ``_DOMAIN``, ``_SECURE``, ``_HTTPONLY``,
``_SAMESITE``, and ``expires_in=SESSION_COOKIE_AGE``. Session data is kept
as MessagePack: whatever Django's JSON serializer accepts round-trips.
``set_expiry()`` is stored but, as with ``signed_cookies``, only the
handler's ``expires_in`` is enforced; ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` is
not honoured (the cookie's ``Max-Age`` is the token's remaining lifetime).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from http.cookies import Morsel
from typing import Any, Final, Generic, TypeVar

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware as _DjangoSessionMiddleware
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from clientstate import sudo
from clientstate._core import drive
from clientstate._core.binding import Binding, Clock
from clientstate._core.config import checked
from clientstate._core.cookies import CookieAttributes, set_cookie_name
from clientstate._core.errors import ConfigurationError
from clientstate._core.handler import AnyHandler, Handler, PlanHandler
from clientstate._core.headers import headers_to_add
from clientstate._core.keys import Keyring
from clientstate._core.slot import StateSlot, get_slot
from clientstate._core.state import State
from clientstate._handlers.client_stored import client_stored
from clientstate._handlers.sessions import Sessions
from clientstate.integrations._common import LOGIN_REQUIRED, SUDO_REQUIRED, check_window, elevated, guarded, with_legacy
from clientstate.legacy import LegacyCookie, django_cookie

__all__ = [
    "ENGINE",
    "SESSION_DICT",
    "ClientState",
    "SessionMiddleware",
    "SessionStore",
    "legacy_signed_cookies",
    "session_handler_from_settings",
]

T = TypeVar("T")
V = TypeVar("V")

#: The value of ``SESSION_ENGINE`` that selects clientstate.
ENGINE: Final = "clientstate.integrations.django"
#: The state behind ``request.session``: a dict, named ``django.session`` (bound into each token).
SESSION_DICT: Final[State[dict[str, Any]]] = State("django.session", dict[str, Any])

# Morsel attribute names, for the attributes clientstate writes.
_MORSEL_KEYS: Final = {"path": "path", "domain": "domain", "max-age": "max-age", "samesite": "samesite"}
_MORSEL_FLAGS: Final = {"secure": "secure", "httponly": "httponly"}


class _SetCookieLine(Morsel[str]):
    """A morsel that prints one clientstate ``Set-Cookie`` line exactly; its attributes mirror the line."""

    def __init__(self, line: str) -> None:
        super().__init__()
        pair, *attributes = line.split(";")
        name, _, value = pair.partition("=")
        self.set(name.strip(), value.strip(), value.strip())
        for attribute in attributes:
            key, _, setting = attribute.strip().partition("=")
            lowered = key.lower()
            if lowered in _MORSEL_KEYS:
                self[_MORSEL_KEYS[lowered]] = setting
            elif lowered in _MORSEL_FLAGS:
                self[_MORSEL_FLAGS[lowered]] = True
        self._line = line

    def OutputString(self, attrs: Any = None) -> str:  # the name http.cookies gives it
        return self._line


def _cookie_headers(request: HttpRequest) -> tuple[str, ...]:
    header = request.META.get("HTTP_COOKIE")
    return (header,) if header else ()


def _finish(binding: Binding[Any], slot: StateSlot[Any], response: HttpResponseBase) -> list[str]:
    """Save ``slot`` (nothing on a 5xx) and add clientstate's headers to a Django response.

    Returns the ``Set-Cookie`` values added.

    Raises:
        ConfigurationError: the view set a cookie the handler owns.
        StateEncodeError, CookieTooLarge: a state changed in place no longer saves.
    """
    set_cookies = drive.finish_sync(binding, slot, response.status_code)  # a 5xx commits nothing
    own = [*response.items(), *(("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values())]
    for name, value in headers_to_add(own, set_cookies, binding):
        if name == "Vary":
            patch_vary_headers(response, ("Cookie",))
        elif name == "Set-Cookie":
            response.cookies[set_cookie_name(value)] = _SetCookieLine(value)
        else:  # Cache-Control: private, only when the view set none
            response[name] = value
    return set_cookies


class _StateMiddleware(MiddlewareMixin):  # type: ignore[misc]
    """The middleware :class:`ClientState` builds: loads before the view, saves after it."""

    def __init__(self, get_response: Callable[[HttpRequest], Any], binding: Binding[Any]) -> None:
        self.binding = binding
        super().__init__(get_response)

    def process_request(self, request: HttpRequest) -> None:
        binding = self.binding
        slot = drive.begin_sync(binding, _cookie_headers(request))
        binding.attach(request.META, slot)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        slot = request.META.get(self.binding.key)
        if isinstance(slot, StateSlot) and slot.descriptor is self.binding.descriptor:
            _finish(self.binding, slot, response)
        return response


class ClientState(Generic[T]):
    """One typed state served to a Django project: the middleware factory, accessors and view decorators.

    List the object's dotted path in ``MIDDLEWARE`` (it is the middleware
    factory, sync- and async-capable).

    Args:
        descriptor: the :class:`~clientstate.State`.
        handler: where it is kept, e.g. :func:`~clientstate.client_stored`.
        clock: seconds since the epoch (default ``time.time``).
        sudo_max_window: the longest sudo window honoured, seconds (default one hour).
        login_url: where :meth:`login_required` redirects (with ``?next=``);
            default ``None``: answer 401 ``{"error": "login_required"}``.
        legacy: legacy cookie format(s) to accept while migrating, e.g.
            :func:`legacy_signed_cookies` (Django's ``signed_cookies`` engine).

    Raises:
        ConfigurationError: an argument of the wrong kind, an unknown
            argument, a handler that cannot serve ``descriptor``, or a bad
            ``legacy`` option.
    """

    sync_capable: Final = True
    async_capable: Final = True

    @checked
    def __init__(
        self,
        descriptor: State[T],
        handler: AnyHandler,
        *,
        clock: Clock = time.time,
        sudo_max_window: float = sudo.DEFAULT_MAX_WINDOW,
        login_url: str | None = None,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
    ) -> None:
        self.sudo_max_window = check_window(sudo_max_window)
        if login_url is not None and not isinstance(login_url, str):
            raise ConfigurationError(f"login_url must be a URL or None, got {type(login_url).__name__}")
        self.binding: Binding[T] = Binding(descriptor, with_legacy(handler, legacy), clock)
        self.descriptor = descriptor
        self.login_url = login_url

    def __call__(self, get_response: Callable[[HttpRequest], Any]) -> MiddlewareMixin:
        """The middleware for Django's handler chain (Django calls this with ``get_response``)."""
        return _StateMiddleware(get_response, self.binding)

    def get_slot(self, request: HttpRequest) -> StateSlot[T]:
        """The request's :class:`~clientstate.StateSlot`.

        Raises:
            ConfigurationError: the middleware is not in ``MIDDLEWARE`` (or did not run for this request).
        """
        return get_slot(request.META, self.descriptor)

    def get_state(self, request: HttpRequest) -> T | None:
        """The request's state, or ``None`` (no state, or a load error: see ``get_slot(request).error``)."""
        return self.get_slot(request).state

    def login_required(self, view: Callable[..., V]) -> Callable[..., V]:
        """Decorate a view (function, sync or async) so that it runs only with a state.

        Without one: a redirect to ``login_url`` if configured, else 401 ``{"error": "login_required"}``.
        """
        return guarded(view, self._deny_login)

    def sudo_required(self, view: Callable[..., V]) -> Callable[..., V]:
        """Decorate a view so that it runs only while sudo is active: else 401 (no state) or 403 ``sudo_required``."""
        return guarded(view, self._deny_sudo)

    def _deny_login(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase | None:
        if self.get_slot(request).state is not None:
            return None
        if self.login_url is not None:
            from django.contrib.auth.views import redirect_to_login  # imports models: only once apps are ready

            return redirect_to_login(request.get_full_path(), self.login_url)
        return JsonResponse({"error": LOGIN_REQUIRED}, status=401)

    def _deny_sudo(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase | None:
        denied = self._deny_login(request)
        if denied is not None:
            return denied
        if elevated(self.get_slot(request), self.sudo_max_window):
            return None
        return JsonResponse({"error": SUDO_REQUIRED}, status=403)

    def __repr__(self) -> str:
        return f"ClientState({self.binding!r})"


# --- the session engine -----------------------------------------------------------------------------------


def session_handler_from_settings() -> AnyHandler:
    """The default session-engine handler, built from Django's settings (see the module docstring).

    Keys: ``settings.CLIENTSTATE_KEYS`` (keyring text) or the ``CLIENTSTATE_KEYS``
    environment variable.

    Raises:
        ConfigurationError: no keys, weak keys, or session cookie settings
            clientstate refuses (for example ``SameSite=None`` without ``Secure``).
    """
    text = getattr(settings, "CLIENTSTATE_KEYS", None)
    keyring = Keyring.from_text(text) if text else Keyring.from_env()
    same_site = settings.SESSION_COOKIE_SAMESITE or None
    attributes = CookieAttributes(
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        http_only=bool(settings.SESSION_COOKIE_HTTPONLY),
        same_site=same_site,
    )
    return client_stored(
        keyring,
        name=settings.SESSION_COOKIE_NAME,
        attributes=attributes,
        encrypted=bool(getattr(settings, "CLIENTSTATE_SESSION_ENCRYPTED", True)),
        expires_in=int(settings.SESSION_COOKIE_AGE),
    )


def legacy_signed_cookies(*, convert: Callable[[dict[str, Any]], Any] | None = None) -> LegacyCookie:
    """Django's ``signed_cookies`` session format, from the settings, to accept while migrating.

    Uses ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``, ``SESSION_COOKIE_NAME``,
    ``SESSION_COOKIE_AGE``, ``SESSION_COOKIE_PATH``, ``SESSION_COOKIE_DOMAIN``
    and ``SESSION_COOKIE_SECURE``; see :func:`clientstate.legacy.django_cookie`.

    Raises:
        ConfigurationError: as :func:`~clientstate.legacy.django_cookie`.
    """
    return django_cookie(
        [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS],
        convert=convert,
        name=settings.SESSION_COOKIE_NAME,
        max_age=int(settings.SESSION_COOKIE_AGE),
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=bool(settings.SESSION_COOKIE_SECURE),
    )


@functools.cache
def engine_binding() -> Binding[dict[str, Any]]:
    """The session engine's binding: :data:`SESSION_DICT` and the configured handler (cached per settings).

    Raises:
        ConfigurationError: ``CLIENTSTATE_SESSION_HANDLER`` does not name a
            handler, the handler is chunked (a Django session key is one
            cookie value), or as :func:`session_handler_from_settings`.
    """
    path = getattr(settings, "CLIENTSTATE_SESSION_HANDLER", None)
    if path:
        found = import_string(path)
        handler = found() if callable(found) and not isinstance(found, Handler | PlanHandler) else found
        if not isinstance(handler, Handler | PlanHandler):
            raise ConfigurationError(f"CLIENTSTATE_SESSION_HANDLER {path!r} is not a clientstate handler")
    else:
        handler = session_handler_from_settings()
    inner = getattr(handler, "inner", handler)
    if getattr(inner, "chunked", False):
        raise ConfigurationError(
            "the Django session engine needs a handler with one cookie (chunked=False): Django and its test "
            "client carry the session as one cookie value"
        )
    return Binding(SESSION_DICT, handler)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(("CLIENTSTATE_", "SESSION_", "SECRET_KEY")):
        engine_binding.cache_clear()


setting_changed.connect(_settings_changed, dispatch_uid="clientstate.integrations.django")


def _token_of(binding: Binding[Any], set_cookies: list[str]) -> str | None:
    """The value our cookie is set to in ``set_cookies`` (``""`` when deleted); ``None`` if not touched."""
    name = binding.handler.name
    for line in set_cookies:
        if set_cookie_name(line) == name:
            return line.split(";", 1)[0].partition("=")[2]
    return None


class SessionStore(SessionBase):  # type: ignore[misc]
    """``request.session`` kept by clientstate; Django finds it through ``SESSION_ENGINE``.

    Two ways it is used:

    * by :class:`SessionMiddleware`, around a request's slot: the data is the
      loaded dict, and the middleware saves it when the response is ready
      (``save()`` then only marks it modified);
    * on its own, as Django's test client and ``django.contrib.auth`` helpers
      use engines: ``SessionStore(session_key)`` loads the cookie value
      ``session_key`` and ``save()`` makes ``session_key`` the new cookie value.

    ``cycle_key()`` and ``flush()`` mark the session for a new identity; a
    client-stored session has no server-side id, so the new cookie is simply
    the one the new data needs (none when the data is unchanged, a deletion
    after ``flush()``).
    """

    def __init__(self, session_key: str | None = None, *, slot: StateSlot[dict[str, Any]] | None = None) -> None:
        super().__init__(session_key)
        self._slot = slot
        #: Set by cycle_key() and flush(): the session must get a new identity (server-stored: a new id).
        self.rotated = False
        if slot is not None:
            self._session_cache = dict(slot.state or {})

    @property
    def slot(self) -> StateSlot[dict[str, Any]] | None:
        """The request's slot when managed by :class:`SessionMiddleware` (``slot.error``: why nothing loaded)."""
        return self._slot

    def _binding(self) -> Binding[dict[str, Any]]:
        return engine_binding()

    def _begin(self) -> StateSlot[dict[str, Any]]:
        binding = self._binding()
        key = self.session_key
        return drive.begin_sync(binding, (f"{binding.handler.name}={key}",) if key else ())

    def load(self) -> dict[str, Any]:
        """The session dict: the slot's, or the one the cookie value ``session_key`` holds (``{}`` if invalid)."""
        if self._slot is not None:
            return dict(self._slot.state or {})
        slot = self._begin()
        if slot.state is None:
            self.create()
            return {}
        return dict(slot.state)

    def save(self, must_create: bool = False) -> None:
        """Under the middleware: mark modified. On its own: ``session_key`` becomes the cookie value of the data.

        Raises:
            StateEncodeError: the data holds a value MessagePack cannot carry.
            CookieTooLarge: the data does not fit in the handler's cookie.
        """
        self.modified = True
        if self._slot is not None:
            return
        binding = self._binding()
        slot = self._begin()
        slot.state = dict(self._get_session(no_load=must_create))
        token = _token_of(binding, drive.finish_sync(binding, slot))
        if token is not None:
            self._session_key = token or None

    def exists(self, session_key: str | None) -> bool:
        """Whether a server-stored session with this key is in the store; always ``False`` client-stored."""
        binding = self._binding()
        if not session_key or not binding.plans:
            return False
        slot = drive.begin_sync(binding, (f"{binding.handler.name}={session_key}",))
        return slot.error is None and slot.state is not None

    def create(self) -> None:
        """Start a new, empty session (written when it gets data)."""
        self.modified = True

    def delete(self, session_key: str | None = None) -> None:
        """Forget the data; the response deletes the cookie (server-stored: deletes the row)."""
        self._session_key = None
        self._session_cache = {}
        self.modified = True
        self.rotated = True

    def cycle_key(self) -> None:
        """Keep the data under a new identity (``login()`` calls it against session fixation)."""
        self.modified = True
        self.rotated = True

    async def aload(self) -> dict[str, Any]:
        return self.load()

    async def asave(self, must_create: bool = False) -> None:
        self.save(must_create)

    async def aexists(self, session_key: str | None) -> bool:
        return self.exists(session_key)

    async def acreate(self) -> None:
        self.create()

    async def adelete(self, session_key: str | None = None) -> None:
        self.delete(session_key)

    async def acycle_key(self) -> None:
        self.cycle_key()

    @classmethod
    def clear_expired(cls) -> None:
        """``manage.py clearsessions``: sweep expired server-stored sessions, 1,000 at a time.

        Client-stored: nothing to clear (expired cookies are refused when they arrive).
        """
        binding = engine_binding()
        if binding.plans:
            sessions = Sessions(binding.handler)
            while sessions.sweep(limit=1000) == 1000:
                pass

    @classmethod
    async def aclear_expired(cls) -> None:
        """Nothing to clear."""

    def commit(self, response: HttpResponseBase) -> None:
        """Save the data into the response (the middleware calls this): see :class:`SessionMiddleware`."""
        slot = self._slot
        if slot is None:
            return
        binding = self._binding()
        if slot.writable and not drive.failed(response.status_code):  # a 5xx commits nothing (see _finish)
            data = getattr(self, "_session_cache", None)
            new = dict(data) if data else None
            # Only what the view changed is assigned (Django marks every write modified; a nested change shows
            # in the value): an untouched session after an ambiguous or store_unavailable load keeps its cookie.
            if self.modified or new != slot.state:
                slot.state = new
            if self.rotated and data and binding.plans:  # cycle_key() (login): a new server-side id
                slot.rotate_id()
        token = _token_of(binding, _finish(binding, slot, response))
        if token is not None:
            self._session_key = token or None


class SessionMiddleware(_DjangoSessionMiddleware):  # type: ignore[misc]
    """Django's ``SessionMiddleware``, with ``request.session`` kept by clientstate.

    Use it in place of ``django.contrib.sessions.middleware.SessionMiddleware``
    (it is a subclass, so ``django.contrib.admin``'s checks accept it) with
    ``SESSION_ENGINE = "clientstate.integrations.django"``. The session is
    loaded before the view and saved after it, by value: written only when the
    dict changed, deleted when it became empty, nothing on a 5xx.

    Raises:
        ConfigurationError: ``SESSION_ENGINE`` is not clientstate's (Django's
            test client logs in through the engine, so they must agree).
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        MiddlewareMixin.__init__(self, get_response)
        if settings.SESSION_ENGINE != ENGINE:
            raise ConfigurationError(
                f"clientstate's SessionMiddleware needs SESSION_ENGINE = {ENGINE!r} (it is "
                f"{settings.SESSION_ENGINE!r}): Django's login helpers and test client go through the engine"
            )
        self.SessionStore = SessionStore

    def process_request(self, request: HttpRequest) -> None:
        binding = engine_binding()
        slot = drive.begin_sync(binding, _cookie_headers(request))
        binding.attach(request.META, slot)
        key = request.COOKIES.get(binding.handler.name) if slot.state is not None else None
        request.session = SessionStore(key, slot=slot)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        store = getattr(request, "session", None)
        if isinstance(store, SessionStore):
            store.commit(response)
        return response
