"""Codec implementations: state → cookie value (save) and cookie value → state (load).

Each :class:`Codec` has a zero-argument ``save`` (the state is fixed, see
:mod:`bench.workload`) and a one-argument ``load``. Peers are optional
imports: a missing one is reported by :func:`build_codecs` and skipped.

Floors, built here from the fastest primitives (they carry no timestamps,
key ids or associated data, so they bound what any codec can cost):

* (a) msgspec MessagePack + HMAC-SHA256 (stdlib ``hmac.new``) + base64url;
* (b) msgspec MessagePack + AES-256-GCM (12-byte random nonce) + base64url.

Both encode the :class:`~bench.workload.Session` struct and decode it back into
the struct (typed), which is the job clientstate does.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import sketch
from bench.workload import (
    MAX_AGE,
    PEER_SECRET,
    RAW_KEY,
    STATE,
    VALUE,
    VALUE_DICT,
    handler,
    keyring,
    tamper,
)
from clientstate._core.handler import Loaded
from clientstate._core.token import Opened

__all__ = ["Codec", "build_codecs", "verify"]


def _same(result: Any) -> Any:
    return result


@dataclass
class Codec:
    """One save/load implementation.

    Attributes:
        name: row label.
        kind: ``"clientstate"``, ``"peer"``, ``"floor"``, ``"sketch"`` or ``"ref"``.
        save: returns the cookie value (``str``; ``bytes`` for reference rows).
        load: reads a value; raises, or returns something :attr:`state_of`
            maps to a state other than :attr:`expected`, when it refuses it.
        state_of: maps what ``load`` returns to the state (or ``None``).
        expected: the state a round trip must give back.
        note: what the implementation is, for the notes under the table.
        tamper_check: whether a tampered value must be refused (cookie codecs).
    """

    name: str
    kind: str
    save: Callable[[], str | bytes]
    load: Callable[[Any], Any]
    state_of: Callable[[Any], Any] = field(default=_same)
    expected: Any = field(default_factory=lambda: VALUE_DICT)
    note: str = ""
    tamper_check: bool = True


def verify(codec: Codec) -> str | bytes:
    """Check that ``codec`` round-trips and refuses a tampered value; returns a saved value.

    Raises:
        AssertionError: a mismatch, or a tampered value that loaded.
    """
    value = codec.save()
    got = codec.state_of(codec.load(value))
    assert got == codec.expected, f"{codec.name}: round trip gave {got!r}"
    if codec.tamper_check:
        assert isinstance(value, str)
        try:
            bad = codec.state_of(codec.load(tamper(value)))
        except Exception:  # refused by raising: what most peers do
            return value
        assert bad != codec.expected, f"{codec.name}: tampered value accepted"
    return value


# ----------------------------------------------------------------------------- clientstate


def _clientstate(encrypted: bool) -> list[Codec]:
    h = handler(encrypted=encrypted)
    mode = "encrypted" if encrypted else "authenticated"
    now = time.time()
    fresh: Loaded[Any] = Loaded()  # a login: the state changed from nothing

    def save() -> str:
        return h.seal(STATE, fresh, STATE.encode(VALUE), now)[0]

    def load(value: str) -> Loaded[Any]:
        return h.load_value(STATE, value, now)

    codec = h.codec(STATE)
    payload = STATE.encode(VALUE)
    issued_at = math.floor(now)

    def seal() -> str:
        return codec.seal(payload, issued_at)

    def open_payload(value: str) -> bytes | None:
        opened = codec.open(value)
        return opened.payload if isinstance(opened, Opened) else None

    return [
        Codec(
            f"clientstate {mode}",
            "clientstate",
            save,
            load,
            state_of=lambda loaded: loaded.state,
            expected=VALUE,
            note=f"State.encode + ClientStored.seal / ClientStored.load_value ({mode} mode, "
            "decode into the Struct included)",
        ),
        Codec(
            f"clientstate {mode}, TokenCodec.seal/open only",
            "clientstate",
            seal,
            open_payload,
            expected=payload,
            note="handler.codec(state).seal(payload, issued_at) / .open(value): no state "
            "encode/decode, no time checks",
        ),
    ]


# ----------------------------------------------------------------------------- peers


def _itsdangerous() -> list[Codec]:
    from itsdangerous import URLSafeTimedSerializer

    ser = URLSafeTimedSerializer(PEER_SECRET, salt="bench")
    return [
        Codec(
            "itsdangerous URLSafeTimedSerializer",
            "peer",
            lambda: ser.dumps(VALUE_DICT),
            lambda value: ser.loads(value, max_age=MAX_AGE),
            note="defaults: HMAC-SHA1 (itsdangerous' own key derivation), stdlib json, "
            "timestamp",
        )
    ]


def _django() -> list[Codec]:
    from django.conf import settings
    from django.core import signing

    if not settings.configured:
        settings.configure(SECRET_KEY=PEER_SECRET)
    salt = "django.contrib.sessions.backends.signed_cookies"  # what that backend passes
    return [
        Codec(
            "django.core.signing (signed_cookies backend)",
            "peer",
            lambda: signing.dumps(VALUE_DICT, salt=salt, compress=True),
            lambda value: signing.loads(value, salt=salt, max_age=MAX_AGE),
            note="dumps(compress=True)/loads(max_age) as the signed_cookies session backend "
            "calls them: HMAC-SHA256, zlib if smaller, key derived per call",
        )
    ]


def _flask() -> list[Codec]:
    from flask import Flask

    app = Flask("bench_codec")
    app.secret_key = PEER_SECRET
    interface = app.session_interface
    max_age = int(app.permanent_session_lifetime.total_seconds())

    def save() -> str:
        # Flask builds the serializer in every open_session/save_session call.
        ser = interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        return str(ser.dumps(dict(VALUE_DICT)))

    def load(value: str) -> Any:
        ser = interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        return ser.loads(value, max_age=max_age)

    return [
        Codec(
            "Flask session serializer",
            "peer",
            save,
            load,
            note="SecureCookieSessionInterface.get_signing_serializer(app) per call, as "
            "open/save_session do: TaggedJSON + itsdangerous HMAC-SHA1",
        )
    ]


def _starlette() -> list[Codec]:
    from starlette.middleware.sessions import SessionMiddleware

    signer = SessionMiddleware(_no_app, secret_key=PEER_SECRET).signer

    def save() -> str:
        data = base64.b64encode(json.dumps(VALUE_DICT).encode("utf-8"))
        return str(signer.sign(data).decode("utf-8"))

    def load(value: str) -> Any:
        return json.loads(base64.b64decode(signer.unsign(value.encode("utf-8"), max_age=MAX_AGE)))

    return [
        Codec(
            "Starlette SessionMiddleware internals",
            "peer",
            save,
            load,
            note="the middleware's own steps: json + base64 + itsdangerous TimestampSigner "
            "(HMAC-SHA1)",
        )
    ]


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that is never called (peers' middleware constructors want one)."""


def _litestar() -> list[Codec]:
    from litestar.middleware.session.client_side import (
        ClientSideSessionBackend,
        CookieBackendConfig,
    )

    backend = ClientSideSessionBackend(CookieBackendConfig(secret=RAW_KEY))
    return [
        Codec(
            "Litestar client-side session backend",
            "peer",
            lambda: b"".join(backend.dump_data(VALUE_DICT)).decode("ascii"),
            lambda value: backend.load_data([value.encode("ascii")]),
            note="ClientSideSessionBackend.dump_data/load_data: msgspec JSON + AES-256-GCM, "
            "expiry as plaintext associated data, standard base64",
        )
    ]


def _pyramid() -> list[Codec]:
    from pyramid.session import JSONSerializer
    from webob.cookies import SignedSerializer

    # SignedCookieSessionFactory's defaults: salt "pyramid.session.", HMAC-SHA512, JSON;
    # the cookie holds (renewed, created, state), checked against timeout (1200 s).
    ser = SignedSerializer(PEER_SECRET, "pyramid.session.", "sha512", serializer=JSONSerializer())
    timeout = 1200

    def save() -> str:
        now = time.time()
        return str(ser.dumps((now, now, dict(VALUE_DICT))).decode("latin-1"))

    def load(value: str) -> Any:
        renewed, _created, state = ser.loads(value.encode("latin-1"))
        if time.time() - float(renewed) > timeout:
            return {}
        return state

    return [
        Codec(
            "Pyramid signed cookie session serializer",
            "peer",
            save,
            load,
            note="webob SignedSerializer as SignedCookieSessionFactory configures it: "
            "HMAC-SHA512, JSON, (renewed, created, state)",
        )
    ]


def _fernet() -> list[Codec]:
    from cryptography.fernet import Fernet

    fernet = Fernet(Fernet.generate_key())
    return [
        Codec(
            "Fernet + json",
            "peer",
            lambda: fernet.encrypt(json.dumps(VALUE_DICT, separators=(",", ":")).encode()).decode(
                "ascii"
            ),
            lambda value: json.loads(fernet.decrypt(value, ttl=MAX_AGE)),
            note="cryptography Fernet (AES-128-CBC + HMAC-SHA256, timestamp) of compact json",
        )
    ]


# ----------------------------------------------------------------------------- floors


def _floors() -> list[Codec]:
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(type(VALUE)).decode
    key = RAW_KEY
    b64e = base64.urlsafe_b64encode
    b64d = base64.urlsafe_b64decode

    def hmac_save() -> str:
        payload = encode(VALUE)
        return b64e(payload + hmac.new(key, payload, hashlib.sha256).digest()).decode("ascii")

    def hmac_load(value: str) -> Any:
        raw = b64d(value)
        payload = raw[:-32]
        if not hmac.compare_digest(raw[-32:], hmac.new(key, payload, hashlib.sha256).digest()):
            raise ValueError("bad tag")
        return decode(payload)

    aead = AESGCM(key)

    def gcm_save() -> str:
        nonce = os.urandom(12)
        return b64e(nonce + aead.encrypt(nonce, encode(VALUE), None)).decode("ascii")

    def gcm_load(value: str) -> Any:
        raw = b64d(value)
        return decode(aead.decrypt(raw[:12], raw[12:], None))

    return [
        Codec(
            "FLOOR (a) msgpack + HMAC-SHA256 + base64url",
            "floor",
            hmac_save,
            hmac_load,
            expected=VALUE,
            note="msgspec msgpack of the Struct, hmac.new(key, payload, sha256), "
            "base64.urlsafe_b64encode; load decodes into the Struct",
        ),
        Codec(
            "FLOOR (b) msgpack + AES-256-GCM + base64url",
            "floor",
            gcm_save,
            gcm_load,
            expected=VALUE,
            note="12-byte os.urandom nonce, cryptography AESGCM, no associated data",
        ),
    ]


def _refs() -> list[Codec]:
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(type(VALUE)).decode
    packed = encode(VALUE)
    return [
        Codec(
            "ref: msgspec msgpack encode / typed decode only",
            "ref",
            lambda: encode(VALUE),
            decode,
            expected=VALUE,
            note="no crypto, no base64: the serialization share of the floors",
            tamper_check=False,
        ),
        Codec(
            "ref: empty call (harness overhead)",
            "ref",
            lambda: b"",
            lambda value: packed,
            expected=packed,
            tamper_check=False,
        ),
    ]


def _sketches() -> list[Codec]:
    rows = []
    now = time.time()
    for encrypted in (False, True):
        mode = "encrypted" if encrypted else "authenticated"
        sk = sketch.Sketch(keyring.current, STATE, encrypted=encrypted)
        rows.append(
            Codec(
                f"sketch: clientstate v1 {mode} token, lean code",
                "sketch",
                functools.partial(sk.save, VALUE, now),
                functools.partial(_sketch_load, sk, now),
                state_of=lambda result: None if result is None else result[0],
                expected=VALUE,
                note="bench/sketch.py: the same wire format (tokens interoperate with "
                "clientstate, checked at start) written for speed; what the format costs",
            )
        )
    return rows


def _sketch_load(sk: sketch.Sketch, now: float, value: str) -> sketch.Result:
    return sk.load(value, now)


PEERS: list[tuple[str, Callable[[], list[Codec]]]] = [
    ("itsdangerous", _itsdangerous),
    ("django", _django),
    ("flask", _flask),
    ("starlette", _starlette),
    ("litestar", _litestar),
    ("pyramid", _pyramid),
    ("fernet", _fernet),
]


def build_codecs(include_sketch: bool = True) -> tuple[list[Codec], list[str]]:
    """Every codec, in table order, and a message per skipped peer."""
    codecs = [*_clientstate(False), *_clientstate(True)]
    skipped = []
    for label, build in PEERS:
        try:
            codecs.extend(build())
        except ImportError as exc:
            skipped.append(f"{label}: skipped, not installed ({exc})")
    codecs.extend(_floors())
    if include_sketch:
        sketch.check_interop()
        codecs.extend(_sketches())
    codecs.extend(_refs())
    return codecs, skipped
