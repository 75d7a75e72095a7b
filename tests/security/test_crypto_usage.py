"""How the cryptography is used: fresh nonces for every encryption, tags compared in constant time."""

from __future__ import annotations

import ast
import inspect
import os
from pathlib import Path

import msgspec

import clientstate
import clientstate._core.token
from clientstate import Migration, State
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from tests.security.support import (
    ACCOUNT,
    ALICE,
    T0,
    Account,
    CryptoSpy,
    b64url,
    kind,
    load,
    make_handler,
    mint,
    unb64url,
)

SALT = slice(2, 10)
NONCE = slice(10, 22)


def test_100000_encryptions_of_the_same_state_are_100000_distinct_tokens_and_nonces() -> None:
    codec = make_handler(Mode.ENCRYPTED).codec(ACCOUNT)
    payload = ACCOUNT.encode(ALICE)
    tokens = [codec.seal(payload, T0) for _ in range(100_000)]
    assert len(set(tokens)) == 100_000
    raws = [unb64url(t) for t in tokens]
    assert len({raw[NONCE] for raw in raws}) == 100_000
    # One process-wide key salt (a fresh subkey every 2**24 tokens), so the nonces are what differ.
    assert len({raw[SALT] for raw in raws}) == 1
    assert {len(raw) for raw in raws} == {len(raws[0])}


def test_codecs_of_one_process_draw_their_own_key_salts() -> None:
    salts = {unb64url(mint(make_handler(Mode.ENCRYPTED)))[SALT] for _ in range(50)}
    assert len(salts) == 50


def test_authenticated_tokens_are_deterministic_and_carry_no_nonce() -> None:
    """Control: in authenticated mode the same state and time give the same token (nothing random)."""
    handler = make_handler(Mode.AUTHENTICATED)
    assert mint(handler) == mint(handler)


def _forge_tag(token: str) -> tuple[str, bytes]:
    raw = bytearray(unb64url(token))
    raw[-1] ^= 0x01
    return b64url(bytes(raw)), bytes(raw[-32:])


def test_authenticated_verification_uses_hmac_verify_and_never_computes_a_tag_to_compare(
    crypto_spy: CryptoSpy,
) -> None:
    handler = make_handler(Mode.AUTHENTICATED)
    genuine = mint(handler)
    forged, forged_tag = _forge_tag(genuine)
    crypto_spy.calls.clear()
    assert kind(load(handler, forged)) is ErrorKind.AUTHENTICATION_FAILED
    assert kind(load(handler, genuine)) is None
    assert crypto_spy.calls.count("HMAC.verify") == 2
    assert "HMAC.finalize" not in crypto_spy.calls  # no tag is computed for an == comparison
    assert crypto_spy.verified == [forged_tag, unb64url(genuine)[-32:]]


def test_each_accepted_schema_version_is_tried_with_hmac_verify(crypto_spy: CryptoSpy) -> None:
    class V1(msgspec.Struct):
        user_id: int

    state = State(
        "account", Account, version=3, migrations=[Migration(2, V1, lambda v: v), Migration(1, V1, lambda v: v)]
    )
    handler = make_handler(Mode.AUTHENTICATED)
    forged, _ = _forge_tag(mint(handler, state=state))
    crypto_spy.calls.clear()
    assert kind(load(handler, forged, state=state)) is ErrorKind.AUTHENTICATION_FAILED
    assert crypto_spy.calls.count("HMAC.verify") == 3
    assert "HMAC.finalize" not in crypto_spy.calls


def test_encrypted_verification_is_the_aead_decrypt_and_never_re_encrypts(crypto_spy: CryptoSpy) -> None:
    handler = make_handler(Mode.ENCRYPTED)
    genuine = mint(handler)
    forged, _ = _forge_tag(genuine)
    crypto_spy.calls.clear()
    assert kind(load(handler, forged)) is ErrorKind.AUTHENTICATION_FAILED
    assert kind(load(handler, genuine)) is None
    assert crypto_spy.calls.count("AESGCM.decrypt") == 2
    assert "AESGCM.encrypt" not in crypto_spy.calls
    assert not any(call.startswith("HMAC") for call in crypto_spy.calls)


SECRET_WORDS = ("tag", "mac", "digest", "signature", "sig")


def comparisons_of_secrets(source: str) -> list[str]:
    """``==``/``!=``/``<``/``in``/... comparisons whose operands name a tag, MAC, digest or signature.

    Upper-case names (length constants such as ``_HMAC_TAG``) are not secrets.
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or all(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            continue  # identity tests (``macs is None``) never compare contents
        names: list[str] = []
        for operand in (node.left, *node.comparators):
            for sub in ast.walk(operand):
                if isinstance(sub, ast.Name):
                    names.append(sub.id)
                elif isinstance(sub, ast.Attribute):
                    names.append(sub.attr)
        secret = [n for n in names if not n.lstrip("_").isupper() and any(w in n.lower() for w in SECRET_WORDS)]
        if secret:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_static_check_finds_a_tag_comparison() -> None:
    """Control: the checker does flag the pattern it looks for."""
    assert comparisons_of_secrets("if tag == expected:\n    pass\n") == ["line 1: tag == expected"]
    assert comparisons_of_secrets("ok = mac.finalize() != raw[-32:]\n") != []
    assert comparisons_of_secrets("ok = len(raw) < _HMAC_TAG\n") == []
    assert comparisons_of_secrets("if macs is None:\n    pass\n") == []


def test_no_module_of_clientstate_compares_tag_bytes_with_an_operator() -> None:
    package = Path(inspect.getfile(clientstate)).parent
    found = {
        str(path.relative_to(package)): hits
        for path in sorted(package.rglob("*.py"))
        if (hits := comparisons_of_secrets(path.read_text(encoding="utf-8")))
    }
    assert found == {}
    assert (package / "_core" / "token.py").samefile(clientstate._core.token.__file__)


def test_a_forked_worker_draws_a_new_key_salt() -> None:
    """Workers forked from one parent must not share the parent's salt (and so its nonce space)."""
    codec = make_handler(Mode.ENCRYPTED).codec(ACCOUNT)
    payload = ACCOUNT.encode(ALICE)
    parent_salt = unb64url(codec.seal(payload, T0))[SALT]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the salt its first token uses, then leave at once
        try:
            os.write(write_end, unb64url(codec.seal(payload, T0))[SALT])
        finally:
            os._exit(0)
    os.close(write_end)
    child_salt = os.read(read_end, 64)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert len(child_salt) == 8
    assert child_salt != parent_salt
    assert unb64url(codec.seal(payload, T0))[SALT] == parent_salt  # the parent keeps its own
