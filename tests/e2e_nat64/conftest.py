"""The border-router testbed plus an IPv4-only "Internet" namespace behind the border router.

    mesh ns (nodes) ←pty/Spinel→ br ns (gatewayd: wpan0, nat64, uplink0 100.64.0.1) ←veth→ inet ns (100.64.0.10)

The inet namespace has no IPv6 at all and runs a UDP echo server, a TCP server and an authoritative
server for example.test. The br namespace's IPv4 default route points at it, so "" as [nat64] uplink
finds uplink0. 100.64.0.0/10 is not global, so the NAT64 prefix is network-specific (RFC 6052 §3.1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT
from tests.thread.conftest import Topology

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, TUN devices)", allow_module_level=True)

PREFIX = "fd64:64::/96"
POOL = "100.64.1.0/24"
INET4 = "100.64.0.10"
INET6 = "fd64:64::6440:a"  # INET4 in PREFIX
UDP_PORT, TCP_PORT, CLOSED_PORT = 7007, 8008, 9009
NAT64_PEER = str(ROOT / "tests" / "nat64" / "nat64_peer.py")
PEERS = str(Path(__file__).with_name("peers.py"))


def nat64_toml(backend: str = "builtin", extra: str = "") -> str:
    return (f'[nat64]\nbackend = "{backend}"\nprefix = "{PREFIX}"\npool = ["{POOL}"]\n{extra}'
            f'[dns64]\nupstream = ["{INET4}"]\n')


class Nat64Topology(Topology):
    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self.inet = self.br.replace("gwbr-", "gwinet-")

    def setup(self) -> None:
        super().setup()
        from gatewayd.testbed import ip

        ip("netns", "add", self.inet)
        self.run(self.inet, "ip", "link", "set", "lo", "up")
        self.run(self.inet, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.run(self.inet, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        ip("link", "add", "uplink0", "netns", self.br, "type", "veth", "peer", "name", "eth0", "netns", self.inet)
        self.run(self.br, "ip", "addr", "add", "100.64.0.1/24", "dev", "uplink0")
        self.run(self.br, "ip", "link", "set", "uplink0", "up")
        self.run(self.br, "ip", "route", "add", "default", "via", INET4)
        self.run(self.inet, "ip", "addr", "add", f"{INET4}/24", "dev", "eth0")
        self.run(self.inet, "ip", "link", "set", "eth0", "up")
        self.server(NAT64_PEER, "udp-echo", str(UDP_PORT))
        self.server(NAT64_PEER, "tcp-server", str(TCP_PORT))
        self.server(PEERS, "zone", INET4)

    def server(self, *args: str) -> None:
        proc = self.spawn(self.inet, PYTHON, *args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready", proc.stderr

    def close(self) -> None:
        try:
            super().close()
        finally:
            from gatewayd.testbed import ip

            ip("netns", "del", self.inet, check=False)

    # ---- a mesh node's view ------------------------------------------------------------------
    def node(self, *args: str, timeout: float = 60) -> dict:
        """Run nat64_peer.py or peers.py as a mesh node; its JSON result."""
        script = PEERS if args[0] == "resolve" else NAT64_PEER
        out = self.run(self.mesh, PYTHON, script, *args, timeout=timeout).stdout
        return json.loads(out)

    def ping(self, target: str, count: int = 3) -> bool:
        r = self.run(self.mesh, "ping", "-6", "-c", str(count), "-i", "0.3", "-W", "2", target, check=False)
        return r.returncode == 0 and " 0% packet loss" in r.stdout


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Nat64Topology]:
    topology = Nat64Topology(tmp_path)
    try:
        topology.setup()
        yield topology
    finally:
        topology.close()
