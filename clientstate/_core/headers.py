"""The response headers a binding adds, from one scan of the application's own.

Every adapter (WSGI, ASGI, the service form) calls :func:`headers_to_add`
with the application's response headers — ``str`` pairs in WSGI and services,
``bytes`` pairs in ASGI — and appends what it returns:

* ``Vary: Cookie`` unless the response already varies on ``Cookie`` or ``*``
  (every response that passed through a binding depends on the cookie);
* one ``Set-Cookie`` per value :meth:`Binding.finish` returned;
* ``Cache-Control: private`` when there were such values and the
  application set no ``Cache-Control`` (RFC 9111 §5.2.2.7: shared caches must
  not store a response that sets a session cookie).

The application's own headers are never changed. An application
``Set-Cookie`` for a cookie the handler owns is refused: the browser would
keep whichever line comes last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from clientstate._core.cookies import set_cookie_name
from clientstate._core.errors import ConfigurationError

if TYPE_CHECKING:
    from clientstate._core.binding import Binding

__all__ = ["NOTHING", "VARY_COOKIE", "VARY_ONLY", "headers_to_add", "vary_covers_cookie"]

VARY_COOKIE: Final = ("Vary", "Cookie")
_CACHE_PRIVATE: Final = ("Cache-Control", "private")
#: What most responses get: only ``Vary: Cookie`` (shared; callers copy, never mutate).
VARY_ONLY: Final[list[tuple[str, str]]] = [VARY_COOKIE]
#: Nothing to add (shared, never mutated).
NOTHING: Final[list[tuple[str, str]]] = []
_VARY, _CACHE_CONTROL, _SET_COOKIE = 1, 2, 3
_LENGTHS: Final = frozenset({4, 10, 13})  # len("vary"), len("set-cookie"), len("cache-control")
# Header names as WSGI (any case, lowered here) and ASGI (lower-case bytes) give them.
_KINDS: Final[dict[str | bytes, int]] = {
    "vary": _VARY,
    b"vary": _VARY,
    "cache-control": _CACHE_CONTROL,
    b"cache-control": _CACHE_CONTROL,
    "set-cookie": _SET_COOKIE,
    b"set-cookie": _SET_COOKIE,
}


def vary_covers_cookie(vary_values: Iterable[str]) -> bool:
    """Whether ``Vary`` field values already name ``Cookie`` (or ``*``), case-insensitively."""
    for value in vary_values:
        for item in value.split(","):
            token = item.strip().lower()
            if token in ("cookie", "*"):
                return True
    return False


def headers_to_add(
    headers: Iterable[tuple[str | bytes, str | bytes]],
    set_cookies: list[str],
    binding: Binding[Any],
    *,
    check_names: bool = True,
) -> list[tuple[str, str]]:
    """The ``(name, value)`` headers to append to a response, in order (see the module docstring).

    Args:
        headers: the application's response headers, ``str`` or ``bytes`` pairs.
        set_cookies: what :meth:`Binding.finish` returned.
        binding: the binding whose handler owns the cookie.
        check_names: refuse application ``Set-Cookie`` lines for the
            handler's cookies (off only for error pages sent with ``exc_info``,
            so the original error is what the server reports).

    Returns:
        a list the caller must not mutate (the common answers are shared).

    Raises:
        ConfigurationError: the application set a cookie the handler owns.
    """
    vary: list[str] = []
    has_cache_control = False
    for name, value in headers:
        if len(name) not in _LENGTHS:  # most headers: no lower-casing, no look-up
            continue
        kind = _KINDS.get(name.lower())
        if kind is None:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if kind == _VARY:
            vary.append(text)
        elif kind == _CACHE_CONTROL:
            has_cache_control = True
        elif check_names:
            cookie = set_cookie_name(text)
            if binding.handler.claims(cookie):
                raise ConfigurationError(
                    f"the application sent its own Set-Cookie for {cookie!r}, the cookie clientstate's "
                    f"handler for state {binding.descriptor.name!r} owns; a browser keeps whichever line "
                    f"comes last. Change the state through slot.state instead, or give the other cookie "
                    f"another name"
                )
    if not set_cookies:
        return VARY_ONLY if not vary or not vary_covers_cookie(vary) else NOTHING
    extra = [VARY_COOKIE] if not vary or not vary_covers_cookie(vary) else []
    extra.extend([("Set-Cookie", value) for value in set_cookies])
    if not has_cache_control:
        extra.append(_CACHE_PRIVATE)
    return extra
