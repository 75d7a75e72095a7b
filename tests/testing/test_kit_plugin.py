"""The clientstate pytest plugin: its fixtures, and that it loads without the optional test dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from clientstate import ClientStored, CookieAttributes, Keyring, client_stored
from clientstate.demo.api import DEMO_STATE, DemoState
from clientstate.demo.apps import make_asgi_app, make_wsgi_app
from clientstate.testing import FrozenClock, fixed_key, fixed_keyring
from clientstate.testing.plugin import ClientFactory, _factory


def test_clock_keyring_and_handler_fixtures(
    clientstate_clock: FrozenClock, clientstate_keyring: Keyring, clientstate_handler: ClientStored
) -> None:
    assert isinstance(clientstate_clock, FrozenClock)
    assert clientstate_clock() == 1_700_000_000
    assert clientstate_keyring.current.key_id == 1
    assert clientstate_keyring.current.subkey(b"hmac") == fixed_key(1).subkey(b"hmac")
    assert clientstate_handler.name == "session"
    assert clientstate_handler.keyring is clientstate_keyring
    assert clientstate_handler.mode.name == "AUTHENTICATED"
    assert clientstate_handler.attributes.secure


def test_each_test_gets_a_fresh_clock(clientstate_clock: FrozenClock) -> None:
    assert clientstate_clock() == 1_700_000_000  # not moved by another test
    clientstate_clock.advance(10)


def test_client_factories_use_the_fixture_handler_and_clock(
    clientstate_asgi_client: ClientFactory,
    clientstate_wsgi_client: ClientFactory,
    clientstate_handler: ClientStored,
    clientstate_clock: FrozenClock,
) -> None:
    for factory, make_app in ((clientstate_asgi_client, make_asgi_app), (clientstate_wsgi_client, make_wsgi_app)):
        client = factory(make_app(clientstate_handler, clientstate_clock), DEMO_STATE)
        assert client.handler is clientstate_handler
        assert client.clock is clientstate_clock
        client.post("/api/login", json={"user": "ada"})
        assert client.assert_set() == DemoState(user="ada")
        # handler and clock can be given by keyword, for an app built with others.
        other_clock = FrozenClock(2_000_000_000)
        other = client_stored(fixed_keyring(2), name="other", attributes=CookieAttributes(secure=False))
        client = factory(make_app(other, other_clock), DEMO_STATE, handler=other, clock=other_clock)
        client.post("/api/sudo", json={"password": "pw", "seconds": 9})
        assert client.state is None  # no login yet: 401, nothing written
        client.set_state(DemoState(user="bo"))
        client.post("/api/sudo", json={"password": "pw", "seconds": 9})
        assert client.assert_set().sudo_until == 2_000_000_009


def test_factory_closes_every_client_it_made() -> None:
    closed: list[int] = []

    class Stub:
        def __init__(self, number: int) -> None:
            self.number = number

        def close(self) -> None:
            closed.append(self.number)

    made = iter(range(3))

    def make(app: Any, state: Any, handler: Any, clock: Any, **kwargs: Any) -> Any:
        assert (handler, clock, kwargs) == ("h", "c", {"x": 1})
        return Stub(next(made))

    generator = _factory(make, "h", "c")  # type: ignore[arg-type]
    factory = next(generator)
    factory("app", DEMO_STATE, x=1)
    factory("app", DEMO_STATE, x=1)
    assert closed == []
    assert list(generator) == []
    assert closed == [0, 1]


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120,
                          check=False)


OPTIONAL = ("hypothesis", "starlette", "werkzeug", "httpx", "flask")


def test_importing_the_plugin_and_package_loads_no_optional_dependency(tmp_path: Path) -> None:
    result = _python(
        "import sys, clientstate.testing, clientstate.testing.plugin\n"
        f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_plugin_works_when_optional_dependencies_are_missing(tmp_path: Path) -> None:
    (tmp_path / "test_without.py").write_text(textwrap.dedent('''
        import pytest
        import clientstate.testing


        def test_fixtures(clientstate_clock, clientstate_keyring, clientstate_handler):
            assert clientstate_clock() == 1_700_000_000
            assert clientstate_handler.keyring is clientstate_keyring
            assert clientstate.testing.FrozenClock is type(clientstate_clock)


        def test_missing_hypothesis_is_explained():
            with pytest.raises(ImportError, match="clientstate.testing.states needs hypothesis: pip install"):
                clientstate.testing.states
    '''))
    blocker = textwrap.dedent(f'''
        import sys

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {OPTIONAL!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Blocker())
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "test_without.py"]))
    ''')
    result = _python(blocker, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
