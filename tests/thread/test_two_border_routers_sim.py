"""Two gatewayd border routers on one mesh of simulated NCPs sharing a radio (``python -m ncp.sim --radio``).

The same bed as tests/interop/test_two_border_routers.py (tests/thread/two_routers.py), with our simulator
in place of ot-ncp-ftd: each gatewayd spawns its NCP through the forkpty link; both NCPs keep their TUN
(meshA, meshB) in the one mesh namespace and hear each other on its loopback. After convergence the mesh
has exactly one OMR prefix and one NAT64 route; a node (an address of one NCP's TUN) reaches the LAN host
through the border router that carries the route; stopping the router whose prefix the mesh uses moves
the mesh to the other one, and the node reaches the LAN host through it; so does its power loss, once the
radio timeout has passed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, wait_until
from tests.ncp.sim.simproc import control
from tests.thread.two_routers import LAN_HOST, Agreement, TwoRouters, agree, only_published, published

pytestmark = [pytest.mark.root, pytest.mark.slow]

RADIO_PORT = 19000  # any: the mesh namespace is the test's own


class SimRouters(TwoRouters):
    """With simulated NCPs on one radio in the mesh namespace (``self.radio``)."""

    def tun(self, name: str) -> str:
        return f"mesh{name}"

    def sim_socket(self, name: str) -> str:
        return str(self.tmp / name / "sim.sock")

    def start(self, name: str, dataset: str = "") -> DaemonProcess:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        args = ["-m", "ncp.sim", "--netns", self.radio, "--tun", self.tun(name), "--radio", str(RADIO_PORT),
                "--control", self.sim_socket(name), "--log", str(self.tmp / name / "sim.log"),
                "--leader-delay", "0.3", "--attach-delay", "0.2", "--mle-interval", "1"]
        url = f"spinel+hdlc+forkpty://{sys.executable}?" + "&".join(f"args={a}" for a in args)
        return self.start_daemon(name, url, dataset)

    def sim(self, router: str, cmd: str, **args: object) -> dict:
        return control(self.sim_socket(router), {"cmd": cmd, **args})

    def node_address(self, name: str, node: str, prefix: ipaddress.IPv6Network) -> str | None:
        """The node's address in ``prefix`` once it is on the TUN of ``name``'s NCP."""
        state = self.sim(name, "state")
        addresses = next((n["addresses"] for n in state["nodes"] if n["name"] == node), [])
        on_tun = self.run(self.radio, "ip", "-6", "addr", "show", "dev", self.tun(name)).stdout
        return next((a for a in addresses if ipaddress.IPv6Address(a) in prefix and f"{a}/128" in on_tun), None)

    def carrier(self, source: str) -> str | None:
        """The router whose NCP the mesh namespace sends ``source``'s packets to the LAN host through."""
        route = self.run(self.radio, "ip", "-6", "route", "get", LAN_HOST, "from", source, check=False).stdout
        return next((name for name in self.brs if f"dev {self.tun(name)} " in route), None)

    def ping_lan(self, source: str) -> bool:
        result = self.run(self.radio, "ping", "-6", "-c", "2", "-i", "0.3", "-W", "2", "-I", source, LAN_HOST,
                          check=False)
        return result.returncode == 0 and " 0% packet loss" in result.stdout


@pytest.fixture
def two(tmp_path: Path) -> Iterator[SimRouters]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices)")
    bed = SimRouters(tmp_path, prefix="gws")
    try:
        bed.setup()
        yield bed
    finally:
        bed.close()


@dataclass
class Converged:
    agreed: Agreement
    converge_s: float  # from A's start to one OMR prefix and one NAT64 route
    carrier: str  # the router the node's packets to the LAN leave through


def two_routers_and_a_node(two: SimRouters) -> Converged:
    """A forms the network, B attaches to its partition as a router; both agree on one OMR prefix and one
    NAT64 route; a node of the router that will stay (it lives in that NCP's process) gets an address in
    the favoured prefix and reaches the LAN host through the router carrying the route there."""
    began = time.monotonic()
    two.start("A")
    wait_until(lambda: two.role("A") == "leader", 30, what="router A leading")
    dataset = two.daemons["A"].ctl("dataset", "active", "-x", "--show-secrets").stdout.strip()
    two.start("B", dataset)
    wait_until(lambda: two.role("B") == "router", 30, what="router B attached as a router of A's partition")
    assert two.role("A") == "leader", "one leader"
    assert two.sim("A", "state")["partition_id"] == two.sim("B", "state")["partition_id"], "one partition"
    agreed = agree(two)
    converge_s = time.monotonic() - began

    two.sim(agreed.loser, "node_add", name="n1", kind="mtd")
    source = wait_until(lambda: two.node_address(agreed.loser, "n1", agreed.favoured), 30,
                        what="node address in the OMR prefix")
    carrier = wait_until(lambda: two.carrier(source), 30, what="a route from the node to the LAN")
    sent_before = two.sim(carrier, "state")["counters"]["mesh_in"]
    wait_until(lambda: two.ping_lan(source), 60, interval=0, what="the LAN host reached from the node")
    assert two.sim(carrier, "state")["counters"]["mesh_in"] > sent_before, "through the carrier's NCP"
    return Converged(agreed, converge_s, carrier)


def mesh_moved_to(two: SimRouters, name: str, prefix: ipaddress.IPv6Network, since: float) -> tuple[float, float]:
    """Once ``name`` leads and its own ``prefix`` is the mesh's, the node reaches the LAN host through it:
    (seconds until the network data said so, until the LAN host answered)."""
    after = wait_until(lambda: only_published(two, name, str(prefix)), 60,
                       what="the remaining router's OMR prefix published")
    netdata_s = time.monotonic() - since
    assert after["routing"]["omr"] == "published" and len(published(after)[1]) == 1, "the NAT64 route follows"
    wait_until(lambda: two.role(name) == "leader", 30, what="the remaining router leading")
    assert f"OMR_PREFIX={prefix} OMR_DECISION=published" in two.daemons[name].output()
    source = wait_until(lambda: two.node_address(name, "n1", prefix), 30, what="node address in the new OMR prefix")
    assert wait_until(lambda: two.carrier(source), 30, what="a route to the LAN") == name
    wait_until(lambda: two.ping_lan(source), 60, interval=0, what="the LAN host reached through the remaining router")
    return netdata_s, time.monotonic() - since


def test_two_border_routers_on_one_simulated_mesh_agree_and_hand_over(two: SimRouters) -> None:
    bed = two_routers_and_a_node(two)
    winner, loser, ours = bed.agreed.winner, bed.agreed.loser, bed.agreed.ours
    # The router whose prefix the mesh uses stops: it withdraws its entries at once, its NCP leaves with
    # it, and the other one leads once the radio timeout says the leader is gone.
    stopped_at = time.monotonic()
    assert two.daemons[winner].stop() == 0
    netdata_s, reach_s = mesh_moved_to(two, loser, ours[loser], stopped_at)
    print(f"converged {bed.converge_s:.1f} s after A started, the LAN reached through {bed.carrier}; "
          f"{winner} stopped: netdata handover {netdata_s:.1f} s, LAN reachable again {reach_s:.1f} s")


def test_power_loss_of_the_favoured_router_moves_the_mesh_after_the_radio_timeout(two: SimRouters) -> None:
    """The favoured router and its NCP die without withdrawing anything: their entries stay in the network
    data until the other NCP stops hearing them (``--radio-timeout``, Thread's leader timeout sooner)."""
    bed = two_routers_and_a_node(two)
    winner, loser, ours = bed.agreed.winner, bed.agreed.loser, bed.agreed.ours
    ncps = subprocess.run(["pgrep", "-f", two.sim_socket(winner)], capture_output=True, text=True).stdout.split()
    killed_at = time.monotonic()
    daemon = two.daemons[winner]
    assert daemon.proc is not None and ncps
    daemon.proc.kill()
    for pid in ncps:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    two.run(two.brs[winner], "ip", "link", "set", "infra0", "down")  # and its host stops forwarding
    netdata_s, reach_s = mesh_moved_to(two, loser, ours[loser], killed_at)
    print(f"{winner} lost power: netdata handover {netdata_s:.1f} s, LAN reachable again {reach_s:.1f} s")
