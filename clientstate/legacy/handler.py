"""A handler that also accepts legacy session cookies, for a transition period.

:func:`accept_legacy` wraps a clientstate handler (``client_stored``) and
implements the same :class:`~clientstate.Handler` protocol, so every adapter
and integration takes it where it takes the handler itself. Per request:

1. The wrapped handler loads first. If the request carries its cookie, that
   result stands (a state, or a load error): once a clientstate cookie
   exists, no legacy cookie is read again. The one exception is a legacy
   cookie of the *same name*, which the wrapped handler sees as
   ``malformed`` (or ``too_large``): that value is tried as a legacy cookie.
2. Otherwise each :class:`~clientstate.legacy.LegacyCookie` present is
   verified with its framework's own code at the binding's ``now``. A valid
   one is given to its ``convert`` function; the result is checked as a value
   of the state's type (encoded, then decoded, so the application sees the
   state's real type) and loads as the request's state, *as if newly
   assigned*: the response always writes the clientstate cookie (even when
   the application changes nothing) and deletes the legacy cookie when its
   name differs.
3. A legacy cookie that fails (forged, wrong secret, expired by its own
   rules, not that format) loads no state; ``slot.error`` has the stable
   kind (``authentication_failed``, ``expired``, ``issued_in_future``,
   ``malformed``, ``state_decode``, with a detail starting "legacy <format>
   cookie") and the response deletes it, as for any invalid cookie. A
   ``convert`` that raises, or returns a value that is not a valid state, is
   ``migration_failed``; one that returns ``None`` (nothing worth keeping) is
   ``rejected``. Either way the legacy cookie is deleted.

Any response that writes or deletes the clientstate cookie while a legacy
cookie of another name is present also deletes that legacy cookie.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, TypeVar

from clientstate._core.config import check_type
from clientstate._core.cookies import RequestCookies
from clientstate._core.errors import AMBIGUOUS_COOKIE, ConfigurationError, ErrorKind, LoadError, StateEncodeError
from clientstate._core.handler import Change, ChangeKind, Handler, Loaded, PlanHandler
from clientstate._core.state import State
from clientstate._core.value import Immutable
from clientstate.legacy.formats import LegacyCookie

__all__ = ["LegacyHandler", "LegacyLoaded", "accept_legacy"]

T = TypeVar("T")

# The wrapped handler's errors that mean "this value is not a clientstate token at all".
_NOT_OURS: Final = frozenset({ErrorKind.MALFORMED, ErrorKind.TOO_LARGE})


class LegacyLoaded(Loaded[T], frozen=True):
    """A :class:`~clientstate.Loaded` that also records the legacy cookies the request carried.

    Attributes:
        legacy: names of the legacy cookies of *other* names present in the
            request; the next save deletes them.
        inner_present: whether the wrapped handler's own cookie was present
            (a deletion of the state then also deletes it).
    """

    legacy: tuple[str, ...] = ()
    inner_present: bool = False


class LegacyHandler(Immutable):
    """A handler that loads legacy cookies when its wrapped handler finds none. Build it with :func:`accept_legacy`.

    Attributes:
        inner: the wrapped clientstate handler.
        sources: the :class:`~clientstate.legacy.LegacyCookie` formats accepted, tried in order.
        name: the wrapped handler's cookie name.
    """

    __slots__ = ("_by_name", "inner", "name", "sources")

    inner: Handler | PlanHandler
    sources: tuple[LegacyCookie, ...]
    name: str
    _by_name: dict[str, LegacyCookie]

    def __init__(self, inner: Handler | PlanHandler, sources: tuple[LegacyCookie, ...]) -> None:
        self._set(inner=inner, sources=sources, name=inner.name, _by_name={s.name: s for s in sources})

    def prepare(self, descriptor: State[Any]) -> None:
        """Prepare the wrapped handler for ``descriptor``; see :meth:`Handler.prepare`."""
        self.inner.prepare(descriptor)

    def claims(self, cookie_name: str) -> bool:
        """Whether ``cookie_name`` is the wrapped handler's cookie or one of the legacy cookies."""
        return cookie_name in self._by_name or self.inner.claims(cookie_name)

    def check_size(self, descriptor: State[Any], payload: bytes) -> None:
        """The wrapped handler's size check; see :meth:`Handler.check_size`."""
        self.inner.check_size(descriptor, payload)

    def load(self, descriptor: State[T], cookies: RequestCookies, now: float) -> Loaded[T]:
        """Load the state, falling back to the legacy cookies (see the module docstring). Never raises."""
        inner = self.inner
        assert isinstance(inner, Handler)
        return self._resolve(inner.load(descriptor, cookies, now), descriptor, cookies, now)

    def _resolve(self, loaded: Loaded[T], descriptor: State[T], cookies: RequestCookies, now: float) -> Loaded[T]:
        """What the request loads, given what the wrapped handler loaded (the rules of the module docstring)."""
        same_name_legacy = loaded.error is not None and loaded.error.kind in _NOT_OURS and self.name in self._by_name
        others = tuple(s.name for s in self.sources if s.name != self.name and cookies.get_values(s.name))
        if loaded.present and not same_name_legacy:
            if not others:
                return loaded
            return LegacyLoaded(**_fields(loaded), legacy=others, inner_present=True)
        first_error: LoadError | None = loaded.error
        for source in self.sources:
            values = cookies.get_values(source.name)
            if not values:
                continue
            if len(values) > 1:
                result: Any = AMBIGUOUS_COOKIE
            else:
                result = self._convert(descriptor, source, values[0], now)
            if not isinstance(result, LoadError):
                return LegacyLoaded(result, None, True, legacy=others, inner_present=loaded.present)
            if first_error is None or (first_error.kind in _NOT_OURS and source.name == self.name):
                first_error = result
        if first_error is None:
            return loaded
        return LegacyLoaded(None, first_error, True, legacy=others, inner_present=loaded.present)

    @staticmethod
    def _convert(descriptor: State[T], source: LegacyCookie, value: str, now: float) -> T | LoadError:
        opened = source.open(value, now)
        if isinstance(opened, LoadError):
            return opened
        label = f"legacy {source.format} cookie"
        try:
            converted: Any = opened if source.convert is None else source.convert(opened)
        except Exception as exc:  # the application's function: any failure is a load error
            return LoadError(ErrorKind.MIGRATION_FAILED, f"{label}: convert raised {type(exc).__name__}: {exc}")
        if converted is None:
            return LoadError(ErrorKind.REJECTED, f"{label}: convert kept nothing of it")
        try:
            payload = descriptor.encode(converted)
        except StateEncodeError as exc:
            return LoadError(ErrorKind.MIGRATION_FAILED, f"{label}: convert returned an invalid state: {exc}")
        typed = descriptor.decode(payload)
        if isinstance(typed, LoadError):  # encode() already decoded it once; kept for safety
            return LoadError(ErrorKind.MIGRATION_FAILED, f"{label}: {typed.detail}")
        return typed

    def save(self, descriptor: State[T], loaded: Loaded[T], payload: bytes | None, now: float) -> list[str]:
        """The wrapped handler's ``Set-Cookie`` values, plus deletions of the legacy cookies present.

        Raises:
            CookieTooLarge: as the wrapped handler's :meth:`Handler.save`.
        """
        inner = self.inner
        assert isinstance(inner, Handler)
        lines = [] if self._skip_inner(loaded, payload is None) else inner.save(descriptor, loaded, payload, now)
        return lines + self._legacy_deletions(loaded)

    def _skip_inner(self, loaded: Loaded[Any], deleting: bool) -> bool:
        """A deletion with nothing of ours to delete: only a legacy cookie of another name was there."""
        return (
            isinstance(loaded, LegacyLoaded) and deleting and not loaded.inner_present
            and self.name not in self._by_name
        )

    def _legacy_deletions(self, loaded: Loaded[Any]) -> list[str]:
        """The ``Set-Cookie`` lines deleting the legacy cookies of other names the request carried."""
        if not isinstance(loaded, LegacyLoaded):
            return []
        return [self._by_name[name].delete_line() for name in loaded.legacy]

    def __repr__(self) -> str:
        return f"LegacyHandler({self.inner!r}, {', '.join(map(repr, self.sources))})"


class LegacyPlanHandler(LegacyHandler):
    """:class:`LegacyHandler` around a store-backed handler (``server_stored``): the same rules, as plans.

    A valid legacy cookie loads as a new state, so the first response creates
    a server-side session (and its cookie) holding it.
    """

    __slots__ = ()

    def check_state(self, descriptor: State[Any], value: Any) -> None:
        """The wrapped handler's check of an assigned state; see :meth:`PlanHandler.check_state`."""
        inner = self.inner
        assert isinstance(inner, PlanHandler)
        inner.check_state(descriptor, value)

    @property
    def store(self) -> Any:
        """The wrapped handler's store."""
        return getattr(self.inner, "store")  # noqa: B009 - the attribute of the PlanHandler protocol

    def load_plan(self, descriptor: State[T], cookies: RequestCookies, now: float) -> Generator[Any, Any, Loaded[T]]:
        """The wrapped handler's load plan, then the legacy fallback. Never raises."""
        inner = self.inner
        assert isinstance(inner, PlanHandler)
        loaded = yield from inner.load_plan(descriptor, cookies, now)
        return self._resolve(loaded, descriptor, cookies, now)

    def save_plan(
        self, descriptor: State[T], loaded: Loaded[T], change: Change, now: float
    ) -> Generator[Any, Any, list[str]]:
        """The wrapped handler's save plan, plus deletions of the legacy cookies present."""
        inner = self.inner
        assert isinstance(inner, PlanHandler)
        lines: list[str] = []
        if not self._skip_inner(loaded, change.kind is ChangeKind.DELETE):
            lines = yield from inner.save_plan(descriptor, loaded, change, now)
        return lines + self._legacy_deletions(loaded)


def _fields(loaded: Loaded[Any]) -> dict[str, Any]:
    return {name: getattr(loaded, name) for name in loaded.__struct_fields__}


def accept_legacy(handler: Handler | PlanHandler, *legacy: LegacyCookie) -> LegacyHandler:
    """Wrap ``handler`` so that it also accepts the ``legacy`` session cookies (see the module docstring).

    Args:
        handler: the clientstate handler, :func:`~clientstate.client_stored` or
            :func:`~clientstate.server_stored` (a valid legacy cookie then becomes
            a new server-side session).
        legacy: one or more formats built with :func:`~clientstate.legacy.flask_cookie`,
            :func:`~clientstate.legacy.starlette_cookie` or
            :func:`~clientstate.legacy.django_cookie`, tried in order.

    Returns:
        a handler to pass to ``setup()`` or an integration in place of ``handler``.

    Raises:
        ConfigurationError: ``handler`` is not a handler, no legacy format or
            something else is given, two formats share a cookie name, a
            legacy cookie name is one of the handler's chunk cookies, or a
            legacy cookie has the handler's own name but another Path or
            Domain (the browser would then keep both cookies, and every
            request would carry two values for one name).
    """
    if not isinstance(handler, PlanHandler):
        check_type(handler, Handler, "the handler", "build one with client_stored(...) or server_stored(...)")
    if not legacy:
        raise ConfigurationError("accept_legacy() needs at least one legacy cookie format (flask_cookie(...), ...)")
    seen: set[str] = set()
    for source in legacy:
        check_type(source, LegacyCookie, "a legacy cookie format", "build one with flask_cookie(...) and the like")
        if source.name in seen:
            raise ConfigurationError(f"two legacy cookie formats read the cookie {source.name!r}; give each its own")
        seen.add(source.name)
        if source.name == handler.name:
            attributes = getattr(handler, "attributes", None)
            path = getattr(attributes, "path", "/")
            domain = getattr(attributes, "domain", None)
            if (path, domain) != (source.path, source.domain):
                raise ConfigurationError(
                    f"the legacy cookie {source.name!r} (Path={source.path}, Domain={source.domain}) has the "
                    f"handler's name but another Path or Domain (Path={path}, Domain={domain}): the new cookie "
                    f"would not replace it and browsers would send both. Give the handler another cookie name "
                    f"(the legacy cookie is then deleted when replaced)"
                )
        elif handler.claims(source.name):
            raise ConfigurationError(
                f"the legacy cookie name {source.name!r} is one of the handler's own (chunk) cookies"
            )
    if isinstance(handler, PlanHandler):
        return LegacyPlanHandler(handler, legacy)
    return LegacyHandler(handler, legacy)
