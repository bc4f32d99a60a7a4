"""The border router on one machine with no radio: namespaces, a simulated mesh and the peers around it.

:mod:`.topology` builds the namespaces (mesh, border router, LAN host, optionally an IPv4-only Internet).
The peer programs run inside them with ``ip netns exec``: :mod:`.nat64_peer` (UDP echo, TCP servers
and their mesh-side clients), :mod:`.dns_peer` (an authoritative zone server, one-shot queries),
:mod:`.sensors` (plain CoAP devices on Thread nodes) and :mod:`.lwm2m_server` (an upstream LwM2M server).
The demo, the end-to-end tests and the benchmarks all use these, so what the demo shows is what is tested.
"""

from devtools.testbed.topology import (
    CLOSED_PORT,
    DNS_ZONE,
    INET4,
    INET6,
    LAN_PREFIX,
    MTD_NODES,
    NAT64_POOL,
    NAT64_PREFIX,
    NODES,
    TCP_PORT,
    UDP_PORT,
    UPLINK4,
    Testbed,
    ip,
    nat64_toml,
)

__all__ = ["CLOSED_PORT", "DNS_ZONE", "INET4", "INET6", "LAN_PREFIX", "MTD_NODES", "NAT64_POOL", "NAT64_PREFIX",
           "NODES", "TCP_PORT", "UDP_PORT", "UPLINK4", "Testbed", "ip", "nat64_toml"]
