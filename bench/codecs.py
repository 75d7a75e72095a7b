"""Codec implementations: state → cookie value (save) and cookie value → state (load).

Each :class:`Codec` has a zero-argument ``save`` (the state is fixed, see
:mod:`bench.workload`) and a one-argument ``load``. Peers are optional
imports: a missing one is reported by :func:`build_codecs` and skipped.

Floors: the least work that does a cookie codec's job (typed state in, a
cookie-safe string out that nobody without the key can forge or, for (b),
read; the state back, typed, from such a string, forgeries refused). They carry
no timestamps, key ids or associated data, so they bound what any codec can
cost:

* (a) msgspec MessagePack + pre-keyed HMAC-SHA256 + base64url;
* (b) msgspec MessagePack + AES-256-GCM (12-byte random nonce) + base64url.

Each is built several ways (three HMAC-SHA256 constructions from
``cryptography``, ``hashlib`` and ``hmac``; two random-nonce sources) and the
report takes the fastest of each in the run as the floor. base64url is
``binascii`` plus one ``bytes.translate`` each way, the fastest correct
base64url in CPython (the ``ref: base64url`` rows compare the others). The
floors of earlier reports are kept as ``ref: OLD floor`` rows.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import sketch
from bench.workload import (
    MAX_AGE,
    PEER_SECRET,
    RAW_KEY,
    STATE,
    VALUE,
    VALUE_DICT,
    foreign_tokens,
    handler,
    keyring,
    tamper,
)
from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.handler import Loaded
from clientstate._core.token import Opened

__all__ = [
    "FLOOR_A",
    "FLOOR_B",
    "Codec",
    "b64url_fast_decode",
    "b64url_fast_encode",
    "build_codecs",
    "verify",
]

#: Row-name prefixes of the floor candidates.
FLOOR_A: Final = "FLOOR (a) msgpack + HMAC-SHA256 + base64url"
FLOOR_B: Final = "FLOOR (b) msgpack + AES-256-GCM + base64url"
#: Processes whose encrypted tokens make the "other processes" load mix (8 workers: 7 others + this one).
OTHER_PROCESSES: Final = 7
#: More distinct key salts than a reader caches subkeys for (256), so every load derives one.
UNSEEN_SALTS: Final = 300


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
        floor: ``"a"`` or ``"b"`` for the floor candidates, else ``""``.
        values: for load-only rows, the cookie values ``load`` is timed on, in
            turn (``save`` then only gives one for the checks).
    """

    name: str
    kind: str
    save: Callable[[], str | bytes]
    load: Callable[[Any], Any]
    state_of: Callable[[Any], Any] = field(default=_same)
    expected: Any = field(default_factory=lambda: VALUE_DICT)
    note: str = ""
    tamper_check: bool = True
    floor: str = ""
    values: list[str] | None = None

    @property
    def load_only(self) -> bool:
        """Whether only ``load`` is timed (``values`` set)."""
        return self.values is not None


def verify(codec: Codec) -> str | bytes:
    """Check that ``codec`` round-trips and refuses a tampered value; returns a saved value.

    Raises:
        AssertionError: a mismatch, or a tampered value that loaded.
    """
    value = codec.save()
    got = codec.state_of(codec.load(value))
    assert got == codec.expected, f"{codec.name}: round trip gave {got!r}"
    for other in codec.values or ():
        got = codec.state_of(codec.load(other))
        assert got == codec.expected, f"{codec.name}: {other!r} loaded as {got!r}"
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

    rows = [
        Codec(
            f"clientstate {mode}",
            "clientstate",
            save,
            load,
            state_of=lambda loaded: loaded.state,
            expected=VALUE,
            note=f"State.encode + ClientStored.seal / ClientStored.load_value ({mode} mode, "
            "library defaults, decode into the Struct included); load reads a token this process "
            "wrote",
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
    if encrypted:
        own = save()
        mixed = [*foreign_tokens(OTHER_PROCESSES), own]
        unseen = foreign_tokens(UNSEEN_SALTS)
        for label, values, note in (
            (f"tokens of {OTHER_PROCESSES + 1} processes in turn", mixed,
             f"a deployment of {OTHER_PROCESSES + 1} workers: {OTHER_PROCESSES} tokens written by "
             "other processes (their own key salts) and one by this one, loaded in turn; each "
             "salt's subkey is derived once, then cached"),
            ("a salt never seen (subkey derived)", unseen,
             f"{UNSEEN_SALTS} tokens of as many processes in turn, more than the 256 subkeys a "
             "reader caches: every load derives the salt's subkey (HKDF) and builds its AESGCM; "
             "the worst case, e.g. the first request after a restart"),
        ):
            rows.append(Codec(
                f"clientstate encrypted, load only: {label}", "clientstate", save, load,
                state_of=lambda loaded: loaded.state, expected=VALUE, note=note, values=values,
            ))
    return rows


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

#: base64url without the ``base64`` module's Python layer: one C call and one ``bytes.translate``.
_TO_URL: Final = bytes.maketrans(b"+/", b"-_")
_FROM_URL: Final = bytes.maketrans(b"-_", b"+/")


def b64url_fast_encode(data: bytes) -> str:
    """base64url of ``data``, padded (``=`` is a legal cookie-value character): the least work."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).decode("ascii")


def b64url_fast_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_fast_encode`; strict (refuses characters outside the alphabet).

    Raises:
        binascii.Error: not base64url.
        UnicodeEncodeError: not ASCII.
    """
    return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URL), strict_mode=True)


class _NoncePool:
    """12-byte AES-GCM nonces sliced from one ``os.urandom`` call per 1024 nonces.

    The same CSPRNG output as ``os.urandom(12)`` per token, with the system call
    amortised; the pool is dropped in a forked child, so two processes never
    share it. (clientstate draws ``os.urandom(12)`` per token.)
    """

    __slots__ = ("at", "buf", "pid")

    SIZE: Final = 12 * 1024

    def __init__(self) -> None:
        self.pid = 0
        self.buf = b""
        self.at = self.SIZE

    def next(self) -> bytes:
        """The next nonce."""
        at = self.at
        if at == self.SIZE or self.pid != os.getpid():
            self.pid, self.buf, at = os.getpid(), os.urandom(self.SIZE), 0
        self.at = at + 12
        return self.buf[at : at + 12]


def _hmac_candidates(key: bytes) -> list[tuple[str, str, Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]]:
    """``(label, note, tag(payload), check(payload, tag))`` for each pre-keyed HMAC-SHA256 construction.

    All give the same tag (checked); the floor is whichever is fastest in the run.
    """
    # cryptography (what clientstate uses): one HMAC object keyed once, copied per call.
    keyed = crypto_hmac.HMAC(key, hashes.SHA256())

    def crypto_tag(payload: bytes) -> bytes:
        mac = keyed.copy()
        mac.update(payload)
        return mac.finalize()

    def crypto_check(payload: bytes, tag: bytes) -> bool:
        mac = keyed.copy()
        mac.update(payload)
        try:
            mac.verify(tag)  # constant time
        except InvalidSignature:
            return False
        return True

    # hashlib: the HMAC inner and outer SHA-256 states after the padded key, copied per call.
    block = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hashlib_tag(payload: bytes) -> bytes:
        i = inner.copy()
        i.update(payload)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    def hashlib_check(payload: bytes, tag: bytes) -> bool:
        return hmac.compare_digest(hashlib_tag(payload), tag)

    # stdlib hmac: an HMAC object keyed once (OpenSSL's HMAC underneath), copied per call.
    std = hmac.new(key, digestmod="sha256")

    def stdlib_tag(payload: bytes) -> bytes:
        mac = std.copy()
        mac.update(payload)
        return mac.digest()

    def stdlib_check(payload: bytes, tag: bytes) -> bool:
        return hmac.compare_digest(stdlib_tag(payload), tag)

    probe = os.urandom(250)
    want = hmac.digest(key, probe, "sha256")
    candidates: list[tuple[str, str, Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]] = [
        ("cryptography HMAC keyed once, .copy()", "cryptography.hazmat HMAC(key, SHA256()) built "
         "once; per call .copy(), update, finalize / verify (constant time)", crypto_tag, crypto_check),
        ("hashlib ipad/opad states, .copy()", "hashlib.sha256 inner and outer states after the "
         "padded key, built once; per call two .copy() + update + digest; hmac.compare_digest",
         hashlib_tag, hashlib_check),
        ("stdlib hmac keyed once, .copy()", "hmac.new(key, digestmod='sha256') built once; per call "
         ".copy(), update, digest; hmac.compare_digest", stdlib_tag, stdlib_check),
    ]
    for label, _note, tag, check in candidates:
        assert tag(probe) == want, label
        assert check(probe, want), label
        assert not check(probe, bytes(32)), label
    return candidates


def _floors() -> list[Codec]:
    """Floor (a) per HMAC construction, floor (b) per nonce source: the run takes the fastest of each."""
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(type(VALUE)).decode
    key = RAW_KEY
    b64e, b64d = b64url_fast_encode, b64url_fast_decode
    out = []

    for label, note, tag, check in _hmac_candidates(key):

        def hmac_save(tag: Callable[[bytes], bytes] = tag) -> str:
            payload = encode(VALUE)
            return b64e(payload + tag(payload))

        def hmac_load(value: str, check: Callable[[bytes, bytes], bool] = check) -> Any:
            raw = b64d(value)
            payload = raw[:-32]
            if not check(payload, raw[-32:]):
                raise ValueError("bad tag")
            return decode(payload)

        out.append(Codec(
            f"{FLOOR_A} [{label}]", "floor", hmac_save, hmac_load, expected=VALUE, floor="a",
            note=f"msgspec msgpack of the Struct ‖ HMAC-SHA256 tag, base64url by binascii + "
            f"bytes.translate; {note}; load decodes into the Struct",
        ))

    aead = AESGCM(key)
    pool = _NoncePool()
    for label, note, nonce_of in (
        ("os.urandom(12) nonce", "a fresh os.urandom(12) per token (what clientstate does)",
         functools.partial(os.urandom, 12)),
        ("pooled os.urandom nonce", "nonces sliced from one os.urandom call per 1024 tokens "
         "(dropped after fork)", pool.next),
    ):

        def gcm_save(nonce_of: Callable[[], bytes] = nonce_of) -> str:
            nonce = nonce_of()
            return b64e(nonce + aead.encrypt(nonce, encode(VALUE), None))

        def gcm_load(value: str) -> Any:
            raw = b64d(value)
            return decode(aead.decrypt(raw[:12], raw[12:], None))

        out.append(Codec(
            f"{FLOOR_B} [{label}]", "floor", gcm_save, gcm_load, expected=VALUE, floor="b",
            note=f"cryptography AESGCM(key) built once, no associated data, {note}; base64url as "
            "floor (a)",
        ))
    return out


def _old_floors() -> list[Codec]:
    """The floors of earlier reports, kept as labelled reference rows (they are not floors)."""
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
            "ref: OLD floor (a), hmac.new per call + base64 module",
            "ref",
            hmac_save,
            hmac_load,
            expected=VALUE,
            note="the floor (a) of earlier reports: hmac.new(key, payload, sha256) keys HMAC anew "
            "on every call, and base64.urlsafe_b64encode/decode add a Python layer; not a floor",
        ),
        Codec(
            "ref: OLD floor (b), AES-GCM + base64 module",
            "ref",
            gcm_save,
            gcm_load,
            expected=VALUE,
            note="the floor (b) of earlier reports: as floor (b) with base64.urlsafe_b64encode/decode",
        ),
    ]


def _b64_refs() -> list[Codec]:
    """base64url alone, each way CPython offers, on the raw bytes of a clientstate token."""
    raw = b64url_decode(clientstate_token_for_refs())
    assert raw is not None

    def std_save() -> str:
        return base64.urlsafe_b64encode(raw).decode("ascii")

    return [
        Codec("ref: base64url, binascii + bytes.translate (the floors')", "ref",
              lambda: b64url_fast_encode(raw), b64url_fast_decode, expected=raw, tamper_check=False,
              note="b2a_base64 + translate / translate + a2b_base64(strict_mode=True), padded"),
        Codec("ref: base64url, base64.urlsafe_b64encode/decode", "ref", std_save,
              base64.urlsafe_b64decode, expected=raw, tamper_check=False,
              note="the same C calls under the base64 module's Python functions"),
        Codec("ref: base64url, clientstate canonical unpadded", "ref", lambda: b64url_encode(raw),
              b64url_decode, expected=raw, tamper_check=False,
              note="clientstate._core.base64url: strips '=' and refuses every non-canonical spelling"),
    ]


def clientstate_token_for_refs() -> str:
    """An authenticated clientstate token (for the base64url reference rows)."""
    return handler().seal(STATE, Loaded(), STATE.encode(VALUE), time.time())[0]


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
    codecs.extend(_old_floors())
    codecs.extend(_b64_refs())
    codecs.extend(_refs())
    return codecs, skipped
