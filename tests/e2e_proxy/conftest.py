"""The NAT64 testbed (mesh, border router, IPv4-only Internet) with an LwM2M server in the Internet
namespace and plain CoAP sensors on simulated Thread nodes (devtools.testbed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.testbed.lwm2m_server import NodeServer, node_server_available
from tests.e2e_nat64.conftest import INET6, Nat64Topology, nat64_toml

LWM2M_PORT = 5684
SERVER_URI = f"coap://[{INET6}]:{LWM2M_PORT}"  # the IPv4-only server, through the NAT64 prefix


class ProxyTopology(Nat64Topology):
    def lwm2m_toml(self, devices: str = "") -> str:
        return (nat64_toml() + f'[lwm2m]\nenabled = true\nlwm2m_version = "1.0"\nkeepalive = 20\n'
                f'[lwm2m.server]\nuri = "{SERVER_URI}"\nlifetime = 60\n[lwm2m.gateway]\nenabled = false\n'
                '[lwm2m.thread_devices]\nenabled = true\nabsence_timeout = 4\npoll_interval = 1\n' + devices)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[ProxyTopology]:
    if node_server_available() is not None:
        pytest.skip(str(node_server_available()))
    topology = ProxyTopology(tmp_path)
    try:
        topology.setup()
        yield topology
    finally:
        topology.close()


@pytest.fixture
async def lwm2m_server(topo: ProxyTopology):
    server = NodeServer(LWM2M_PORT, topo.inet)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
