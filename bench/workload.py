"""The realistic state every implementation stores, and the keys and secrets used.

The state is what a logged-in user of a small shop carries: user id, display
name, roles, a CSRF token, a sudo-until instant and a three-line cart. As
compact JSON it is about 270 bytes. clientstate stores it as the
:class:`Session` ``msgspec.Struct``; the peers store the equivalent ``dict``
(:data:`VALUE_DICT`), which is what they accept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from typing import Any, Final

import msgspec

from clientstate import ClientStored, Keyring, State, client_stored, generate_key

__all__ = [
    "COOKIE_NAME",
    "MAX_AGE",
    "OTHER_COOKIES",
    "PEER_SECRET",
    "RAW_KEY",
    "STATE",
    "VALUE",
    "VALUE_DICT",
    "CartItem",
    "Session",
    "bump_cart",
    "bump_cart_dict",
    "child_env",
    "foreign_tokens",
    "handler",
    "keyring",
    "size_info",
    "tamper",
]


class CartItem(msgspec.Struct):
    """One cart line."""

    sku: str
    qty: int
    price_cents: int


class Session(msgspec.Struct):
    """The benchmark state: who is logged in, what they may do, what they are buying."""

    user_id: int
    name: str
    roles: list[str]
    csrf: str
    sudo_until: float | None
    cart: list[CartItem]


#: The cookie name every implementation uses (the peers' default).
COOKIE_NAME: Final = "session"
#: Lifetime given to peers that need one (14 days, Starlette's default).
MAX_AGE: Final = 14 * 24 * 3600
#: Other cookies a browser sends alongside the session (the same for everyone).
OTHER_COOKIES: Final = "_ga=GA1.1.1402719885.1764450000; theme=dark; consent=analytics%3Dno"

# A fixed CSRF token (43 url-safe characters, as secrets.token_urlsafe(32) gives),
# so that sizes are the same from run to run.
_CSRF = base64.urlsafe_b64encode(hashlib.sha256(b"bench csrf").digest()).decode().rstrip("=")

VALUE: Final = Session(
    user_id=48213,
    name="Ada Lovelace",
    roles=["admin", "editor"],
    csrf=_CSRF,
    sudo_until=1764460000.0,
    cart=[
        CartItem("SKU-1042", 2, 1299),
        CartItem("SKU-0077", 1, 4500),
        CartItem("GIFT-CARD", 1, 2500),
    ],
)
#: The same state as plain JSON-compatible data, for the peers.
VALUE_DICT: Final[dict[str, Any]] = msgspec.to_builtins(VALUE)

#: clientstate's state descriptor.
STATE: Final = State("session", Session)

# Secrets are drawn per run; server processes started by bench/http_real.py get the
# parent's through these variables (see child_env), so cookies made on either side load.
_ENV_KEYS: Final = "CLIENTSTATE_BENCH_KEYS"
_ENV_PEER: Final = "CLIENTSTATE_BENCH_PEER_SECRET"
_ENV_RAW: Final = "CLIENTSTATE_BENCH_RAW_KEY"

#: A string secret for the peers keyed by strings.
PEER_SECRET: Final = os.environ.get(_ENV_PEER) or "bench-" + secrets.token_urlsafe(48)
#: 32 random bytes for the floors and the AEAD peers.
RAW_KEY: Final = bytes.fromhex(os.environ[_ENV_RAW]) if os.environ.get(_ENV_RAW) else os.urandom(32)

keyring: Final = Keyring.from_text(os.environ[_ENV_KEYS]) if os.environ.get(_ENV_KEYS) else Keyring(generate_key(1))


def child_env() -> dict[str, str]:
    """Environment variables that give a child process this process's keys and secrets."""
    return {_ENV_KEYS: keyring.to_text(), _ENV_PEER: PEER_SECRET, _ENV_RAW: RAW_KEY.hex()}


def handler(*, encrypted: bool = False) -> ClientStored:
    """A clientstate client-stored handler for :data:`COOKIE_NAME` with the library's defaults.

    Defaults are what users run: ``expires_in`` 30 days (checked from issued-at),
    ``refresh_after="auto"``, ``Path=/; Secure; HttpOnly; SameSite=Lax`` and a
    ``Max-Age`` on every ``Set-Cookie``.
    """
    return client_stored(keyring, name=COOKIE_NAME, encrypted=encrypted)


def foreign_tokens(count: int, value: Any = VALUE) -> list[str]:
    """Encrypted tokens for ``value`` as ``count`` other processes write them: one key salt each.

    Every encrypting handler draws its own random key salt (as every server
    process does), so a reader meets a salt it has not derived a subkey for the
    first time it sees a token from another process.
    """
    from clientstate._core.handler import Loaded

    now = time.time()
    tokens = []
    for _ in range(count):
        writer = handler(encrypted=True)
        tokens.append(writer.seal(STATE, Loaded(), STATE.encode(value), now)[0])
    return tokens


def bump_cart(value: Session) -> Session:
    """The "changing" request's edit: one more of the first cart line (a new value every time)."""
    first, *rest = value.cart
    return msgspec.structs.replace(
        value, cart=[msgspec.structs.replace(first, qty=first.qty + 1), *rest]
    )


def bump_cart_dict(session: Any) -> None:
    """:func:`bump_cart` for a peer's dict-like session, assigned so the peer sees the change."""
    cart = [dict(line) for line in session["cart"]]
    cart[0]["qty"] += 1
    session["cart"] = cart


def tamper(value: str) -> str:
    """``value`` with its middle character replaced by another base64 character."""
    i = len(value) // 2
    return value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]


def size_info() -> dict[str, int]:
    """Sizes of the state in the encodings involved, in bytes."""
    return {
        "json_compact": len(json.dumps(VALUE_DICT, separators=(",", ":"))),
        "json_default": len(json.dumps(VALUE_DICT)),
        "msgpack_struct": len(STATE.encode(VALUE)),
    }
