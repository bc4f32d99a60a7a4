"""Two gatewayd border routers on one mesh of real OpenThread NCPs.

    radio ns: ot-ncp-ftd 1, ot-ncp-ftd 2, ot-cli-ftd 3   (OpenThread's simulated radio is loopback UDP)
        ▲ pty (forkpty: ip netns exec radio env -C … ot-ncp-ftd N)        ▲ pty
    brA ns: gatewayd A ── infra0 ─┐                           ┌─ infra0 ── gatewayd B :brB ns
                                  └── lan ns: bridge lanbr ───┘  (LAN host fd00:1a4::2)

Each gatewayd runs in a namespace of its own (its own wpan0, routes, nftables), while the NCPs it spawns
through the forkpty link's program arguments share one, so their radios hear each other. After
convergence the mesh has exactly one OMR prefix and one NAT64 route; stopping the border router whose
prefix the mesh uses moves the mesh to the other one, and a node reaches the LAN host through it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, wait_until
from tests.interop.peers import OtCli
from tests.thread.two_routers import LAN_HOST, agree, only_published, published
from tests.thread.two_routers import TwoRouters as _TwoRouters

pytestmark = pytest.mark.root

NODE_ID = 3


class TwoRouters(_TwoRouters):
    """With ot-ncp-ftd NCPs (spawned in the radio namespace) and ot-cli-ftd nodes."""

    def __init__(self, tmp: Path, ot: Path) -> None:
        super().__init__(tmp)
        self.ot = ot
        self.nodes: list[OtCli] = []

    def start(self, name: str, node_id: int, dataset: str = "") -> DaemonProcess:
        ncp_dir = self.tmp / name / "ncp"
        ncp_dir.mkdir(parents=True, exist_ok=True)
        args = ["netns", "exec", self.radio, "env", "-C", str(ncp_dir), str(self.ot / "ot-ncp-ftd"), str(node_id)]
        url = f"spinel+hdlc+forkpty://{shutil.which('ip')}?" + "&".join(f"args={a}" for a in args)
        return self.start_daemon(name, url, dataset)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        super().close()


@pytest.fixture
def two(tmp_path: Path, ot: Path) -> Iterator[TwoRouters]:
    """On each OpenThread generation (the ``ot`` fixture of tests/interop/conftest.py)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices)")
    bed = TwoRouters(tmp_path, ot)
    try:
        bed.setup()
        yield bed
    finally:
        bed.close()


def node_reaches_lan(node: OtCli) -> bool:
    try:
        return node.ping(LAN_HOST, count=2, timeout=4)
    except AssertionError:
        return False


@dataclass
class Converged:
    dataset: str
    ours: dict[str, ipaddress.IPv6Network]  # each router's own OMR prefix
    winner: str  # the router whose prefix the mesh uses
    loser: str
    node: OtCli
    converge_s: float


def two_routers_and_a_node(two: TwoRouters) -> Converged:
    """A forms the network, B joins it; both agree on one OMR prefix and one NAT64 route, and a node
    attached to the mesh reaches the LAN host."""
    two.start("A", 1)
    wait_until(lambda: two.role("A") == "leader", 60, what="router A leading")
    dataset = two.daemons["A"].ctl("dataset", "active", "-x", "--show-secrets").stdout.strip()
    two.start("B", 2, dataset)
    wait_until(lambda: two.role("B") in ("router", "leader"), 150, what="router B attached as a router")

    began = time.monotonic()
    # An existing favoured prefix is adopted, not contested: B, joining later, keeps A's even when its own
    # is smaller (both are generated ULA prefixes at low preference); were both published at once, the
    # smaller would win (tests/thread/test_routing.py).
    agreed = agree(two)
    converge_s = time.monotonic() - began
    ours, favoured, winner, loser = agreed.ours, agreed.favoured, agreed.winner, agreed.loser
    # Each border router routes ::/0 (its own default router on the LAN) and says so.
    wait_until(lambda: len({r["rloc16"] for r in two.ctl(winner, "netdata", "show")["routes"]
                            if r["prefix"] == "::/0"}) == 2, 20, what="::/0 from both border routers")

    node = OtCli(two.ot / "ot-cli-ftd", NODE_ID, two.tmp / "node", netns=two.radio)
    two.nodes.append(node)
    node.cmd("routerupgradethreshold 0")  # an FTD that stays a child
    node.join(dataset)
    node.wait_state("child", timeout=90)
    wait_until(lambda: any(ipaddress.IPv6Address(a) in favoured for a in node.addresses()), 30,
               what="node with an address in the favoured OMR prefix")
    wait_until(lambda: node_reaches_lan(node), 60, interval=0, what="the LAN host reached from the node")
    return Converged(dataset, ours, winner, loser, node, converge_s)


def test_two_border_routers_agree_on_one_omr_prefix_and_hand_over(two: TwoRouters) -> None:
    bed = two_routers_and_a_node(two)
    winner, loser, ours, node = bed.winner, bed.loser, bed.ours, bed.node

    # The router whose prefix the mesh uses leaves: the other one publishes its own, the mesh follows.
    stopped_at = time.monotonic()
    assert two.daemons[winner].stop() == 0
    after = wait_until(lambda: only_published(two, loser, str(ours[loser])), 180,
                       what="the remaining router's OMR prefix published")
    handover_s = time.monotonic() - stopped_at
    assert after["routing"]["omr"] == "published" and after["routing"]["counters"]["omr_published"] >= 1
    assert f"OMR_PREFIX={ours[loser]} OMR_DECISION=published" in two.daemons[loser].output()
    assert len(published(after)[1]) == 1, "the NAT64 route follows too"
    assert two.ctl(loser, "state")["omr_prefix"] == str(ours[loser])
    wait_until(lambda: any(ipaddress.IPv6Address(a) in ours[loser] for a in node.addresses()), 60,
               what="node with an address in the new OMR prefix")
    wait_until(lambda: node_reaches_lan(node), 90, interval=0, what="the LAN host reached through the remaining router")
    reach_s = time.monotonic() - stopped_at
    print(f"converged in {bed.converge_s:.1f} s; handover: netdata {handover_s:.1f} s, "
          f"LAN reachable {reach_s:.1f} s")


def test_power_loss_of_the_favoured_router_moves_the_mesh_after_thread_timeouts(two: TwoRouters) -> None:
    """The favoured router (the leader too: it formed the network) and its NCP die without withdrawing
    anything. Its entries stay in the network data until the other router leads a partition of its own
    (Thread's leader timeout, 120 s and more); the LAN stays reachable through the other router meanwhile."""
    bed = two_routers_and_a_node(two)
    winner, loser, ours, node = bed.winner, bed.loser, bed.ours, bed.node
    ncp_dir = str(two.tmp / winner / "ncp")
    ncps = subprocess.run(["pgrep", "-f", ncp_dir], capture_output=True, text=True).stdout.split()
    killed_at = time.monotonic()
    daemon = two.daemons[winner]
    assert daemon.proc is not None
    daemon.proc.kill()
    for pid in ncps:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    two.run(two.brs[winner], "ip", "link", "set", "infra0", "down")  # and its host stops forwarding
    wait_until(lambda: node_reaches_lan(node), 180, interval=0, what="the LAN host reached after the power loss")
    reach_s = time.monotonic() - killed_at
    after = wait_until(lambda: only_published(two, loser, str(ours[loser])), 300, interval=1,
                       what="the remaining router's OMR prefix published once it leads")
    handover_s = time.monotonic() - killed_at
    assert two.role(loser) == "leader"
    assert after["routing"]["omr"] == "published" and len(published(after)[1]) == 1
    wait_until(lambda: any(ipaddress.IPv6Address(a) in ours[loser] for a in node.addresses()), 60,
               what="node with an address in the new OMR prefix")
    wait_until(lambda: node_reaches_lan(node), 90, interval=0, what="the LAN host reached in the new prefix")
    print(f"power loss: LAN reachable {reach_s:.1f} s, netdata handover {handover_s:.1f} s")
