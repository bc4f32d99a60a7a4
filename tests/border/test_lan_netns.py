"""The LAN read as well as written, end to end: a LAN router (Debian's radvd: an on-link prefix, a route and a
default route; a second router sending PREF64, which radvd 2.19 cannot) next to gatewayd on the simulator.
The mesh gets the LAN's routes and its NAT64 prefix, our translator stays off, a mesh node reaches a LAN host
in the advertised prefix, and the ingress filter drops and counts what the LAN spoofs."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYTHON, wait_until
from tests.thread.conftest import Topology

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAN_ROUTER_PREFIX = "2001:db8:1a5::/64"
LAN_HOST = "2001:db8:1a5::2"
LAN_ROUTE = "2001:db8:99::/48"
PREF64 = "2001:db8:64::/96"  # not the default [nat64] prefix, so the mesh's NAT64 route tells whose it is
NAT64_ROUTER = "fe80::64"

RADVD_CONF = f"""interface eth0 {{
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvDefaultLifetime 600;
    prefix {LAN_ROUTER_PREFIX} {{ AdvOnLink on; AdvAutonomous off; AdvValidLifetime 300; AdvPreferredLifetime 120; }};
    route {LAN_ROUTE} {{ AdvRouteLifetime 300; }};
}};
"""


def ctl(gw, *words: str):
    return json.loads(gw.ctl("--json", *words).stdout)


def nft(topo: Topology, *args: str) -> subprocess.CompletedProcess[str]:
    return topo.run(topo.br, "nft", *args, check=False)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices, nftables)")
    if shutil.which("radvd") is None:
        pytest.skip("radvd is not installed (scripts/setup.sh installs it)")
    topology = Topology(tmp_path)
    try:
        topology.setup()
        # The LAN host routes through its router's RAs, as a host does, and keeps its address in the LAN
        # router's prefix (a router's own advertisements do not configure it).
        topology.run(topology.lan, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=2")
        topology.run(topology.lan, "ip", "-6", "addr", "add", f"{LAN_HOST}/64", "dev", "eth0", "nodad")
        (tmp_path / "radvd.conf").write_text(RADVD_CONF)
        radvd = topology.spawn(topology.lan, "radvd", "-n", "-m", "stderr", "-C", str(tmp_path / "radvd.conf"),
                               "-p", str(tmp_path / "radvd.pid"), "-u", "root")
        sender = topology.spawn(topology.lan, sys.executable, "-m", "devtools.testbed.ra_sender", "eth0", NAT64_ROUTER,
                                "--pref64", PREF64, "--lifetime", "600", "--interval", "2")
        assert sender.stdout is not None and sender.stdout.readline().strip() == b"ready", sender.stderr
        topology.radvd, topology.pref64_sender = radvd, sender  # type: ignore[attr-defined]
        yield topology
    finally:
        topology.close()


def mesh_routes(topo: Topology) -> dict[str, dict]:
    routes = ctl(topo.daemons[0], "netdata", "show")["routes"]
    return {r["prefix"]: r for r in routes}


def test_the_lans_routes_and_nat64_reach_the_mesh_and_our_translator_stays_off(topo: Topology):
    gw = topo.start_daemon("[nat64]\nmasquerade = false\n")  # no IPv4 uplink here
    wait_until(lambda: ctl(gw, "state")["role"] == "leader", timeout=20, what="leader role")
    routes = wait_until(lambda: (r := mesh_routes(topo)) and {LAN_ROUTER_PREFIX, LAN_ROUTE, "::/0", PREF64} <= r.keys()
                        and r, timeout=30, what="the LAN's prefix, route, default route and NAT64 prefix in netdata")
    assert routes[PREF64]["nat64"] and routes[PREF64]["local"]
    assert "64:ff9b::/96" not in routes, "our own translator's prefix is not published next to the LAN's"

    # our translator is off while the LAN's is there: no TUN, the component says whose NAT64 the mesh uses
    status = ctl(gw, "status")
    assert status["components"]["nat64"]["infrastructure"] == PREF64 and "NAT64 by the LAN" in status["status"]
    assert topo.run(topo.br, "ip", "link", "show", "nat64", check=False).returncode != 0, "no translator TUN"

    # the simulated mesh routes the LAN's prefixes to the border router, and a node reaches a LAN host
    mesh_table = topo.run(topo.mesh, "ip", "-6", "route").stdout
    assert LAN_ROUTER_PREFIX in mesh_table and LAN_ROUTE in mesh_table
    assert wait_until(lambda: topo.ping(LAN_HOST), timeout=30, what="a mesh node reaching the LAN host")

    # what gatewayctl shows of it
    lan = ctl(gw, "border", "lan")
    kinds = {(row["kind"], row["prefix"]) for row in lan}
    assert {("on-link prefix", LAN_ROUTER_PREFIX), ("route", LAN_ROUTE), ("NAT64 prefix", PREF64)} <= kinds
    counters = ctl(gw, "border", "counters")
    assert counters["prefixes_learned"] >= 3 and counters["nat64_infrastructure_adopted"] == 1
    assert counters["ra_received"] >= 2 and counters["ra_own_ignored"] == 0
    log = gw.output()
    assert f"LAN route {LAN_ROUTE} learned" in log and f"LAN NAT64 prefix {PREF64} learned" in log

    # the NAT64 router stops (its last RA has lifetime 0): the mesh falls back to our translator
    topo.pref64_sender.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    routes = wait_until(lambda: (r := mesh_routes(topo)) and "64:ff9b::/96" in r and PREF64 not in r and r,
                        timeout=30, what="our NAT64 prefix replacing the LAN's")
    assert routes["64:ff9b::/96"]["nat64"]
    wait_until(lambda: topo.run(topo.br, "ip", "link", "show", "nat64", check=False).returncode == 0, timeout=15,
               what="our translator's TUN")
    assert ctl(gw, "border", "counters")["nat64_infrastructure_lost"] == 1


def spoof(topo: Topology, source: str, target: str, count: int = 3) -> None:
    """UDP from the LAN host with `source` (added to its interface for the purpose) to `target`."""
    topo.run(topo.lan, "ip", "-6", "addr", "add", f"{source}/128", "dev", "eth0", "nodad", check=False)
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind((sys.argv[1],0))\n"
            f"[s.sendto(b'spoof',(sys.argv[2],9)) for _ in range({count})]\n")
    topo.run(topo.lan, PYTHON, "-c", code, source, target)


def test_spoofed_lan_packets_are_dropped_and_counted_and_the_rules_live_with_the_daemon(topo: Topology):
    gw = topo.start_daemon()
    state = wait_until(lambda: (s := ctl(gw, "state"))["role"] == "leader" and s, timeout=20, what="leader role")
    omr = ipaddress.IPv6Network(state["omr_prefix"])
    mesh_local = ipaddress.IPv6Network(ctl(gw, "dataset", "active")["mesh_local_prefix"])
    wait_until(lambda: str(mesh_local) in nft(topo, "list", "table", "inet", "gatewayd_ingress").stdout,
               timeout=15, what="the mesh-local prefix in the ingress filter")
    assert str(omr) in nft(topo, "list", "set", "inet", "gatewayd_ingress", "omr").stdout

    listener = topo.spawn(topo.br, PYTHON, "-u", "-c", (
        "import socket\n"
        "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind(('::',9)); s.settimeout(8)\n"
        "print('ready',flush=True)\n"
        "try:\n print(s.recvfrom(100)[1][0],flush=True)\n"
        "except socket.timeout:\n print('nothing',flush=True)\n"))
    assert listener.stdout is not None and listener.stdout.readline().strip() == b"ready"
    infra = "fd00:1a4::1"  # the border router's LAN address (devtools.testbed)
    spoof(topo, str(mesh_local.network_address + 0x1234), infra)
    spoof(topo, str(omr.network_address + 0x5678), infra)
    topo.run(topo.lan, "ip", "-6", "route", "replace", str(mesh_local), "via", infra)
    spoof(topo, "fd00:1a4::2", str(mesh_local.network_address + 1))
    dropped = wait_until(lambda: (d := ctl(gw, "border", "counters")["ingress_dropped"])
                         and min(d.values()) >= 3 and d, timeout=10, what="all three kinds counted")
    # (at least: the LAN host's kernel may add a neighbor solicitation from the spoofed source)
    assert dropped.keys() == {"mesh_local_source", "omr_source", "to_mesh_local"}
    assert listener.stdout.readline().strip() == b"nothing", "no spoofed packet reached the border router"

    # a reload keeps the rules and their counts
    gw.signal(signal.SIGHUP)
    gw.wait_log("reload", timeout=10)
    assert ctl(gw, "border", "counters")["ingress_dropped"] == dropped
    assert nft(topo, "list", "table", "inet", "gatewayd_ingress").returncode == 0

    # legitimate LAN traffic still passes
    assert topo.run(topo.lan, "ping", "-6", "-c", "1", "-W", "2", infra, check=False).returncode == 0

    gw.stop()
    assert nft(topo, "list", "table", "inet", "gatewayd_ingress").returncode != 0, "the table went with the daemon"


def test_no_table_left_when_the_filter_is_off(topo: Topology):
    gw = topo.start_daemon("[border]\ningress_filter = false\n")
    wait_until(lambda: ctl(gw, "state")["role"] == "leader", timeout=20, what="leader role")
    assert nft(topo, "list", "table", "inet", "gatewayd_ingress").returncode != 0
    assert "ingress_dropped" not in ctl(gw, "border", "counters")

