"""Client addresses: X-Forwarded-For is believed only from a configured proxy."""

from __future__ import annotations

from core.clients import client_address, is_trusted_proxy

PROXY = "10.0.0.2"


def test_without_a_header_the_peer_is_the_client() -> None:
    assert client_address("203.0.113.7", None, [PROXY]) == "203.0.113.7"


def test_spoofed_header_from_a_direct_client_is_ignored() -> None:
    # The attack: a client talking to the app directly names someone else's address to dodge
    # its own login delay or to aim one at the victim.
    assert client_address("203.0.113.7", "198.51.100.9", []) == "203.0.113.7"
    assert client_address("203.0.113.7", "198.51.100.9", [PROXY]) == "203.0.113.7"


def test_header_from_a_trusted_proxy_names_the_client() -> None:
    assert client_address(PROXY, "198.51.100.9", [PROXY]) == "198.51.100.9"


def test_spoofed_left_entries_behind_a_proxy_are_ignored() -> None:
    # The client sends its own X-Forwarded-For; the proxy appends the real address.
    header = "1.2.3.4, 198.51.100.9"
    assert client_address(PROXY, header, [PROXY]) == "198.51.100.9"


def test_chained_trusted_proxies_are_skipped_from_the_right() -> None:
    header = "1.2.3.4, 198.51.100.9, 10.0.0.3"
    assert client_address(PROXY, header, ["10.0.0.0/24"]) == "198.51.100.9"


def test_garbage_in_the_proxy_hop_falls_back_to_the_peer() -> None:
    assert client_address(PROXY, "198.51.100.9, not-an-ip", [PROXY]) == PROXY


def test_addresses_are_normalised() -> None:
    assert client_address(PROXY, " 2001:DB8::1 ", [PROXY]) == "2001:db8::1"


def test_unknown_peer_stays_unknown() -> None:
    assert client_address(None, "198.51.100.9", [PROXY]) is None


def test_only_configured_peers_are_trusted_proxies() -> None:
    assert is_trusted_proxy(PROXY, [PROXY]) and is_trusted_proxy("10.0.0.9", ["10.0.0.0/24"])
    assert not is_trusted_proxy("203.0.113.7", [PROXY])
    assert not is_trusted_proxy(None, [PROXY]) and not is_trusted_proxy(PROXY, [])
