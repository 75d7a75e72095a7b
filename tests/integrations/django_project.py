"""A Django project for the tests, in one module: settings, the contract views, URLs, users.

:func:`configure` sets Django up once per test process (an in-memory SQLite
database with ``django.contrib.auth``'s tables), with both clientstate
middlewares: the typed state (:data:`STATE`, cookie ``cs``) and the session
engine (``request.session``, cookie ``sessionid``).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from clientstate import CookieAttributes, client_stored
from clientstate.integrations.django import ClientState
from clientstate.testing import FrozenClock, fixed_keyring
from tests.integrations import support
from tests.integrations.support import SESSION

SECRET_KEY = "django-insecure-clientstate-tests-0123456789abcdefghijklmnopqrstuv"
CLOCK = FrozenClock(support.T0)
HANDLER = support.make_handler()
STATE = ClientState(SESSION, HANDLER, clock=CLOCK)
#: The session engine's handler (CLIENTSTATE_SESSION_HANDLER): encrypted, the name and attributes of Django's defaults.
SESSION_HANDLER = client_stored(
    fixed_keyring(1), name="sessionid", attributes=CookieAttributes(secure=False), encrypted=True
)


def _json(request: HttpRequest) -> Any:
    return json.loads(request.body or b"null")


def read(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(support.read(STATE.get_slot(request)))
    response["X-App"] = "kept"
    response["Vary"] = "Accept-Language"
    response.set_cookie("theme", "dark", path="/")
    return response


def login(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.login(STATE.get_slot(request), _json(request)))


@STATE.login_required
def visit(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.visit(STATE.get_slot(request)))


def tag(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.tag(STATE.get_slot(request)))


def same(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.same(STATE.get_slot(request)))


def fail(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.fail(STATE.get_slot(request)), status=500)


def crash(request: HttpRequest) -> HttpResponse:
    support.crash(STATE.get_slot(request))
    raise AssertionError("unreachable")


@STATE.login_required
def elevate(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.elevate(STATE.get_slot(request)))


@STATE.sudo_required
async def admin(request: HttpRequest) -> HttpResponse:  # an async view: the guard keeps it async
    return JsonResponse(support.admin())


def logout(request: HttpRequest) -> HttpResponse:
    return JsonResponse(support.logout(STATE.get_slot(request)))


# request.session views, for the session engine and django.contrib.auth
def session_read(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"data": dict(request.session.items()), "user": request.user.get_username() or None})


def session_put(request: HttpRequest) -> HttpResponse:
    for key, value in _json(request).items():
        request.session[key] = value
    return JsonResponse({"ok": True})


def session_append(request: HttpRequest) -> HttpResponse:
    request.session.setdefault("items", [])
    request.session["items"].append(1)  # nested: Django's own engines would miss it
    request.session.modified = False  # and Django would not save it: clientstate compares values
    return JsonResponse({"ok": True})


def session_cycle(request: HttpRequest) -> HttpResponse:
    request.session.cycle_key()
    return JsonResponse({"ok": True})


def auth_login(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import authenticate
    from django.contrib.auth import login as django_login

    body = _json(request)
    user = authenticate(request, username=body["username"], password=body["password"])
    if user is None:
        return JsonResponse({"error": "bad_credentials"}, status=400)
    django_login(request, user)
    return JsonResponse({"user": user.get_username()})


def auth_logout(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import logout as django_logout

    django_logout(request)
    return JsonResponse({"ok": True})


def session_fail(request: HttpRequest) -> HttpResponse:
    request.session["failed"] = True
    return JsonResponse({"error": "failed"}, status=500)


urlpatterns = [
    path("read", read),
    path("login", login),
    path("visit", visit),
    path("tag", tag),
    path("same", same),
    path("fail", fail),
    path("crash", crash),
    path("sudo", elevate),
    path("admin", admin),
    path("logout", logout),
    path("session", session_read),
    path("session/put", session_put),
    path("session/append", session_append),
    path("session/cycle", session_cycle),
    path("session/fail", session_fail),
    path("auth/login", auth_login),
    path("auth/logout", auth_logout),
]

MIDDLEWARE = [
    "clientstate.integrations.django.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tests.integrations.django_project.STATE",
]


def configure() -> None:
    """Configure Django for this process (once) and create the auth tables and users ``ada`` and ``grace``.

    (``django.setup`` is reached through ``get_wsgi_application``: mypy, given
    ``examples/``, takes the folder ``examples/django`` for the untyped ``django``
    package, so attributes of the top-level module cannot be named.)
    """
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="tests.integrations.django_project",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        MIDDLEWARE=MIDDLEWARE,
        SESSION_ENGINE="clientstate.integrations.django",
        CLIENTSTATE_SESSION_HANDLER="tests.integrations.django_project.SESSION_HANDLER",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast, tests only
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    from django.core.wsgi import get_wsgi_application

    get_wsgi_application()  # django.setup(), reached without the top-level module (see the note below)
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_user("ada", password="pw")
    User.objects.create_user("grace", password="pw")
