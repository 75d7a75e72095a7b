"""The client address a live session is counted under, and the group it belongs to.

The address is the ASGI ``client`` field — the TCP peer — unless that peer is
one of the configured trusted proxies; then it is read from ``Forwarded``
(RFC 7239 ``for=``) or, failing that, ``X-Forwarded-For``: the right-most
address that is not itself a trusted proxy (the left-most entries are
whatever the client chose to send). Untrusted peers' forwarding headers are
ignored, so a client cannot pick the address it is counted under.

Limits count *groups*: an IPv4 address is its own group; an IPv6 address is
grouped by its /64 network (one subscriber usually holds a whole /64 and can
rotate addresses within it); an IPv4-mapped IPv6 address counts as IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Final

from clientstate._core.errors import ConfigurationError

__all__ = ["Networks", "client_address", "group_of", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Networks = tuple[Network, ...]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The group of a connection with no usable address (a Unix socket, a test client).
UNKNOWN: Final = "unknown"


def parse_networks(entries: Iterable[str]) -> Networks:
    """Trusted proxies as networks, from addresses or CIDR blocks (``"10.0.0.0/8"``, ``"::1"``).

    Raises:
        ConfigurationError: an entry is not an address or a network.
    """
    if isinstance(entries, str):
        raise ConfigurationError("trusted_proxies must be a list of addresses or networks, not one string")
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except (TypeError, ValueError):
            raise ConfigurationError(f"trusted proxy {entry!r} is not an IP address or network") from None
    return tuple(networks)


def _ip(text: str) -> IP | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # "[2001:db8::1]:4711"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # "192.0.2.1:4711"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IP, proxies: Networks) -> bool:
    return any(address in network for network in proxies)


def _forwarded_chain(headers: Mapping[bytes, list[bytes]]) -> list[str]:
    """The addresses a request was forwarded for, nearest last: ``Forwarded`` first, else ``X-Forwarded-For``."""
    forwarded = headers.get(b"forwarded")
    if forwarded:
        chain = []
        for value in forwarded:
            for element in value.decode("latin-1").split(","):
                for pair in element.split(";"):
                    name, _, item = pair.strip().partition("=")
                    if name.lower() == "for":
                        chain.append(item)
        return chain
    return [item for value in headers.get(b"x-forwarded-for", []) for item in value.decode("latin-1").split(",")]


def client_address(scope: Mapping[str, Any], trusted_proxies: Networks = ()) -> IP | None:
    """The address the request came from, trusting forwarding headers only from ``trusted_proxies``.

    Returns ``None`` when no address can be told (no ``client`` in the scope,
    or a forwarded chain of nothing but unparseable entries).
    """
    client = scope.get("client")
    peer = _ip(str(client[0])) if client else None
    if peer is None or not _trusted(peer, trusted_proxies):
        return peer
    headers: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(bytes(name).lower(), []).append(bytes(value))
    address = peer
    for item in reversed(_forwarded_chain(headers)):
        hop = _ip(item)
        if hop is None:
            return address  # "unknown" or an obfuscated id: the last address we could trust
        address = hop
        if not _trusted(hop, trusted_proxies):
            return hop
    return address


def group_of(address: IP | None) -> str:
    """The group limits count: the IPv4 address, the IPv6 /64 network, or ``"unknown"``."""
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
