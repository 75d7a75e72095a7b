"""Test clients that keep clientstate cookies like a browser and can read, set and assert the state.

:class:`StateClient` wraps a framework's own test client:

* Starlette's ``TestClient`` (or any ``httpx``/``httpx2`` client) for ASGI
  apps: build one with :func:`asgi_client`;
* Werkzeug's ``Client`` or Flask's ``app.test_client()`` for WSGI apps:
  :func:`wsgi_client`, or ``StateClient(app.test_client(), ...)``.

The framework client keeps the cookies; :class:`StateClient` adds what a
test of client state needs::

    client = asgi_client(app, ACCOUNT, handler, clock)
    client.set_state(Account(user_id=1, name="ada"))     # mint a valid cookie
    client.post("/rename", json={"name": "grace"})
    client.assert_set()                                  # the response wrote the cookie...
    assert client.state.name == "grace"                  # ...and it holds this
    client.get("/")
    client.assert_unchanged()

HTTPS by default: clientstate's cookies are ``Secure`` unless configured
otherwise, and a browser neither sends nor (from ``http://``) accepts them
over plain HTTP. :func:`asgi_client` therefore uses
``https://testserver`` and :func:`wsgi_client` ``https://localhost``; a
``StateClient`` around an ``httpx`` client on ``http://`` with ``Secure``
cookies is refused with a message saying so.

Like a browser, the client drops its state cookie once the cookie's
``Max-Age`` has passed on the test's clock (a :class:`FrozenClock`), and only
then: the framework client's own jar is not told the ``Max-Age``, so the wall
clock never expires a cookie. (``client_stored`` sends a ``Max-Age`` with every
cookie: the token's remaining lifetime, 30 days by default.) With a
chunked handler (``client_stored(..., chunked=True)``) the state spans the
cookies ``name``, ``name.1``, ...; :attr:`StateClient.cookies` lists them and
every read, write and assertion covers them all.
"""

from __future__ import annotations

import enum
import importlib
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from clientstate._core.binding import Clock
from clientstate._core.chunks import chunk_name
from clientstate._core.cookies import CookieAttributes, RequestCookies
from clientstate._core.errors import ConfigurationError
from clientstate._core.handler import Handler, Loaded
from clientstate._core.state import State

__all__ = ["CookieChange", "StateClient", "asgi_client", "cookie_header", "parse_set_cookie", "wsgi_client"]

T = TypeVar("T")

_MISSING: Any = object()


class CookieChange(enum.Enum):
    """What a response did to the state cookie."""

    #: The response wrote the cookie (a new or re-issued token).
    SET = "set"
    #: The response carried no ``Set-Cookie`` for it.
    UNCHANGED = "unchanged"
    #: The response deleted it (empty value, ``Max-Age=0``).
    DELETED = "deleted"


def parse_set_cookie(line: str) -> tuple[str, str, dict[str, str]]:
    """Split a ``Set-Cookie`` value into ``(name, value, attributes)``.

    Attribute names are lower-cased; flags (``Secure``) map to ``""``.
    Never raises.
    """
    pair, _, rest = line.partition(";")
    name, _, value = pair.partition("=")
    attributes: dict[str, str] = {}
    for item in rest.split(";"):
        key, _, val = item.partition("=")
        if key.strip():
            attributes[key.strip().lower()] = val.strip()
    return name.strip(), value.strip(), attributes


def _is_deletion(value: str, attributes: dict[str, str]) -> bool:
    return not value or attributes.get("max-age") == "0"


def cookie_header(set_cookies: Iterable[str]) -> str:
    """The ``Cookie`` header a browser sends back after these ``Set-Cookie`` values (deletions dropped)."""
    pairs = []
    for line in set_cookies:
        name, value, attributes = parse_set_cookie(line)
        if not _is_deletion(value, attributes):
            pairs.append(f"{name}={value}")
    return "; ".join(pairs)


def _timeless(line: str) -> str:
    """A ``Set-Cookie`` value that stores a cookie, without ``Max-Age`` and ``Expires``: the client expires it."""
    name, value, attributes = parse_set_cookie(line)
    if _is_deletion(value, attributes):
        return line
    kept = [key if not val else f"{key}={val}" for key, val in attributes.items() if key not in ("max-age", "expires")]
    return "; ".join([f"{name}={value}", *kept])


class _Jar(Protocol):
    """What StateClient needs from a framework test client."""

    def values(self, name: str) -> list[str]: ...

    def names(self, candidates: list[str]) -> list[str]: ...

    def store(self, lines: list[str]) -> None: ...

    def drop(self, name: str) -> None: ...

    def send(self, method: str, path: str, kwargs: dict[str, Any]) -> Any: ...

    def set_cookie_lines(self, response: Any) -> list[str]: ...

    def status(self, response: Any) -> int: ...


class _HttpxJar:
    """Starlette's TestClient and other httpx (or httpx2) clients."""

    def __init__(self, client: Any, path: str) -> None:
        self.client = client
        self.module = importlib.import_module(type(client.cookies).__module__.partition(".")[0])
        self.url = str(client.base_url.join(path))

    def values(self, name: str) -> list[str]:
        return [c.value for c in self.client.cookies.jar if c.name == name and c.value is not None]

    def names(self, candidates: list[str]) -> list[str]:
        held = {c.name for c in self.client.cookies.jar}
        return [name for name in candidates if name in held]

    def store(self, lines: list[str]) -> None:
        request = self.module.Request("GET", self.url)
        headers = [("set-cookie", _timeless(line)) for line in lines]
        response = self.module.Response(200, headers=headers, request=request)
        self.client.cookies.extract_cookies(response)

    def drop(self, name: str) -> None:
        jar = self.client.cookies.jar
        for cookie in [c for c in jar if c.name == name]:
            jar.clear(cookie.domain, cookie.path, cookie.name)

    def send(self, method: str, path: str, kwargs: dict[str, Any]) -> Any:
        return self.client.request(method, path, **kwargs)

    def set_cookie_lines(self, response: Any) -> list[str]:
        return list(response.headers.get_list("set-cookie"))

    def status(self, response: Any) -> int:
        return int(response.status_code)


class _WerkzeugJar:
    """Werkzeug's test Client and Flask's FlaskClient."""

    def __init__(self, client: Any, base_url: str, attributes: CookieAttributes) -> None:
        self.client = client
        self.base_url = base_url
        self.domain = attributes.domain or urlsplit(base_url).hostname or "localhost"
        self.path = attributes.path

    def values(self, name: str) -> list[str]:
        cookie = self.client.get_cookie(name, domain=self.domain, path=self.path)
        return [] if cookie is None else [cookie.value]

    def names(self, candidates: list[str]) -> list[str]:
        return [name for name in candidates if self.values(name)]

    def store(self, lines: list[str]) -> None:
        for line in lines:
            name, value, attributes = parse_set_cookie(line)
            path = attributes.get("path", self.path)
            if _is_deletion(value, attributes):
                self.client.delete_cookie(name, domain=self.domain, path=path)
                continue
            with warnings.catch_warnings():
                # Werkzeug re-renders the cookie and warns past 4093 bytes of header *with* attributes;
                # browsers limit name plus value (4096), which clientstate already enforces.
                warnings.simplefilter("ignore", UserWarning)
                self.client.set_cookie(name, value, domain=self.domain, path=path)

    def drop(self, name: str) -> None:
        self.client.delete_cookie(name, domain=self.domain, path=self.path)

    def send(self, method: str, path: str, kwargs: dict[str, Any]) -> Any:
        kwargs.setdefault("base_url", self.base_url)
        return self.client.open(path, method=method, **kwargs)

    def set_cookie_lines(self, response: Any) -> list[str]:
        return list(response.headers.getlist("Set-Cookie"))

    def status(self, response: Any) -> int:
        return int(response.status_code)


class StateClient(Generic[T]):
    """A framework test client plus the state it holds in its cookie.

    Args:
        client: Starlette's ``TestClient`` (any ``httpx``/``httpx2``
            ``Client``), Werkzeug's ``Client``, or Flask's ``test_client()``.
        state: the :class:`~clientstate.State` descriptor the app uses.
        handler: the app's handler (the same object, or one with the same
            keys, cookie name and settings).
        clock: the app's clock (seconds since the epoch), typically a
            :class:`~clientstate.testing.FrozenClock`; default ``time.time``.
        cookie_name: the cookie that holds the state; default ``handler.name``.
        base_url: for Werkzeug/Flask clients, the URL requests go to
            (default ``"https://localhost"``); httpx clients use their own.

    Raises:
        TypeError: ``client`` is not a supported test client, or
            ``cookie_name`` is missing for a handler without ``name``.
        ConfigurationError: an httpx client on ``http://`` while the
            handler's cookies are ``Secure`` (they would never be sent).

    Attributes:
        client: the framework client (use it for anything not wrapped here).
        descriptor: the ``State``.
        handler, clock, cookie_name: as given.
        response: the last response (the framework's object), or ``None``.
        change: what the last response did to the cookie, or ``None``
            before the first request.
    """

    def __init__(
        self,
        client: Any,
        state: State[T],
        handler: Handler,
        clock: Clock | None = None,
        *,
        cookie_name: str | None = None,
        base_url: str = "https://localhost",
    ) -> None:
        if not isinstance(state, State):
            raise TypeError(f"state must be a clientstate State, got {type(state).__name__}")
        name = cookie_name if cookie_name is not None else getattr(handler, "name", None)
        if not isinstance(name, str):
            raise TypeError("pass cookie_name=...: the handler has no 'name' attribute")
        attributes = getattr(handler, "attributes", None)
        if not isinstance(attributes, CookieAttributes):
            attributes = CookieAttributes()
        self.client = client
        self.descriptor = state
        self.handler = handler
        self.clock: Clock = time.time if clock is None else clock
        self.cookie_name = name
        # A chunked ClientStored handler spreads one token over name, name.1, name.2, ...
        chunks = getattr(handler, "max_chunks", 1) if getattr(handler, "chunked", False) else 1
        self._names = [chunk_name(name, i) for i in range(chunks)]
        self._attributes = attributes
        self.response: Any = None
        self.change: CookieChange | None = None
        self._set_cookies: list[str] = []
        self._request_line = ""
        self._expires_at: float | None = None
        cookies = getattr(client, "cookies", None)
        if cookies is not None and hasattr(cookies, "jar") and hasattr(cookies, "extract_cookies"):
            self._check_scheme(str(client.base_url), "base_url='https://testserver' (asgi_client does)")
            self._jar: _Jar = _HttpxJar(client, attributes.path)
        elif all(hasattr(client, a) for a in ("get_cookie", "set_cookie", "delete_cookie", "open")):
            self._check_scheme(base_url, "base_url='https://localhost' (the default)")
            self._jar = _WerkzeugJar(client, base_url, attributes)
        else:
            raise TypeError(
                f"unsupported test client {type(client).__name__}: use Starlette's TestClient (httpx), "
                f"Werkzeug's Client or Flask's test_client()"
            )

    def _check_scheme(self, base_url: str, advice: str) -> None:
        if self._attributes.secure and base_url.startswith("http://"):
            raise ConfigurationError(
                f"the test client's base URL is {base_url} but cookie {self.cookie_name!r} is Secure, so a "
                f"browser would never send it back over plain HTTP; use {advice} or CookieAttributes(secure=False)"
            )

    # --- requests ---------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request through the framework client and record what it did to the cookie.

        ``kwargs`` go to the framework client unchanged (``json=``,
        ``headers=``, ``data=``...). Returns the framework's response.
        """
        self._expire()
        response = self._jar.send(method.upper(), path, dict(kwargs))
        self.response = response
        self._request_line = f"{method.upper()} {path} -> {self._jar.status(response)}"
        lines = self._jar.set_cookie_lines(response)
        self._set_cookies = [line for line in lines if parse_set_cookie(line)[0] in self._names]
        # The framework client stored them with its own (wall-clock) expiry; store them again without.
        self._jar.store(self._set_cookies)
        primary = [line for line in lines if parse_set_cookie(line)[0] == self.cookie_name]
        if not primary:
            self.change = CookieChange.UNCHANGED
        else:
            _, value, attributes = parse_set_cookie(primary[-1])
            self.change = CookieChange.DELETED if _is_deletion(value, attributes) else CookieChange.SET
            self._note_expiry(value, attributes)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        """``request("GET", path, **kwargs)``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """``request("POST", path, **kwargs)``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        """``request("PUT", path, **kwargs)``."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        """``request("PATCH", path, **kwargs)``."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """``request("DELETE", path, **kwargs)``."""
        return self.request("DELETE", path, **kwargs)

    @property
    def set_cookies(self) -> list[str]:
        """The last response's ``Set-Cookie`` values for the state cookie (and its chunks, if chunked)."""
        return list(self._set_cookies)

    # --- the state held ---------------------------------------------------------------

    @property
    def cookie(self) -> str | None:
        """The state cookie's value the client holds, or ``None``.

        Raises:
            AssertionError: it holds more than one cookie of that name.
        """
        self._expire()
        values = self._jar.values(self.cookie_name)
        if len(values) > 1:
            raise AssertionError(f"the client holds {len(values)} cookies named {self.cookie_name!r}")
        return values[0] if values else None

    @property
    def cookies(self) -> list[tuple[str, str]]:
        """Every state cookie the client holds, ``(name, value)``: one, or the chunks of a chunked handler."""
        self._expire()
        return [(name, value) for name in self._jar.names(self._names) for value in self._jar.values(name)]

    @property
    def loaded(self) -> Loaded[T]:
        """What the app would load from the client's cookies now (by the clock); never raises."""
        header = "; ".join(f"{name}={value}" for name, value in self.cookies)
        return self.handler.load(self.descriptor, RequestCookies([header] if header else []), self.clock())

    @property
    def state(self) -> T | None:
        """The state the client's cookie holds now, or ``None`` without a cookie.

        Raises:
            AssertionError: the cookie does not load (the message gives the error).
        """
        loaded = self.loaded
        if loaded.error is not None:
            raise AssertionError(f"the client's {self.cookie_name!r} cookie does not load: {loaded.error}")
        return loaded.state

    def set_state(self, value: T | None) -> None:
        """Give the client a valid cookie holding ``value`` (issued now), or none for ``None``.

        The cookie is minted with the handler, as the app would write it.

        Raises:
            StateEncodeError: ``value`` is not a valid value of the state's type.
            CookieTooLarge: it does not fit in a cookie.
        """
        self._drop_all()
        if value is None:
            return
        lines = self.handler.save(self.descriptor, Loaded.absent(), self.descriptor.encode(value), self.clock())
        self._jar.store(lines)
        for line in lines:
            name, cookie_value, attributes = parse_set_cookie(line)
            if name == self.cookie_name:
                self._note_expiry(cookie_value, attributes)

    def set_cookie(self, value: str) -> None:
        """Put a raw value in the client's state cookie: a forged, truncated, oversized or foreign token.

        The cookie gets the handler's ``Path`` and ``Domain`` and no ``Max-Age``;
        no size limit is applied, so a test can send what a hostile client would.
        """
        attributes = self._attributes
        line = f"{self.cookie_name}={value}; Path={attributes.path}"
        if attributes.domain is not None:
            line += f"; Domain={attributes.domain}"
        if attributes.secure:
            line += "; Secure"
        self._drop_all()
        self._jar.store([line])

    # --- assertions -------------------------------------------------------------------

    def _describe(self) -> str:
        if self.change is None:
            return "no request has been made yet"
        shown = [line if len(line) < 120 else line[:100] + "..." for line in self._set_cookies]
        return f"{self._request_line}; {self.change.value}; Set-Cookie for {self.cookie_name!r}: {shown}"

    def assert_set(self, expected: Any = _MISSING) -> T:
        """Assert the last response wrote the state cookie, and that it loads (as ``expected``, if given).

        Returns:
            the state the new cookie holds.

        Raises:
            AssertionError: not written, not loadable, or not equal to ``expected``.
        """
        if self.change is not CookieChange.SET:
            raise AssertionError(f"expected the response to set the cookie: {self._describe()}")
        state = self.state
        if state is None:
            raise AssertionError(f"the cookie was set but the client holds none: {self._describe()}")
        if expected is not _MISSING and not self.descriptor.equal(state, expected):
            raise AssertionError(f"the cookie holds {state!r}, expected {expected!r}")
        return state

    def assert_unchanged(self) -> None:
        """Assert the last response carried no ``Set-Cookie`` for the state cookie.

        Raises:
            AssertionError: it set or deleted it.
        """
        if self.change is not CookieChange.UNCHANGED:
            raise AssertionError(f"expected the response to leave the cookie alone: {self._describe()}")

    def assert_deleted(self) -> None:
        """Assert the last response deleted the state cookie, and the client no longer holds it.

        Raises:
            AssertionError: it did not, or a cookie of that name is still held.
        """
        if self.change is not CookieChange.DELETED:
            raise AssertionError(f"expected the response to delete the cookie: {self._describe()}")
        if self._jar.names(self._names):
            raise AssertionError(f"the response deleted the cookie but the client still holds one: {self._describe()}")

    # --- lifetime ---------------------------------------------------------------------

    def _note_expiry(self, value: str, attributes: dict[str, str]) -> None:
        if _is_deletion(value, attributes):
            self._expires_at = None
            return
        max_age = attributes.get("max-age")
        try:
            self._expires_at = None if max_age is None else self.clock() + int(max_age)
        except ValueError:
            self._expires_at = None

    def _expire(self) -> None:
        """Drop the cookie once its Max-Age has passed on the clock, as a browser does."""
        if self._expires_at is not None and self.clock() >= self._expires_at:
            self._drop_all()

    def _drop_all(self) -> None:
        for name in self._jar.names(self._names):
            self._jar.drop(name)
        self._expires_at = None

    def close(self) -> None:
        """Close the framework client if it can be closed."""
        close: Callable[[], object] | None = getattr(self.client, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> StateClient[T]:
        enter = getattr(self.client, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        exit_ = getattr(self.client, "__exit__", None)
        if exit_ is not None:
            exit_(*exc_info)

    def __repr__(self) -> str:
        return f"StateClient({type(self.client).__name__}, state={self.descriptor.name!r}, cookie={self.cookie_name!r})"


def _framework(module: str, name: str, caller: str, needs: str) -> Any:
    """``module.name``, imported now.

    Raises:
        ImportError: it is not installed; the message says what ``caller`` needs.
    """
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"{caller} needs {needs}: pip install {needs.lower()} ({exc})") from None


def asgi_client(
    app: Any, state: State[T], handler: Handler, clock: Clock | None = None, *, base_url: str = "https://testserver",
    **client_kwargs: Any,
) -> StateClient[T]:
    """A :class:`StateClient` around Starlette's ``TestClient`` for an ASGI app.

    Use it as a context manager to run the app's lifespan.

    Args:
        app: the ASGI app (wrapped with ``clientstate.asgi.setup``).
        state, handler, clock: as :class:`StateClient`.
        base_url: default ``https://testserver``, so ``Secure`` cookies work.
        client_kwargs: more ``TestClient`` arguments (``raise_server_exceptions``, ...).

    Raises:
        ImportError: Starlette (and httpx) are not installed.
    """
    test_client = _framework("starlette.testclient", "TestClient", "asgi_client", "Starlette httpx")
    return StateClient(test_client(app, base_url=base_url, **client_kwargs), state, handler, clock)


def wsgi_client(
    app: Any, state: State[T], handler: Handler, clock: Clock | None = None, *, base_url: str = "https://localhost",
) -> StateClient[T]:
    """A :class:`StateClient` around Werkzeug's test ``Client`` for a WSGI app.

    For a Flask app you may also wrap ``app.test_client()`` in a :class:`StateClient`.

    Args:
        app: the WSGI app (wrapped with ``clientstate.wsgi.setup``).
        state, handler, clock: as :class:`StateClient`; ``base_url``: where requests go.

    Raises:
        ImportError: Werkzeug is not installed.
    """
    client = _framework("werkzeug.test", "Client", "wsgi_client", "Werkzeug")
    return StateClient(client(app), state, handler, clock, base_url=base_url)
