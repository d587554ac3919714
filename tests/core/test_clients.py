"""Client addresses: X-Forwarded-For is believed only from a configured proxy."""

from __future__ import annotations

from core.clients import ClientUnits, client_address, client_units, is_trusted_proxy

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


def test_an_ipv6_client_is_its_64_within_its_48() -> None:
    # One host picks any address of its /64 at will: all of them are one client.
    for address in ("2001:db8:7:42::1", "2001:DB8:7:42:ffff:1:2:3"):
        assert client_units(address) == ClientUnits("2001:db8:7:42::/64", "2001:db8:7::/48")


def test_an_ipv4_client_is_its_address_within_its_24() -> None:
    assert client_units("198.51.100.77") == ClientUnits("198.51.100.77", "198.51.100.0/24")
    # The same client over a dual-stack listener is not a second client.
    assert client_units("::ffff:198.51.100.77") == client_units("198.51.100.77")


def test_a_label_that_is_no_address_is_its_own_client() -> None:
    assert client_units("unknown") == ClientUnits("unknown", None)
