"""The public API: small, re-exported from ``clientstate``, private implementation modules, no names
that shadow a framework's on ``from clientstate import *``, one version, and configuration mistakes
reported as ConfigurationError at the caller's line."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

import clientstate
from clientstate import (
    ConfigurationError,
    CookieAttributes,
    ErrorKind,
    Key,
    Keyring,
    LoadError,
    Migration,
    State,
    asgi,
    client_stored,
    generate_key,
    setup,
    wsgi,
)
from clientstate.testing import fixed_keyring
from tests.conftest import ACCOUNT

PACKAGE = Path(clientstate.__file__).parent

# The framework modules applications import names from (``from starlette.requests import Request``).
FRAMEWORK_MODULES = [
    "flask",
    "starlette.applications",
    "starlette.requests",
    "starlette.responses",
    "starlette.routing",
    "werkzeug.wrappers",
]


def public_names(module_name: str) -> set[str]:
    """The module's ``__all__``, or else the public names it defines itself (not those it imports)."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    return {
        name for name, obj in vars(module).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == module_name
    }


@pytest.mark.parametrize("framework", FRAMEWORK_MODULES)
def test_star_import_shadows_no_framework_name(framework: str) -> None:
    assert set(clientstate.__all__) & public_names(framework) == set()


def test_every_exported_name_exists_and_request_response_are_not_exported() -> None:
    for name in clientstate.__all__:
        assert hasattr(clientstate, name), name
    assert "Request" not in clientstate.__all__
    assert "Response" not in clientstate.__all__


def test_implementation_modules_are_private() -> None:
    public_files = {p.name for p in PACKAGE.glob("*.py")}
    assert public_files == {"__init__.py", "__main__.py", "asgi.py", "cli.py", "sudo.py", "wsgi.py"}
    for folder in ("_core", "_handlers"):
        assert (PACKAGE / folder / "__init__.py").exists()
    # The adapters are middleware only: no request reading, no serving, no JSON helpers.
    for adapter in ("wsgi", "asgi"):
        source = (PACKAGE / "adapters" / f"{adapter}.py").read_text()
        for helper in ("def serve", "def read_request", "def read_body", "def lifespan", "def status_line"):
            assert helper not in source, (adapter, helper)


def test_version_comes_from_the_package_metadata() -> None:
    assert clientstate.__version__ == importlib.metadata.version("clientstate")
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py" or path.parent != PACKAGE:
            assert "__version__ =" not in path.read_text(), path


def test_values_are_frozen() -> None:
    attrs = CookieAttributes()
    error = LoadError(ErrorKind.EXPIRED, "x")
    key = generate_key()
    for obj, field in ((attrs, "path"), (error, "kind"), (key, "key_id"), (Keyring(key), "current")):
        with pytest.raises(AttributeError):
            setattr(obj, field, None)
    with pytest.raises(AttributeError, match="immutable"):
        ACCOUNT.name = "other"


UNKNOWN_KEYWORDS: list[tuple[Any, dict[str, Any], str]] = [
    (CookieAttributes, {"http0nly": True}, "http_only"),
    (client_stored, {"keyring": fixed_keyring(1), "name": "cs", "expire_in": 5}, "expires_in"),
    (State, {"name": "x", "type": int, "verison": 2}, "version"),
    (Migration, {"version": 1, "type": int, "upgrad": str}, "upgrade"),
    (Key, {"key_id": 1, "secret": b"x" * 32, "for_tests": True}, "for_testing"),
    (generate_key, {"key_id": 1, "sizes": 32}, "size"),
]


@pytest.mark.parametrize(("target", "kwargs", "suggestion"), UNKNOWN_KEYWORDS)
def test_a_misspelled_keyword_is_a_configuration_error_with_a_suggestion(
    target: Any, kwargs: dict[str, Any], suggestion: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"did you mean '{suggestion}'"):
        target(**kwargs)


@pytest.mark.parametrize("adapter", [wsgi, asgi])
def test_setup_refuses_arguments_of_the_wrong_kind(adapter: Any) -> None:
    handler = client_stored(fixed_keyring(1), name="cs")
    with pytest.raises(ConfigurationError, match="state descriptor must be a State"):
        adapter.setup("account", handler, lambda *a: None)
    with pytest.raises(ConfigurationError, match="handler must be a Handler"):
        adapter.setup(ACCOUNT, fixed_keyring(1), lambda *a: None)
    with pytest.raises(ConfigurationError, match="app must be a callable"):
        adapter.setup(ACCOUNT, handler, "app")
    with pytest.raises(ConfigurationError, match="unknown argument 'clok'"):
        adapter.setup(ACCOUNT, handler, lambda *a: None, clok=lambda: 0.0)
    with pytest.raises(ConfigurationError, match="service must be a callable"):
        setup(ACCOUNT, handler, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "type": object()}, "not supported by msgspec"),
        ({"name": "bad name", "type": int}, "state name must be"),
        ({"name": "x", "type": int, "version": -1}, "schema version"),
        ({"name": "x", "type": int, "version": True}, "schema version"),
        ({"name": "x", "type": int, "migrations": "v1"}, "iterable of Migration"),
        ({"name": "x", "type": int, "version": 2, "migrations": [1]}, "hold Migration objects"),
    ],
)
def test_state_refuses_bad_descriptors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        State(**kwargs)
