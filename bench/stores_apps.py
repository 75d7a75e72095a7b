"""The apps of the server-stored benchmark (``bench/stores.py``): one shape, every session system.

Three frameworks, each in the kinds that run on it:

* Starlette (ASGI): ``bare``, ``clientstate`` (``clientstate.asgi.setup`` with a
  ``server_stored`` handler, async store clients), ``starsessions``
  (``SessionMiddleware`` + ``SessionAutoloadMiddleware`` over its ``RedisStore``);
* Flask (WSGI): ``bare``, ``clientstate`` (``clientstate.wsgi.setup`` around
  ``app.wsgi_app``, blocking store clients), ``flask-session`` (``Session(app)``
  with ``SESSION_TYPE="redis"``);
* Django (WSGI): ``bare`` (no middleware), ``clientstate`` (``clientstate.wsgi.setup``
  around Django's ``WSGIHandler``), ``django-db`` and ``django-cache``
  (``SessionMiddleware`` with ``SESSION_ENGINE`` ``…backends.db`` on PostgreSQL
  and ``…backends.cache`` on Django's ``RedisCache``).

Routes (``GET``, a short text body): ``/read`` answers the user id (or
``anonymous``) and changes nothing; ``/change`` adds one to the first cart line;
``/login`` stores the benchmark state (how the bench gets each session's
cookie). The state is ``bench.workload.VALUE`` (a ``msgspec.Struct`` for
clientstate, the same data as a ``dict`` for the peers).

Every app comes in a *fixed* and a *sliding* flavour: fixed never slides an
expiry on a read (clientstate's default touch interval, a tenth of the idle
timeout; Flask-Session with ``SESSION_REFRESH_EACH_REQUEST=False``; Django's
default; starsessions ``rolling=False``); sliding slides it on every request
(clientstate with ``touch_interval=1`` and a clock that moves one second per
request, so every read is due for a touch; Flask-Session's default refresh;
Django ``SESSION_SAVE_EVERY_REQUEST=True``; starsessions ``rolling=True``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from bench.apps import bare_route
from bench.workload import COOKIE_NAME, PEER_SECRET, STATE, VALUE, VALUE_DICT, bump_cart, bump_cart_dict, keyring
from clientstate import CookieAttributes, StateSlot, get_slot, server_stored
from clientstate import asgi as cs_asgi
from clientstate import wsgi as cs_wsgi
from clientstate._core.store import Store
from clientstate._handlers.server_stored import ServerStored

__all__ = [
    "FRAMEWORKS",
    "LIFETIME",
    "PEERS",
    "REDIS_URL",
    "RUN_PREFIX",
    "SteppingClock",
    "app_for",
    "cleanup_redis",
    "django_cleanup",
    "django_setup",
]

#: Session lifetime for every system: 14 days (idle, for clientstate; absolute 30 days).
LIFETIME: Final = 14 * 24 * 3600
#: The Redis server every Redis-backed system uses (db 0 is shared: every key starts with RUN_PREFIX).
REDIS_URL: Final = "redis://127.0.0.1:6379/0"
#: The PostgreSQL database of the Django ``db`` backend and of clientstate's PostgresStore.
POSTGRES: Final = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
#: Start of every Redis key this run writes (removed by :func:`cleanup_redis`).
RUN_PREFIX: Final = f"bench-stores-{os.getpid()}:"
#: The Django schema (PostgreSQL ``search_path``) holding ``django_session``; dropped at the end.
DJANGO_SCHEMA: Final = f"bench_stores_{os.getpid()}"

#: Framework → the kinds that run on it, bare first.
FRAMEWORKS: Final = {
    "starlette": ("bare", "clientstate", "starsessions"),
    "flask": ("bare", "clientstate", "flask-session"),
    "django": ("bare", "clientstate", "django-db", "django-cache"),
}
#: Peer kind → (framework, the store it runs on).
PEERS: Final = {
    "starsessions": ("starlette", "redis"),
    "flask-session": ("flask", "redis"),
    "django-db": ("django", "postgres"),
    "django-cache": ("django", "redis"),
}


class SteppingClock:
    """A clock one second later at every call, from now: every request of a session is due for a touch."""

    def __init__(self) -> None:
        self._ticks = itertools.count(int(time.time()))

    def __call__(self) -> float:
        return float(next(self._ticks))


def _principal(state: Any) -> str:
    return str(state.user_id)


def cs_handler(store: Store, *, sliding: bool) -> ServerStored:
    """clientstate's handler on ``store``: defaults but the lifetime; ``sliding`` touches on every due request."""
    return server_stored(
        store, keyring, name=COOKIE_NAME, principal=_principal, idle_timeout=LIFETIME,
        touch_interval=1 if sliding else None, attributes=CookieAttributes(secure=False),
    )


def _slot_route(slot: StateSlot[Any], path: str) -> str:
    if path == "/login":
        slot.state = VALUE
        return "welcome"
    state = slot.state
    if state is None:
        return "anonymous"
    if path == "/change":
        slot.state = bump_cart(state)
        return "changed"
    return str(state.user_id)


def _dict_route(session: Any, path: str) -> str:
    if path == "/login":
        session.clear()
        session.update(VALUE_DICT)
        return "welcome"
    if "user_id" not in session:
        return "anonymous"
    if path == "/change":
        bump_cart_dict(session)
        return "changed"
    return str(session["user_id"])


ROUTES: Final = ("/read", "/change", "/login")


# --- Starlette ------------------------------------------------------------------------------------


def starlette_app(kind: str, store: Store | None, *, sliding: bool, redis_async: Any = None) -> Any:
    """The Starlette app of ``kind``; ``store`` for clientstate, ``redis_async`` (a ``redis.asyncio`` client) for
    starsessions."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    route: Callable[[Request], str]
    middleware: list[Middleware] = []
    if kind == "bare":

        def route(request: Request) -> str:
            return bare_route(request.scope["path"], ROUTES)

    elif kind == "clientstate":
        assert store is not None
        handler = cs_handler(store, sliding=sliding)
        clock = SteppingClock() if sliding else time.time

        def layer(app: Any) -> Any:
            return cs_asgi.setup(STATE, handler, app, clock=clock)

        middleware.append(Middleware(layer))

        def route(request: Request) -> str:
            return _slot_route(get_slot(request.scope, STATE), request.scope["path"])

    elif kind == "starsessions":
        from starsessions import SessionAutoloadMiddleware, SessionMiddleware
        from starsessions.stores.redis import RedisStore

        star_store = RedisStore(connection=redis_async, prefix=f"{RUN_PREFIX}star:")
        middleware.append(Middleware(
            SessionMiddleware, store=star_store, cookie_name=COOKIE_NAME, cookie_https_only=False,
            lifetime=LIFETIME, rolling=sliding,
        ))
        middleware.append(Middleware(SessionAutoloadMiddleware))

        def route(request: Request) -> str:
            return _dict_route(request.session, request.scope["path"])

    else:
        raise ValueError(f"no Starlette app of kind {kind!r}")

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(route(request))

    return Starlette(routes=[Route(path, endpoint) for path in ROUTES], middleware=middleware)


# --- Flask ----------------------------------------------------------------------------------------


def flask_app(kind: str, store: Store | None, *, sliding: bool, redis_sync: Any = None) -> Any:
    """The Flask app of ``kind`` (its WSGI callable is the app itself)."""
    from flask import Flask, request, session

    app = Flask(f"bench_stores_{kind.replace('-', '_')}_{'sliding' if sliding else 'fixed'}")
    view: Callable[[], str]
    if kind == "bare":

        def view() -> str:
            return bare_route(request.path, ROUTES)

    elif kind == "clientstate":
        assert store is not None
        clock = SteppingClock() if sliding else time.time
        app.wsgi_app = cs_wsgi.setup(  # type: ignore[method-assign]
            STATE, cs_handler(store, sliding=sliding), app.wsgi_app, clock=clock
        )

        def view() -> str:
            return _slot_route(get_slot(request.environ, STATE), request.path)

    elif kind == "flask-session":
        from flask_session import Session

        app.secret_key = PEER_SECRET
        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=redis_sync, SESSION_KEY_PREFIX=f"{RUN_PREFIX}flask:",
            SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_PERMANENT=True, PERMANENT_SESSION_LIFETIME=LIFETIME,
            SESSION_REFRESH_EACH_REQUEST=sliding,
        )
        Session(app)

        def view() -> str:
            return _dict_route(session, request.path)

    else:
        raise ValueError(f"no Flask app of kind {kind!r}")

    for path in ROUTES:
        app.add_url_rule(path, path, view)
    return app


# --- Django ---------------------------------------------------------------------------------------

_django_ready = False


def django_setup() -> None:
    """Configure Django once: PostgreSQL (own schema, persistent connections), Redis cache, this module's URLs.

    Creates the schema and runs the ``sessions`` migration into it.
    """
    global _django_ready
    if _django_ready:
        return
    import psycopg
    from django.conf import settings

    with psycopg.connect(**POSTGRES, autocommit=True) as connection:  # type: ignore[arg-type]
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {DJANGO_SCHEMA}")
    settings.configure(
        DEBUG=False,
        SECRET_KEY=PEER_SECRET,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=[],
        USE_TZ=True,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": POSTGRES["dbname"], "USER": POSTGRES["user"], "HOST": POSTGRES["host"],
                "PORT": str(POSTGRES["port"]),
                "CONN_MAX_AGE": None,  # persistent connections, as production sets it (the default reconnects)
                "OPTIONS": {"options": f"-c search_path={DJANGO_SCHEMA}"},
            }
        },
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": f"{RUN_PREFIX}django",
            }
        },
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_AGE=LIFETIME,
        SESSION_COOKIE_SECURE=False,
        LOGGING_CONFIG=None,
    )
    from django.core.wsgi import get_wsgi_application

    get_wsgi_application()  # runs django.setup(); examples/django makes mypy see a namespace package "django"
    from django.core.management import call_command

    call_command("migrate", "sessions", verbosity=0, interactive=False)
    _django_ready = True


def django_cleanup() -> None:
    """Drop the Django schema (and its ``django_session`` table)."""
    if not _django_ready:
        return
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(**POSTGRES, autocommit=True) as connection:  # type: ignore[arg-type]
        connection.execute(f"DROP SCHEMA IF EXISTS {DJANGO_SCHEMA} CASCADE")


def _django_view(request: Any) -> Any:
    from django.http import HttpResponse

    route: Callable[[Any], str] = request.environ["bench.route"]
    return HttpResponse(route(request), content_type="text/plain")


urlpatterns: list[Any] = []


def _urls() -> None:
    if not urlpatterns:
        from django.urls import path

        urlpatterns.extend(path(route.lstrip("/"), _django_view) for route in ROUTES)


class _Sliding:
    """Sets ``SESSION_SAVE_EVERY_REQUEST`` around each request of a sliding Django app (a global setting)."""

    def __init__(self, app: Any, save_every_request: bool) -> None:
        self.app = app
        self.save_every_request = save_every_request

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from django.conf import settings

        settings.SESSION_SAVE_EVERY_REQUEST = self.save_every_request
        return self.app(environ, start_response)


def django_app(kind: str, store: Store | None, *, sliding: bool) -> Any:
    """The Django app of ``kind`` as a WSGI callable."""
    django_setup()
    _urls()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    route: Callable[[Any], str]
    if kind == "bare":
        settings.MIDDLEWARE = []

        def route(request: Any) -> str:
            return bare_route(request.path, ROUTES)

    elif kind == "clientstate":
        settings.MIDDLEWARE = []

        def route(request: Any) -> str:
            return _slot_route(get_slot(request.environ, STATE), request.path)

    elif kind in ("django-db", "django-cache"):
        settings.MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
        settings.SESSION_ENGINE = "django.contrib.sessions.backends." + ("db" if kind == "django-db" else "cache")

        def route(request: Any) -> str:
            return _dict_route(request.session, request.path)

    else:
        raise ValueError(f"no Django app of kind {kind!r}")
    handler = WSGIHandler()  # reads MIDDLEWARE and, in SessionMiddleware, SESSION_ENGINE now

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["bench.route"] = route
        return handler(environ, start_response)

    if kind == "clientstate":
        clock = SteppingClock() if sliding else time.time
        return cs_wsgi.setup(STATE, cs_handler(_need(store), sliding=sliding), app, clock=clock)
    return _Sliding(app, sliding) if kind.startswith("django-") else app


def _need(store: Store | None) -> Store:
    assert store is not None
    return store


def app_for(
    framework: str, kind: str, store: Store | None, *, sliding: bool, redis_sync: Any = None, redis_async: Any = None
) -> Any:
    """The app of ``kind`` on ``framework`` (an ASGI app for Starlette, else a WSGI app)."""
    if framework == "starlette":
        return starlette_app(kind, store, sliding=sliding, redis_async=redis_async)
    if framework == "flask":
        return flask_app(kind, store, sliding=sliding, redis_sync=redis_sync)
    if framework == "django":
        return django_app(kind, store, sliding=sliding)
    raise ValueError(f"unknown framework {framework!r}")


def cleanup_redis() -> int:
    """Delete every key of this run (``RUN_PREFIX``…) from Redis db 0; returns how many. Never FLUSHDB."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys: Iterator[bytes] = client.scan_iter(match=f"{RUN_PREFIX}*", count=1000)
        doomed = list(keys)
        for start in range(0, len(doomed), 500):
            client.delete(*doomed[start : start + 500])
        return len(doomed)
    finally:
        client.close()
