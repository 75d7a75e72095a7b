"""The command line: keygen, inspect, help texts."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from clientstate import Key, Keyring, Loaded, client_stored, generate_key
from clientstate.cli import main, terminal_safe
from clientstate.testing import fixed_keyring
from tests.conftest import ACCOUNT, Account

# The CLI refuses the testing kit's public keys, like any production entry point: real keys here.
RING_1 = Keyring(generate_key(1))
RING_2 = Keyring(generate_key(2))
RING_21 = Keyring(generate_key(2), (generate_key(1),))


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
    code, out = run("keygen", "--add-to", RING_21.to_text())
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
    ring = RING_1
    monkeypatch.setenv("CLIENTSTATE_KEYS", ring.to_text())
    line = mint(ring, encrypted=encrypted, expires_in=600)
    code, out = run("inspect", f"Set-Cookie: {line}", "--state-name", "account", "--expires-in", "600")
    assert code == 0, out
    assert f"version:    0x0{2 if encrypted else 1}" in out
    assert ("encrypted (AES-256-GCM)" if encrypted else "authenticated (HMAC-SHA256)") in out
    assert "key id:     1" in out
    assert "verified:   yes, cookie 'cs', state 'account', schema version 1" in out
    assert "issued-at:" in out
    assert "expires-at: none in the token" in out
    assert "deadline:" in out
    assert "(in 600 s)" in out or "(in 599 s)" in out
    assert '"name":"ada"' in out


def test_inspect_no_verify_shows_only_readable_parts() -> None:
    ring = RING_1
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
    ring = RING_1
    monkeypatch.setenv("CLIENTSTATE_KEYS", RING_2.to_text())
    line = mint(ring)
    code, out = run("inspect", line, "--state-name", "account")
    assert (code, out.strip()) == (1, "error: unknown_key: key id 1 is not in the keyring")
    code, out = run("inspect", line, "--state-name", "other", "--keys", ring.to_text())
    assert code == 1
    assert out.startswith("error: authentication_failed")
    code, out = run("inspect", "cs=%%%", "--state-name", "account")
    assert (code, out.split(":")[1].strip()) == (1, "malformed")
    old = mint(ring, now=time.time() - 1000)
    code, out = run("inspect", old, "--state-name", "account", "--keys", ring.to_text(), "--expires-in", "10")
    assert code == 1
    assert "error: expired" in out
    code, out = run("inspect", old, "--state-name", "account", "--keys", fixed_keyring(1).to_text())
    assert code == 2
    assert "well-known" in out  # the CLI refuses the testing kit's public keys


def test_inspect_needs_names_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIENTSTATE_KEYS", raising=False)
    value = mint(RING_1).split(";")[0].split("=", 1)[1]
    code, out = run("inspect", value)
    assert code == 2
    assert "--state-name" in out
    code, out = run("inspect", f"cs={value}", "--state-name", "account")
    assert code == 2
    assert "CLIENTSTATE_KEYS is not set" in out


def test_every_command_has_help() -> None:
    for command in ([], ["demo"], ["keygen"], ["inspect"], ["sessions"]):
        done = subprocess.run(
            [sys.executable, "-m", "clientstate", *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0
        assert "usage: python -m clientstate" in done.stdout
    assert "--no-verify" in subprocess.run(
        [sys.executable, "-m", "clientstate", "inspect", "--help"], capture_output=True, text=True, timeout=60
    ).stdout


def test_inspect_unwraps_quotes_and_refuses_an_empty_value() -> None:
    ring = RING_1
    value = mint(ring).split(";")[0].split("=", 1)[1]
    code, out = run("inspect", f'cs="{value}"', "--state-name", "account", "--keys", ring.to_text())
    assert code == 0, out
    code, out = run("inspect", "cs=", "--state-name", "account", "--keys", ring.to_text())
    assert (code, out.strip()) == (1, "error: the cookie value is empty: a server reads that as no cookie at all")


def test_inspect_no_verify_prints_any_payload_without_crashing() -> None:
    # An unverified token can hold anything, e.g. MessagePack nested deeper than the recursion limit.
    from clientstate._core.token import Mode, TokenCodec

    codec = TokenCodec(fixed_keyring(1), Mode.AUTHENTICATED, "cs", "account", (1,), 100_000)
    value = codec.seal(b"\x91" * 5000 + b"\xc0", 1)
    code, out = run("inspect", value, "--no-verify")
    assert code == 0
    assert "does not print as JSON" in out


HOSTILE = [
    "\x1b]0;pwned\x07",  # OSC: set the terminal title
    "\x1b[2J\x1b[H",  # clear the screen
    "\x9b31m",  # C1 CSI
    "\u202eevil\u202c",  # right-to-left override
    "\u2066isolate\u2069",
    "line\u2028break",
    "\r\noverwritten",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_safe_escapes_controls_and_bidi(text: str) -> None:
    safe = terminal_safe(text)
    assert safe.isprintable()
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E for c in safe)
    assert terminal_safe("plain ünïcode ✓") == "plain ünïcode ✓"


@pytest.mark.parametrize("text", HOSTILE)
def test_inspect_never_prints_a_hostile_cookies_control_characters(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An authenticated cookie the attacker wrote (or any cookie shown with --no-verify) cannot rewrite the terminal."""
    from clientstate import State

    monkeypatch.setenv("CLIENTSTATE_KEYS", RING_1.to_text())
    handler = client_stored(RING_1, name="cs", expires_in=None)
    state: State[dict[str, str]] = State("account", dict[str, str])
    line = handler.save(state, Loaded(), state.encode({text: text}), time.time())[0]
    for argv in (["inspect", line, "--state-name", "account"], ["inspect", line, "--no-verify"]):
        code, out = run(*argv)
        assert code == 0, out
        assert out.replace("\n", "").isprintable(), repr(out)
    code, out = run("inspect", f"cs={'%' * 3}{text}", "--state-name", "account")
    assert out.replace("\n", "").isprintable(), repr(out)


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clientstate", *argv], capture_output=True, text=True, timeout=60)


def test_errors_go_to_stderr_so_captured_output_is_never_an_error_message() -> None:
    # export CLIENTSTATE_KEYS="$(python -m clientstate keygen --add-to ...)" must not capture an error as keys.
    bad = _cli("keygen", "--add-to", "garbage")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith("error: --add-to: ")
    empty = _cli("inspect", "cs=")
    assert (empty.returncode, empty.stdout) == (1, "")
    assert "the cookie value is empty" in empty.stderr


def test_keygen_add_to_takes_the_key_id_asked_for_or_refuses_a_used_one() -> None:
    ring = RING_21.to_text()
    code, out = run("keygen", "--key-id", "9", "--add-to", ring)
    assert code == 0
    assert [k.key_id for k in Keyring.from_text(out).keys] == [2, 1, 9]
    code, out = run("keygen", "--key-id", "1", "--add-to", ring)
    assert code == 2
    assert "--key-id 1 is already in the keyring" in out
    code, out = run("keygen", "--add-to", ring)  # no --key-id: the next free id above the highest
    assert [k.key_id for k in Keyring.from_text(out).keys] == [2, 1, 3]


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_demo_refuses_a_port_that_is_not_one_before_printing_anything(port: str) -> None:
    done = _cli("demo", "--port", port)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--port" in done.stderr
    assert "Traceback" not in done.stderr
