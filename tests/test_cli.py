"""The command line: keygen, inspect, help texts."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from clientstate import Key, Keyring, Loaded, client_stored
from clientstate.cli import main
from clientstate.testing import fixed_keyring
from tests.conftest import ACCOUNT, Account


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def mint(keyring: Keyring, *, encrypted: bool = False, expires_in: int | None = None, now: float | None = None) -> str:
    handler = client_stored(keyring, name="cs", encrypted=encrypted, expires_in=expires_in)
    return handler.save(ACCOUNT, Loaded(), ACCOUNT.encode(Account(7, "ada", ["admin"])), now or time.time())[0]


def test_keygen_prints_a_loadable_key() -> None:
    code, out = run("keygen", "--key-id", "5")
    assert code == 0
    key = Key.from_text(out.strip())
    assert key.key_id == 5
    assert Keyring.from_text(out).current.key_id == 5


def test_keygen_add_to_appends_the_next_free_id_not_current() -> None:
    ring = fixed_keyring(2, 1)
    code, out = run("keygen", "--add-to", ring.to_text())
    assert code == 0
    grown = Keyring.from_text(out)
    assert grown.current.key_id == 2
    assert sorted(k.key_id for k in grown.keys) == [1, 2, 3]


def test_keygen_errors() -> None:
    assert run("keygen", "--add-to", "nonsense")[0] == 2
    for size in ("8", "-1", "100000000"):
        code, out = run("keygen", "--bytes", size)
        assert code == 2
        assert "from 32 to 1024 bytes" in out


@pytest.mark.parametrize("encrypted", [False, True])
def test_inspect_verifies_and_prints_fields(encrypted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = fixed_keyring(1)
    monkeypatch.setenv("CLIENTSTATE_KEYS", ring.to_text())
    line = mint(ring, encrypted=encrypted, expires_in=600)
    code, out = run("inspect", f"Set-Cookie: {line}", "--state-name", "account")
    assert code == 0, out
    assert f"version:    0x0{2 if encrypted else 1}" in out
    assert ("encrypted (AES-256-GCM)" if encrypted else "authenticated (HMAC-SHA256)") in out
    assert "key id:     1" in out
    assert "verified:   yes, cookie 'cs', state 'account', schema version 1" in out
    assert "issued-at:" in out
    assert "(in 600 s)" in out or "(in 599 s)" in out
    assert '"name":"ada"' in out


def test_inspect_no_verify_shows_only_readable_parts() -> None:
    ring = fixed_keyring(1)
    value = mint(ring).split(";")[0].split("=", 1)[1]
    code, out = run("inspect", value, "--no-verify")
    assert code == 0
    assert "verified:   no" in out
    assert '"roles":["admin"]' in out
    enc = mint(ring, encrypted=True).split(";")[0].split("=", 1)[1]
    code, out = run("inspect", enc, "--no-verify")
    assert code == 0
    assert "<encrypted: needs the keys>" in out
    assert "ada" not in out


def test_inspect_errors_print_the_kind_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = fixed_keyring(1)
    monkeypatch.setenv("CLIENTSTATE_KEYS", fixed_keyring(2).to_text())
    line = mint(ring)
    code, out = run("inspect", line, "--state-name", "account")
    assert (code, out.strip()) == (1, "error: unknown_key: key id 1 is not in the keyring")
    code, out = run("inspect", line, "--state-name", "other", "--keys", ring.to_text())
    assert code == 1
    assert out.startswith("error: authentication_failed")
    code, out = run("inspect", "cs=%%%", "--state-name", "account")
    assert (code, out.split(":")[1].strip()) == (1, "malformed")
    old = mint(ring, now=time.time() - 1000)
    code, out = run("inspect", old, "--state-name", "account", "--keys", ring.to_text(), "--max-age", "10")
    assert code == 1
    assert "error: too_old" in out


def test_inspect_needs_names_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIENTSTATE_KEYS", raising=False)
    value = mint(fixed_keyring(1)).split(";")[0].split("=", 1)[1]
    code, out = run("inspect", value)
    assert code == 2
    assert "--state-name" in out
    code, out = run("inspect", f"cs={value}", "--state-name", "account")
    assert code == 2
    assert "CLIENTSTATE_KEYS is not set" in out


def test_every_command_has_help() -> None:
    for command in ([], ["demo"], ["keygen"], ["inspect"]):
        done = subprocess.run(
            [sys.executable, "-m", "clientstate", *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0
        assert "usage: python -m clientstate" in done.stdout
    assert "--no-verify" in subprocess.run(
        [sys.executable, "-m", "clientstate", "inspect", "--help"], capture_output=True, text=True, timeout=60
    ).stdout


def test_inspect_unwraps_quotes_and_refuses_an_empty_value() -> None:
    ring = fixed_keyring(1)
    value = mint(ring).split(";")[0].split("=", 1)[1]
    code, out = run("inspect", f'cs="{value}"', "--state-name", "account", "--keys", ring.to_text())
    assert code == 0, out
    code, out = run("inspect", "cs=", "--state-name", "account", "--keys", ring.to_text())
    assert (code, out.strip()) == (1, "error: the cookie value is empty: a server reads that as no cookie at all")


def test_inspect_no_verify_prints_any_payload_without_crashing() -> None:
    # An unverified token can hold anything, e.g. MessagePack nested deeper than the recursion limit.
    from clientstate.token import Mode, TokenCodec

    codec = TokenCodec(fixed_keyring(1), Mode.AUTHENTICATED, "cs", "account", (1,), 100_000)
    value = codec.seal(b"\x91" * 5000 + b"\xc0", 1)
    code, out = run("inspect", value, "--no-verify")
    assert code == 0
    assert "does not print as JSON" in out
