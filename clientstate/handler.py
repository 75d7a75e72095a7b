"""Handlers: how state is loaded from a request and saved on a response.

A :class:`Handler` is sans-I/O: it reads a :class:`~clientstate.cookies.RequestCookies`
and returns ``Set-Cookie`` field values. :func:`client_stored` builds the
handler that keeps the whole state in the cookie, as a token of
:mod:`clientstate.token` (authenticated with HMAC-SHA256, or encrypted with
AES-256-GCM).

Loading never raises for anything the client sends: every failure is a
:class:`~clientstate.errors.LoadError` inside the returned :class:`Loaded`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from clientstate.chunks import chunk_name, chunk_size, join_chunks, split_token
from clientstate.cookies import (
    MAX_COOKIE_BYTES,
    MAX_MAX_AGE,
    CookieAttributes,
    RequestCookies,
)
from clientstate.errors import AMBIGUOUS_COOKIE, ConfigurationError, ErrorKind, LoadError
from clientstate.keys import Keyring
from clientstate.state import State
from clientstate.token import Mode, TokenCodec

__all__ = ["ClientStored", "Handler", "Loaded", "Validator", "client_stored"]

T = TypeVar("T")

# The longest time setting accepted: 2**32 seconds, about 136 years.
_MAX_SECONDS = 2**32

#: ``validate(state, issued_at) -> bool``: the application's revocation hook.
Validator = Callable[[Any, int], bool]


class Loaded(Generic[T]):
    """What loading found for one request: the state, or why there is none. Read-only.

    Attributes:
        state: the loaded value, or ``None`` (no cookie, or a load error).
        error: the :class:`~clientstate.errors.LoadError`, or ``None``.
        present: whether the request carried a non-empty cookie for this state.
        issued_at: the token's issued-at (seconds since the epoch), if loaded.
        expires_at: the token's expires-at, if it has one.
        key_id: the id of the key that verified the token, if loaded.
        schema_version: the schema version the token was written at, if loaded.
        payload: canonical encoding of ``state`` at the current schema version
            (what an unchanged state is compared against).
        reissue: the cookie must be written again even if the state is
            unchanged: it was verified with an older key, migrated from an
            older schema version, or is due for refresh.
        keep_times: when re-issued unchanged, keep ``issued_at`` and
            ``expires_at`` (key rotation, migration), rather than restarting
            them (refresh).
        chunks: how many chunk cookies beyond the first the request carried
            (chunked handlers only), so stale ones can be deleted.
    """

    __slots__ = (
        "chunks",
        "error",
        "expires_at",
        "issued_at",
        "keep_times",
        "key_id",
        "payload",
        "present",
        "reissue",
        "schema_version",
        "state",
    )

    def __init__(
        self,
        state: T | None = None,
        error: LoadError | None = None,
        present: bool = False,
        issued_at: int | None = None,
        expires_at: int | None = None,
        key_id: int | None = None,
        schema_version: int | None = None,
        payload: bytes | None = None,
        reissue: bool = False,
        keep_times: bool = False,
        chunks: int = 0,
    ) -> None:
        self.state = state
        self.error = error
        self.present = present
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.key_id = key_id
        self.schema_version = schema_version
        self.payload = payload
        self.reissue = reissue
        self.keep_times = keep_times
        self.chunks = chunks

    @classmethod
    def absent(cls) -> Loaded[T]:
        """The load of a request without the cookie: no state, no error."""
        return cls()

    @classmethod
    def failed(cls, error: LoadError, *, chunks: int = 0) -> Loaded[T]:
        """A load that found a cookie but no valid state."""
        return cls(None, error, present=True, chunks=chunks)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"Loaded(error={self.error!r})"
        return f"Loaded(state={self.state!r}, issued_at={self.issued_at}, key_id={self.key_id})"


class Handler(Protocol):
    """Loads state from request cookies and saves it as ``Set-Cookie`` values. Sans-I/O.

    ``setup()`` calls :meth:`load` once per request that carries a ``Cookie``
    header (a request without one loads :meth:`Loaded.absent`), and :meth:`save`
    at most once per response, only when a cookie must be written or deleted.
    """

    def prepare(self, state: State[T]) -> None:
        """Get ready to serve ``state``; called once by ``setup()`` at start-up.

        Raises:
            ConfigurationError: this handler cannot serve ``state``.
        """
        ...

    def load(self, state: State[T], cookies: RequestCookies, now: float) -> Loaded[T]:
        """Load ``state`` from ``cookies`` at time ``now`` (seconds since the epoch).

        Must not raise for any request input; failures go in ``Loaded.error``.
        """
        ...

    def save(self, state: State[T], loaded: Loaded[T], payload: bytes | None, now: float) -> list[str]:
        """Return the ``Set-Cookie`` field values that store ``payload`` (``None``: delete).

        Args:
            state: the descriptor.
            loaded: what :meth:`load` returned for this request.
            payload: the new state's canonical encoding (:meth:`State.encode`),
                or ``None`` to delete the stored state.
            now: seconds since the epoch.

        Raises:
            CookieTooLarge: the state does not fit in a cookie.
        """
        ...


class ClientStored:
    """The handler that keeps the whole state in the cookie. Build it with :func:`client_stored`."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        name: str,
        attributes: CookieAttributes | None = None,
        encrypted: bool = False,
        max_age: int | None = None,
        expires_in: int | None = None,
        refresh_after: int | None = None,
        clock_skew: int = 60,
        validate: Validator | None = None,
        chunked: bool = False,
        max_chunks: int = 4,
    ) -> None:
        if not isinstance(keyring, Keyring):
            raise ConfigurationError(f"keyring must be a Keyring, got {type(keyring).__name__}")
        self.attributes = CookieAttributes() if attributes is None else attributes
        self.attributes.check_name(name)
        for label, seconds in (
            ("max_age", max_age),
            ("expires_in", expires_in),
            ("refresh_after", refresh_after),
        ):
            if seconds is not None and (
                isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds <= _MAX_SECONDS
            ):
                raise ConfigurationError(f"{label} must be an integer of seconds from 1 to {_MAX_SECONDS}")
        if isinstance(clock_skew, bool) or not isinstance(clock_skew, int) or not 0 <= clock_skew <= _MAX_SECONDS:
            raise ConfigurationError(f"clock_skew must be an integer of seconds from 0 to {_MAX_SECONDS}")
        if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or not 2 <= max_chunks <= 50:
            raise ConfigurationError("max_chunks must be an integer from 2 to 50")
        if validate is not None and not callable(validate):
            raise ConfigurationError("validate must be a callable validate(state, issued_at) -> bool")
        if refresh_after is not None:
            for label, limit in (("max_age", max_age), ("expires_in", expires_in)):
                if limit is not None and refresh_after >= limit:
                    raise ConfigurationError(
                        f"refresh_after ({refresh_after} s) must be shorter than {label} ({limit} s), "
                        f"or tokens expire before they are refreshed"
                    )
        self.keyring = keyring
        self.name = name
        self.mode = Mode.ENCRYPTED if encrypted else Mode.AUTHENTICATED
        self.max_age = max_age
        self.expires_in = expires_in
        self.refresh_after = refresh_after
        self.clock_skew = clock_skew
        self.validate = validate
        self.chunked = bool(chunked)
        self.max_chunks = max_chunks
        if self.chunked:
            self.attributes.check_name(chunk_name(name, max_chunks - 1))
            self._max_value = chunk_size(name, max_chunks) * max_chunks
        else:
            self._max_value = MAX_COOKIE_BYTES - len(name)
        self._codecs: dict[State[Any], TokenCodec] = {}

    def prepare(self, state: State[T]) -> None:
        """Bind this handler to ``state`` (``setup()`` calls it once, at start-up).

        Raises:
            ConfigurationError: the handler already serves a state of another
                name. One cookie holds one state: two states sharing a handler
                would each read the other's token as forged and delete it.
        """
        self.codec(state)

    def codec(self, state: State[T]) -> TokenCodec:
        """The :class:`~clientstate.token.TokenCodec` binding this handler to ``state`` (cached).

        Raises:
            ConfigurationError: the handler already serves a state of another name.
        """
        codec = self._codecs.get(state)
        if codec is None:
            for other in self._codecs:
                if other.name != state.name:
                    raise ConfigurationError(
                        f"handler for cookie {self.name!r} already serves state {other.name!r}; "
                        f"state {state.name!r} needs its own handler (its own cookie name)"
                    )
            codec = TokenCodec(self.keyring, self.mode, self.name, state.name, state.versions, self._max_value)
            self._codecs[state] = codec
        return codec

    def load(self, state: State[T], cookies: RequestCookies, now: float) -> Loaded[T]:
        """Load ``state`` from this handler's cookie; see :meth:`Handler.load`.

        Empty values count as no cookie; more than one non-empty value for
        the handler's name is the ``ambiguous`` error. When several time
        limits fail, the error is the first of ``issued_in_future``,
        ``expired``, ``too_old``; times are checked before the payload is decoded. Chunked handlers first
        reassemble the token (:func:`clientstate.chunks.join_chunks`).
        """
        if self.chunked:
            token, highest = join_chunks(cookies, self.name, self.max_chunks)
            if token is None:
                return Loaded.absent()
            if isinstance(token, LoadError):
                return Loaded.failed(token, chunks=highest)
            return self.load_value(state, token, now, chunks=highest)
        values = cookies.get_values(self.name)
        if not values:
            return Loaded.absent()
        if len(values) > 1:
            return Loaded.failed(AMBIGUOUS_COOKIE)
        return self.load_value(state, values[0], now)

    def load_value(self, state: State[T], value: str, now: float, *, chunks: int = 0) -> Loaded[T]:
        """Load ``state`` from one cookie value (the token); never raises.

        Time limits fail closed: a clock reading that is not a finite number
        (NaN) makes every token ``issued_in_future``.
        """
        codec = self._codecs.get(state) or self.codec(state)
        opened = codec.open_fields(value)
        if isinstance(opened, LoadError):
            return Loaded.failed(opened, chunks=chunks)
        payload, issued_at, expires_at, key_id, schema_version = opened
        # Written as "not (ok)" so that a NaN clock fails every check.
        if not issued_at <= now + self.clock_skew:
            return Loaded.failed(
                LoadError(
                    ErrorKind.ISSUED_IN_FUTURE,
                    f"issued-at is {issued_at - now:.0f} s ahead of the clock, over the "
                    f"{self.clock_skew} s skew allowed",
                ),
                chunks=chunks,
            )
        if expires_at is not None and not now < expires_at:
            return Loaded.failed(LoadError(ErrorKind.EXPIRED, f"expired {now - expires_at:.0f} s ago"), chunks=chunks)
        age = now - issued_at
        if self.max_age is not None and not age <= self.max_age:
            return Loaded.failed(
                LoadError(ErrorKind.TOO_OLD, f"issued {age:.0f} s ago, over max_age {self.max_age} s"),
                chunks=chunks,
            )
        decoded = state.decode(payload, schema_version)
        if isinstance(decoded, LoadError):
            return Loaded.failed(decoded, chunks=chunks)
        if self.validate is not None:
            rejected = _run_validator(self.validate, decoded, issued_at)
            if rejected is not None:
                return Loaded.failed(rejected, chunks=chunks)
        migrated = schema_version != state.version
        refresh = self.refresh_after is not None and age >= self.refresh_after
        return Loaded(
            decoded,
            None,
            True,
            issued_at,
            expires_at,
            key_id,
            schema_version,
            state.encode(decoded) if migrated else payload,
            migrated or refresh or key_id != codec.current_key_id,
            not refresh,
            chunks,
        )

    def seal(self, state: State[T], loaded: Loaded[T], payload: bytes, now: float) -> tuple[str, int | None]:
        """Seal ``payload`` into a token; returns ``(token, expires_at)``.

        Issued-at and expires-at are kept when an unchanged state is re-issued
        for key rotation or migration, and restart at ``now`` otherwise.
        """
        if (
            loaded.keep_times
            and loaded.issued_at is not None
            and payload == loaded.payload
        ):
            issued_at, expires_at = loaded.issued_at, loaded.expires_at
        else:
            if not 0 <= now < 2**64 - _MAX_SECONDS:  # also refuses NaN
                raise ConfigurationError(f"the clock reads {now!r}, outside the range a token can record")
            issued_at = math.floor(now)
            expires_at = None if self.expires_in is None else issued_at + self.expires_in
        return self.codec(state).seal(payload, issued_at, expires_at), expires_at

    def save(self, state: State[T], loaded: Loaded[T], payload: bytes | None, now: float) -> list[str]:
        """Write or delete this handler's cookie; see :meth:`Handler.save`.

        With ``expires_in`` set and no ``Max-Age`` in the attributes, the
        cookie's ``Max-Age`` is the time left until the token's expires-at.

        Raises:
            CookieTooLarge: the token would make name plus value exceed 4096 bytes.
        """
        if payload is None:
            return [
                self.attributes.delete_cookie(chunk_name(self.name, i)) for i in range(loaded.chunks + 1)
            ]
        token, expires_at = self.seal(state, loaded, payload, now)
        if not self.chunked:
            return [self.set_cookie(self.name, token, expires_at, now)]
        pairs = split_token(self.name, token, self.max_chunks)
        lines = [self.set_cookie(name, value, expires_at, now) for name, value in pairs]
        # Chunks the request carried beyond the new count are stale: delete them.
        lines.extend(
            self.attributes.delete_cookie(chunk_name(self.name, i)) for i in range(len(pairs), loaded.chunks + 1)
        )
        return lines

    def set_cookie(self, name: str, value: str, expires_at: int | None, now: float) -> str:
        """Render one ``Set-Cookie`` value for a token expiring at ``expires_at``."""
        if expires_at is not None and self.attributes.max_age is None:
            max_age = min(MAX_MAX_AGE, max(0, expires_at - math.floor(now)))
            return self.attributes.set_cookie(name, value, max_age)
        return self.attributes.set_cookie(name, value)

    def __repr__(self) -> str:
        return f"ClientStored(name={self.name!r}, mode={self.mode.name.lower()}, keyring={self.keyring!r})"


def _run_validator(validate: Validator, value: Any, issued_at: int) -> LoadError | None:
    try:
        ok = validate(value, issued_at)
    except Exception as exc:  # the application's hook: a failure is a rejection, not a 500
        return LoadError(ErrorKind.REJECTED, f"validator raised {type(exc).__name__}: {exc}")
    return None if ok else LoadError(ErrorKind.REJECTED, "the application's validator refused it")


def client_stored(
    keyring: Keyring,
    *,
    name: str,
    attributes: CookieAttributes | None = None,
    encrypted: bool = False,
    max_age: int | None = None,
    expires_in: int | None = None,
    refresh_after: int | None = None,
    clock_skew: int = 60,
    validate: Validator | None = None,
    chunked: bool = False,
    max_chunks: int = 4,
) -> ClientStored:
    """Build a handler that keeps the whole state in one cookie.

    Args:
        keyring: keys; tokens are sealed under the current key and verified
            by the key id they carry.
        name: the cookie name, an RFC 9110 token. ``__Host-`` names are
            recommended for HTTPS sites (no other host can set them).
        attributes: ``Set-Cookie`` attributes (default ``Path=/; Secure;
            HttpOnly; SameSite=Lax``, no ``Domain``).
        encrypted: ``False`` (default): authenticated with HMAC-SHA256, the
            client can read but not change the state. ``True``: encrypted with
            AES-256-GCM, the client can neither read nor change it.
        max_age: reject tokens issued more than this many seconds ago
            (``too_old``); checked on the server whatever the cookie's lifetime.
        expires_in: write an expires-at this many seconds after issued-at into
            each token (``expired`` after it), and the matching ``Max-Age``.
        refresh_after: re-issue an unchanged token once it is this many
            seconds old, so active clients stay under ``max_age``/``expires_in``.
        clock_skew: seconds a token's issued-at may be ahead of the clock
            (default 60).
        validate: ``validate(state, issued_at) -> bool``, called after a token
            authenticates and decodes; ``False`` (or an exception) makes the
            load a ``rejected`` error. This is the revocation hook.
        chunked: ``False`` (default): a state too large for one cookie raises
            :class:`~clientstate.errors.CookieTooLarge` at save. ``True``:
            split the token across numbered cookies (:mod:`clientstate.chunks`).
        max_chunks: with ``chunked``, the most cookies one state may use, 2–50
            (default 4, about 16 KB; mind the server's header limits, see
            :mod:`clientstate.chunks`).

    Raises:
        ConfigurationError: an invalid cookie name, a name that breaks its
            ``__Host-``/``__Secure-`` prefix rules with these attributes, an
            invalid time setting, or ``max_chunks`` outside 2–50.
    """
    return ClientStored(
        keyring,
        name=name,
        attributes=attributes,
        encrypted=encrypted,
        max_age=max_age,
        expires_in=expires_in,
        refresh_after=refresh_after,
        clock_skew=clock_skew,
        validate=validate,
        chunked=chunked,
        max_chunks=max_chunks,
    )
