"""Which address a request comes from, believing ``X-Forwarded-For`` only from our own proxies.

Login throttling and registration limits count per client address. The header is written by
whoever sends the request, so a client talking to the app directly could name any address:
dodge its own delay, or aim a delay at someone else. Only a configured reverse proxy
(``Settings.trusted_proxies``) is believed, and only for the hop it appended: the header is
read from the right, skipping our proxies, and the first other address is the client
(anything to its left was written by that client and proves nothing).

Counting per full address is not enough: one IPv6 host picks any address of its /64 at will,
so :func:`client_units` names the units that counts are kept under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: One IPv6 host (or its home network) chooses freely among the addresses of its /64.
IPV6_HOST_PREFIX = 64
#: An IPv6 site: what one subscriber or organisation is usually given.
IPV6_NETWORK_PREFIX = 48
#: One IPv4 neighbourhood: addresses a single provider's customer can hop between.
IPV4_NETWORK_PREFIX = 24


@dataclass(frozen=True)
class ClientUnits:
    """What one client is counted as, for login delays and sign-up limits.

    Attributes:
        host: The client itself: an IPv4 address or an IPv6 /64; a value that is not an
            address is kept as it is.
        network: The wider network it belongs to (IPv4 /24, IPv6 /48), or ``None`` for a
            value that is not an address.
    """

    host: str
    network: str | None


def client_units(client: str) -> ClientUnits:
    """The host and network units of a client address (see :class:`ClientUnits`).

    An IPv4 address mapped into IPv6 (``::ffff:192.0.2.1``) counts as the IPv4 address, so
    a dual-stack listener cannot give one client two sets of counts.

    Args:
        client: An address as :func:`client_address` returns it, or another client label.

    Returns:
        The units.
    """
    try:
        ip = ipaddress.ip_address(client.strip())
    except ValueError:
        return ClientUnits(client, None)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        network = ipaddress.ip_network(f"{ip}/{IPV4_NETWORK_PREFIX}", strict=False)
        return ClientUnits(str(ip), str(network))
    host = ipaddress.ip_network(f"{ip}/{IPV6_HOST_PREFIX}", strict=False)
    network = ipaddress.ip_network(f"{ip}/{IPV6_NETWORK_PREFIX}", strict=False)
    return ClientUnits(str(host), str(network))


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]
) -> str | None:
    """The client's address as far as it can be trusted.

    Args:
        peer: Address of the direct peer of the server's socket, or ``None`` when unknown.
        forwarded_for: The ``X-Forwarded-For`` header, or ``None``.
        trusted_proxies: Addresses or networks (``10.0.0.0/8``) of our reverse proxies.

    Returns:
        The peer itself unless it is a trusted proxy; otherwise the nearest address in the
        header that is not a trusted proxy, or the peer when the header names none.
    """
    networks = _networks(trusted_proxies)
    if peer is None or not forwarded_for or not _within(peer, networks):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            # Our proxy appends a valid address; garbage here was written by someone else.
            return peer
        if not _within(address, networks):
            return address
    return peer


def is_trusted_proxy(peer: str | None, trusted_proxies: Iterable[str]) -> bool:
    """Whether the direct peer is one of our reverse proxies (whose headers are believed)."""
    return peer is not None and _within(peer, _networks(trusted_proxies))


def _networks(entries: Iterable[str]) -> list[_Network]:
    # Settings validated every entry (core.settings refuses a malformed TRUSTED_PROXIES).
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries]


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _within(address: str, networks: list[_Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
