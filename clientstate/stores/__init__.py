"""Stores for server-stored sessions: where ``server_stored`` keeps the state.

* :class:`MemoryStore` — this process's memory: tests, single-process apps.
* :class:`SQLiteStore` — a SQLite file: the embedded default (standard library only).
* ``RedisStore`` — Redis or Redis Cluster (``clientstate[redis]``).
* ``PostgresStore`` — PostgreSQL through psycopg 3 (``clientstate[postgres]``).
* ``MySQLStore`` — MariaDB or MySQL through PyMySQL (``clientstate[mysql]``).
* ``LayeredStore`` — a cache in front of a primary store.
* ``store_from_url`` — any of them from a URL.

Every store follows the protocol of :mod:`clientstate._core.store`
(re-exported here as :class:`Store`, with :class:`Record` and the operations);
the optional ones are imported on first use, so ``import clientstate.stores``
needs neither redis, psycopg nor PyMySQL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clientstate._core.store import Record, SessionInfo, Store, UpdateResult
from clientstate.stores.memory import MemoryStore
from clientstate.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from clientstate.stores.layered import LayeredStore
    from clientstate.stores.mysql import MySQLStore
    from clientstate.stores.postgres import PostgresStore
    from clientstate.stores.redis import RedisStore
    from clientstate.stores.url import store_from_url

__all__ = [
    "LayeredStore",
    "MemoryStore",
    "MySQLStore",
    "PostgresStore",
    "Record",
    "RedisStore",
    "SQLiteStore",
    "SessionInfo",
    "Store",
    "UpdateResult",
    "store_from_url",
]

_LAZY = {
    "LayeredStore": "clientstate.stores.layered",
    "MySQLStore": "clientstate.stores.mysql",
    "PostgresStore": "clientstate.stores.postgres",
    "RedisStore": "clientstate.stores.redis",
    "store_from_url": "clientstate.stores.url",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clientstate.stores' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
