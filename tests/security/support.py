"""Shared pieces of the adversarial suite: the state, handlers, token minting, request runners.

Everything is deterministic: fixed keys (:func:`clientstate.testing.fixed_keyring`),
a frozen clock, and seeded randomness. The only randomness the library itself
draws is the encryption nonce and key salt.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from clientstate import Keyring, Loaded, RequestCookies, State, asgi, client_stored, get_slot, wsgi
from clientstate._core.errors import ErrorKind
from clientstate._core.token import AUTHENTICATED_OVERHEAD, ENCRYPTED_OVERHEAD, Mode, associated_data
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock, fixed_keyring

#: The instant of every test request unless a test moves its clock.
T0: Final = 1_700_000_000
COOKIE: Final = "cs"
ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
OVERHEAD: Final = {Mode.AUTHENTICATED: AUTHENTICATED_OVERHEAD, Mode.ENCRYPTED: ENCRYPTED_OVERHEAD}


class Account(msgspec.Struct, forbid_unknown_fields=True):
    """The state under attack: who is logged in, their roles, sudo-until."""

    user_id: int
    name: str
    roles: list[str] = []
    sudo_until: float | None = None


ACCOUNT: Final = State("account", Account)
ALICE: Final = Account(1, "alice", ["admin"])
BOB: Final = Account(2, "bob")


def make_handler(mode: Mode, keyring: Keyring | None = None, **options: Any) -> ClientStored:
    """A handler for cookie ``cs`` in ``mode``, under ``fixed_keyring(1)`` unless given."""
    return client_stored(
        fixed_keyring(1) if keyring is None else keyring,
        name=options.pop("name", COOKIE),
        encrypted=mode is Mode.ENCRYPTED,
        **options,
    )


def mint(
    handler: ClientStored,
    value: Any = ALICE,
    issued_at: int = T0,
    expires_at: int | None = None,
    state: State[Any] = ACCOUNT,
) -> str:
    """A genuine token for ``value``, as the server holding the keys would write it."""
    return handler.codec(state).seal(state.encode(value), issued_at, expires_at)


def seal_raw_inner(
    keyring: Keyring, mode: Mode, cookie_name: str, state_name: str, schema_version: int, inner: bytes
) -> str:
    """A token around raw ``inner`` bytes (flags, times, payload), unchecked: a writer holding the key.

    Built from the documented layout of :mod:`clientstate._core.token` with
    ``cryptography`` directly (not through the library's sealing code), so tests
    can play a key holder that writes malformed inner content.
    """
    key = keyring.current
    ad = associated_data(cookie_name, state_name, schema_version)
    if mode is Mode.AUTHENTICATED:
        head = bytes((Mode.AUTHENTICATED, key.key_id)) + inner
        mac = crypto_hmac.HMAC(key.subkey(b"hmac"), hashes.SHA256())
        mac.update(ad + head)
        return b64url(head + mac.finalize())
    salt, nonce = os.urandom(8), os.urandom(12)
    salt_key = HKDFExpand(hashes.SHA256(), 32, b"clientstate/v1/aead-salt/" + salt).derive(key.subkey(b"aead"))
    header = bytes((Mode.ENCRYPTED, key.key_id)) + salt + nonce
    return b64url(header + AESGCM(salt_key).encrypt(nonce, inner, ad + header))


def seal_inner(handler: ClientStored, inner: bytes, state: State[Any] = ACCOUNT) -> str:
    """:func:`seal_raw_inner` for ``handler``'s keyring, mode and cookie, and ``state``'s current version."""
    return seal_raw_inner(handler.keyring, handler.mode, handler.name, state.name, state.version, inner)


def load(handler: ClientStored, token: str, now: float = T0, state: State[Any] = ACCOUNT) -> Loaded[Any]:
    """Load ``state`` from a request whose only cookie is ``cs=<token>``."""
    return handler.load(state, RequestCookies([f"{handler.name}={token}"]), now)


def kind(loaded: Loaded[Any]) -> ErrorKind | None:
    """The error kind of a load (``None`` if it did not fail); a failed load never carries a state."""
    if loaded.error is None:
        return None
    assert loaded.state is None
    return loaded.error.kind


def b64url(data: bytes) -> str:
    """Canonical unpadded base64url, from the standard library (independent of clientstate)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    """The standard library's (lenient) reading of unpadded base64url text."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_canonical(text: str) -> bool:
    """Whether ``text`` is canonical unpadded base64url, by the standard library."""
    if len(text) % 4 == 1 or not set(text) <= set(ALPHABET):
        return False
    return b64url(unb64url(text)) == text


def expected_kind(raw: bytes, mode: Mode, keyring: Keyring) -> ErrorKind:
    """What the documented reading order says about bytes that are *not* a genuine token.

    Version byte first, then the mode's fixed layout, then the key id; anything
    that gets past those must fail authentication.
    """
    if not raw:
        return ErrorKind.MALFORMED
    if raw[0] != mode:
        return ErrorKind.UNSUPPORTED_VERSION
    if len(raw) < OVERHEAD[mode]:
        return ErrorKind.MALFORMED
    if keyring.get(raw[1]) is None:
        return ErrorKind.UNKNOWN_KEY
    return ErrorKind.AUTHENTICATION_FAILED


# --- requests through the middleware -------------------------------------------------------------

#: ``(status, headers with lower-case names, body)``.
Result = tuple[int, list[tuple[str, str]], bytes]


def describe(slot_state: Account | None, error: Any) -> bytes:
    """What the probe apps answer: the error kind (or ``-``) and the loaded user id (or ``-``)."""
    who = "-" if slot_state is None else str(slot_state.user_id)
    return f"{error.kind.value if error else '-'} {who}".encode()


def probe_wsgi(ran: list[str], new_state: Callable[[Any], Any] | None = None) -> Any:
    """A WSGI app that records that it ran, optionally sets a new state, and answers 200."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        slot = get_slot(environ, ACCOUNT)
        ran.append("wsgi")
        body = describe(slot.state, slot.error)
        if new_state is not None:
            slot.state = new_state(slot.state)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return app


def probe_asgi(ran: list[str], new_state: Callable[[Any], Any] | None = None) -> Any:
    """The ASGI twin of :func:`probe_wsgi`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        slot = get_slot(scope, ACCOUNT)
        ran.append("asgi")
        body = describe(slot.state, slot.error)
        if new_state is not None:
            slot.state = new_state(slot.state)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return app


def call_wsgi(app: Any, cookie: str | None, path: str = "/") -> Result:
    """Run a WSGI app for ``GET path`` with ``HTTP_COOKIE`` = ``cookie`` (absent if ``None``)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "https",
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured[:] = [status, headers]
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return int(captured[0].split()[0]), [(k.lower(), v) for k, v in captured[1]], body


def call_asgi(app: Any, cookies: list[bytes], path: str = "/") -> Result:
    """Run an ASGI app for ``GET path`` with one ``cookie`` header field per item of ``cookies``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"test"), *((b"cookie", c) for c in cookies)],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in start["headers"]]
    return start["status"], headers, body


def both_middlewares(
    handler: ClientStored,
    new_state: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[Any, Any, list[str]]:
    """A WSGI and an ASGI probe app, each wrapped by its clientstate middleware, and their shared run log."""
    ran: list[str] = []
    clock = FrozenClock(T0) if clock is None else clock
    return (
        wsgi.setup(ACCOUNT, handler, probe_wsgi(ran, new_state), clock=clock),
        asgi.setup(ACCOUNT, handler, probe_asgi(ran, new_state), clock=clock),
        ran,
    )


def set_cookies(result: Result) -> list[str]:
    """The ``Set-Cookie`` values of a response."""
    return [v for k, v in result[1] if k == "set-cookie"]


def cookie_value(set_cookie: str) -> str:
    """The value of a ``Set-Cookie`` line (``name=value; attrs``)."""
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


# --- tripwires on decoding and cryptography ------------------------------------------------------


class CryptoSpy:
    """Records every base64 decode and every HMAC/AES-GCM/HKDF call clientstate._core.token makes.

    Installed by the ``crypto_spy`` fixture *before* handlers are built (the codec
    creates its HMAC and AES-GCM objects when first used). While :attr:`armed`,
    any recorded call raises, so a test proves a code path does no such work.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.armed = False
        #: Every tag handed to ``HMAC.verify``.
        self.verified: list[bytes] = []

    def hit(self, what: str) -> None:
        self.calls.append(what)
        if self.armed:
            raise AssertionError(f"{what} was called while the tripwire was armed")

    def arm(self) -> None:
        self.calls.clear()
        self.armed = True

    def disarm(self) -> None:
        self.armed = False
