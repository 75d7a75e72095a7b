"""``store_from_url``: a store from a URL, for configuration files, environment variables and the CLI."""

from __future__ import annotations

import importlib
from typing import Final
from urllib.parse import unquote, urlsplit

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
    "postgresql": ("clientstate.stores.postgres", "PostgresStore", "postgres"),
    "postgres": ("clientstate.stores.postgres", "PostgresStore", "postgres"),
    "mysql": ("clientstate.stores.mysql", "MySQLStore", "mysql"),
    "mariadb": ("clientstate.stores.mysql", "MySQLStore", "mysql"),
}


def store_from_url(url: str) -> Store:
    """The store a URL names.

    Args:
        url: ``memory://``; ``sqlite:///relative/path.db`` or
            ``sqlite:////absolute/path.db``; ``redis://host:port/db`` or
            ``rediss://…`` (TLS); ``redis+cluster://host:port`` (any node of
            a Redis Cluster); ``postgresql://user@host:port/db``;
            ``mysql://user@host:port/db`` (MariaDB or MySQL).

    Raises:
        ConfigurationError: an unknown scheme, a SQLite URL without a path,
            or the store's client library is not installed (the message names
            the extra: ``pip install 'clientstate[redis]'``).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if parts.netloc or not path:
            raise ConfigurationError(
                "a SQLite store URL is sqlite:///relative/file.db or sqlite:////absolute/file.db"
            )
        return SQLiteStore(path)
    target = _OPTIONAL.get(scheme)
    if target is None:
        known = "memory, sqlite, " + ", ".join(sorted(_OPTIONAL))
        raise ConfigurationError(f"unknown store URL scheme {scheme!r} (known: {known})")
    module_name, class_name, extra = target
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{scheme}:// stores need pip install 'clientstate[{extra}]' ({exc})"
        ) from exc
    store: Store = getattr(module, class_name).from_url(url)
    return store
