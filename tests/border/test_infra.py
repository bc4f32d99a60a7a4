"""Learning the LAN from its routers' RAs: lifetimes, withdrawal, what is published, RFC 7050."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.border.infra import (
    DEFAULT_ROUTE,
    Change,
    InfraLink,
    InfraState,
    Kind,
    RaTracker,
    changes,
    nat64_prefix_from_synthesis,
)
from gatewayd.border.ra import (
    INFINITY,
    Pref64,
    PrefixInformation,
    RouteInformation,
    RoutePreference,
    RouterAdvertisement,
)
from nat64.rfc6052 import VALID_PREFIX_LENGTHS, Nat64Prefix

R1, R2 = IPv6Address("fe80::1"), IPv6Address("fe80::2")
LAN = IPv6Network("2001:db8:1:2::/64")
ROUTE = IPv6Network("2001:db8:99::/48")
NAT64 = IPv6Network("64:ff9b::/96")
MESH_LOCAL = IPv6Network("fdde:ad00:beef::/64")
OMR = IPv6Network("fd12:3456:789a:1::/64")


def home_router_ra(lifetime: int = 1800) -> RouterAdvertisement:
    return RouterAdvertisement(router_lifetime=min(lifetime, 9000),
                               prefixes=(PrefixInformation(LAN, valid_lifetime=lifetime, preferred_lifetime=0),),
                               routes=(RouteInformation(ROUTE, lifetime),),
                               pref64=(Pref64(NAT64, lifetime - lifetime % 8),))


def test_a_home_routers_ra_gives_prefix_route_default_and_nat64():
    state = RaTracker().receive(R1, home_router_ra(), now=0)
    assert state == InfraState(on_link=frozenset({LAN}), routes=frozenset({ROUTE}), default_route=True,
                               nat64_prefix=NAT64)
    assert state.external_routes() == {LAN, ROUTE, DEFAULT_ROUTE}


def test_entries_expire_with_their_lifetimes_and_silence_withdraws_nothing():
    t = RaTracker()
    t.receive(R1, home_router_ra(600), now=0)
    t.receive(R1, RouterAdvertisement(prefixes=(PrefixInformation(LAN, valid_lifetime=1200),)), now=100)
    assert t.next_expiry() == 600
    # the second RA named neither the route nor the NAT64 prefix: they stay until their lifetime ends
    assert t.expire(599).routes == {ROUTE}
    at_600 = t.expire(600)
    assert at_600 == InfraState(on_link=frozenset({LAN}))  # the router lifetime ran out too
    assert t.next_expiry() == 1300
    assert t.expire(1300) == InfraState() and t.next_expiry() is None


def test_lifetime_zero_withdraws_at_once():
    t = RaTracker()
    t.receive(R1, home_router_ra(), now=0)
    state = t.receive(R1, home_router_ra(0), now=5)
    assert state == InfraState()
    assert changes(t.receive(R1, home_router_ra(), now=6), state, "withdrawn") == [
        Change(Kind.ON_LINK, LAN, "withdrawn"), Change(Kind.ROUTE, ROUTE, "withdrawn"),
        Change(Kind.DEFAULT, DEFAULT_ROUTE, "withdrawn"), Change(Kind.NAT64, NAT64, "withdrawn")]


def test_a_prefix_two_routers_announce_stays_while_either_does():
    t = RaTracker()
    t.receive(R1, home_router_ra(), now=0)
    t.receive(R2, RouterAdvertisement(routes=(RouteInformation(ROUTE, 60),)), now=0)
    assert ROUTE in t.receive(R1, home_router_ra(0), now=1).routes
    assert t.expire(61) == InfraState()


def test_infinite_lifetime_never_expires():
    t = RaTracker()
    t.receive(R1, RouterAdvertisement(routes=(RouteInformation(ROUTE, INFINITY),)), now=0)
    assert t.next_expiry() is None and t.expire(1e12).routes == {ROUTE}


def test_mesh_prefixes_and_unroutable_ones_are_never_published():
    state = InfraState(on_link=frozenset({LAN, IPv6Network("fe80::/64")}),
                       routes=frozenset({OMR, IPv6Network("fdde:ad00::/32"), IPv6Network("ff05::/16"), ROUTE}))
    assert state.external_routes(exclude=[MESH_LOCAL, OMR]) == {LAN, ROUTE}


def test_a_rio_for_the_default_route_counts_as_a_default_router():
    state = RaTracker().receive(R1, RouterAdvertisement(routes=(RouteInformation(DEFAULT_ROUTE, 300),)), now=0)
    assert state.default_route and not state.routes


def test_on_link_needs_the_l_flag():
    ra = RouterAdvertisement(prefixes=(PrefixInformation(LAN, on_link=False),))
    assert RaTracker().receive(R1, ra, now=0) == InfraState()


def test_the_table_is_bounded_and_counts_what_it_drops():
    t = RaTracker(max_entries=4)
    ra = RouterAdvertisement(routes=tuple(RouteInformation(IPv6Network(f"2001:db8:{i}::/48")) for i in range(10)))
    assert len(t.receive(R1, ra, now=0).routes) == 4
    assert t.dropped == 6


def test_several_nat64_prefixes_pick_one_deterministically():
    other = IPv6Network("2001:db8:64::/96")
    for order in ((R1, R2), (R2, R1)):
        t = RaTracker()
        t.receive(order[0], RouterAdvertisement(pref64=(Pref64(other, 600),)), now=0)
        assert t.receive(order[1], RouterAdvertisement(pref64=(Pref64(NAT64, 600),)), now=0).nat64_prefix == NAT64


def test_link_tells_subscribers_only_of_changes():
    link, heard = InfraLink(), []
    unsubscribe = link.on_change(lambda: heard.append(link.state))
    link.update(InfraState(default_route=True))
    link.update(InfraState(default_route=True))
    unsubscribe()
    link.update(InfraState())
    assert heard == [InfraState(default_route=True)]


# --- properties ---------------------------------------------------------------------------------

networks = st.builds(lambda a, n: IPv6Network((a, n), strict=False), st.integers(0, 2**128 - 1), st.integers(1, 128))
lifetimes = st.one_of(st.integers(0, 100_000), st.just(INFINITY))
ras = st.builds(
    lambda lifetime, pios, rios: RouterAdvertisement(router_lifetime=lifetime, prefixes=tuple(pios),
                                                     routes=tuple(rios)),
    st.integers(0, 9000), st.lists(st.builds(PrefixInformation, networks, st.just(True), st.booleans(), lifetimes,
                                             st.just(0)), max_size=3),
    st.lists(st.builds(RouteInformation, networks, lifetimes), max_size=3))


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from([R1, R2]), ras, st.integers(0, 1000)), max_size=8), st.integers(0, 10**6))
def test_nothing_outlives_its_last_announced_lifetime(events, later):
    t, now, last = RaTracker(), 0, {}
    for router, ra, step in events:
        now += step
        t.receive(router, ra, now)
        for pio in ra.prefixes:
            last[(router, pio.prefix)] = (now, pio.valid_lifetime)
    end = now + later
    state = t.expire(end)
    for prefix in state.on_link:
        assert any(p == prefix and (life == INFINITY or at + life > end) for (_, p), (at, life) in last.items())
    nxt = t.next_expiry()
    assert nxt is None or nxt > end


@given(st.integers(0, 2**128 - 1), st.sampled_from(VALID_PREFIX_LENGTHS), st.sampled_from(["192.0.0.170",
                                                                                           "192.0.0.171"]))
def test_rfc7050_finds_the_prefix_a_dns64_synthesised_with(bits: int, plen: int, wka: str):
    prefix = IPv6Network((bits >> (128 - plen) << (128 - plen), plen))
    prefix = IPv6Network((int(prefix.network_address) & ~(0xFF << 56), plen))  # RFC 6052: u octet zero
    synthesised = Nat64Prefix(prefix).embed_packed(IPv4Address(wka).packed, check=False)
    assert nat64_prefix_from_synthesis([IPv6Address(synthesised)]) == prefix


@pytest.mark.parametrize("answer", ["2001:db8::1", "64:ff9b::c000:ab01"])
def test_rfc7050_answers_without_a_well_known_address_give_nothing(answer: str):
    assert nat64_prefix_from_synthesis([IPv6Address(answer)]) is None


def test_rfc7050_well_known_prefix():
    assert nat64_prefix_from_synthesis([IPv6Address("64:ff9b::c000:aa"), IPv6Address("64:ff9b::c000:ab")]) == NAT64


def test_a_routes_preference_is_the_highest_any_router_gives_while_it_lasts():
    t = RaTracker()
    t.receive(R1, RouterAdvertisement(routes=(RouteInformation(ROUTE, 600, RoutePreference.LOW),)), now=0)
    assert t.state(0).preference(ROUTE) == RoutePreference.LOW
    t.receive(R2, RouterAdvertisement(routes=(RouteInformation(ROUTE, 60, RoutePreference.HIGH),)), now=0)
    assert t.state(0).preference(ROUTE) == RoutePreference.HIGH
    assert t.expire(60).preference(ROUTE) == RoutePreference.LOW  # R2's ran out
    assert t.receive(R1, home_router_ra(), now=61).preference(ROUTE) == RoutePreference.MEDIUM
