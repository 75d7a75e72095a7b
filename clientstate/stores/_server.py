"""What the stores on a database server (PostgreSQL, MariaDB/MySQL) share besides SQL: options, errors, sockets."""

from __future__ import annotations

import select
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clientstate._core.config import check_int
from clientstate._core.errors import ConfigurationError, StoreUnavailable

__all__ = ["INT_OPTIONS", "closed_by_server", "seconds", "size", "unavailable", "url_options"]

#: Store URL options that are whole numbers (the other numeric ones are seconds, possibly fractional).
INT_OPTIONS: Final = frozenset({"min_size", "max_size"})


def seconds(value: object, name: str, low: float, high: float) -> float:
    """``value`` as a float if it is a number of seconds from ``low`` to ``high``; else ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number of seconds from {low:g} to {high:g}, got {value!r}")
    return float(value)


def size(value: object, name: str) -> int:
    """``value`` if it is a whole number of connections from 0 to 10,000; else ConfigurationError."""
    return check_int(value, name, 0, 10_000, "connections")


def url_options(url: str, schemes: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Split a store URL into the URL without the store's own query options, and those options.

    ``names`` are the options the store takes (``table`` as a str; ``min_size``
    and ``max_size`` as ints; any other as float seconds); the other query
    parameters stay in the URL, for the driver. The scheme becomes ``schemes[0]``.

    Raises:
        ConfigurationError: the scheme is not one of ``schemes``, or a numeric option is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise ConfigurationError(f"this store's URL starts with {' or '.join(s + '://' for s in schemes)}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options: dict[str, Any] = {}
    for key, value in query:
        if key not in names:
            continue
        try:
            options[key] = value if key == "table" else int(value) if key in INT_OPTIONS else float(value)
        except ValueError:
            raise ConfigurationError(f"store URL option {key}={value!r} is not a number") from None
    rest = urlencode([(key, value) for key, value in query if key not in names])
    return urlunsplit((schemes[0], parts.netloc, parts.path, rest, "")), options


def unavailable(where: str, exc: BaseException, password: str) -> StoreUnavailable:
    """The StoreUnavailable for driver error ``exc`` at ``where`` (``"PostgreSQL host:port/db"``), password masked.

    The driver's error is kept as the cause only when its text does not contain the password.
    """
    text = f"{type(exc).__name__}: {exc}"
    leaked = bool(password) and password in text
    error = StoreUnavailable(f"{where}: {text.replace(password, '***') if leaked else text}")
    error.__cause__ = None if leaked else exc
    error.__suppress_context__ = True
    return error


def closed_by_server(fd: int) -> bool:
    """Whether the idle database connection on socket ``fd`` has been closed by its server.

    An idle connection has nothing to read unless the server said goodbye (an
    error packet, end of file: a restart, an idle timeout, a killed session),
    so this polls the socket without waiting — no round trip. The pools check
    it before handing out a connection, so the first requests after a database
    restart do not fail on dead sockets. ``True`` also for an invalid ``fd``.
    """
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True
