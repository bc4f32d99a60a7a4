"""gatewayd next to another border router on the simulated mesh: the simulator's ``border_router`` control
command publishes the other router's prefixes and routes into the leader's network data, as a second
border router (a Pi, or a commercial OpenThread one) would. Two gatewayd on one mesh run on simulated NCPs
sharing a radio in tests/thread/test_two_border_routers_sim.py, and on real NCPs in
tests/interop/test_two_border_routers.py."""

from __future__ import annotations

import ipaddress

import pytest

from gatewayd.thread.routing import Preference, with_preference
from ncp.spinel.props import ROUTE_FLAG_NAT64
from tests.conftest import wait_until
from tests.thread.conftest import Topology
from tests.thread.test_border_router import ctl, leader, omr_address

pytestmark = [pytest.mark.root, pytest.mark.slow]

OMR_FLAGS = 0x33  # preferred, SLAAC, default route, on-mesh: "paro"
THEIRS = ipaddress.IPv6Network("fd00:1111::/64")
PEER = 0x0400
INFRA_NAT64 = ipaddress.IPv6Network("2001:db8:64::/96")


def omr_rows(netdata: dict) -> list[tuple[str, str, bool]]:
    return sorted((p["prefix"], p["rloc16"], p["local"]) for p in netdata["prefixes"] if "a" in p["flags"])


def nat64_rows(netdata: dict) -> list[tuple[str, str, bool]]:
    return sorted((r["prefix"], r["rloc16"], r["local"]) for r in netdata["routes"] if r["nat64"])


def test_a_favoured_prefix_of_another_router_is_adopted_and_ours_returns_when_it_leaves(topo: Topology):
    gw = topo.start_daemon()
    ours = leader(gw)["local_omr_prefix"]
    before = wait_until(lambda: (n := ctl(gw, "netdata", "show"))["routing"].get("omr") == "published" and n,
                        what="our OMR prefix published")
    rloc = next(rloc for prefix, rloc, local in omr_rows(before) if local)

    # Another border router with a medium-preference OMR prefix (infrastructure-derived, as OpenThread calls
    # it) and a NAT64 prefix the LAN gave it: both outrank our generated low-preference ones.
    topo.sim("border_router", rloc16=PEER,
             prefixes=[{"prefix": str(THEIRS), "flags": with_preference(OMR_FLAGS, Preference.MEDIUM)}],
             routes=[{"prefix": str(INFRA_NAT64), "flags": with_preference(ROUTE_FLAG_NAT64, Preference.MEDIUM)},
                     {"prefix": "::/0"}])
    adopted = wait_until(lambda: (n := ctl(gw, "netdata", "show"))["routing"].get("omr") == "adopted"
                         and omr_rows(n) == [(str(THEIRS), "0x0400", False)] and n, what="their prefix adopted")
    assert nat64_rows(adopted) == [(str(INFRA_NAT64), "0x0400", False)], "our NAT64 route withdrawn"
    assert adopted["routing"]["nat64"] == "adopted" and not adopted["routing"]["nat64_ours_translates"]
    counters = adopted["routing"]["counters"]
    assert counters["omr_withdrawn"] == 1 and counters["nat64_withdrawn"] == 1
    assert ctl(gw, "state")["omr_prefix"] == str(THEIRS), "the favoured prefix is the one advertised on the LAN"
    omr_address(topo, topo.mesh, "mesh0", str(THEIRS))  # nodes configure SLAAC addresses in it
    wait_until(lambda: str(THEIRS) in topo.run(topo.lan, "ip", "-6", "route").stdout, timeout=20,
               what="the LAN host learning the favoured prefix from our RA")
    log = gw.output()
    assert f"OMR_PREFIX={THEIRS} OMR_DECISION=withdrawn" in log
    assert f"NAT64_PREFIX={INFRA_NAT64} NAT64_DECISION=withdrawn" in log

    # A prefix that does not outrank ours (the same low preference, numerically larger) leaves ours alone.
    topo.sim("border_router", rloc16=PEER, prefixes=[], routes=[])
    back = wait_until(lambda: (n := ctl(gw, "netdata", "show"))["routing"].get("omr") == "published"
                      and omr_rows(n) == [(ours, rloc, True)] and n, what="ours published again")
    assert nat64_rows(back) == [("64:ff9b::/96", rloc, True)]
    assert back["routing"]["counters"]["omr_published"] == 2
    larger = ipaddress.IPv6Network("fdff:ffff:ffff::/64")
    topo.sim("border_router", rloc16=PEER,
             prefixes=[{"prefix": str(larger), "flags": with_preference(OMR_FLAGS, Preference.LOW)}])
    wait_until(lambda: [row[0] for row in omr_rows(ctl(gw, "netdata", "show"))] == sorted([ours, str(larger)]),
               what="both prefixes listed")
    assert ctl(gw, "netdata", "show")["routing"]["omr"] == "published"
