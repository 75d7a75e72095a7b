"""The session cookies of Flask, Starlette and Django, verified with those projects' own libraries.

Each :class:`LegacyCookie` knows one format, its secret key(s), its cookie
name, Path and Domain (to delete it), its own lifetime rule, and the
application's ``convert`` function that turns the session dict it carries
into a clientstate state. Verification runs the peer's own code, so it
accepts exactly what that framework would have accepted:

* :func:`flask_cookie` — Flask's ``SecureCookieSessionInterface``:
  ``itsdangerous.URLSafeTimedSerializer`` with the salt ``cookie-session``,
  HMAC key derivation, SHA-1, and Flask's tagged-JSON serializer; every
  secret in ``secret_keys`` is tried (Flask's ``SECRET_KEY`` plus
  ``SECRET_KEY_FALLBACKS``). Lifetime: ``PERMANENT_SESSION_LIFETIME``
  (default 31 days) after signing, for every session; signed in the future:
  refused. Needs ``itsdangerous`` and ``flask`` importable.
* :func:`starlette_cookie` — Starlette's ``SessionMiddleware``:
  ``itsdangerous.TimestampSigner(secret_key)`` (default salt, SHA-1) over
  standard base64 of JSON. Lifetime: ``max_age`` (default 14 days; ``None``
  for none); signed in the future: refused. Needs ``itsdangerous``.
* :func:`django_cookie` — Django's ``signed_cookies`` session backend:
  ``django.core.signing`` with the salt
  ``django.contrib.sessions.backends.signed_cookies``, HMAC-SHA256, the
  ``SECRET_KEY`` and every ``SECRET_KEY_FALLBACKS`` entry, optional zlib
  compression, JSON. Lifetime: ``SESSION_COOKIE_AGE`` (default two weeks)
  after signing; Django does not refuse timestamps in the future, and neither
  does this. Needs ``django`` importable (its settings need not be configured).

Times are checked against the binding's clock (``now``), not the wall
clock, so tests with a frozen clock see the same rules.

Results are values, never exceptions: :meth:`LegacyCookie.open` returns the
session dict or a :class:`~clientstate.LoadError` whose kind is
``malformed`` (not this format), ``authentication_failed`` (forged, tampered,
or signed with a secret not given), ``expired``, ``issued_in_future`` or
``state_decode`` (authenticated, but the payload does not decode to a dict).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from clientstate._core.config import check_callable, check_int, check_type
from clientstate._core.cookies import CookieAttributes, validate_cookie_name
from clientstate._core.errors import ConfigurationError, ErrorKind, LoadError
from clientstate._core.value import Immutable

__all__ = ["Converter", "LegacyCookie", "django_cookie", "flask_cookie", "starlette_cookie"]

#: ``convert(session_dict) -> state or None``: the application's conversion of a legacy session.
#: ``None`` means the legacy session holds nothing worth keeping (the cookie is then deleted).
Converter = Callable[[dict[str, Any]], Any]

#: The defaults of the frameworks, seconds.
FLASK_MAX_AGE: Final = 31 * 24 * 3600  # PERMANENT_SESSION_LIFETIME
STARLETTE_MAX_AGE: Final = 14 * 24 * 3600  # SessionMiddleware(max_age=...)
DJANGO_MAX_AGE: Final = 14 * 24 * 3600  # SESSION_COOKIE_AGE

_DJANGO_SALT: Final = "django.contrib.sessions.backends.signed_cookies"
_FLASK_SALT: Final = "cookie-session"
# A cookie longer than this is not looked at (browsers keep at most 4096 bytes per cookie).
_MAX_VALUE: Final = 8192


def _import(module: str, package: str, function: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{function}() verifies legacy cookies with {package}'s own code, which is not installed: "
            f"pip install {package} (keep it installed for as long as you accept the legacy cookies)"
        ) from None


def _secrets(secret_keys: object, function: str) -> tuple[str | bytes, ...]:
    keys: Iterable[object]
    if isinstance(secret_keys, str | bytes):
        keys = (secret_keys,)
    elif isinstance(secret_keys, Iterable):
        keys = secret_keys
    else:
        raise ConfigurationError(
            f"{function}(): secret_keys must be a str or bytes secret, or a sequence of them, got "
            f"{type(secret_keys).__name__}"
        )
    checked = tuple(keys)
    if not checked:
        raise ConfigurationError(f"{function}(): give at least one secret key")
    for key in checked:
        if not isinstance(key, str | bytes) or not key:
            raise ConfigurationError(f"{function}(): each secret key must be a non-empty str or bytes")
    return checked  # type: ignore[return-value]


def _failed(kind: ErrorKind, label: str, detail: str) -> LoadError:
    return LoadError(kind, f"legacy {label} cookie: {detail}")


def _check_age(label: str, signed_at: float, now: float, max_age: int | None, refuse_future: bool) -> LoadError | None:
    """The lifetime rule of the itsdangerous and Django formats, on our clock."""
    age = now - signed_at
    # Written as "not (ok)" so that a NaN clock fails.
    if refuse_future and not age >= 0:
        return _failed(ErrorKind.ISSUED_IN_FUTURE, label, "signed in the future")
    if max_age is not None and not age <= max_age:
        return _failed(ErrorKind.EXPIRED, label, f"older than its max_age of {max_age} s")
    return None


class LegacyCookie(Immutable):
    """One legacy session cookie format to accept for a transition period. Build it with
    :func:`flask_cookie`, :func:`starlette_cookie` or :func:`django_cookie`.

    Attributes:
        format: ``"flask"``, ``"starlette"`` or ``"django"``.
        name: the legacy cookie's name.
        path, domain, secure: the legacy cookie's ``Path``, ``Domain`` and
            ``Secure``, used to delete it once replaced (a deletion must name
            the same Path and Domain to reach it).
        max_age: the format's own lifetime in seconds, or ``None``.
        convert: the application's :data:`Converter`, or ``None`` to keep the
            session dict as it is (for dict-typed states).
    """

    __slots__ = ("_open", "convert", "domain", "format", "max_age", "name", "path", "secure")

    format: str
    name: str
    path: str
    domain: str | None
    secure: bool
    max_age: int | None
    convert: Converter | None
    _open: Callable[[str, float], dict[str, Any] | LoadError]

    def __init__(
        self,
        format: str,
        opener: Callable[[str, float], dict[str, Any] | LoadError],
        *,
        name: str,
        path: str,
        domain: str | None,
        secure: bool,
        max_age: int | None,
        convert: Converter | None,
    ) -> None:
        validate_cookie_name(name)
        # The same rules as our own cookies' attributes (a Path starting with '/', a valid Domain).
        CookieAttributes(path=path, domain=domain, secure=secure, same_site=None)
        if max_age is not None:
            check_int(max_age, f"{format}_cookie(): max_age", 1, 2**32, "seconds")
        if convert is not None:
            check_callable(convert, f"{format}_cookie(): convert", "convert(session: dict) -> state or None")
        self._set(
            format=format, _open=opener, name=name, path=path, domain=domain, secure=secure, max_age=max_age,
            convert=convert,
        )

    def open(self, value: str, now: float) -> dict[str, Any] | LoadError:
        """Verify one cookie value at ``now`` (seconds since the epoch): the session dict, or why not.

        Never raises for any ``value``; see the module docstring for the error kinds.
        """
        if len(value) > _MAX_VALUE:
            return _failed(ErrorKind.TOO_LARGE, self.format, f"longer than {_MAX_VALUE} characters")
        try:
            opened = self._open(value, now)
        except Exception as exc:  # the peer's code on client input: any failure is "not a valid cookie"
            return _failed(ErrorKind.MALFORMED, self.format, f"{type(exc).__name__}")
        if not isinstance(opened, LoadError) and not isinstance(opened, dict):
            return _failed(ErrorKind.STATE_DECODE, self.format, f"holds a {type(opened).__name__}, not a dict")
        return opened

    def delete_line(self) -> str:
        """The ``Set-Cookie`` value that deletes the legacy cookie (same Path and Domain, ``Max-Age=0``)."""
        line = f"{self.name}=; Max-Age=0; Path={self.path}"
        if self.domain is not None:
            line += f"; Domain={self.domain}"
        if self.secure:
            line += "; Secure"
        return line

    def __repr__(self) -> str:
        return f"LegacyCookie({self.format!r}, name={self.name!r}, max_age={self.max_age})"


def _flask_opener(secret_keys: Sequence[str | bytes], max_age: int | None) -> Callable[[str, float], Any]:
    itsdangerous = _import("itsdangerous", "itsdangerous", "flask_cookie")
    sessions = _import("flask.sessions", "flask", "flask_cookie")
    import hashlib

    serializer = itsdangerous.URLSafeTimedSerializer(
        list(secret_keys),
        salt=_FLASK_SALT,
        serializer=sessions.session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )

    def open_flask(value: str, now: float) -> dict[str, Any] | LoadError:
        if value.count(".") < 2:  # payload.timestamp.signature
            return _failed(ErrorKind.MALFORMED, "flask", "not payload.timestamp.signature")
        try:
            # No max_age here: the signature (and only then the timestamp) is checked by
            # itsdangerous; the age is checked below against our clock.
            data, signed_at = serializer.loads(value, return_timestamp=True)
        except itsdangerous.BadPayload:
            return _failed(ErrorKind.STATE_DECODE, "flask", "authenticated, but the payload does not decode")
        except itsdangerous.BadSignature:
            return _failed(ErrorKind.AUTHENTICATION_FAILED, "flask", "bad signature (forged, or another secret)")
        late = _check_age("flask", signed_at.timestamp(), now, max_age, True)
        return data if late is None else late

    return open_flask


def _starlette_opener(secret_key: str, max_age: int | None) -> Callable[[str, float], Any]:
    itsdangerous = _import("itsdangerous", "itsdangerous", "starlette_cookie")
    signer = itsdangerous.TimestampSigner(secret_key)

    def open_starlette(value: str, now: float) -> dict[str, Any] | LoadError:
        if value.count(".") < 2:  # payload.timestamp.signature
            return _failed(ErrorKind.MALFORMED, "starlette", "not payload.timestamp.signature")
        try:
            data, signed_at = signer.unsign(value.encode("utf-8"), return_timestamp=True)
        except itsdangerous.BadSignature:
            return _failed(ErrorKind.AUTHENTICATION_FAILED, "starlette", "bad signature (forged, or another secret)")
        late = _check_age("starlette", signed_at.timestamp(), now, max_age, True)
        if late is not None:
            return late
        try:
            return json.loads(base64.b64decode(data))  # type: ignore[no-any-return]
        except (ValueError, binascii.Error):
            return _failed(ErrorKind.STATE_DECODE, "starlette", "authenticated, but the payload is not JSON")

    return open_starlette


def _django_opener(secret_keys: Sequence[str | bytes], max_age: int | None) -> Callable[[str, float], Any]:
    signing = _import("django.core.signing", "django", "django_cookie")
    current, *fallbacks = secret_keys
    # Key and fallbacks given explicitly: Django's settings are never read.
    signer = signing.TimestampSigner(key=current, fallback_keys=fallbacks, salt=_DJANGO_SALT)

    def open_django(value: str, now: float) -> dict[str, Any] | LoadError:
        if value.count(":") < 2:  # payload:timestamp:signature
            return _failed(ErrorKind.MALFORMED, "django", "not payload:timestamp:signature")
        try:
            # TimestampSigner.unsign without max_age: the signature over "payload:timestamp" is
            # verified by Django's code; the age is checked below against our clock.
            signed = signing.Signer.unsign(signer, value)
        except signing.BadSignature:
            return _failed(ErrorKind.AUTHENTICATION_FAILED, "django", "bad signature (forged, or another secret)")
        payload, _, stamp = signed.rpartition(":")
        try:
            signed_at = signing.b62_decode(stamp)
        except ValueError:
            return _failed(ErrorKind.MALFORMED, "django", "no valid timestamp")
        late = _check_age("django", signed_at, now, max_age, False)
        if late is not None:
            return late
        # What django.core.signing.Signer.unsign_object does with an authenticated payload.
        try:
            raw = payload.encode()
            compressed = raw[:1] == b"."
            decoded = signing.b64_decode(raw[1:] if compressed else raw)
            if compressed:
                decoded = zlib.decompress(decoded)
            return signing.JSONSerializer().loads(decoded)  # type: ignore[no-any-return]
        except (ValueError, binascii.Error, zlib.error):
            return _failed(ErrorKind.STATE_DECODE, "django", "authenticated, but the payload does not decode")

    return open_django


def flask_cookie(
    secret_keys: str | bytes | Sequence[str | bytes],
    *,
    convert: Converter | None = None,
    name: str = "session",
    max_age: int | None = FLASK_MAX_AGE,
    path: str = "/",
    domain: str | None = None,
    secure: bool = False,
) -> LegacyCookie:
    """Accept the session cookies Flask's default ``SecureCookieSessionInterface`` issued.

    Args:
        secret_keys: Flask's ``SECRET_KEY``, or a sequence of it and its
            ``SECRET_KEY_FALLBACKS`` (every one is tried).
        convert: ``convert(session: dict) -> state or None``; ``None`` keeps
            the dict as it is (for a dict-typed state, e.g. the Flask
            ``SessionInterface`` of :mod:`clientstate.integrations.flask`).
        name: ``SESSION_COOKIE_NAME`` (default ``"session"``).
        max_age: ``PERMANENT_SESSION_LIFETIME`` in seconds (default 31 days),
            or ``None`` for no limit.
        path, domain, secure: ``SESSION_COOKIE_PATH`` (Flask's default is
            ``APPLICATION_ROOT``, ``"/"``), ``SESSION_COOKIE_DOMAIN`` and
            ``SESSION_COOKIE_SECURE``, so the replaced cookie can be deleted.

    Raises:
        ConfigurationError: no secret or an empty one, a bad name, Path or
            Domain, ``max_age`` not a positive number of seconds, ``convert``
            not callable, or ``itsdangerous``/``flask`` not installed.
    """
    keys = _secrets(secret_keys, "flask_cookie")
    return LegacyCookie(
        "flask", _flask_opener(keys, max_age), name=name, path=path, domain=domain, secure=secure,
        max_age=max_age, convert=convert,
    )


def starlette_cookie(
    secret_key: str,
    *,
    convert: Converter | None = None,
    name: str = "session",
    max_age: int | None = STARLETTE_MAX_AGE,
    path: str = "/",
    domain: str | None = None,
    secure: bool = False,
) -> LegacyCookie:
    """Accept the session cookies Starlette's ``SessionMiddleware`` issued.

    Args:
        secret_key: the middleware's ``secret_key`` (Starlette takes one).
        convert: as for :func:`flask_cookie`.
        name: ``session_cookie`` (default ``"session"``).
        max_age: the middleware's ``max_age`` in seconds (default 14 days),
            or ``None`` (the middleware's "no expiry").
        path, domain, secure: the middleware's ``path``, ``domain`` and
            ``https_only``, so the replaced cookie can be deleted.

    Raises:
        ConfigurationError: as for :func:`flask_cookie` (``itsdangerous`` not installed).
    """
    check_type(secret_key, str, "starlette_cookie(): secret_key")
    if not secret_key:
        raise ConfigurationError("starlette_cookie(): secret_key must not be empty")
    return LegacyCookie(
        "starlette", _starlette_opener(secret_key, max_age), name=name, path=path, domain=domain,
        secure=secure, max_age=max_age, convert=convert,
    )


def django_cookie(
    secret_keys: str | bytes | Sequence[str | bytes],
    *,
    convert: Converter | None = None,
    name: str = "sessionid",
    max_age: int | None = DJANGO_MAX_AGE,
    path: str = "/",
    domain: str | None = None,
    secure: bool = False,
) -> LegacyCookie:
    """Accept the session cookies of Django's ``signed_cookies`` session engine.

    Args:
        secret_keys: ``SECRET_KEY``, or a sequence of it followed by
            ``SECRET_KEY_FALLBACKS`` (every one is tried).
        convert: as for :func:`flask_cookie`; Django's auth keeps the user in
            ``_auth_user_id``, ``_auth_user_backend`` and ``_auth_user_hash``.
        name: ``SESSION_COOKIE_NAME`` (default ``"sessionid"``).
        max_age: ``SESSION_COOKIE_AGE`` in seconds (default two weeks), or ``None``.
        path, domain, secure: ``SESSION_COOKIE_PATH``, ``SESSION_COOKIE_DOMAIN``
            and ``SESSION_COOKIE_SECURE``, so the replaced cookie can be deleted.

    Raises:
        ConfigurationError: as for :func:`flask_cookie` (``django`` not installed).
    """
    keys = _secrets(secret_keys, "django_cookie")
    return LegacyCookie(
        "django", _django_opener(keys, max_age), name=name, path=path, domain=domain, secure=secure,
        max_age=max_age, convert=convert,
    )
