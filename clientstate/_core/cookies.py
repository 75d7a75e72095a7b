"""Cookie headers: parsing ``Cookie``, rendering ``Set-Cookie``, attribute rules.

Parsing (RFC 6265 §5.4 syntax, read leniently as RFC 6265bis §5.6 asks):

* A request may carry several ``Cookie`` header fields (HTTP/2 splits them,
  RFC 9113 §8.2.3); their pairs are read in order as if joined with ``"; "``.
* Each field is split on ``;`` only. A ``,`` belongs to the value it is in:
  browsers store and send commas inside values, so treating ``,`` as a
  separator would let any cookie's value smuggle in a pair with another
  cookie's name (even a ``__Host-`` one). A WSGI server that receives several
  ``Cookie`` fields over HTTP/1.1 joins them with ``", "`` (PEP 3333), which
  glues the first pair of one field onto the last value of the previous field;
  browsers send one field over HTTP/1.1, and HTTP/2 servers join with ``"; "``.
* A piece without ``=`` or with an empty name is skipped; it never hides the
  pairs around it. Spaces and tabs around names and
  values are trimmed. A value wrapped in one pair of double quotes
  (``name="value"``, allowed by RFC 6265 §4.1.1) is unwrapped.
* Duplicate names are kept, in order: :meth:`RequestCookies.get_all` returns
  every value. clientstate's handlers treat more than one value for their
  cookie as the ``ambiguous`` load error and pick none, because which
  duplicate comes first depends on Path length and creation time, not on which
  is genuine (RFC 6265bis §5.6.3 tells servers not to rely on the order). The
  same parser serves WSGI and ASGI, so the policy is identical in both.

Rendering: ``Set-Cookie: <name>=<value>`` followed by the attributes of
:class:`CookieAttributes`, whose defaults are ``Path=/``, ``Secure``,
``HttpOnly``, ``SameSite=Lax`` and no ``Domain``. A cookie is deleted with the
same name, ``Path`` and ``Domain``, an empty value and ``Max-Age=0``
(RFC 6265 §5.2.2: the cookie expires at once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final, Literal

from clientstate._core.errors import ConfigurationError, CookieTooLarge
from clientstate._core.value import ConfigValue, Immutable

__all__ = [
    "MAX_COOKIE_BYTES",
    "MAX_COOKIE_NAME",
    "MAX_MAX_AGE",
    "CookieAttributes",
    "CookieWriter",
    "RequestCookies",
    "check_domain",
    "parse_cookie_header",
    "set_cookie_name",
    "validate_cookie_name",
]

#: Browsers ignore a cookie whose name plus value exceeds this many bytes
#: (RFC 6265bis §5.7 "name and value" limit).
MAX_COOKIE_BYTES: Final = 4096
#: Browsers cap Max-Age at 400 days (RFC 6265bis §5.6.1, 5.6.2), in seconds.
MAX_MAX_AGE: Final = 400 * 24 * 3600

SameSite = Literal["Strict", "Lax", "None"]

# RFC 9110 §5.6.2 token characters: what RFC 6265 §4.1.1 allows in a cookie name.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Path attribute values: no controls, no ';' (RFC 6265 §4.1.1 av-octet).
_AV: Final = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
# A Domain attribute value: a host name of LDH labels (RFC 6265 §4.1.2.3, RFC 1034 §3.5 with RFC 1123
# leading digits), ASCII only (IDNs in their A-label form), 1-63 characters per label, no leading
# or trailing dot or hyphen, at most 253 characters.
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MAX_DOMAIN: Final = 253
#: The longest cookie name accepted, in characters: names travel in every request, and the value
#: must still fit beside them in 4096 bytes (with room for a chunk suffix).
MAX_COOKIE_NAME: Final = 200


def validate_cookie_name(name: str) -> str:
    """Check that ``name`` is a valid cookie name (an RFC 9110 token).

    Returns:
        ``name`` unchanged.

    Raises:
        ConfigurationError: ``name`` is empty, longer than 200 characters
            (:data:`MAX_COOKIE_NAME`), or has a character outside the token set
            (space, ``=``, ``;``, ``,``, quotes, controls, non-ASCII).
    """
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise ConfigurationError(
            f"cookie name {name!r:.80} is not a token (RFC 6265 §4.1.1): use letters, digits "
            f"and !#$%&'*+-.^_`|~"
        )
    if len(name) > MAX_COOKIE_NAME:
        raise ConfigurationError(
            f"cookie name {name[:40]!r}... is {len(name)} characters, over the {MAX_COOKIE_NAME} accepted: "
            f"the name is sent with every request and shares the 4096-byte limit with the value"
        )
    return name


def check_domain(domain: object) -> str:
    """Check a ``Domain`` attribute value: a host name in RFC 6265 §4.1.2.3 syntax.

    Returns:
        ``domain`` unchanged.

    Raises:
        ConfigurationError: not a ``str``; empty; a leading dot (browsers ignore
            it, and ``Domain=example.com`` already covers every subdomain); a
            trailing dot; an IP address (with or without a port) or any port;
            a label that is empty, over 63 characters, starts or ends with
            ``-``, or has a character other than ASCII letters, digits and
            ``-`` (write internationalised names in their ``xn--`` form); over
            253 characters; or a single label (``localhost``, a top-level
            domain), which browsers refuse.
    """
    if not isinstance(domain, str):
        raise ConfigurationError(f"cookie Domain must be a str or None, got {type(domain).__name__}")
    reason = _domain_problem(domain)
    if reason is not None:
        raise ConfigurationError(f"cookie Domain {domain!r:.80} is not a valid domain: {reason}")
    return domain


def _domain_problem(domain: str) -> str | None:
    if not domain:
        return "it is empty; use None for a host-only cookie"
    if domain.startswith("."):
        return (
            f"drop the leading dot and write {domain.lstrip('.')!r} (browsers ignore the dot, and a Domain "
            f"always covers its subdomains)"
        )
    if ":" in domain or "[" in domain or _is_ipv4(domain):
        return "an IP address or a port; omit Domain (None) for a cookie of this host only"
    if domain.endswith("."):
        return "write it without the trailing dot"
    if len(domain) > _MAX_DOMAIN:
        return f"{len(domain)} characters, over the {_MAX_DOMAIN} a host name may have"
    labels = domain.split(".")
    bad = next((label for label in labels if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        return (
            f"label {bad!r:.70} must be 1-63 ASCII letters, digits or '-', not starting or ending with '-' "
            f"(internationalised names in their xn-- form)"
        )
    if len(labels) < 2:
        return "a single label, which browsers refuse; omit Domain (None) for a host-only cookie"
    return None


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(part.isascii() and part.isdigit() for part in parts)


class CookieAttributes(ConfigValue, kw_only=True, frozen=True):
    """The attributes of a ``Set-Cookie`` line (RFC 6265 §4.1.2, RFC 6265bis §5.6). Frozen.

    Args (keywords only):
        path: ``Path`` (default ``"/"``, the whole site); must start with ``/``.
        domain: ``Domain``, or ``None`` (default) for a host-only cookie; a
            host name such as ``example.com`` (no leading dot, no IP address
            or port; see :func:`check_domain`).
        secure: ``Secure`` (default ``True``): only sent over HTTPS.
        http_only: ``HttpOnly`` (default ``True``): hidden from JavaScript.
        same_site: ``"Strict"``, ``"Lax"`` (default), ``"None"``, or ``None``
            to omit the attribute.
        max_age: the cookie's ``Max-Age`` in seconds, 1 to 400 days (the cap
            browsers apply), or ``None`` (default): how long the *browser*
            keeps the cookie. A handler never sends a ``Max-Age`` longer than
            the token's remaining lifetime; with neither, the cookie ends with
            the browser session. 0 is refused: it would make every save a deletion.

    Raises:
        ConfigurationError: an unknown or misspelled argument, an invalid
            value (``secure`` and ``http_only`` must be ``bool``; a ``domain``
            :func:`check_domain` refuses),
            ``SameSite=None`` without ``Secure``, or a ``Max-Age`` outside
            1 s to 400 days. Prefix rules are checked with :meth:`check_name`.
    """

    path: str = "/"
    domain: str | None = None
    secure: bool = True
    http_only: bool = True
    same_site: SameSite | None = "Lax"
    max_age: int | None = None

    def __post_init__(self) -> None:
        path, domain, same_site = self.path, self.domain, self.same_site
        if not isinstance(path, str) or not path.startswith("/") or not _AV.fullmatch(path):
            raise ConfigurationError(
                f"cookie Path must start with '/' and hold no ';' or control characters, got {path!r}"
            )
        if domain is not None:
            check_domain(domain)
        if same_site not in ("Strict", "Lax", "None", None):
            raise ConfigurationError(f"SameSite must be 'Strict', 'Lax', 'None' or None, got {same_site!r}")
        for label, flag in (("secure", self.secure), ("http_only", self.http_only)):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{label} must be True or False, got {flag!r}")
        if same_site == "None" and not self.secure:
            raise ConfigurationError(
                "SameSite=None requires Secure: browsers reject such cookies (RFC 6265bis §5.6.7)"
            )
        max_age = self.max_age
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or not 1 <= max_age <= MAX_MAX_AGE
        ):
            # The message fits the value: the type, NaN, the upper cap, 0 or less, a fraction, a float.
            limits = f"from 1 to {MAX_MAX_AGE} seconds (400 days), or None"
            if isinstance(max_age, bool) or not isinstance(max_age, int | float):
                why = f"must be an int {limits}, got {type(max_age).__name__} {max_age!r:.40}"
            elif max_age != max_age:
                why = f"must be an int {limits}, got NaN (not a number)"
            elif max_age > MAX_MAX_AGE:
                given = "infinite" if max_age == float("inf") else f"{max_age!r} s ({max_age / 86400:.6g} days)"
                why = (
                    f"is {given}, longer than 400 days ({MAX_MAX_AGE} s): RFC 6265bis caps Max-Age there and "
                    "browsers cut a longer one down to it"
                )
            elif max_age == 0:
                why = "0 would turn every save into a deletion (it tells the browser to drop the cookie at once)"
            elif max_age < 0:
                why = (
                    f"{max_age!r} is negative: a Max-Age of 0 or less expires the cookie at once (RFC 6265bis "
                    "§5.6.2), so every save would be a deletion"
                )
            elif not float(max_age).is_integer():
                why = f"must be a whole number of seconds (an int {limits}), got {max_age!r}"
            else:
                why = f"must be an int, got the float {max_age!r}; write {int(max_age)}"
            raise ConfigurationError(f"cookie Max-Age {why}")

    def rest(self) -> str:
        """Every attribute but ``Max-Age``, rendered as ``"; Path=/; Secure; ..."``."""
        parts = [f"; Path={self.path}"]
        if self.domain is not None:
            parts.append(f"; Domain={self.domain}")
        if self.secure:
            parts.append("; Secure")
        if self.http_only:
            parts.append("; HttpOnly")
        if self.same_site is not None:
            parts.append(f"; SameSite={self.same_site}")
        return "".join(parts)

    def check_name(self, name: str) -> None:
        """Check ``name`` against these attributes, including the cookie prefixes.

        ``__Secure-`` requires ``Secure``; ``__Host-`` requires ``Secure``,
        ``Path=/`` and no ``Domain`` (RFC 6265bis §4.1.3). Prefixes are matched
        case-insensitively, as browsers do.

        Raises:
            ConfigurationError: the name is not a token or breaks a prefix rule.
        """
        validate_cookie_name(name)
        lower = name.lower()
        if lower.startswith("__secure-") and not self.secure:
            raise ConfigurationError(f"cookie {name!r}: the __Secure- prefix requires Secure")
        if lower.startswith("__host-"):
            if not self.secure:
                raise ConfigurationError(f"cookie {name!r}: the __Host- prefix requires Secure")
            if self.path != "/":
                raise ConfigurationError(f"cookie {name!r}: the __Host- prefix requires Path=/")
            if self.domain is not None:
                raise ConfigurationError(f"cookie {name!r}: the __Host- prefix forbids Domain")

    def __repr__(self) -> str:
        shown = self.rest()[2:] if self.max_age is None else f"Max-Age={self.max_age}{self.rest()}"
        return f"CookieAttributes({shown!r})"


class CookieWriter(Immutable):
    """Renders ``Set-Cookie`` lines for one set of :class:`CookieAttributes`, attributes pre-rendered.

    Args:
        attributes: the attributes every line carries.

    Names are validated tokens and values are tokens of this library (both
    ASCII), so a name plus value is measured in characters.
    """

    __slots__ = ("_by_lifetime", "_rest", "_suffix", "attributes")

    _rest: str
    _suffix: str
    _by_lifetime: dict[int, str]
    attributes: CookieAttributes

    def __init__(self, attributes: CookieAttributes) -> None:
        rest = attributes.rest()
        suffix = rest if attributes.max_age is None else f"; Max-Age={attributes.max_age}{rest}"
        self._set(attributes=attributes, _rest=rest, _suffix=suffix, _by_lifetime={})

    def set_cookie(self, name: str, value: str, lifetime: int | None = None) -> str:
        """The ``Set-Cookie`` field value that stores ``name=value``.

        Args:
            name: the cookie name (already validated by :meth:`CookieAttributes.check_name`).
            value: the cookie value, ASCII cookie-octets only (RFC 6265 §4.1.1).
            lifetime: seconds the value stays valid on the server, or ``None``
                (no limit); ``Max-Age`` is the shorter of this and the
                attributes' own ``max_age``.

        Raises:
            CookieTooLarge: name plus value exceeds 4096 bytes.
        """
        if len(name) + len(value) > MAX_COOKIE_BYTES:
            raise CookieTooLarge(name, len(name) + len(value), MAX_COOKIE_BYTES)
        if lifetime is None:
            return f"{name}={value}{self._suffix}"
        suffix = self._by_lifetime.get(lifetime)
        if suffix is None:
            suffix = self._lifetime_suffix(lifetime)
        return f"{name}={value}{suffix}"

    def _lifetime_suffix(self, lifetime: int) -> str:
        attribute_max_age = self.attributes.max_age
        if attribute_max_age is not None and attribute_max_age <= lifetime:
            suffix = self._suffix
        else:
            suffix = f"; Max-Age={min(MAX_MAX_AGE, max(1, lifetime))}{self._rest}"
        if len(self._by_lifetime) < _LIFETIME_CACHE:  # most lines carry the same few lifetimes
            self._by_lifetime[lifetime] = suffix
        return suffix

    def delete_cookie(self, name: str) -> str:
        """The ``Set-Cookie`` value deleting ``name``: same Path and Domain, ``Max-Age=0``."""
        return f"{name}=; Max-Age=0{self._rest}"


_LIFETIME_CACHE: Final = 64


def parse_cookie_header(header: str) -> Iterator[tuple[str, str]]:
    """Yield the ``(name, value)`` pairs of one ``Cookie`` field value, in order.

    Never raises for any ``str``; see the module docstring for the rules.
    """
    for piece in header.split(";"):
        name, sep, value = piece.partition("=")
        if not sep:
            continue
        name = name.strip(" \t")
        if name:
            yield name, _value(value)


def _value(raw: str) -> str:
    """A cookie value trimmed of spaces and tabs, one pair of double quotes removed."""
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


class RequestCookies:
    """The cookies of one request, parsed lazily from its ``Cookie`` field values.

    Args:
        headers: every ``Cookie`` field value of the request, in order.
            WSGI gives one (``HTTP_COOKIE``); ASGI may give several.
    """

    __slots__ = ("_headers", "_parsed")

    def __init__(self, headers: Iterable[str] = ()) -> None:
        self._headers = tuple(headers)
        self._parsed: dict[str, list[str]] | None = None

    @property
    def headers(self) -> tuple[str, ...]:
        """The ``Cookie`` field values this was built from."""
        return self._headers

    def _parse(self) -> dict[str, list[str]]:
        parsed: dict[str, list[str]] = {}
        for header in self._headers:
            for name, value in parse_cookie_header(header):
                parsed.setdefault(name, []).append(value)
        self._parsed = parsed
        return parsed

    def get_all(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order (empty if none).

        Gives exactly what :func:`parse_cookie_header` gives for ``name``,
        without parsing the other pairs.
        """
        parsed = self._parsed
        if parsed is not None:
            return parsed.get(name, [])
        found = []
        for header in self._headers:
            if name in header:
                for piece in header.split(";"):
                    if name in piece:
                        key, sep, value = piece.partition("=")
                        if sep and key.strip(" \t") == name:
                            found.append(_value(value))
        return found

    def get_values(self, name: str) -> list[str]:
        """Every non-empty value sent for ``name``, in order: an empty value carries no state."""
        values = self.get_all(name)
        if len(values) == 1 and values[0]:
            return values
        return [value for value in values if value]

    def names(self) -> list[str]:
        """Every cookie name sent, each once, in first-seen order."""
        parsed = self._parse() if self._parsed is None else self._parsed
        return list(parsed)

    def __bool__(self) -> bool:
        return any(self._headers)

    def __repr__(self) -> str:
        return f"RequestCookies({self._headers!r})"


def set_cookie_name(line: str) -> str:
    """The cookie name a ``Set-Cookie`` field value sets (RFC 6265 §5.2: up to the first ``=``, trimmed)."""
    pair = line.split(";", 1)[0]
    return pair.partition("=")[0].strip(" \t")
