"""The fuzz harness: one function, :func:`check_one_input`, over every input-facing parser.

Shared by the atheris target (``fuzz_tokens.py``) and the Hypothesis property
tests (``tests/security/test_fuzzing.py``), so both exercise exactly the
same checks. Nothing here imports atheris.

The first byte of an input selects the target (low two bits) and how the rest
is turned into ``str`` (bit 2):

* target 0: ``Cookie`` header parsing (``parse_cookie_header``, ``RequestCookies``);
  the text is split on ``"\\n"`` into several header fields. With bit 3 set,
  the same fields also go through a *chunked* handler (``client_stored(...,
  chunked=True, max_chunks=4)``; bit 4 picks the mode): load, then the save
  decision, which must never write more than ``max_chunks`` cookies;
* target 1: opening a token in authenticated mode (``TokenCodec.open``,
  ``peek``, ``ClientStored.load`` through ``RequestCookies``, ``Binding``);
* target 2: the same in encrypted mode;
* target 3: ``b64url_decode`` (a result must re-encode to the input exactly,
  and every canonical string must decode).

bit 2 clear: the rest is decoded as latin-1 (as the ASGI adapter and WSGI
servers do, every byte maps to one character); set: as UTF-8 with
``surrogateescape`` (reaches code points above U+00FF and lone surrogates).

No input may raise: any exception, including a failed check (:class:`FuzzFinding`), is a finding.
"""

from __future__ import annotations

import base64
from typing import Final

import msgspec

from clientstate import Binding, Loaded, LoadError, Migration, RequestCookies, State, client_stored
from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate._core.cookies import parse_cookie_header
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode, Opened, Peeked, TokenCodec, peek
from clientstate._handlers.client_stored import ClientStored
from clientstate.testing import FrozenClock, fixed_keyring

__all__ = [
    "ACCOUNT",
    "CHUNKED",
    "CODECS",
    "COOKIE",
    "HANDLERS",
    "KEYRING",
    "NOW",
    "Account",
    "AccountV1",
    "FuzzFinding",
    "check_b64url",
    "check_chunked",
    "check_cookie_headers",
    "check_one_input",
    "check_token",
    "is_canonical_b64url",
]

#: The instant every fuzzed request happens at; seed tokens are issued just before it.
NOW: Final = 1_700_000_000
COOKIE: Final = "cs"
ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

#: Kinds ``TokenCodec.open`` may return (documented in its docstring).
OPEN_KINDS: Final = frozenset(
    {
        ErrorKind.TOO_LARGE,
        ErrorKind.MALFORMED,
        ErrorKind.UNSUPPORTED_VERSION,
        ErrorKind.UNKNOWN_KEY,
        ErrorKind.AUTHENTICATION_FAILED,
    }
)
#: Kinds ``peek`` may return.
PEEK_KINDS: Final = frozenset({ErrorKind.MALFORMED, ErrorKind.UNSUPPORTED_VERSION})


class AccountV1(msgspec.Struct, forbid_unknown_fields=True):
    """Schema version 1: only a user id."""

    user_id: int


class Account(msgspec.Struct, forbid_unknown_fields=True):
    """Schema version 2: the current state type."""

    user_id: int
    name: str
    roles: list[str] = []
    sudo_until: float | None = None


def _upgrade(old: AccountV1) -> Account:
    if old.user_id < 0:
        raise ValueError("negative user id")
    return Account(old.user_id, f"user{old.user_id}")


ACCOUNT: Final = State("account", Account, version=2, migrations=[Migration(1, AccountV1, _upgrade)])
#: Current key 2; key 1 still accepted (rotation path).
KEYRING: Final = fixed_keyring(2, 1)


def _not_banned(value: Account, issued_at: int) -> bool:
    return value.user_id != 666


HANDLERS: Final[dict[Mode, ClientStored]] = {
    mode: client_stored(
        KEYRING,
        name=COOKIE,
        encrypted=mode is Mode.ENCRYPTED,
        expires_in=3_600,
        refresh_after=600,
        validate=_not_banned,
    )
    for mode in Mode
}
CODECS: Final[dict[Mode, TokenCodec]] = {mode: h.codec(ACCOUNT) for mode, h in HANDLERS.items()}
BINDINGS: Final[dict[Mode, Binding[Account]]] = {
    mode: Binding(ACCOUNT, h, FrozenClock(NOW)) for mode, h in HANDLERS.items()
}
MAX_CHUNKS: Final = 4
CHUNKED: Final[dict[Mode, Binding[Account]]] = {
    mode: Binding(
        ACCOUNT,
        client_stored(KEYRING, name=COOKIE, encrypted=mode is Mode.ENCRYPTED, chunked=True, max_chunks=MAX_CHUNKS),
        FrozenClock(NOW),
    )
    for mode in Mode
}


class FuzzFinding(AssertionError):
    """A check of the harness failed: the library broke a documented guarantee."""


def _require(condition: bool, detail: object = "") -> None:
    # Not ``assert``: checks must also hold under ``python -O``.
    if not condition:
        raise FuzzFinding(str(detail))


def is_canonical_b64url(text: str) -> bool:
    """Reference oracle, independent of clientstate: is ``text`` canonical unpadded base64url?"""
    if len(text) % 4 == 1 or not set(text) <= ALPHABET:
        return False
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") == text


def check_b64url(text: str) -> None:
    """``b64url_decode`` returns bytes exactly for canonical input, and they re-encode to it."""
    raw = b64url_decode(text)
    if raw is None:
        _require(not is_canonical_b64url(text), f"canonical text refused: {text!r}")
        return
    _require(type(raw) is bytes, type(raw))
    _require(b64url_encode(raw) == text, f"{text!r} decoded but does not re-encode to itself")
    _require(is_canonical_b64url(text))


def check_cookie_headers(headers: list[str]) -> None:
    """Parsing never raises, and ``RequestCookies`` agrees with ``parse_cookie_header``."""
    pairs: list[tuple[str, str]] = []
    for header in headers:
        for name, value in parse_cookie_header(header):
            _require(type(name) is str and type(value) is str)
            _require(bool(name), "empty cookie name yielded")
            _require(name == name.strip(" \t"), f"untrimmed name {name!r}")
            _require(";" not in name and "=" not in name and ";" not in value)
            _require(name in header and value in header)
            pairs.append((name, value))
    names = list(dict.fromkeys(name for name, _ in pairs))
    parsed = RequestCookies(headers)
    _require(parsed.names() == names)
    for name in names:
        _require(parsed.get_all(name) == [v for n, v in pairs if n == name])
    # A fresh instance takes the lazy path (get_all before any full parse).
    lazy = RequestCookies(headers)
    for name in [COOKIE, *names[:8]]:
        _require(lazy.get_all(name) == [v for n, v in pairs if n == name])
    _require(bool(lazy) == any(headers))


def _check_opened(opened: Opened | LoadError, value: str, codec: TokenCodec) -> None:
    if isinstance(opened, LoadError):
        _require(opened.kind in OPEN_KINDS, opened)
        if opened.kind is ErrorKind.TOO_LARGE:
            _require(len(value) > codec.max_length)
        return
    _require(isinstance(opened, Opened), type(opened))
    # Only a real token opens: canonical, within the limit, our mode, a known key.
    _require(len(value) <= codec.max_length)
    raw = b64url_decode(value)
    if raw is None:
        raise FuzzFinding(f"a non-canonical value opened: {value!r}")
    _require(raw[0] == codec.mode and KEYRING.get(raw[1]) is not None)
    _require(type(opened.payload) is bytes)
    _require(type(opened.issued_at) is int and 0 <= opened.issued_at < 2**64)
    _require(opened.expires_at is None or (type(opened.expires_at) is int and 0 <= opened.expires_at < 2**64))
    _require(opened.key_id == raw[1])
    _require(opened.schema_version in ACCOUNT.versions)


def _check_loaded(loaded: Loaded[Account]) -> None:
    _require(isinstance(loaded, Loaded))
    if loaded.error is not None:
        _require(isinstance(loaded.error, LoadError) and loaded.error.kind in set(ErrorKind))
        _require(loaded.state is None)
    elif loaded.state is not None:
        _require(isinstance(loaded.state, Account))
        _require(loaded.present and loaded.issued_at is not None and loaded.key_id is not None)


def check_token(mode: Mode, value: str) -> None:
    """Open ``value`` as a token of ``mode`` every way a request can; check every result's shape."""
    codec = CODECS[mode]
    _check_opened(codec.open(value), value, codec)

    peeked = peek(value)
    if isinstance(peeked, LoadError):
        _require(peeked.kind in PEEK_KINDS, peeked)
    else:
        _require(isinstance(peeked, Peeked) and peeked.mode in set(Mode) and 0 <= peeked.key_id <= 255)

    handler = HANDLERS[mode]
    direct = handler.load_value(ACCOUNT, value, NOW)
    _check_loaded(direct)

    # Through a Cookie header, as the middleware would see it, then the save decision.
    binding = BINDINGS[mode]
    slot = binding.begin([f"{COOKIE}={value}"])
    _check_loaded(slot.loaded)
    set_cookies = binding.finish(slot)
    _require(isinstance(set_cookies, list) and all(type(s) is str for s in set_cookies))
    _require(len(set_cookies) <= 1)
    if set_cookies:
        _require(set_cookies[0].startswith(f"{COOKIE}="))


def check_chunked(mode: Mode, headers: list[str]) -> None:
    """A chunked handler loads any header fields into a ``Loaded`` and answers with at most ``max_chunks`` lines."""
    binding = CHUNKED[mode]
    slot = binding.begin(headers)
    _check_loaded(slot.loaded)
    lines = binding.finish(slot)
    _require(isinstance(lines, list) and all(type(s) is str for s in lines))
    _require(len(lines) <= MAX_CHUNKS, f"{len(lines)} Set-Cookie lines for a {MAX_CHUNKS}-chunk handler")


def _text(selector: int, rest: bytes) -> str:
    if selector & 0x04:
        return rest.decode("utf-8", "surrogateescape")
    return rest.decode("latin-1")


def check_one_input(data: bytes) -> None:
    """Run one fuzz input (see the module docstring for its layout). Never raises on a correct library."""
    if not data:
        return
    selector = data[0]
    text = _text(selector, data[1:])
    target = selector & 0x03
    if target == 0:
        check_cookie_headers(text.split("\n"))
        if selector & 0x08:
            check_chunked(Mode.ENCRYPTED if selector & 0x10 else Mode.AUTHENTICATED, text.split("\n"))
    elif target == 1:
        check_token(Mode.AUTHENTICATED, text)
    elif target == 2:
        check_token(Mode.ENCRYPTED, text)
    else:
        check_b64url(text)
