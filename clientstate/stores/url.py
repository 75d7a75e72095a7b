"""``store_from_url``: a store from a URL, for configuration files, environment variables and the CLI."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

from clientstate._core.config import closest, did_you_mean
from clientstate._core.errors import ConfigurationError
from clientstate._core.store import Store
from clientstate.stores.memory import MemoryStore
from clientstate.stores.sqlite import SQLiteStore

__all__ = ["store_from_url"]

# Schemes served by optional stores: (module, class, the extra that installs its client).
_OPTIONAL: Final = {
    "redis": ("clientstate.stores.redis", "RedisStore", "redis"),
    "rediss": ("clientstate.stores.redis", "RedisStore", "redis"),
    "redis+cluster": ("clientstate.stores.redis", "RedisStore", "redis"),
    "unix": ("clientstate.stores.redis", "RedisStore", "redis"),
    "postgresql": ("clientstate.stores.postgres", "PostgresStore", "postgres"),
    "postgres": ("clientstate.stores.postgres", "PostgresStore", "postgres"),
    "mysql": ("clientstate.stores.mysql", "MySQLStore", "mysql"),
    "mariadb": ("clientstate.stores.mysql", "MySQLStore", "mysql"),
}


#: Query parameters of the stores built here: memory takes none; SQLite its constructor's keywords.
_SQLITE_OPTIONS: Final = ("table", "timeout")
#: Redis URL parameters clientstate reads itself (the rest go to the redis library).
_REDIS_OWN: Final = ("prefix", "hash_tag", "timeout")


def _check_query(query: str, scheme: str, accepted: Iterable[str]) -> dict[str, str]:
    """The parameters of a URL's ``query``; ConfigurationError naming the first one not in ``accepted``."""
    known = sorted(set(accepted))
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in known:
            takes = f"it takes {', '.join(known)}" if known else "it takes none"
            raise ConfigurationError(
                f"unknown query parameter {name!r} in a {scheme}:// store URL{did_you_mean(name, known)}; {takes}"
            )
        params[name] = value
    return params


_SCHEMES: Final = ("memory", "sqlite", *sorted(_OPTIONAL))
#: What each scheme looks like, for the message about a URL without one.
_SHAPES: Final = {"memory": "memory://", "sqlite": "sqlite:///file.db", "unix": "unix:///path/to/redis.sock"}


def _no_scheme(url: str) -> str:
    """The message for a URL without a scheme: a suggestion when it is (close to) a scheme's name."""
    word = url.strip().lower().rstrip(":/")
    close = closest(word, _SCHEMES) if word else None
    if close is not None:
        shape = _SHAPES.get(close, f"{close}://host:port")
        return f"a store URL starts with a scheme and '://' (did you mean {shape!r}?)"
    # The text itself is not echoed: it may be a connection string holding a password.
    return f"a store URL starts with a scheme and '://', got none (known: {', '.join(_SCHEMES)})"


def _check_repeats(query: str, scheme: str) -> None:
    """Refuse a query parameter given twice: stores and client libraries disagree on which one wins."""
    seen: set[str] = set()
    for name, _ in parse_qsl(query, keep_blank_values=True):
        if name in seen:  # the name only: a value may be a password
            raise ConfigurationError(
                f"query parameter {name!r} is given twice in a {scheme}:// store URL; give it once"
            )
        seen.add(name)


def _check_redis_target(parts: SplitResult, scheme: str) -> None:
    """Refuse a Redis URL whose host or socket the client library would fill in or drop silently."""
    if scheme == "unix":
        if parts.hostname:  # unix://tmp/r.sock: the client would connect to /r.sock, ignoring "tmp"
            raise ConfigurationError(
                "a unix:// store URL names no host: the socket path follows three slashes, "
                "unix:///path/to/redis.sock"
            )
        if parts.path in ("", "/"):
            raise ConfigurationError("a unix:// store URL needs the socket's path: unix:///path/to/redis.sock")
    elif scheme == "redis+cluster" and not parts.hostname:  # the client library would quietly use localhost
        raise ConfigurationError(
            "a redis+cluster:// store URL needs a host: redis+cluster://host:port names a seed node "
            "(any node of the cluster; the client finds the others from it), and a cluster has no default one"
        )


def _redis_parameters() -> list[str]:
    """Every query parameter a Redis store URL accepts: clientstate's and the redis library's."""
    import redis.connection

    names = set(_REDIS_OWN) | set(redis.connection.URL_QUERY_ARGUMENT_PARSERS)
    for cls in (redis.connection.AbstractConnection, redis.connection.Connection, redis.connection.SSLConnection):
        names.update(p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs"))
    names.update(("max_connections", "username", "password", "client_name"))
    return sorted(names)


def _check_postgres_query(url: str, own: Iterable[str]) -> None:
    """Refuse a query parameter that is neither the store's nor libpq's (psycopg parses the rest)."""
    import psycopg
    from psycopg import conninfo

    own = tuple(own)
    parts = urlsplit(url)
    rest = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in own]
    if not rest:
        return
    try:
        conninfo.conninfo_to_dict(parts._replace(query=urlencode(rest)).geturl())
    except psycopg.ProgrammingError as exc:
        message = str(exc)
        if "invalid URI query parameter" not in message and "invalid connection option" not in message:
            return  # another problem (a bad value): the store reports it when it connects
        name = next((k for k, _ in rest if f'"{k}"' in message), rest[0][0])
        raise ConfigurationError(
            f"unknown query parameter {name!r} in a postgresql:// store URL{did_you_mean(name, (*own, *_LIBPQ))}; "
            f"it takes {', '.join(own)} and libpq's parameters"
        ) from None  # libpq's message is not echoed: it may quote the URL, password included


# The libpq parameters most often meant (for suggestions; libpq itself decides what it accepts).
_LIBPQ: Final = (
    "sslmode", "sslcert", "sslkey", "sslrootcert", "application_name", "options", "connect_timeout",
    "target_session_attrs", "password", "user", "dbname", "host", "port", "keepalives",
)


def store_from_url(url: str) -> Store:
    """The store a URL names.

    Args:
        url: ``memory://``; ``sqlite:///relative/path.db`` or
            ``sqlite:////absolute/path.db``; ``redis://host:port/db`` or
            ``rediss://…`` (TLS); ``redis+cluster://host:port`` (any node of
            a Redis Cluster); ``unix:///path/to/redis.sock`` (Redis on a Unix
            socket); ``postgresql://user@host:port/db``;
            ``mysql://user@host:port/db`` (MariaDB or MySQL).

    Query parameters: none for ``memory://``; ``table`` and ``timeout``
    (seconds) for SQLite; the store's own and its client library's for the
    others (see each store's ``from_url``).

    Raises:
        ConfigurationError: not a ``str``; no scheme (a bare ``memory`` gets
            "did you mean 'memory://'?"); an unknown scheme (with a "did you
            mean" suggestion for a misspelt one); a ``#fragment`` (no store
            reads one: an unencoded ``#`` in a password ends the URL there); a
            query parameter given twice, or an unknown one (named, with a
            suggestion); a host or path on ``memory://``; a SQLite URL without
            a path; a ``unix://`` URL without a socket path or with a host; a
            ``redis+cluster://`` URL without a host (a cluster has no default
            node: name a seed node); or the store's client library is not
            installed (the message names the extra:
            ``pip install 'clientstate[redis]'``).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL must be a str, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket; urlsplit's message may quote the host and password
        raise ConfigurationError("malformed store URL: it does not split into scheme, host and path") from None
    scheme = parts.scheme.lower()
    if "#" in url:  # never echoed: what follows an unencoded '#' may be the rest of a password
        raise ConfigurationError(
            "a store URL takes no #fragment (no store reads one); percent-encode a '#' in a password as %23"
        )
    if not scheme:
        raise ConfigurationError(_no_scheme(url))
    _check_repeats(parts.query, scheme)
    if scheme == "memory":
        _check_query(parts.query, scheme, ())
        if parts.netloc or parts.path:
            what = "a host" if parts.netloc else "a path"
            raise ConfigurationError(f"a memory:// store URL names no host or path, got {what}: write memory://")
        return MemoryStore()
    if scheme == "sqlite":
        params = _check_query(parts.query, scheme, _SQLITE_OPTIONS)
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if parts.netloc or not path:
            raise ConfigurationError(
                "a SQLite store URL is sqlite:///relative/file.db or sqlite:////absolute/file.db"
            )
        options: dict[str, Any] = {}  # what the URL gives; SQLiteStore's own defaults for the rest
        if "table" in params:
            options["table"] = params["table"]
        if "timeout" in params:
            try:
                options["timeout"] = float(params["timeout"])
            except ValueError:
                raise ConfigurationError(
                    f"timeout in a SQLite URL must be a number, got {params['timeout']!r}"
                ) from None
        return SQLiteStore(path, **options)
    target = _OPTIONAL.get(scheme)
    if target is None:
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r}{did_you_mean(scheme, _SCHEMES)} (known: {', '.join(_SCHEMES)})"
        )
    module_name, class_name, extra = target
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{scheme}:// stores need pip install 'clientstate[{extra}]' ({exc})"
        ) from exc
    if extra == "redis":
        _check_query(parts.query, scheme, _redis_parameters())
        _check_redis_target(parts, scheme)
    elif extra == "postgres":
        _check_postgres_query(url, getattr(module, "_STORE_OPTIONS", ()))
    store: Store = getattr(module, class_name).from_url(url)
    return store
