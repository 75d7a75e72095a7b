"""The client-stored handler: the whole state in the cookie, as a token of :mod:`clientstate._core.token`.

Authenticated with HMAC-SHA256 (the client can read but not change the state),
or encrypted with AES-256-GCM (the client can do neither).

Lifetimes, all checked on the server:

* ``expires_in`` (default :data:`DEFAULT_EXPIRES_IN`, 30 days): a token stops
  loading (``expired``) at its issued-at plus the handler's *current*
  ``expires_in`` — or at an expires-at written into it, if that is earlier —
  so shortening the setting in a deploy applies to cookies already issued.
  ``None`` means no limit, and must be asked for explicitly.
* ``refresh_after`` (default ``"auto"``: one day, or half of ``expires_in``
  when that is shorter): an unchanged token older than this is re-issued, so
  an active client never reaches ``expires_in``; ``None`` turns refresh off.
* The cookie's ``Max-Age`` is the token's remaining lifetime, or the
  attributes' ``max_age`` if that is shorter.

Issued-at restarts whenever the application writes a new state or a refresh
re-issues the token; a re-issue for key rotation or a schema migration keeps
issued-at and expires-at, so a revocation hook comparing issued-at with a
server-side instant (``validate=``) also refuses the re-issued token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar

from clientstate._core.chunks import chunk_index, chunk_name, chunk_size, join_chunks, split_token
from clientstate._core.config import MAX_SECONDS, check_callable, check_int, check_seconds, check_type, checked
from clientstate._core.cookies import MAX_COOKIE_BYTES, CookieAttributes, CookieWriter, RequestCookies
from clientstate._core.errors import AMBIGUOUS_COOKIE, ConfigurationError, CookieTooLarge, ErrorKind, LoadError
from clientstate._core.handler import Loaded
from clientstate._core.keys import Keyring
from clientstate._core.state import State
from clientstate._core.token import Mode, TokenCodec, token_length
from clientstate._core.value import Immutable

__all__ = ["DEFAULT_EXPIRES_IN", "ClientStored", "Validator", "client_stored"]

T = TypeVar("T")

#: Default token lifetime, seconds: 30 days (browsers cap cookies at 400).
DEFAULT_EXPIRES_IN: Final = 30 * 24 * 3600
#: The longest automatic refresh interval, seconds: one day.
AUTO_REFRESH: Final = 24 * 3600

_U64_MAX: Final = 2**64 - 1

#: ``validate(state, issued_at) -> bool``: the application's revocation hook.
Validator = Callable[[Any, int], bool]


class ClientStored(Immutable):
    """The handler that keeps the whole state in the cookie. Build it with :func:`client_stored`.

    Immutable: to change keys or settings build a new handler (and a new
    ``setup()`` with it). The attributes are the settings :func:`client_stored`
    documents; ``mode`` is :class:`~clientstate._core.token.Mode`.
    """

    __slots__ = (
        "_codecs",
        "_max_payload",
        "_max_value",
        "_writer",
        "attributes",
        "chunked",
        "clock_skew",
        "expires_in",
        "keyring",
        "max_chunks",
        "mode",
        "name",
        "refresh_after",
        "validate",
    )

    keyring: Keyring
    name: str
    attributes: CookieAttributes
    mode: Mode
    expires_in: int | None
    refresh_after: int | None
    clock_skew: int
    validate: Validator | None
    chunked: bool
    max_chunks: int
    _writer: CookieWriter
    _max_value: int
    _max_payload: int
    _codecs: dict[State[Any], TokenCodec]

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ConfigurationError("build a client-stored handler with clientstate.client_stored(keyring, name=...)")

    def prepare(self, descriptor: State[Any]) -> None:
        """Bind this handler to ``descriptor`` (``setup()`` calls it once, at start-up).

        Raises:
            ConfigurationError: the handler already serves a state of another
                name. One cookie holds one state: two states sharing a handler
                would each read the other's token as forged and delete it.
        """
        self.codec(descriptor)

    def codec(self, descriptor: State[Any]) -> TokenCodec:
        """The :class:`~clientstate._core.token.TokenCodec` binding this handler to ``descriptor`` (cached).

        Raises:
            ConfigurationError: the handler already serves a state of another name,
                or another state of this name with a different type at a schema version both accept.
        """
        codec = self._codecs.get(descriptor)
        if codec is None:
            for other in self._codecs:
                if other.name != descriptor.name:
                    raise ConfigurationError(
                        f"handler for cookie {self.name!r} already serves state {other.name!r}; "
                        f"state {descriptor.name!r} needs its own handler (its own cookie name)"
                    )
                clash = [v for v, f in descriptor.fingerprints.items() if other.fingerprints.get(v, f) != f]
                if clash:
                    raise ConfigurationError(
                        f"handler for cookie {self.name!r} already serves another state named {descriptor.name!r} "
                        f"with a different type at schema version {clash[0]}; each would read the other's cookie"
                    )
            codec = TokenCodec(
                self.keyring, self.mode, self.name, descriptor.name, descriptor.versions, self._max_value
            )
            self._codecs[descriptor] = codec
        return codec

    def claims(self, cookie_name: str) -> bool:
        """Whether ``cookie_name`` is this handler's cookie (or, chunked, one of its chunk cookies)."""
        if cookie_name == self.name:
            return True
        if not self.chunked or not cookie_name.startswith(self.name + "."):
            return False
        return chunk_index(cookie_name[len(self.name) + 1 :], self.max_chunks) is not None

    def load(self, descriptor: State[T], cookies: RequestCookies, now: float) -> Loaded[T]:
        """Load ``descriptor``'s state from this handler's cookie; see :meth:`Handler.load`.

        Empty values count as no cookie; more than one non-empty value for
        the handler's name is the ``ambiguous`` error. When several time
        limits fail, the error is the first of ``issued_in_future`` and
        ``expired``; times are checked before the payload is decoded. Chunked
        handlers first reassemble the token (:func:`clientstate._core.chunks.join_chunks`).
        """
        if self.chunked:
            token, highest = join_chunks(cookies, self.name, self.max_chunks)
            if token is None:
                return Loaded.absent()
            if isinstance(token, LoadError):
                return Loaded.failed(token, chunks=highest)
            return self.load_value(descriptor, token, now, chunks=highest)
        values = cookies.get_values(self.name)
        if not values:
            return Loaded.absent()
        if len(values) > 1:
            return Loaded.failed(AMBIGUOUS_COOKIE)
        return self.load_value(descriptor, values[0], now)

    def load_value(self, descriptor: State[T], value: str, now: float, *, chunks: int = 0) -> Loaded[T]:
        """Load ``descriptor``'s state from one cookie value (the token); never raises.

        Time limits fail closed: a clock reading that is not a finite number
        (NaN) makes every token ``issued_in_future``.
        """
        codec = self._codecs.get(descriptor) or self.codec(descriptor)
        opened = codec.open_fields(value)
        if isinstance(opened, LoadError):
            return Loaded.failed(opened, chunks=chunks)
        payload, issued_at, expires_at, key_id, schema_version = opened
        # The time rules live in deadline() and check_times() alone (the CLI uses them too).
        deadline = self.deadline(issued_at, expires_at)
        late = self.check_times(issued_at, deadline, now)
        if late is not None:
            return Loaded.failed(late, chunks=chunks)
        decoded = descriptor.decode(payload, schema_version)
        if isinstance(decoded, LoadError):
            return Loaded.failed(decoded, chunks=chunks)
        if self.validate is not None:
            rejected = _run_validator(self.validate, decoded, issued_at)
            if rejected is not None:
                return Loaded.failed(rejected, chunks=chunks)
        migrated = schema_version != descriptor.version
        refresh = self.refresh_after is not None and not now - issued_at < self.refresh_after
        return Loaded(
            decoded,
            None,
            True,
            issued_at,
            deadline,
            key_id,
            schema_version,
            descriptor.encode(decoded) if migrated else payload,
            migrated or refresh or key_id != codec.current_key_id,
            not refresh,
            chunks,
        )

    def deadline(self, issued_at: int, expires_at: int | None) -> int | None:
        """When a token stops loading: the earlier of its ``expires_at`` and ``issued_at`` plus ``expires_in``."""
        if self.expires_in is None:
            return expires_at
        limit = issued_at + self.expires_in
        return limit if expires_at is None or limit < expires_at else expires_at

    def check_times(self, issued_at: int, deadline: int | None, now: float) -> LoadError | None:
        """The time error of a token issued at ``issued_at`` with ``deadline``, at ``now``; ``None`` if in time.

        ``issued_in_future`` (beyond ``clock_skew``) comes before
        ``expired``. Fails closed: a NaN ``now`` is ``issued_in_future``.
        """
        # Written as "not (ok)" so that a NaN clock fails every check.
        if not issued_at <= now + self.clock_skew:
            return LoadError(
                ErrorKind.ISSUED_IN_FUTURE,
                f"issued-at is {issued_at - now:.0f} s ahead of the clock, over the {self.clock_skew} s skew allowed",
            )
        if deadline is not None and not now < deadline:
            return LoadError(ErrorKind.EXPIRED, f"the token's lifetime ended {now - deadline:.0f} s ago")
        return None

    def check_size(self, descriptor: State[Any], payload: bytes) -> None:
        """Raise :class:`~clientstate.CookieTooLarge` if a state encoded as ``payload`` cannot be saved.

        Computed from the token layout, without sealing anything.
        """
        if len(payload) <= self._max_payload:
            return
        length = token_length(self.mode, len(payload), False)
        if self.chunked:
            raise CookieTooLarge(self.name, len(self.name) + length, self._max_value, self.max_chunks)
        raise CookieTooLarge(self.name, len(self.name) + length, MAX_COOKIE_BYTES)

    def seal(self, descriptor: State[T], loaded: Loaded[T], payload: bytes, now: float) -> tuple[str, int | None]:
        """Seal ``payload`` into a token; returns ``(token, deadline)``, the deadline ``None`` for no limit.

        Issued-at and the deadline are kept when an unchanged state is
        re-issued for key rotation or migration, and restart at ``now``
        otherwise. The token carries an expires-at only when its deadline is
        earlier than issued-at plus ``expires_in`` (a kept deadline from a
        token that had one): the server applies issued-at plus the current
        ``expires_in`` to every token anyway, so writing it would only cost
        8 bytes per cookie.

        Raises:
            ConfigurationError: the clock reads a time a token cannot record.
        """
        expires_in = self.expires_in
        if loaded.keep_times and loaded.issued_at is not None and payload == loaded.payload:
            issued_at, deadline = loaded.issued_at, loaded.expires_at
        else:
            if not 0 <= now < 2**64 - MAX_SECONDS:  # also refuses NaN
                raise ConfigurationError(f"the clock reads {now!r}, outside the range a token can record")
            issued_at = math.floor(now)
            deadline = None if expires_in is None else issued_at + expires_in
        written = deadline
        if deadline is not None and expires_in is not None and deadline >= issued_at + expires_in:
            written = None
        elif written is not None and written > _U64_MAX:
            written = _U64_MAX  # past the format's range
        return self.codec(descriptor).seal(payload, issued_at, written), deadline

    def save(self, descriptor: State[T], loaded: Loaded[T], payload: bytes | None, now: float) -> list[str]:
        """Write or delete this handler's cookie; see :meth:`Handler.save`.

        Raises:
            CookieTooLarge: the token would make name plus value exceed 4096
                bytes (or, chunked, need more than ``max_chunks`` cookies).
        """
        writer = self._writer
        if payload is None:
            return [writer.delete_cookie(chunk_name(self.name, i)) for i in range(loaded.chunks + 1)]
        token, deadline = self.seal(descriptor, loaded, payload, now)
        lifetime = None if deadline is None else deadline - math.floor(now)
        if not self.chunked:
            return [writer.set_cookie(self.name, token, lifetime)]
        pairs = split_token(self.name, token, self.max_chunks)
        lines = [writer.set_cookie(name, value, lifetime) for name, value in pairs]
        # Chunks the request carried beyond the new count are stale: delete them.
        lines.extend(writer.delete_cookie(chunk_name(self.name, i)) for i in range(len(pairs), loaded.chunks + 1))
        return lines

    def __repr__(self) -> str:
        return f"ClientStored(name={self.name!r}, mode={self.mode.name.lower()}, keyring={self.keyring!r})"


def _run_validator(validate: Validator, value: Any, issued_at: int) -> LoadError | None:
    try:
        ok = validate(value, issued_at)
    except Exception as exc:  # the application's hook: a failure is a rejection, not a 500
        return LoadError(ErrorKind.REJECTED, f"validator raised {type(exc).__name__}: {exc}")
    return None if ok else LoadError(ErrorKind.REJECTED, "the application's validator refused it")


#: ``max_chunks`` when not given.
_DEFAULT_MAX_CHUNKS: Final = 4


@checked
def client_stored(
    keyring: Keyring,
    *,
    name: str,
    attributes: CookieAttributes | None = None,
    encrypted: bool = False,
    expires_in: int | None = DEFAULT_EXPIRES_IN,
    refresh_after: int | Literal["auto"] | None = "auto",
    clock_skew: int = 60,
    validate: Validator | None = None,
    chunked: bool = False,
    max_chunks: int = _DEFAULT_MAX_CHUNKS,
) -> ClientStored:
    """Build a handler that keeps the whole state in the cookie.

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
        expires_in: seconds a token stays valid after it is issued (default
            30 days; 1 s to 2**32 s), checked on the server as issued-at plus
            this *current* setting (``expired``) — and against an expires-at
            when a re-issued token keeps an earlier deadline. A token carries
            no expires-at of its own otherwise, so lengthening this setting
            later lengthens the life of tokens already issued. ``None``: tokens
            never expire (explicitly asked for; a stolen cookie then works
            until the keys change).
        refresh_after: re-issue an unchanged token once it is this many
            seconds old, so active clients never reach ``expires_in``:
            ``"auto"`` (default: one day, or half of ``expires_in`` when that
            is shorter), a number of seconds shorter than ``expires_in``, or
            ``None`` (never).
        clock_skew: seconds a token's issued-at may be ahead of the clock
            (default 60).
        validate: ``validate(state, issued_at) -> bool``, called after a token
            authenticates and decodes; ``False`` (or an exception) makes the
            load a ``rejected`` error. This is the revocation hook.
        chunked: ``False`` (default): a state too large for one cookie raises
            :class:`~clientstate.CookieTooLarge` when assigned. ``True``:
            split the token across numbered cookies (:mod:`clientstate._core.chunks`).
        max_chunks: with ``chunked``, the most cookies one state may use, 2–50
            (default 4, about 16 KB; mind the server's header limits).

    Raises:
        ConfigurationError: an unknown argument, an argument of the wrong
            type, an invalid cookie name, a name that breaks its
            ``__Host-``/``__Secure-`` prefix rules with these attributes, an
            invalid time setting, ``max_chunks`` outside 2–50, or a
            ``max_chunks`` other than the default without ``chunked=True``.
    """
    check_type(keyring, Keyring, "keyring", "read one with Keyring.from_env() or Keyring.from_text(...)")
    attributes = CookieAttributes() if attributes is None else attributes
    check_type(attributes, CookieAttributes, "attributes")
    attributes.check_name(name)
    check_type(encrypted, bool, "encrypted")
    check_type(chunked, bool, "chunked")
    if expires_in is not None:
        check_seconds(expires_in, "expires_in")
    if refresh_after == "auto":
        refresh_after = None if expires_in is None else min(AUTO_REFRESH, max(1, expires_in // 2))
    elif refresh_after is not None:
        check_seconds(refresh_after, "refresh_after")
        if expires_in is not None and refresh_after >= expires_in:
            raise ConfigurationError(
                f"refresh_after ({refresh_after} s) must be shorter than expires_in ({expires_in} s), "
                f"or tokens expire before they are refreshed"
            )
    check_seconds(clock_skew, "clock_skew", 0, MAX_SECONDS)
    check_int(max_chunks, "max_chunks", 2, 50)
    if not chunked and max_chunks != _DEFAULT_MAX_CHUNKS:
        raise ConfigurationError(
            f"max_chunks={max_chunks} does nothing without chunked=True: pass chunked=True to split a large "
            f"state across up to {max_chunks} cookies, or leave max_chunks out"
        )
    if validate is not None:
        check_callable(validate, "validate", "validate(state, issued_at) -> bool")
    if chunked:
        attributes.check_name(chunk_name(name, max_chunks - 1))
        max_value = chunk_size(name, max_chunks) * max_chunks
    else:
        max_value = MAX_COOKIE_BYTES - len(name)
    mode = Mode.ENCRYPTED if encrypted else Mode.AUTHENTICATED
    # The longest payload whose token fits (token_length grows by at most 2 per byte).
    max_payload = max_value * 3 // 4
    while max_payload > 0 and token_length(mode, max_payload, False) > max_value:
        max_payload -= 1
    handler = object.__new__(ClientStored)
    handler._set(
        keyring=keyring,
        name=name,
        attributes=attributes,
        mode=mode,
        expires_in=expires_in,
        refresh_after=refresh_after,
        clock_skew=clock_skew,
        validate=validate,
        chunked=chunked,
        max_chunks=max_chunks,
        _writer=CookieWriter(attributes),
        _max_value=max_value,
        _max_payload=max_payload,
        _codecs={},
    )
    return handler
