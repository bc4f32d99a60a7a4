"""What a LAN router advertises reaches a real OpenThread mesh: gatewayd on ot-ncp-ftd learns an on-link
prefix, a route, a default router and PREF64 from the LAN's RAs, and an ot-cli-ftd node finds them in the
leader's network data (the NCP accepted and registered them, not just our local copy).

    radio ns: ot-ncp-ftd 1, ot-cli-ftd 2          (OpenThread's simulated radio is loopback UDP)
        ▲ pty (forkpty: ip netns exec radio env -C … ot-ncp-ftd 1)
    br ns: gatewayd ── infra0 ←veth→ eth0 ── lan ns: devtools.testbed.ra_sender (the LAN's router)
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import python_env
from tests.conftest import DaemonProcess, wait_until
from tests.interop.peers import OT_VERSIONS, OtCli, peer

pytestmark = pytest.mark.root

LAN_PREFIX = "2001:db8:1a5::/64"
LAN_ROUTE = "2001:db8:99::/48"
PREF64 = "2001:db8:64::/96"


class Bed:
    def __init__(self, tmp: Path, ot: str) -> None:
        tag = secrets.token_hex(3)
        self.tmp, self.ot = tmp, ot
        self.radio, self.br, self.lan = f"gwlrradio-{tag}", f"gwlrbr-{tag}", f"gwlrlan-{tag}"
        self.daemon: DaemonProcess | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.nodes: list[OtCli] = []

    def run(self, ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True, text=True,
                              timeout=30)

    def setup(self) -> None:
        for ns in (self.radio, self.br, self.lan):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            self.run(ns, "ip", "link", "set", "lo", "up")
        subprocess.run(["ip", "link", "add", "infra0", "netns", self.br, "type", "veth", "peer", "name", "eth0",
                        "netns", self.lan], check=True)
        for ns, dev in ((self.br, "infra0"), (self.lan, "eth0")):
            self.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_dad=0")
            self.run(ns, "ip", "link", "set", dev, "up")

    def lan_router(self) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.lan, sys.executable, "-m", "devtools.testbed.ra_sender", "eth0", "fe80::1",
             "--prefix", LAN_PREFIX, "--route", LAN_ROUTE, "--router-lifetime", "600", "--pref64", PREF64,
             "--interval", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            env=python_env())
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready", proc.communicate()[1]

    def start(self) -> DaemonProcess:
        tmp = self.tmp / "br"
        (tmp / "ncp").mkdir(parents=True, exist_ok=True)
        binary = peer(f"{OT_VERSIONS[self.ot]}/ot-ncp-ftd".lstrip("/"))
        args = ["netns", "exec", self.radio, "env", "-C", str(tmp / "ncp"), str(binary), "1"]
        url = f"spinel+hdlc+forkpty://{shutil.which('ip')}?" + "&".join(f"args={a}" for a in args)
        toml = (f'[ncp]\nurl = "{url}"\n[border]\ninfra_interface = "infra0"\n'
                '[nat64]\nmasquerade = false\n[dns64]\nupstream = ["127.0.0.1"]\n')
        self.daemon = DaemonProcess(tmp, toml, netns=self.br).start()
        return self.daemon

    def ctl(self, *words: str) -> Any:
        assert self.daemon is not None
        result = self.daemon.ctl("--json", *words, check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        if self.daemon is not None:
            self.daemon.stop()
        for proc in self.procs:
            proc.terminate()
            proc.wait(5)
        for ns in (self.radio, self.br, self.lan):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture(params=sorted(OT_VERSIONS))
def bed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bed]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices)")
    prefix = OT_VERSIONS[request.param]
    peer(f"{prefix}/ot-ncp-ftd".lstrip("/"))
    peer(f"{prefix}/ot-cli-ftd".lstrip("/"))
    b = Bed(tmp_path, request.param)
    try:
        b.setup()
        yield b
    finally:
        b.close()


def test_the_lans_routes_reach_the_real_ncps_network_data(bed: Bed) -> None:
    bed.lan_router()
    bed.start()
    wait_until(lambda: (s := bed.ctl("state")) and s["role"] == "leader", 60, what="leader")
    wanted = {LAN_PREFIX, LAN_ROUTE, "::/0", PREF64}

    def leaders_routes() -> dict[str, dict] | None:
        netdata = bed.ctl("netdata", "show")
        # rows with an RLOC16 are the leader's entries: the NCP registered what we published
        rows = {r["prefix"]: r for r in (netdata or {}).get("routes", []) if r.get("rloc16")}
        return rows if wanted <= rows.keys() else None

    rows = wait_until(leaders_routes, 30, what="the LAN's routes in the leader's network data")
    assert rows[PREF64]["nat64"] and not rows[LAN_ROUTE]["nat64"]
    assert "64:ff9b::/96" not in rows, "the LAN's NAT64 prefix is published instead of ours"

    dataset = bed.daemon.ctl("dataset", "active", "-x", "--show-secrets").stdout.strip()  # type: ignore[union-attr]
    node = OtCli(peer(f"{OT_VERSIONS[bed.ot]}/ot-cli-ftd".lstrip("/")), 2, bed.tmp / "node", netns=bed.radio)
    bed.nodes.append(node)
    node.cmd("routerupgradethreshold 0")  # stays a child: attaching is quicker
    node.join(dataset)
    node.wait_state("child", timeout=90)
    shown: list[str] = []

    def routes(lines: list[str]) -> dict[ipaddress.IPv6Network, list[str]]:
        """ot-cli's "Routes:" section, "<prefix> <flags> <preference> <rloc16>", by prefix."""
        section = lines[lines.index("Routes:") + 1:] if "Routes:" in lines else []
        out = {}
        for line in section:
            words = line.split()
            if not words or "/" not in words[0]:
                break
            out[ipaddress.IPv6Network(words[0])] = words[1:]
        return out

    def node_sees_them() -> bool:
        shown[:] = node.cmd("netdata show")
        return {ipaddress.IPv6Network(p) for p in wanted} <= routes(shown).keys()

    try:
        wait_until(node_sees_them, 30, interval=0.5, what="the routes in the node's network data")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the node shows: {shown}") from None
    assert "n" in routes(shown)[ipaddress.IPv6Network(PREF64)][0], shown  # the NAT64 flag

    # The LAN router stops (its last RA has every lifetime 0): the mesh loses its routes, and our own
    # translator's prefix replaces the LAN's NAT64 prefix.
    for proc in bed.procs:
        proc.terminate()
    gone = {ipaddress.IPv6Network(p) for p in (LAN_PREFIX, LAN_ROUTE, PREF64)}
    ours = ipaddress.IPv6Network("64:ff9b::/96")

    def node_sees_the_change() -> bool:
        shown[:] = node.cmd("netdata show")
        now = routes(shown)
        return not gone & now.keys() and ours in now

    try:
        wait_until(node_sees_the_change, 30, interval=0.5, what="the LAN's routes withdrawn from the node's view")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the node shows: {shown}") from None
    assert bed.ctl("border", "counters")["prefixes_withdrawn"] >= 3
