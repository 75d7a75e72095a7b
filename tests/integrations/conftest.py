"""Fixtures: each framework's contract app behind its own test client, as a :class:`support.Driver`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from clientstate.testing import FrozenClock
from tests.integrations import apps, django_project, support

FRAMEWORKS = ["starlette", "fastapi", "flask", "litestar", "django"]


class DjangoDriver:
    """Django's test client."""

    def __init__(self, clock: FrozenClock) -> None:
        from django.test import Client

        self.client = Client(raise_request_exception=False)
        self.clock = clock

    def call(self, method: str, path: str, body: Any = None) -> support.Reply:
        data = "" if body is None else json.dumps(body)
        response = self.client.generic(method, path, data, content_type="application/json")
        headers = [(k.lower(), v) for k, v in response.items()]
        headers += [("set-cookie", morsel.OutputString()) for morsel in response.cookies.values()]
        try:
            payload = json.loads(response.content)
        except ValueError:
            payload = response.content.decode()
        return support.Reply(response.status_code, headers, payload)

    def cookie(self, name: str) -> str | None:
        morsel = self.client.cookies.get(name)
        return morsel.value if morsel is not None and morsel.value else None

    def put_cookie(self, name: str, value: str) -> None:
        self.client.cookies[name] = value


@pytest.fixture(scope="session")
def django_ready() -> None:
    django_project.configure()


@pytest.fixture(params=FRAMEWORKS)
def driver(request: pytest.FixtureRequest) -> Iterator[support.Driver]:
    framework = request.param
    if framework == "django":
        request.getfixturevalue("django_ready")
        django_project.CLOCK.set(support.T0)
        yield DjangoDriver(django_project.CLOCK)
        return
    clock = FrozenClock(support.T0)
    handler = support.make_handler()
    if framework == "flask":
        app = apps.flask_app(handler, clock)
        yield support.WerkzeugDriver(app.test_client(), clock)
        return
    build = {"starlette": apps.starlette_app, "fastapi": apps.fastapi_app, "litestar": apps.litestar_app}[framework]
    with support.starlette_like_client(build(handler, clock), clock) as client:
        yield client
