"""The border-router testbed with its IPv4-only "Internet" namespace behind the border router.

    mesh ns (nodes) ←pty/Spinel→ br ns (gatewayd: wpan0, nat64, uplink0 100.64.0.1) ←veth→ inet ns (100.64.0.10)

The inet namespace (devtools.testbed) has no IPv6 at all and runs a UDP echo server, a TCP server
and an authoritative server for example.test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.testbed import CLOSED_PORT, INET4, INET6, TCP_PORT, UDP_PORT, nat64_toml
from devtools.testbed import NAT64_POOL as POOL
from devtools.testbed import NAT64_PREFIX as PREFIX
from tests.thread.conftest import Topology

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, TUN devices)", allow_module_level=True)

__all__ = ["CLOSED_PORT", "INET4", "INET6", "POOL", "PREFIX", "TCP_PORT", "UDP_PORT", "Nat64Topology", "nat64_toml"]
PEERS = {"resolve": "devtools.testbed.dns_peer"}


class Nat64Topology(Topology):
    def __init__(self, tmp: Path):
        super().__init__(tmp, internet=True)

    def node(self, *args: str, timeout: float = 60) -> dict:  # type: ignore[override]
        """Run a nat64_peer or dns_peer client subcommand as a mesh node; its JSON result."""
        return super().node(PEERS.get(args[0], "devtools.testbed.nat64_peer"), *args, timeout=timeout)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Nat64Topology]:
    topology = Nat64Topology(tmp_path)
    try:
        topology.setup()
        yield topology
    finally:
        topology.close()
