"""RFC 6052 address embedding: the RFC's §2.4 examples, the u octet and the Well-Known Prefix rule."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nat64.rfc6052 import Nat64Prefix, Rfc6052Error, embed, extract

# RFC 6052 §2.4 Table 1: 192.0.2.33 under each network-specific prefix length.
RFC_EXAMPLES = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
]


@pytest.mark.parametrize(("prefix", "address"), RFC_EXAMPLES)
def test_rfc_examples_embed_and_extract(prefix, address):
    assert embed(prefix, "192.0.2.33") == IPv6Address(address)
    assert extract(prefix, address) == IPv4Address("192.0.2.33")


@pytest.mark.parametrize("length", [32, 40, 48, 56, 64, 96])
@given(v4=st.integers(0, 2**32 - 1))
def test_round_trip_and_u_octet_zero(length, v4):
    p = Nat64Prefix(f"2001:db8:122:300::/{length}" if length >= 56 else f"2001:db8::/{length}")
    a = IPv4Address(v4)
    v6 = p.embed(a)
    assert v6.packed[8] == 0  # bits 64-71
    assert v6 in p.network
    assert p.extract(v6) == a


@pytest.mark.parametrize("bad", ["2001:db8::/33", "2001:db8::/128", "2001:db8:0:0:ff00::/96", "not a prefix"])
def test_bad_prefixes_are_refused(bad):
    with pytest.raises(Rfc6052Error):
        Nat64Prefix(bad)


def test_extract_outside_prefix_is_refused():
    with pytest.raises(Rfc6052Error):
        extract("2001:db8::/32", "2001:db9::1")


def test_well_known_prefix():
    assert embed("64:ff9b::/96", "1.1.1.1") == IPv6Address("64:ff9b::101:101")
    assert extract("64:ff9b::/96", "64:ff9b::8.8.8.8") == IPv4Address("8.8.8.8")


@pytest.mark.parametrize(
    "v4", ["10.0.0.1", "172.16.5.4", "192.168.0.1", "100.64.0.10", "127.0.0.1", "169.254.1.1", "192.0.2.33",
           "198.51.100.7", "203.0.113.9", "0.0.0.0", "255.255.255.255"],
)
def test_well_known_prefix_refuses_non_global_ipv4_both_ways(v4):
    with pytest.raises(Rfc6052Error):
        embed("64:ff9b::/96", v4)
    with pytest.raises(Rfc6052Error):
        extract("64:ff9b::/96", f"64:ff9b::{v4}")
    # a network-specific prefix may carry them
    assert extract("2001:db8:64::/96", embed("2001:db8:64::/96", v4)) == IPv4Address(v4)
