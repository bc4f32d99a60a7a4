"""The routing manager's arbitration between border routers on one mesh (gatewayd/thread/routing.py).

Several border routers are simulated as what they are to each other: entries in the leader's network
data. Each round every router decides on the same snapshot (the worst case: they all act at once), and
the leader's data becomes the union of what they publish, stamped with their RLOC16s.
"""

from __future__ import annotations

import ipaddress
import logging

from hypothesis import given
from hypothesis import strategies as st

from gatewayd.thread.routing import (
    DEFAULT_ROUTE,
    LanLearned,
    LanRoute,
    LocalIntent,
    MeshData,
    Preference,
    RoutingManager,
    decide,
    favoured_omr,
    is_nat64_route,
    preference_of,
    with_preference,
)
from ncp.netdata import ExternalRoute, OnMeshPrefix

WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")

prefixes64 = st.integers(0, 2**16 - 1).map(lambda n: ipaddress.IPv6Network(((0xFD00 << 112) | (n << 64), 64)))
preferences = st.sampled_from(list(Preference))
rlocs = st.integers(0, 62).map(lambda router_id: router_id << 10)


@st.composite
def border_routers(draw, min_size=1):
    """Distinct RLOC16s, each with an OMR prefix (some shared), its preference and a NAT64 prefix."""
    ids = draw(st.lists(rlocs, min_size=min_size, max_size=5, unique=True))
    nat64 = st.one_of(st.just(WELL_KNOWN), st.integers(0, 255).map(
        lambda n: ipaddress.IPv6Network(((0xFD00 << 112) | (n << 80), 96))))
    return {rloc: LocalIntent(omr_prefix=draw(prefixes64), omr_preference=draw(preferences),
                              nat64_prefix=draw(nat64)) for rloc in ids}


def leader_data(published: dict[int, tuple[frozenset, frozenset]]) -> tuple[tuple, tuple]:
    prefixes = tuple(OnMeshPrefix(p.prefix, p.flags, p.stable, p.flags_ext, rloc)
                     for rloc, (ps, _) in sorted(published.items()) for p in sorted(ps))
    routes = tuple(ExternalRoute(r.prefix, r.flags, r.stable, rloc)
                   for rloc, (_, rs) in sorted(published.items()) for r in sorted(rs))
    return prefixes, routes


def converge(routers: dict[int, LocalIntent], lan: LanLearned = LanLearned(), start=None, rounds: int = 8):
    """Rounds of simultaneous decisions until nothing changes; returns (published per router, rounds)."""
    published = dict(start or {})
    for n in range(rounds):
        prefixes, routes = leader_data(published)
        decisions = {rloc: decide(local, lan, MeshData(prefixes, routes, rloc)) for rloc, local in routers.items()}
        now = {rloc: (d.prefixes, d.routes) for rloc, d in decisions.items()}
        if now == published:
            return published, decisions, n
        published = now
    raise AssertionError(f"no convergence in {rounds} rounds: {published}")


def omr_entries(published):
    return {(rloc, p.prefix) for rloc, (ps, _) in published.items() for p in ps}


def nat64_entries(published):
    return {(rloc, r.prefix) for rloc, (_, rs) in published.items() for r in rs if is_nat64_route(r)}


def best(routers: dict[int, LocalIntent]) -> ipaddress.IPv6Network:
    return min((-local.omr_preference, local.omr_prefix) for local in routers.values())[1]


@given(border_routers())
def test_the_mesh_converges_on_the_favoured_omr_prefix_and_one_nat64_route(routers):
    published, decisions, rounds = converge(routers)
    favoured = best(routers)
    assert {prefix for _, prefix in omr_entries(published)} == {favoured}, "one OMR prefix in the mesh"
    # Every router offering the favoured prefix publishes it (each routes it); the others adopted it.
    assert {rloc for rloc, _ in omr_entries(published)} == {
        rloc for rloc, local in routers.items() if local.omr_prefix == favoured}
    assert all(d.omr_prefix == favoured for d in decisions.values())
    assert len(nat64_entries(published)) == 1, "exactly one NAT64 route"
    (winner, nat64), = nat64_entries(published)
    assert nat64 == min(local.nat64_prefix for local in routers.values())
    assert all(d.nat64_prefix == nat64 for d in decisions.values())
    assert [rloc for rloc, d in decisions.items() if d.nat64_ours_translates] == [winner]
    assert rounds <= 3


@given(border_routers(min_size=2), st.data())
def test_when_the_favoured_router_leaves_the_next_one_takes_over(routers, data):
    published, _, _ = converge(routers)
    leaving = data.draw(st.sampled_from(sorted(rloc for rloc, _ in omr_entries(published))))
    rest = {rloc: local for rloc, local in routers.items() if rloc != leaving}
    after, _, _ = converge(rest, start={rloc: p for rloc, p in published.items() if rloc != leaving})
    assert {prefix for _, prefix in omr_entries(after)} == {best(rest)}
    assert len(nat64_entries(after)) == 1


def test_a_favoured_existing_prefix_is_adopted_and_ours_withdrawn_then_returns():
    ours, theirs = ipaddress.IPv6Network("fd99::/64"), ipaddress.IPv6Network("fd11::/64")
    manager = RoutingManager(local=LocalIntent(omr_prefix=ours, nat64_prefix=WELL_KNOWN))
    first = manager.evaluate(MeshData(rloc16=0x6C00))
    assert first.omr == "published" and {p.prefix for p in first.prefixes} == {ours}
    both = MeshData((OnMeshPrefix(ours, with_preference(0x33, Preference.LOW), rloc16=0x6C00),
                     OnMeshPrefix(theirs, with_preference(0x33, Preference.LOW), rloc16=0x0400)),
                    (ExternalRoute(WELL_KNOWN, with_preference(0x20, Preference.LOW), rloc16=0x0400),
                     ExternalRoute(WELL_KNOWN, with_preference(0x20, Preference.LOW), rloc16=0x6C00)), 0x6C00)
    second = manager.evaluate(both)
    assert second.omr == "adopted" and second.omr_prefix == theirs and not second.prefixes
    assert second.nat64 == "adopted" and not any(is_nat64_route(r) for r in second.routes), \
        "same NAT64 prefix, same preference: the smaller RLOC16 keeps it"
    assert manager.counters.omr_withdrawn == 1 and manager.counters.omr_adopted == 1
    third = manager.evaluate(MeshData(rloc16=0x6C00))  # the other border router left
    assert third.omr == "published" and third.omr_prefix == ours and third.nat64 == "published"
    assert manager.counters.omr_published == 2 and manager.counters.nat64_withdrawn == 1


def test_decisions_are_journalled_with_their_fields(caplog):
    ours, theirs = ipaddress.IPv6Network("fd99::/64"), ipaddress.IPv6Network("fd11::/64")
    manager = RoutingManager(local=LocalIntent(omr_prefix=ours))
    with caplog.at_level(logging.INFO, "gatewayd.thread"):
        manager.evaluate(MeshData())
        manager.evaluate(MeshData((OnMeshPrefix(theirs, with_preference(0x33, Preference.LOW), rloc16=0x400),)))
        manager.evaluate(MeshData((OnMeshPrefix(theirs, with_preference(0x33, Preference.LOW), rloc16=0x400),)))
    fields = [r.fields for r in caplog.records if hasattr(r, "fields")]
    assert fields == [{"OMR_PREFIX": str(ours), "OMR_DECISION": "published"},
                      {"OMR_PREFIX": str(theirs), "OMR_DECISION": "withdrawn"}], "an unchanged decision is not logged"


def test_a_lower_preference_prefix_does_not_displace_ours():
    ours, theirs = ipaddress.IPv6Network("fd99::/64"), ipaddress.IPv6Network("fd11::/64")
    local = LocalIntent(omr_prefix=ours, omr_preference=Preference.MEDIUM)
    decision = decide(local, LanLearned(), MeshData(
        (OnMeshPrefix(theirs, with_preference(0x33, Preference.LOW), rloc16=0x400),), (), 0x6C00))
    assert decision.omr == "published" and decision.omr_prefix == ours


def test_invalid_omr_candidates_are_ignored():
    flags = 0x33  # preferred, SLAAC, default route, on-mesh
    candidates = [OnMeshPrefix(ipaddress.IPv6Network("fd00::/48"), flags, rloc16=1),  # not a /64
                  OnMeshPrefix(ipaddress.IPv6Network("fd00:1::/64"), flags & ~0x10, rloc16=1),  # no SLAAC
                  OnMeshPrefix(ipaddress.IPv6Network("fd00:2::/64"), flags & ~0x20, rloc16=1),  # not preferred
                  OnMeshPrefix(ipaddress.IPv6Network("fd00:3::/64"), flags, stable=False, rloc16=1),
                  OnMeshPrefix(ipaddress.IPv6Network("fe80::/64"), flags, rloc16=1)]
    assert favoured_omr(candidates) is None


def test_a_lan_nat64_prefix_replaces_our_translator_and_every_router_on_the_lan_publishes_it():
    pref64 = ipaddress.IPv6Network("2001:db8:64::/96")
    lan = LanLearned(routes=frozenset({LanRoute(ipaddress.IPv6Network("2001:db8:1::/64"))}), default_route=True,
                     nat64_prefix=pref64)
    routers = {0x0400: LocalIntent(omr_prefix=ipaddress.IPv6Network("fd11::/64"), nat64_prefix=WELL_KNOWN),
               0x6C00: LocalIntent(omr_prefix=ipaddress.IPv6Network("fd22::/64"), nat64_prefix=WELL_KNOWN)}
    published, decisions, _ = converge(routers, lan)
    assert nat64_entries(published) == {(0x0400, pref64), (0x6C00, pref64)}
    assert all(preference_of(r.flags) == Preference.MEDIUM for _, rs in published.values() for r in rs
               if is_nat64_route(r))
    assert not any(d.nat64_ours_translates for d in decisions.values()), "our translator stays off"
    for _, routes in published.values():
        assert {r.prefix for r in routes} >= {DEFAULT_ROUTE, ipaddress.IPv6Network("2001:db8:1::/64")}


def test_a_lan_nat64_prefix_wins_over_a_translator_elsewhere_on_the_mesh():
    pref64 = ipaddress.IPv6Network("2001:db8:64::/96")
    other = ExternalRoute(WELL_KNOWN, with_preference(0x20, Preference.LOW), rloc16=0x0400)
    d = decide(LocalIntent(nat64_prefix=WELL_KNOWN), LanLearned(nat64_prefix=pref64), MeshData((), (other,), 0x6C00))
    assert d.nat64 == "published" and d.nat64_prefix == pref64


@given(st.integers(0, 255), preferences)
def test_preference_bits_round_trip(flags, preference):
    assert preference_of(with_preference(flags, preference)) == preference
    assert with_preference(flags, preference) & 0x3F == flags & 0x3F


def test_a_lan_route_to_one_of_the_meshs_own_prefixes_is_not_published():
    """Another border router's RA on the LAN carries the mesh's OMR prefix: it is on-mesh, not off-mesh."""
    theirs = ipaddress.IPv6Network("fd11::/64")
    lan = LanLearned(routes=frozenset({LanRoute(theirs), LanRoute(ipaddress.IPv6Network("2001:db8:9::/48"))}))
    mesh = MeshData((OnMeshPrefix(theirs, with_preference(0x33, Preference.LOW), rloc16=0x400),), (), 0x6C00)
    d = decide(LocalIntent(), lan, mesh)
    assert {r.prefix for r in d.routes} == {ipaddress.IPv6Network("2001:db8:9::/48")}
