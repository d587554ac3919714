"""Which address a request comes from, believing ``X-Forwarded-For`` only from our own proxies.

Login throttling and registration limits count per client address. The header is written by
whoever sends the request, so a client talking to the app directly could name any address:
dodge its own delay, or aim a delay at someone else. Only a configured reverse proxy
(``Settings.trusted_proxies``) is believed, and only for the hop it appended: the header is
read from the right, skipping our proxies, and the first other address is the client
(anything to its left was written by that client and proves nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
