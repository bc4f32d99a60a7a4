"""Router Advertisement / Solicitation codec: RFC 4191 §2.3 layout, round trips, strict rejection."""

from __future__ import annotations

import struct
from ipaddress import IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptPREF64,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRouteInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.packet import raw

from gatewayd.border.ra import (
    INFINITY,
    PREF64_MAX_LIFETIME,
    Pref64,
    PrefixInformation,
    RaError,
    RouteInformation,
    RoutePreference,
    RouterAdvertisement,
    RouterSolicitation,
    build_ra,
    build_rs,
    icmpv6_checksum,
    parse,
    pref64_option,
    route_information_option,
)

OMR = IPv6Network("fd12:3456:789a:1::/64")
LL = "fe80::1"
ALL_NODES = "ff02::1"

# --- golden bytes --------------------------------------------------------------------------------


def test_golden_ra_with_one_route_information_option():
    ra = RouterAdvertisement(routes=(RouteInformation(OMR, 1800, RoutePreference.HIGH),))
    expected = bytes.fromhex(
        # RFC 4861 §4.2 RA header
        "86"  # Type 134
        "00"  # Code 0
        "0000"  # Checksum: left to the kernel on a raw ICMPv6 socket
        "00"  # Cur Hop Limit: unspecified
        "00"  # M=0 O=0 H=0 Prf=00 (medium: router lifetime is 0) P=0 Reserved
        "0000"  # Router Lifetime 0: not a default router
        "00000000"  # Reachable Time
        "00000000"  # Retrans Timer
        # RFC 4191 §2.3 Route Information Option
        "18"  # Type 24
        "02"  # Length 2 (units of 8 octets): prefix length 1..64 carries 8 prefix octets
        "40"  # Prefix Length 64
        "08"  # Resvd(3)=000 Prf(2)=01 (high) Resvd(3)=000
        "00000708"  # Route Lifetime 1800 s
        "fd123456789a0001"  # Prefix, truncated to its first 64 bits
    )
    assert build_ra(ra) == expected
    assert parse(expected) == ra


def test_checksum_matches_an_independent_implementation():
    ra = RouterAdvertisement(source_lladdr=bytes.fromhex("02005e100001"),
                             routes=(RouteInformation(OMR, 1800, RoutePreference.LOW),))
    ours = build_ra(ra, src=LL, dst=ALL_NODES)
    pkt = IPv6(src=LL, dst=ALL_NODES, hlim=255) / ICMPv6ND_RA(build_ra(ra))
    del pkt[ICMPv6ND_RA].cksum
    theirs = raw(IPv6(raw(pkt)))[40:]
    assert ours == theirs
    assert icmpv6_checksum(LL, ALL_NODES, ours) == 0
    parse(ours, src=LL, dst=ALL_NODES)  # accepted with the checksum checked


def test_scapy_reads_our_route_information_option():
    ra = RouterAdvertisement(source_lladdr=bytes.fromhex("02005e100001"),
                             routes=(RouteInformation(IPv6Network("fd00:1:2::/48"), 600, RoutePreference.LOW),))
    pkt = ICMPv6ND_RA(build_ra(ra))
    assert pkt.routerlifetime == 0
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == "02:00:5e:10:00:01"
    rio = pkt[ICMPv6NDOptRouteInfo]
    assert (rio.plen, rio.prf, rio.rtlifetime, rio.len, rio.prefix) == (48, 3, 600, 2, "fd00:1:2::")


def test_we_read_scapy_built_messages():
    ra = ICMPv6ND_RA(routerlifetime=1800, prf=1) / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:02") / \
        ICMPv6NDOptRouteInfo(plen=64, prf=1, rtlifetime=300, prefix="fd99:1:2:3::")
    got = parse(raw(ra))
    assert isinstance(got, RouterAdvertisement)
    assert got.router_lifetime == 1800 and got.router_preference == RoutePreference.HIGH
    assert got.routes == (RouteInformation(IPv6Network("fd99:1:2:3::/64"), 300, RoutePreference.HIGH),)
    rs = parse(raw(ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:03")))
    assert rs == RouterSolicitation(source_lladdr=bytes.fromhex("020000000003"))


def test_golden_pref64_option():
    # RFC 8781 §4: Type 38, Length 2, Scaled Lifetime (13 bits, units of 8 s) | PLC (3 bits), 96 prefix bits
    assert pref64_option(Pref64(IPv6Network("64:ff9b::/96"), 1800)) == bytes.fromhex(
        "26" "02" "0708" "0064ff9b0000000000000000")  # 1800/8 = 225 = 0x0e1 << 3 | PLC 0 (/96)
    assert pref64_option(Pref64(IPv6Network("2001:db8:1::/48"), 8))[2:4] == bytes.fromhex("000b")  # 1<<3 | 3


def test_we_read_a_lan_routers_ra_built_by_scapy():
    """What a home router sends: default router, on-link /64 with SLAAC, a route, and its NAT64 prefix."""
    ra = (ICMPv6ND_RA(routerlifetime=1800, prf=0)
          / ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=86400, preferredlifetime=14400,
                                  prefix="2001:db8:1:2::")
          / ICMPv6NDOptRouteInfo(plen=48, prf=0, rtlifetime=600, prefix="2001:db8:99::")
          / ICMPv6NDOptPREF64(scaledlifetime=225, plc=0, prefix="64:ff9b::"))
    got = parse(raw(ra))
    assert isinstance(got, RouterAdvertisement) and got.router_lifetime == 1800
    assert got.prefixes == (PrefixInformation(IPv6Network("2001:db8:1:2::/64"), True, True, 86400, 14400),)
    assert got.routes == (RouteInformation(IPv6Network("2001:db8:99::/48"), 600),)
    assert got.pref64 == (Pref64(IPv6Network("64:ff9b::/96"), 1800),)
    assert got.unknown_options == ()


def test_scapy_reads_our_pref64_option():
    opt = ICMPv6ND_RA(build_ra(RouterAdvertisement(pref64=(Pref64(IPv6Network("2001:db8:64::/48"), 600),))))
    pref = opt[ICMPv6NDOptPREF64]
    assert (pref.len, pref.scaledlifetime, pref.plc, pref.prefix) == (2, 75, 3, "2001:db8:64::")


@pytest.mark.parametrize(("option", "why"), [
    (b"\x26\x01" + bytes(6), "Length is not 2"),
    (b"\x26\x03" + bytes(22), "Length is not 2"),
    (b"\x26\x02\x00\x06" + bytes(12), "PLC 6 is reserved"),
    (b"\x26\x02\x00\x07" + bytes(12), "PLC 7 is reserved"),
])
def test_pref64_options_rfc8781_says_to_ignore_are_left_out(option: bytes, why: str):
    assert parse(_ra_with(option)).pref64 == (), why


@pytest.mark.parametrize("pref", [
    Pref64(IPv6Network("64:ff9b::/95"), 8),
    Pref64(IPv6Network("64:ff9b::/96"), 7),
    Pref64(IPv6Network("64:ff9b::/96"), PREF64_MAX_LIFETIME + 8),
    Pref64(IPv6Network("64:ff9b::/96"), -8),
])
def test_unencodable_pref64_raises_ra_error(pref: Pref64):
    with pytest.raises(RaError):
        build_ra(RouterAdvertisement(pref64=(pref,)))


@pytest.mark.parametrize(("plen", "length", "prefix_octets"), [(0, 1, 0), (1, 2, 8), (48, 2, 8), (64, 2, 8),
                                                               (65, 3, 16), (128, 3, 16)])
def test_rio_prefix_is_truncated_as_rfc4191_says(plen: int, length: int, prefix_octets: int):
    net = IPv6Network(("ffff:" * 7 + "ffff", plen), strict=False)
    opt = route_information_option(RouteInformation(net))
    assert opt[1] == length
    assert len(opt) == 8 * length == 8 + prefix_octets
    assert opt[2] == plen


def test_router_preference_is_medium_when_not_a_default_router():
    assert build_ra(RouterAdvertisement(router_lifetime=0, router_preference=RoutePreference.HIGH))[5] == 0
    assert build_ra(RouterAdvertisement(router_lifetime=600, router_preference=RoutePreference.LOW))[5] == 0x18


# --- round trips ---------------------------------------------------------------------------------

preferences = st.sampled_from([RoutePreference.LOW, RoutePreference.MEDIUM, RoutePreference.HIGH])
lifetimes = st.one_of(st.sampled_from([0, 1800, INFINITY]), st.integers(0, 0xFFFFFFFF))
networks = st.builds(lambda addr, plen: IPv6Network((addr, plen), strict=False),
                     st.integers(0, 2**128 - 1), st.integers(0, 128))
routes = st.builds(RouteInformation, networks, lifetimes, preferences)
lladdrs = st.one_of(st.none(), st.binary(min_size=6, max_size=6), st.binary(min_size=14, max_size=14))
pios = st.builds(PrefixInformation, networks, st.booleans(), st.booleans(), lifetimes, lifetimes)
pref64s = st.builds(Pref64, st.builds(lambda addr, plen: IPv6Network((addr, plen), strict=False),
                                      st.integers(0, 2**128 - 1), st.sampled_from([32, 40, 48, 56, 64, 96])),
                    st.integers(0, PREF64_MAX_LIFETIME // 8).map(lambda n: n * 8))
# Unknown options keep their padding, so only bodies that fill whole 8-octet units round-trip exactly.
unknown = st.lists(st.tuples(st.integers(0, 255).filter(lambda t: t not in (1, 3, 5, 24, 38)),
                             st.integers(0, 4).flatmap(lambda n: st.binary(min_size=8 * n + 6, max_size=8 * n + 6))),
                   max_size=3).map(tuple)


@st.composite
def advertisements(draw):
    lifetime = draw(st.integers(0, 0xFFFF))
    return RouterAdvertisement(
        router_lifetime=lifetime, cur_hop_limit=draw(st.integers(0, 255)), managed=draw(st.booleans()),
        other=draw(st.booleans()), router_preference=draw(preferences) if lifetime else RoutePreference.MEDIUM,
        reachable_time=draw(st.integers(0, 0xFFFFFFFF)), retrans_timer=draw(st.integers(0, 0xFFFFFFFF)),
        source_lladdr=draw(lladdrs), mtu=draw(st.one_of(st.none(), st.integers(1280, 0xFFFFFFFF))),
        routes=tuple(draw(st.lists(routes, max_size=6))), prefixes=tuple(draw(st.lists(pios, max_size=2))),
        pref64=tuple(draw(st.lists(pref64s, max_size=2))), unknown_options=draw(unknown))


@settings(max_examples=200)
@given(advertisements())
def test_ra_round_trip(ra: RouterAdvertisement):
    assert parse(build_ra(ra)) == ra


@settings(max_examples=300)
@given(st.lists(routes, min_size=1, max_size=4))
def test_route_options_round_trip_with_checksum(rs: list[RouteInformation]):
    ra = RouterAdvertisement(routes=tuple(rs))
    data = build_ra(ra, src=LL, dst=ALL_NODES)
    assert parse(data, src=LL, dst=ALL_NODES).routes == tuple(rs)
    assert len(data) == 16 + sum(8 * (1 if r.prefix.prefixlen == 0 else 2 if r.prefix.prefixlen <= 64 else 3)
                                 for r in rs)


@given(lladdrs, unknown)
def test_rs_round_trip(lladdr, options):
    rs = RouterSolicitation(lladdr, options)
    assert parse(build_rs(rs)) == rs


@given(st.integers(0, 2**128 - 1), st.integers(0, 128), st.integers(0, 2**128 - 1))
def test_bits_past_the_prefix_length_are_ignored(addr: int, plen: int, junk: int):
    net = IPv6Network((addr, plen), strict=False)
    opt = bytearray(route_information_option(RouteInformation(net)))
    host_mask = (1 << (128 - plen)) - 1
    dirty = (int(net.network_address) | (junk & host_mask)).to_bytes(16, "big")
    opt[8:] = dirty[: len(opt) - 8]
    assert parse(build_ra(RouterAdvertisement()) + bytes(opt)).routes[0].prefix == net


# --- rejection -----------------------------------------------------------------------------------


def _ra_with(option: bytes) -> bytes:
    return build_ra(RouterAdvertisement()) + option


@pytest.mark.parametrize(("data", "why"), [
    (b"", "too short"),
    (b"\x86\x00\x00\x00\x00\x00\x00\x00", "too short for a Router Advertisement"),
    (b"\x87" + bytes(23), "not a Router"),
    (b"\x86\x01" + bytes(14), "code 1"),
    (_ra_with(b"\x18\x00" + bytes(6)), "length 0"),
    (_ra_with(b"\x18\x02" + bytes(6)), "runs past the end"),
    (_ra_with(b"\x18\x01\x40\x00" + bytes(4)), "does not fit prefix length 64"),
    (_ra_with(b"\x18\x02\x41\x00" + bytes(12)), "does not fit prefix length 65"),
    (_ra_with(b"\x18\x04\x40\x00" + bytes(28)), "does not fit prefix length 64"),
    (_ra_with(b"\x18\x03\x81\x00" + bytes(20)), "prefix length 129"),
    (_ra_with(b"\x05\x02" + bytes(14)), "MTU option length 2"),
    (_ra_with(b"\x03\x01" + bytes(6)), "prefix information length 1"),
    (_ra_with(b"\x01"), "truncated option header"),
])
def test_bad_messages_raise_ra_error(data: bytes, why: str):
    with pytest.raises(RaError, match=why):
        parse(data)


def test_bad_checksum_is_rejected_when_addresses_are_known():
    data = bytearray(build_ra(RouterAdvertisement(routes=(RouteInformation(OMR),)), src=LL, dst=ALL_NODES))
    data[-1] ^= 1
    parse(bytes(data))  # without addresses the kernel is trusted to have checked
    with pytest.raises(RaError, match="checksum"):
        parse(bytes(data), src=LL, dst=ALL_NODES)


def test_reserved_preference_voids_the_route_and_is_never_sent():
    good = route_information_option(RouteInformation(IPv6Network("fd00:1::/64"), 60))
    opt = b"\x18\x02\x40" + bytes([0b10 << 3]) + struct.pack("!I", 60) + OMR.network_address.packed[:8]
    assert parse(_ra_with(opt + good)).routes == (RouteInformation(IPv6Network("fd00:1::/64"), 60),)
    with pytest.raises(RaError):
        route_information_option(RouteInformation(OMR, 60, RoutePreference.RESERVED))


@pytest.mark.parametrize(("lifetime", "flags", "expected"), [
    (0, 0x08, RoutePreference.MEDIUM),  # ignored when not a default router
    (600, 0x10, RoutePreference.MEDIUM),  # reserved reads as medium
    (600, 0x18, RoutePreference.LOW),
])
def test_router_preference_is_read_as_rfc4191_says(lifetime: int, flags: int, expected: RoutePreference):
    data = bytearray(build_ra(RouterAdvertisement(router_lifetime=lifetime)))
    data[5] = flags
    assert parse(bytes(data)).router_preference == expected


@pytest.mark.parametrize("ra", [
    RouterAdvertisement(router_lifetime=0x10000),
    RouterAdvertisement(routes=(RouteInformation(OMR, 2**32),)),
    RouterAdvertisement(routes=(RouteInformation(OMR, -1),)),
    RouterAdvertisement(source_lladdr=b""),
])
def test_building_out_of_range_values_raises_ra_error(ra: RouterAdvertisement):
    with pytest.raises(RaError):
        build_ra(ra)


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_parser_raises_only_ra_error(data: bytes):
    try:
        parse(data)
    except RaError:
        pass


@settings(max_examples=150)
@given(advertisements(), st.data())
def test_mutated_valid_messages_raise_only_ra_error(ra: RouterAdvertisement, data):
    msg = bytearray(build_ra(ra))
    for _ in range(data.draw(st.integers(1, 4))):
        msg[data.draw(st.integers(0, len(msg) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(msg)))
    try:
        parse(bytes(msg[:cut]))
    except RaError:
        pass
