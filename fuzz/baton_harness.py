"""The baton fuzz harness: :func:`check_one_input` over baton parsing and ``Streams.resume``.

Shared by the atheris target ``fuzz_batons.py`` and the Hypothesis tests in
``tests/batons/test_fuzz.py``; nothing here imports atheris. Stream ids are
random per process, so inputs cannot carry genuine batons: targets 1–3 derive
their baton from the harness's live streams instead.

The first byte of an input selects the target (low two bits); bit 2 picks how
the rest becomes text (clear: latin-1, set: UTF-8 with ``surrogateescape``):

* target 0: the text itself is the baton: ``decode``, ``peek_baton``,
  ``resume`` as both principals, and ``kill`` (on a registry of tombstones);
* target 1: the rest **XORs** alice's current baton bytes (a zero mask gives
  the genuine baton; bytes past 58 extend it); with bit 3 set the baton is
  first truncated to the rest's length;
* target 2: alice's current baton presented with ``scope`` and ``principal``
  taken from the text (``scope\\nprincipal``);
* target 3: the second byte picks a position in alice's current baton text,
  and the text from the third byte on replaces that many characters there.

Checks: nothing raises; every refusal is a documented ``BatonErrorKind``; a
stream resumes only for its genuine current baton with its own principal and
scope (then the harness releases it and keeps the new baton); no stream is
left busy and no resource is ever ended.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate.batons import Baton, BatonError, BatonErrorKind, Limits, Stream, Streams, peek_baton
from clientstate.batons.baton import BATON_BYTES, BATON_CHARS, decode
from clientstate.testing import FrozenClock, fixed_keyring

__all__ = ["FuzzFinding", "check_one_input", "current", "seeds"]

NOW: Final = 1_000.0
SCOPE: Final = "db"
PRINCIPALS: Final = ("alice", "bob")
KINDS: Final = frozenset(BatonErrorKind)


class FuzzFinding(AssertionError):
    """A check failed: the library broke a documented guarantee."""


def _require(condition: bool, detail: object = "") -> None:
    if not condition:  # not ``assert``: checks must hold under ``python -O``
        raise FuzzFinding(str(detail))


class _Resource:
    def __init__(self) -> None:
        self.ended = False

    def rollback(self) -> None:
        self.ended = True

    def close(self) -> None:
        self.ended = True


def _giving(resource: _Resource) -> Callable[[bool], _Resource]:
    return lambda read_only: resource


def _build() -> tuple[Streams[_Resource], dict[str, str], list[_Resource], Streams[_Resource]]:
    # alice's stream starts under key 1, then the keyring rotates: her batons go through the rotation path.
    streams: Streams[_Resource] = Streams(fixed_keyring(1), Limits(idle_timeout=3600, max_lifetime=3600),
                                          clock=FrozenClock(NOW))
    batons: dict[str, str] = {}
    resources: list[_Resource] = []
    for principal in PRINCIPALS:
        resource = _Resource()
        stream = streams.open(_giving(resource), principal=principal, scope=SCOPE)
        _require(isinstance(stream, Stream))
        assert isinstance(stream, Stream)
        baton = streams.release(stream)
        assert isinstance(baton, str)
        batons[principal] = baton
        resources.append(resource)
        if principal == "alice":
            streams.rotate(fixed_keyring(2, 1))
    graveyard: Streams[_Resource] = Streams(fixed_keyring(2), clock=FrozenClock(NOW))
    for _ in range(3):
        stream = graveyard.open(lambda read_only: _Resource(), principal="carol", scope=SCOPE)
        assert isinstance(stream, Stream)
        graveyard.close(stream)
    return streams, batons, resources, graveyard


STREAMS, CURRENT, RESOURCES, GRAVEYARD = _build()


def current(principal: str = "alice") -> str:
    """The current genuine baton of ``principal``'s stream."""
    return CURRENT[principal]


def _present(baton: object, scope: str, principal: str) -> None:
    """Resume; check the result; release a resumed stream and remember its next baton."""
    result = STREAMS.resume(baton, scope=scope, principal=principal)
    if isinstance(result, BatonError):
        _require(result.kind in KINDS, result)
        _require(result.kind is not BatonErrorKind.STREAM_BUSY, "a stream was left busy")
        genuine = baton == CURRENT.get(principal) and scope == SCOPE
        _require(not genuine, f"the genuine baton of {principal} was refused: {result}")
        return
    _require(isinstance(result, Stream), type(result))
    _require(result.principal == principal and result.scope == scope == SCOPE, "resumed for the wrong owner")
    _require(baton == CURRENT[principal], f"a non-genuine baton resumed {principal}'s stream: {baton!r}")
    nxt = STREAMS.release(result)
    _require(isinstance(nxt, str) and nxt != baton, nxt)
    assert isinstance(nxt, str)
    CURRENT[principal] = nxt
    fields = peek_baton(nxt)
    _require(isinstance(fields, Baton) and fields.key_id == 2, f"not re-issued under the current key: {fields}")


def _check_text(value: str) -> None:
    raw = decode(value)
    if isinstance(raw, BatonError):
        _require(raw.kind is BatonErrorKind.BAD_BATON, raw)
        _require(isinstance(peek_baton(value), BatonError))
    else:
        _require(len(value) == BATON_CHARS and len(raw) == BATON_BYTES and b64url_encode(raw) == value)
    for principal in PRINCIPALS:
        _present(value, SCOPE, principal)
    killed = GRAVEYARD.kill(value)
    _require(isinstance(killed, BatonError) and killed.kind in {BatonErrorKind.BAD_BATON,
                                                               BatonErrorKind.STREAM_EXPIRED}, killed)


def _xor(rest: bytes, truncate: bool) -> str:
    data = b64url_decode(CURRENT["alice"])
    assert data is not None
    if truncate:
        data = data[: len(rest)]
    mixed = bytes(a ^ b for a, b in zip(data, rest.ljust(len(data), b"\0"), strict=False))
    return b64url_encode(mixed + rest[len(data):])


def check_one_input(data: bytes) -> None:
    """Run one fuzz input (layout in the module docstring). Never raises on a correct library."""
    if not data:
        return
    selector, rest = data[0], data[1:]
    text = rest.decode("utf-8", "surrogateescape") if selector & 0x04 else rest.decode("latin-1")
    target = selector & 0x03
    if target == 0:
        _check_text(text)
    elif target == 1:
        _check_text(_xor(rest, bool(selector & 0x08)))
    elif target == 2:
        scope, _, principal = text.partition("\n")
        _present(CURRENT["alice"], scope, principal)
    else:
        baton = CURRENT["alice"]
        at = rest[0] % (BATON_CHARS + 1) if rest else 0
        replacement = text[1:]
        _check_text(baton[:at] + replacement + baton[at + len(replacement):])
    for info in STREAMS.list():
        _require(not info.busy, f"stream of {info.principal} left busy")
    _require(len(STREAMS.list()) == len(PRINCIPALS) and not any(r.ended for r in RESOURCES), "a stream ended")


def seeds() -> dict[str, bytes]:
    """The seed corpus: one input per interesting path (see ``corpus-batons/``)."""
    return {
        "text-junk": b"\x00" + b"A" * BATON_CHARS,
        "text-short": b"\x00AQE",
        "text-padding": b"\x00" + b"A" * 76 + b"==",
        "text-utf8": b"\x04" + "é".encode() * 39,
        "xor-genuine": b"\x01" + bytes(BATON_BYTES),
        "xor-version": b"\x01\x03",
        "xor-key-id": b"\x01\x00\x01",
        "xor-stream-id": b"\x01" + bytes(10) + b"\x80",
        "xor-generation": b"\x01" + bytes(25) + b"\x01",
        "xor-tag": b"\x01" + bytes(57) + b"\x01",
        "xor-extend": b"\x01" + bytes(BATON_BYTES) + b"\x00",
        "xor-truncate": b"\x09" + bytes(40),
        "owner": b"\x02db\nalice",
        "thief": b"\x02db\nmallory",
        "other-scope": b"\x02other\nalice",
        "empty-principal": b"\x02db\n",
        "replace-start": b"\x03\x00B",
        "replace-middle": b"\x03\x27_-",
        "replace-end": b"\x03\x4eAA",
    }


if __name__ == "__main__":  # writes the seed corpus: .venv/bin/python fuzz/baton_harness.py
    corpus = Path(__file__).resolve().parent / "corpus-batons"
    corpus.mkdir(exist_ok=True)
    for name, seed in seeds().items():
        (corpus / name).write_bytes(seed)
    print(f"wrote {len(seeds())} seeds to {corpus}", file=sys.stderr)
