"""The demo's live panel served by a real uvicorn process, driven by real WebSocket clients.

One demo process (embedded store) trusts 127.0.0.1 as a proxy
(``CLIENTSTATE_DEMO_TRUSTED_PROXIES``); clients connect from chosen loopback
source addresses (127.0.0.2, 127.0.0.3, ... are untrusted peers). Each test
uses address groups of its own: sessions, live or detached, count against
their group for the whole run (the resume window is 300 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clientstate import Keyring, generate_key
from tests.live.demo_process import Client, LiveDemo, refusal

KEYRING = Keyring(generate_key(5))
LIMIT = 100  # the demo's documented per-address limit (the manager's default)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 120))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    process = LiveDemo(
        KEYRING, tmp_path_factory.mktemp("demo-live"), env={"CLIENTSTATE_DEMO_TRUSTED_PROXIES": "127.0.0.1"},
    )
    yield process
    assert process.stop() == 0


async def fill(demo: LiveDemo, count: int, **options: Any) -> list[Client]:
    """``count`` accepted connections (``options`` per connection from a callable of its index)."""
    clients = []
    for n in range(count):
        chosen = {name: value(n) if callable(value) else value for name, value in options.items()}
        clients.append(await Client.open(demo.ws, **chosen))
    return clients


def test_the_panel_counts_resumes_and_reports_stats(demo: LiveDemo) -> None:
    async def scenario() -> None:
        client = await Client.open(demo.ws, source="127.0.0.9")
        assert client.first["count"] == 0
        assert client.first["resumed"] is False
        assert (await client.say("inc"))["count"] == 1
        answer = await client.say("inc")
        assert answer["count"] == 2
        assert answer["stats"]["live"] >= 1
        assert set(answer["stats"]) == {"total", "live", "detached", "unique_ips", "evictions", "refusals", "resumed"}
        await client.close()
        back = await Client.open(demo.ws, token=client.token, source="127.0.0.9")  # the tab reopened
        assert (back.first["count"], back.first["resumed"], back.token) == (2, True, client.token)
        assert (await back.say("reset"))["count"] == 0
        assert (await back.say("bogus")) == {"error": "unknown_command"}
        await back.close()
        forged = await Client.open(demo.ws, token=client.token[:-2] + "AA", source="127.0.0.9")
        assert forged.first["error"] == "authentication_failed"
        assert forged.first["count"] == 0
        await forged.close()

    run(scenario())


def test_the_101st_session_from_one_address_is_refused_with_1013_and_another_address_is_not(demo: LiveDemo) -> None:
    async def scenario() -> None:
        clients = await fill(demo, LIMIT, source="127.0.0.2")
        for client in clients[::2]:
            await client.close()  # detached sessions still count
        refused = await refusal(demo.ws, source="127.0.0.2")
        assert refused is not None
        assert (refused.code, refused.reason) == (1013, "too_many_sessions_from_ip")
        assert await refusal(demo.ws, source="127.0.0.3") is None
        other = await Client.open(demo.ws, source="127.0.0.3")
        assert other.first["stats"]["refusals"]["too_many_sessions_from_ip"] >= 1
        await other.close()
        for client in clients[1::2]:
            await client.close()

    run(scenario())


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(demo: LiveDemo) -> None:
    async def scenario() -> None:
        via_proxy = {"source": "127.0.0.1", "headers": [("X-Forwarded-For", "198.51.100.7")]}
        clients = await fill(demo, LIMIT, **via_proxy)
        refused = await refusal(demo.ws, **via_proxy)
        assert refused is not None
        assert (refused.code, refused.reason) == (1013, "too_many_sessions_from_ip")
        # the same trusted proxy, another client behind it: its own group
        assert await refusal(demo.ws, source="127.0.0.1", headers=[("X-Forwarded-For", "198.51.100.8")]) is None
        # a client-chosen left-most entry does not move the count: the proxy appended the real one
        spoofed = [("X-Forwarded-For", "203.0.113.1, 198.51.100.7")]
        assert (await refusal(demo.ws, source="127.0.0.1", headers=spoofed)) is not None
        # an untrusted peer's header is ignored: 100 different claims from 127.0.0.4 are one group
        untrusted = await fill(demo, LIMIT, source="127.0.0.4", headers=lambda n: [("X-Forwarded-For", f"192.0.2.{n}")])
        refused = await refusal(demo.ws, source="127.0.0.4", headers=[("X-Forwarded-For", "192.0.2.250")])
        assert refused is not None
        assert refused.reason == "too_many_sessions_from_ip"
        for client in clients + untrusted:
            await client.close()

    run(scenario())


def test_ipv6_addresses_behind_a_trusted_proxy_are_grouped_by_slash_64(demo: LiveDemo) -> None:
    async def scenario() -> None:
        def forwarded(address: str) -> list[tuple[str, str]]:
            return [("X-Forwarded-For", address)]

        clients = await fill(demo, LIMIT, source="127.0.0.1", headers=lambda n: forwarded(f"2001:db8:a:b::{n + 1:x}"))
        same_64 = await refusal(demo.ws, source="127.0.0.1", headers=forwarded("2001:db8:a:b:ffff:ffff:ffff:ffff"))
        assert same_64 is not None
        assert (same_64.code, same_64.reason) == (1013, "too_many_sessions_from_ip")
        rfc7239 = [("Forwarded", 'for="[2001:db8:a:b:1234::1]:4711";proto=http')]
        assert await refusal(demo.ws, source="127.0.0.1", headers=rfc7239) is not None
        assert await refusal(demo.ws, source="127.0.0.1", headers=forwarded("2001:db8:a:c::1")) is None
        for client in clients:
            await client.close()

    run(scenario())


def test_a_query_with_many_fields_is_served(demo: LiveDemo) -> None:
    async def scenario() -> None:
        client = await Client.open(demo.ws, source="127.0.0.10")
        await client.say("inc")
        await client.close()
        noise = "&".join(f"f{n}=x" for n in range(50))
        back = await Client.open(f"{demo.ws}?{noise}", source="127.0.0.10")
        assert back.first["count"] == 0  # no token among them: a new session, no error
        await back.close()
        again = await Client.open(f"{demo.ws}?{noise}&live_session={client.token}", source="127.0.0.10")
        assert again.first["count"] == 1
        await again.close()

    run(scenario())


def test_the_page_has_the_live_panel(demo: LiveDemo) -> None:
    import httpx

    page = httpx.get(demo.url + "/", timeout=10).text
    assert 'id="live-box"' in page
    assert "/ws/live" in page


def test_make_live_chooses_the_store_and_reads_its_options(tmp_path: Path) -> None:
    from clientstate import ConfigurationError
    from clientstate.demo.live import SNAPSHOT_FILE, make_live
    from clientstate.stores import MemoryStore, SQLiteStore

    said: list[str] = []
    embedded = make_live(KEYRING, None, {}, said.append, directory=tmp_path)
    assert isinstance(embedded.manager.store, MemoryStore)
    assert embedded.manager.snapshot_path == tmp_path / SNAPSHOT_FILE
    shared = MemoryStore()
    assert make_live(KEYRING, shared, {}, said.append, directory=tmp_path).manager.store is not shared  # its own
    sqlite = SQLiteStore(str(tmp_path / "demo.db"))
    options = {"CLIENTSTATE_DEMO_TRUSTED_PROXIES": "10.0.0.0/8, ::1", "CLIENTSTATE_DEMO_PERSIST_INTERVAL": "2.5"}
    tuned = make_live(KEYRING, sqlite, options, said.append)
    assert tuned.manager.store is sqlite
    assert tuned.manager.snapshot_path is None
    assert tuned.manager.persist_interval == 2.5
    assert [str(n) for n in tuned.manager.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert said[-1].endswith("persisted every 2.5 s, trusting forwarding headers from 10.0.0.0/8, ::1")
    with pytest.raises(ConfigurationError, match="CLIENTSTATE_DEMO_PERSIST_INTERVAL must be a number"):
        make_live(KEYRING, None, {"CLIENTSTATE_DEMO_PERSIST_INTERVAL": "soon"}, said.append)
    with pytest.raises(ConfigurationError, match="not an IP address"):
        make_live(KEYRING, None, {"CLIENTSTATE_DEMO_TRUSTED_PROXIES": "proxy.local"}, said.append)
    with pytest.raises(ConfigurationError, match="persist_interval must be finite"):
        make_live(KEYRING, None, {"CLIENTSTATE_DEMO_PERSIST_INTERVAL": "inf"}, said.append)
