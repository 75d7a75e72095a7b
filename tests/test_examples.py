"""The examples in examples/ run, with real framework test clients."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from starlette.testclient import TestClient

from clientstate.testing import fixed_keyring

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def wsgi_get(app: Any, path: str, cookie: str = "", method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    captured: list[Any] = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(), "HTTP_COOKIE": cookie}
    body = b"".join(app(environ, lambda status, headers, exc_info=None: captured.extend([status, headers])))
    return captured[0], {k.lower(): v for k, v in captured[1]}, body


def test_wsgi_quickstart_counts_visits() -> None:
    app = load("wsgi_quickstart").build(fixed_keyring(1))
    _, headers, body = wsgi_get(app, "/")
    assert body == b"visit number 1\n"
    cookie = headers["set-cookie"].split(";", 1)[0]
    _, headers, body = wsgi_get(app, "/", cookie)
    assert body == b"visit number 2\n"
    _, _, body = wsgi_get(app, "/", "visits=forged")
    assert body == b"visit number 1\n"


def test_asgi_quickstart_with_starlette() -> None:
    app = load("asgi_quickstart").build(fixed_keyring(1))
    with TestClient(app) as client:
        assert client.post("/visit").status_code == 401
        assert client.post("/login", json={"user": "ada"}).json() == {"user": "ada"}
        assert client.post("/visit").json() == {"visits": 1}
        assert client.get("/admin").status_code == 403
        assert client.post("/sudo").status_code == 200
        assert client.get("/admin").json() == {"ok": True}


def test_service_quickstart_over_wsgi() -> None:
    app = load("service_quickstart").build(fixed_keyring(1))
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        assert client.get("/").json() == {"theme": "light", "error": None}
        assert client.post("/toggle").json() == {"theme": "dark"}
        assert client.get("/").json() == {"theme": "dark", "error": None}
        reset = client.post("/reset")
        assert "Max-Age=0" in reset.headers["set-cookie"]
        assert client.get("/").json() == {"theme": "light", "error": None}
