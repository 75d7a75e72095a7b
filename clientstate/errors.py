"""The error taxonomy, in one place.

Two families:

* :class:`LoadError` is a *value*, never raised into the application: every way
  a cookie can fail to load (malformed, forged, expired, under an unknown key,
  not decoding into the state's type, ...) becomes a ``LoadError`` whose
  :attr:`LoadError.kind` is one of the stable snake_case strings of
  :class:`ErrorKind`. ``setup()`` hands it to the application next to the
  state (which is then ``None``); it never becomes a 500.
* :class:`ClientStateError` and its subclasses are *exceptions* for developer
  mistakes that must not pass silently: a bad configuration at start-up, a key
  in the wrong text form, a state too large to fit in a cookie at save time.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "ClientStateError",
    "ConfigurationError",
    "CookieTooLarge",
    "ErrorKind",
    "KeyFormatError",
    "LoadError",
    "StateEncodeError",
]


class ErrorKind(enum.StrEnum):
    """Every way loading client state can fail. The values are stable API.

    Members compare equal to their string value, so
    ``error.kind == "expired"`` works as well as
    ``error.kind is ErrorKind.EXPIRED``.
    """

    #: The cookie value is not a token of this library: characters outside the
    #: base64url alphabet, padding, non-canonical base64, too short, a bad
    #: layout inside an authenticated token (reserved flag bits, short prelude),
    #: or a missing/extra chunk.
    MALFORMED = "malformed"
    #: The cookie value is longer than the handler accepts; rejected before any
    #: decoding or cryptography.
    TOO_LARGE = "too_large"
    #: The version byte names a format this handler does not accept (another
    #: mode, or a future version). A token of one mode is never read by the other.
    UNSUPPORTED_VERSION = "unsupported_version"
    #: The key id is not in the keyring (never issued here, or retired).
    UNKNOWN_KEY = "unknown_key"
    #: The HMAC or AEAD check failed: tampered, forged, issued under another
    #: cookie name, state name or schema version, or by another keyring.
    AUTHENTICATION_FAILED = "authentication_failed"
    #: The token's expires-at instant has passed.
    EXPIRED = "expired"
    #: The token is older than the handler's ``max_age`` (measured from issued-at).
    TOO_OLD = "too_old"
    #: The token's issued-at is later than now plus the allowed clock skew.
    ISSUED_IN_FUTURE = "issued_in_future"
    #: The authenticated payload does not decode into the state's type (wrong
    #: types, missing fields, bytes after the MessagePack value).
    STATE_DECODE = "state_decode"
    #: A migration from an older schema version raised or returned a value of
    #: the wrong type.
    MIGRATION_FAILED = "migration_failed"
    #: The request carries more than one cookie with the handler's name; none
    #: is chosen (RFC 6265bis §5.6.3 advises servers not to rely on order).
    AMBIGUOUS = "ambiguous"
    #: The application's validator (revocation hook) refused the loaded state.
    REJECTED = "rejected"


class LoadError:
    """Why a cookie did not load: a value handed to the application.

    Attributes:
        kind: one of :class:`ErrorKind` (a ``str`` subclass, stable snake_case).
        detail: a short English explanation for logs. It never contains key
            material or the cookie value.

    Instances compare equal when their ``kind`` and ``detail`` are equal, and
    are immutable.
    """

    __slots__ = ("detail", "kind")

    kind: ErrorKind
    detail: str

    def __init__(self, kind: ErrorKind, detail: str = "") -> None:
        object.__setattr__(self, "kind", ErrorKind(kind))
        object.__setattr__(self, "detail", detail)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("LoadError is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoadError):
            return NotImplemented
        return self.kind == other.kind and self.detail == other.detail

    def __hash__(self) -> int:
        return hash((self.kind, self.detail))

    def __repr__(self) -> str:
        return f"LoadError({self.kind.value!r}, {self.detail!r})"

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value


# Shared instances for the hot path: errors without a variable detail.
MALFORMED_BASE64: Final = LoadError(ErrorKind.MALFORMED, "not canonical unpadded base64url")
MALFORMED_SHORT: Final = LoadError(ErrorKind.MALFORMED, "token shorter than its fixed layout")
MALFORMED_EMPTY: Final = LoadError(ErrorKind.MALFORMED, "empty cookie value")
AUTH_FAILED: Final = LoadError(
    ErrorKind.AUTHENTICATION_FAILED, "the token did not authenticate under its key"
)
AMBIGUOUS_COOKIE: Final = LoadError(
    ErrorKind.AMBIGUOUS, "more than one cookie with this name in the request"
)


class ClientStateError(Exception):
    """Base class of every exception clientstate raises to the developer."""


class ConfigurationError(ClientStateError, ValueError):
    """A handler, key, cookie attribute or state descriptor is configured wrongly.

    Raised when the object is built (at start-up), never while serving a request.
    """


class KeyFormatError(ConfigurationError):
    """A key or keyring in text form (``CLIENTSTATE_KEYS``) could not be read."""


class StateEncodeError(ClientStateError, TypeError):
    """A state value given to ``save`` cannot be encoded as the state's type.

    Attributes:
        state_name: the :class:`~clientstate.state.State` name.
    """

    def __init__(self, state_name: str, reason: str) -> None:
        self.state_name = state_name
        super().__init__(f"state {state_name!r} cannot be encoded: {reason}")


class CookieTooLarge(ClientStateError):
    """Saving would emit a cookie whose name plus value exceeds the limit.

    Browsers silently ignore a cookie whose name plus value is longer than
    4096 bytes (RFC 6265bis §5.7, "Storage Model" limits), so clientstate
    never emits one.

    Attributes:
        cookie_name: the cookie's name.
        size: length of name plus value, in bytes.
        limit: the limit in bytes (4096 for one cookie).
        max_chunks: for a chunked handler, how many cookies the state may use
            (the state needs more); ``None`` otherwise.
    """

    def __init__(self, cookie_name: str, size: int, limit: int, max_chunks: int | None = None) -> None:
        self.cookie_name = cookie_name
        self.size = size
        self.limit = limit
        self.max_chunks = max_chunks
        if max_chunks is None:
            message = (
                f"cookie {cookie_name!r} would be {size} bytes (name plus value), over the "
                f"{limit}-byte limit browsers enforce; keep less in this state, or opt in "
                f"to splitting it across cookies with client_stored(..., chunked=True)"
            )
        else:
            message = (
                f"state in cookie {cookie_name!r} needs {size} bytes, more than the {max_chunks} "
                f"chunk cookies allowed (max_chunks) hold ({limit} bytes); keep less in this state "
                f"or keep it on the server"
            )
        super().__init__(message)
