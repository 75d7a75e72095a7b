"""Write the seed corpus of ``fuzz_tokens.py`` into ``fuzz/corpus/``.

Run from the repository root: ``.venv/bin/python fuzz/make_corpus.py``. The
authenticated seeds are deterministic; encrypted ones carry a random nonce and
salt, so regenerating them changes those files (any version of them is fine).
Each file is one input in the layout of ``harness.py``: a selector byte, then text.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # for tests.security.support

from harness import ACCOUNT, CHUNKED, CODECS, COOKIE, KEYRING, NOW, Account, AccountV1

from clientstate import client_stored
from clientstate._core.token import Mode, TokenCodec
from clientstate.testing import fixed_keyring
from tests.security.support import seal_raw_inner

CORPUS = Path(__file__).resolve().parent / "corpus"


def _tokens(mode: Mode) -> dict[str, str]:
    codec = CODECS[mode]
    payload = ACCOUNT.encode(Account(7, "alice", ["admin"], sudo_until=NOW + 300.0))
    old = client_stored(fixed_keyring(1), name=COOKIE, encrypted=mode is Mode.ENCRYPTED).codec(ACCOUNT)
    v1 = TokenCodec(fixed_keyring(2), mode, COOKIE, ACCOUNT.name, [1], 4000)

    def raw_inner(inner: bytes) -> str:  # a key holder writing bad inner content
        return seal_raw_inner(KEYRING, mode, COOKIE, ACCOUNT.name, ACCOUNT.version, inner)

    return {
        "valid": codec.seal(payload, NOW - 10),
        "valid-expires": codec.seal(payload, NOW - 10, NOW + 3000),
        "refresh-due": codec.seal(payload, NOW - 700, NOW + 3000),
        "old-key": old.seal(payload, NOW - 10),
        "schema-v1": v1.seal(msgspec.msgpack.encode(AccountV1(5)), NOW - 10),
        "v1-bad-upgrade": v1.seal(msgspec.msgpack.encode(AccountV1(-1)), NOW - 10),
        "banned": codec.seal(ACCOUNT.encode(Account(666, "mallory")), NOW - 10),
        "expired": codec.seal(payload, NOW - 4000, NOW - 400),
        "future": codec.seal(payload, NOW + 4000),
        "bad-flags": raw_inner(b"\x02" + (NOW).to_bytes(8, "big") + payload),
        "short-inner": raw_inner(b"\x01" + (NOW).to_bytes(8, "big")),
        "wrong-type": codec.seal(b"\x81\xa7user_id\xa1x", NOW - 10),
    }


def _chunked_cookies(mode: Mode) -> list[str]:
    """``name=value`` of a genuine two-chunk cookie from the harness's chunked handler."""
    binding = CHUNKED[mode]
    slot = binding.begin([])
    slot.state = Account(3, "c" * 3100)
    lines = [line.split(";", 1)[0] for line in binding.finish(slot)]
    assert len(lines) == 2, len(lines)
    return lines


def seeds() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    auth = _tokens(Mode.AUTHENTICATED)
    enc = _tokens(Mode.ENCRYPTED)
    for name, token in auth.items():
        out[f"auth-{name}"] = b"\x01" + token.encode("ascii")
    for name, token in enc.items():
        out[f"enc-{name}"] = b"\x02" + token.encode("ascii")
    out["auth-too-large"] = b"\x01" + b"A" * 4100
    out["auth-as-enc"] = b"\x02" + auth["valid"].encode("ascii")
    valid = auth["valid"]
    out["header-simple"] = b"\x00" + f"a=1; {COOKIE}={valid}; b=2".encode("ascii")
    out["header-quoted"] = b"\x00" + f'{COOKIE}="{valid}"'.encode("ascii")
    out["header-duplicate"] = b"\x00" + f"{COOKIE}={valid}; {COOKIE}=junk".encode("ascii")
    out["header-two-fields"] = b"\x00" + f"{COOKIE}={valid}\n{COOKIE}={enc['valid']}".encode("ascii")
    out["header-junk"] = b"\x00" + b'; ;=x; noequals; \t a \t=\t"b" ;c="";d="'
    out["header-utf8"] = b"\x04" + "é=ü; cs=\u2603".encode()
    for mode, selector in ((Mode.AUTHENTICATED, b"\x08"), (Mode.ENCRYPTED, b"\x18")):
        lines = _chunked_cookies(mode)
        out[f"chunked-{mode.name.lower()}"] = selector + "\n".join(lines).encode("ascii")
        out[f"chunked-{mode.name.lower()}-one-field"] = selector + "; ".join(lines).encode("ascii")
    # Regression inputs for findings (chunk indices are client-chosen cookie names):
    # cs.100 made a 4-chunk handler answer with 101 Set-Cookie lines; 4400 digits made int() raise.
    out["regression-chunk-index-amplification"] = b"\x08cs.100=x"
    out["regression-chunk-index-4400-digits"] = b"\x18cs." + b"9" * 4400 + b"=x; cs=2.AAAA"
    for text in ("", "A", "QQ", "QR", "QUI", "QUJ", "AAAA", "-_-_", "QQ==", "Q+/=", "é"):
        out[f"b64-{hashlib.sha256(text.encode()).hexdigest()[:8]}"] = b"\x03" + text.encode("latin-1")
    return out


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, data in seeds().items():
        (CORPUS / name).write_bytes(data)
    print(f"wrote {len(seeds())} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
