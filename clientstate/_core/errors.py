"""The error taxonomy, in one place.

Two families:

* :class:`LoadError` is a *value*, never raised into the application: every way
  a cookie can fail to load (malformed, forged, expired, under an unknown key,
  not decoding into the state's type, ...) becomes a ``LoadError`` whose
  :attr:`LoadError.kind` is one of the stable snake_case strings of
  :class:`ErrorKind`. ``setup()`` hands it to the application next to the
  state (which is then ``None``); it never becomes a 500.
* :class:`ClientStateError` and its subclasses are *exceptions* for developer
  mistakes that must not pass silently: a bad configuration, a key in the
  wrong text form, a state that does not encode or does not fit in a cookie,
  a state assigned after the response's headers were sent. Each is raised at
  the line that caused it.
"""

from __future__ import annotations

import enum
from typing import Final

from clientstate._core.value import Value

__all__ = [
    "ClientStateError",
    "ConfigurationError",
    "CookieTooLarge",
    "ErrorKind",
    "KeyFormatError",
    "LoadError",
    "StateEncodeError",
    "StateNotWritable",
    "StateTooLarge",
    "StoreUnavailable",
]


class ErrorKind(enum.StrEnum):
    """Every way loading state can fail. The values are stable API.

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
    #: The token's lifetime is over: past the expires-at written into it, or
    #: past issued-at plus the handler's current ``expires_in``, whichever is
    #: earlier.
    EXPIRED = "expired"
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
    #: Server-stored: the store did not answer (down, unreachable, or past its
    #: timeout). The cookie is kept, so a blip logs nobody out.
    STORE_UNAVAILABLE = "store_unavailable"
    #: Server-stored: the session's idle or absolute deadline has passed.
    SESSION_EXPIRED = "session_expired"
    #: Server-stored: the cookie is genuine but the store holds no such session
    #: (deleted: a logout, "log out everywhere", or swept after expiry).
    UNKNOWN_SESSION = "unknown_session"
    #: Server-stored: the cookie names an id the session was rotated away from
    #: (past the rotation grace, or rotated by a login, whose old id never
    #: serves the state). The browser holds, or is being sent, the new cookie,
    #: so the response leaves the cookie alone unless the application assigns
    #: ``None`` (a logout).
    SESSION_MOVED = "session_moved"
    #: Live sessions: the session is live on another connection right now.
    SESSION_IN_USE = "session_in_use"
    #: Server-stored: the stored state was written for a type of another shape
    #: at the same schema version (its fingerprint differs); bump the version
    #: and add a migration when a type changes.
    SCHEMA_MISMATCH = "schema_mismatch"


class LoadError(Value, frozen=True):
    """Why state did not load: a value handed to the application, never raised.

    Attributes:
        kind: one of :class:`ErrorKind` (a ``str`` subclass, stable snake_case).
        detail: a short English explanation for logs. It never contains key
            material or the cookie value.

    Frozen; instances compare equal when ``kind`` and ``detail`` are equal.
    """

    kind: ErrorKind
    detail: str = ""

    def __post_init__(self) -> None:
        if type(self.kind) is not ErrorKind:
            Value.force(self, "kind", ErrorKind(self.kind))

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
    """clientstate is configured or called wrongly.

    Raised at start-up where the mistake can be known then (a bad argument, an
    unknown keyword, a cookie attribute that breaks a prefix rule, two setup()
    layers sharing a state name or a cookie name when one wraps the other
    directly), and otherwise on the first request that shows it (two layers
    meeting in one request, an application ``Set-Cookie`` for a handler's own
    cookie, ``get_slot`` asked for a state no middleware serves). The message
    says what is wrong and how to fix it.
    """


class KeyFormatError(ConfigurationError):
    """A key or keyring is invalid: bad text form, too short, or a well-known or degenerate secret."""


class _StateMistake(ClientStateError):
    """An error about one state's value; ``state_name`` names the :class:`~clientstate.State`."""

    #: How the message begins, with ``{name}`` for the state name.
    lead = "state {name}"

    def __init__(self, state_name: str, reason: str) -> None:
        self.state_name = state_name
        super().__init__(f"{self.lead.format(name=repr(state_name))}: {reason}")


class StateEncodeError(_StateMistake, TypeError):
    """A state value cannot be encoded as the state's type, or (server-stored) saved under its principal.

    Raised by the assignment ``slot.state = value`` (so the traceback points at
    the application's line), or by ``setup()`` when a value changed in place
    after its assignment no longer encodes. For a ``server_stored`` state it is
    also raised when the state's principal breaks the principal rule (empty,
    NUL, a lone surrogate, over ``MAX_PRINCIPAL_BYTES``). ``state_name`` names
    the state.
    """

    lead = "state {name} cannot be encoded"


class StateNotWritable(_StateMistake):
    """``slot.state`` was assigned when the change can no longer reach the client.

    After the response's headers have been sent (WSGI ``start_response``
    called, ASGI ``http.response.start`` sent, the service returned) the
    ``Set-Cookie`` lines are already decided, and on a WebSocket connection the
    state is read-only. Assign ``slot.state`` before starting the response.
    ``state_name`` names the state.
    """

    lead = "slot.state for state {name} was assigned too late"


class StateTooLarge(ClientStateError):
    """A state is larger than where its handler keeps it can hold.

    Raised by the assignment ``slot.state = value``. For client-stored
    handlers it is :class:`CookieTooLarge`; for server-stored handlers the
    limit is their ``max_state_bytes``.

    Attributes:
        size: the encoded size, in bytes.
        limit: the limit, in bytes.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(message)


class StoreUnavailable(ClientStateError):
    """A store operation failed: the server is down or unreachable, or did not answer within its timeout.

    Stores raise it (wrapping the client library's error, never echoing
    credentials); handlers turn it into the load error ``store_unavailable``,
    so it reaches the application as a value, never as a 500.
    """


class CookieTooLarge(StateTooLarge):
    """A state's cookie would exceed the size browsers store.

    Browsers silently ignore a cookie whose name plus value is longer than
    4096 bytes (RFC 6265bis §5.7, "Storage Model" limits), so clientstate
    never emits one. Raised by the assignment ``slot.state = value`` when the
    new state cannot fit, or when a handler is asked to write such a cookie.

    Attributes:
        cookie_name: the cookie's name.
        size: length of name plus value, in bytes.
        limit: the limit in bytes (4096 for one cookie).
        max_chunks: for a chunked handler, how many cookies the state may use
            (the state needs more); ``None`` otherwise.
    """

    def __init__(self, cookie_name: str, size: int, limit: int, max_chunks: int | None = None) -> None:
        self.cookie_name = cookie_name
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
        super().__init__(message, size, limit)
