"""Thread nodes of a real OpenThread mesh as LwM2M clients at Eclipse Wakaama's lwm2mserver.

Every node the real NCP knows registers as ``thread-<extaddr>``; a ``[[lwm2m.device]]`` added by reload
that names a node's CoAP resource by its extended address (what the NCP's tables show) is readable
from Wakaama, whether the node is a child (in the child table, with no registered address when it is
an FTD) or a router (in no child table: reached at its RLOC).
"""

from __future__ import annotations

import signal

import pytest

from devtools.testbed import nat64_toml
from tests.interop.conftest import InteropBed
from tests.interop.test_wakaama import clients, senml
from tests.interop.wakaama import LwM2MServer, free_udp_port, lwm2m_toml

pytestmark = [pytest.mark.timeout(300)]
EP = "gw-thread"


def device_toml(endpoint: str, extaddr: str) -> str:
    # timeout: room for a CoAP retransmission (first one after 2-3 s) when the mesh loses the first try
    return (f'[[lwm2m.device]]\nendpoint = "{endpoint}"\neui64 = "{extaddr}"\nport = 5683\ntimeout = 8\n'
            'resources = { "/3303/0/5700" = { get = "/temp", type = "float" } }\n')


def test_nodes_are_clients_and_their_coap_resources_are_readable_by_eui64(bed: InteropBed) -> None:
    server = LwM2MServer(free_udp_port(), netns=bed.br, ipv6=True)
    try:
        extra = lwm2m_toml(server.uri, endpoint=EP,
                           extra="[lwm2m.thread_devices]\nenabled = true\npoll_interval = 1\n")
        daemon = bed.start(extra)
        nodes = {"child": bed.join_node(2, mtd=True), "router": bed.join_node(4, router=True)}
        ext = {kind: node.value("extaddr") for kind, node in nodes.items()}
        for kind, node in nodes.items():
            n = server.client_id(f"thread-{ext[kind]}", timeout=60)
            assert senml(server.request(f"read {n} /3/0"))["/3/0/2"] == ext[kind], "serial number = extaddr"
            node.cmd("coap start")
            node.cmd("coap resource temp")
            node.cmd(f"coap set {21.5 if kind == 'child' else 19.25}")

        devices = "".join(device_toml(f"dev-{kind}", ext[kind]) for kind in nodes)
        daemon.write_config(bed.config(nat64_toml() + extra + devices))
        daemon.signal(signal.SIGHUP)
        for kind, value in (("child", 21.5), ("router", 19.25)):
            n = server.client_id(f"dev-{kind}", timeout=30)
            # The router registered no address with us: it is reached at its RLOC.  On OpenThread's NCP
            # of 2023 that works only since wpan0 keeps the NCP's RLOC/ALOCs deprecated (gatewayd/thread/
            # wpan.py): the answers to a host sending from its ALOC never came back.
            result = server.request(f"read {n} /3303/0/5700", timeout=20)
            assert senml(result) == {"/3303/0/5700": value}, kind
        rows = clients(daemon)
        assert rows["dev-child"]["adapter"] == "coap" and rows[f"thread-{ext['router']}"]["adapter"] == "thread"
    finally:
        server.stop()
