"""Thread nodes as virtual clients, driven by the simulator's protocol core (no namespaces)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m import load_registry
from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine, RegistrationState
from gatewayd.lwm2m.codecs import ContentFormat, decode
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.proxy.thread_adapter import (
    NcpTables,
    ThreadDevices,
    ThreadDevicesConfig,
    preferred_address,
)
from gatewayd.lwm2m.proxy.virtual import UpstreamAccount, endpoint_account
from ncp.spinel import Prop
from tests.lwm2m.dtls_server import DtlsLwM2MServer
from tests.lwm2m.servers import free_udp_port
from tests.simclient import SimClient

pytestmark = pytest.mark.timeout(60)
FTD = "00112233445566ff"
REGISTRY = load_registry()
SENSOR = "1122334455667788"


async def test_child_table_addresses_resolve_an_eui64() -> None:
    """An MTD child registers its addresses with its parent; an FTD child is reached at its RLOC."""
    ncp = SimClient(seed=3, formed=True)
    ncp.core.add_node("sensor", bytes.fromhex(SENSOR), ncp.now, kind="mtd")
    ncp.core.add_node("router-capable", bytes.fromhex(FTD), ncp.now)
    ncp.advance(0.5)
    expected = [str(a) for a in ncp.core.node_addresses(ncp.core.nodes["sensor"])]
    rows = {row.ext_address.hex(): row for row in await ncp.get(Prop.THREAD_CHILD_TABLE_ADDRESSES)}
    assert [str(a) for a in rows[SENSOR].addresses] == expected and rows[FTD].addresses == []
    tables = NcpTables(lambda: ncp)
    assert await tables.refresh(max_age=0)
    assert tables.nodes[SENSOR].addresses == expected and tables.nodes[SENSOR].is_child
    assert await tables.address_of(SENSOR) == preferred_address(expected, tables.mesh_local)
    rloc = ipaddress.IPv6Address(await tables.address_of(FTD))
    assert rloc in tables.mesh_local and rloc.packed[-2:] == tables.nodes[FTD].rloc16.to_bytes(2, "big")
    assert await tables.address_of("0000000000000000") is None


def test_preferred_address_is_routable_first_and_skips_link_local_and_rloc() -> None:
    ml = ipaddress.IPv6Network("fd00:db8::/64")
    # the OMR address first: an NCP of 2023 does not pass the host's packets to mesh-local destinations
    assert preferred_address(["fe80::1", "fd00:db8::ff:fe00:1c01", "fd00:db8::7", "fd11::5"], ml) == "fd11::5"
    assert preferred_address(["fe80::1", "fd00:db8::ff:fe00:1c01", "fd00:db8::7"], ml) == "fd00:db8::7"
    assert preferred_address(["fe80::1"], ml) is None


async def test_nodes_come_and_go_as_virtual_clients(server) -> None:
    ncp = SimClient(seed=3, formed=True)
    engine = LwM2MEngine(None, ClientSettings(lifetime=60))
    tables = NcpTables(lambda: ncp)
    cfg = ThreadDevicesConfig(enabled=True, prefix="thread-", absence_timeout=1.5, poll_interval=0.5,
                              account=UpstreamAccount(server.uri, lifetime=60))
    devices = ThreadDevices(cfg, engine, REGISTRY, ClientSettings(lifetime=60), tables)
    ep = f"thread-{SENSOR}"
    try:
        await devices.poll()
        assert ep not in engine.clients
        ncp.core.add_node("sensor", bytes.fromhex(SENSOR), ncp.now, kind="mtd")
        ncp.advance(0.5)
        tables.read_at = 0
        await devices.poll()
        await server.wait_until(lambda: ep in server.registrations
                                and engine.clients[ep].state == RegistrationState.REGISTERED)
        resp = await server.op(ep, Code.GET, "/3/0/2")
        assert resp.payload.decode() == SENSOR
        resp = await server.op(ep, Code.GET, "/4/0", accept=ContentFormat.SENML_JSON)
        values = dict(decode(ContentFormat.SENML_JSON, LwM2MPath(4, 0), resp.payload, REGISTRY))
        node = ncp.core.nodes["sensor"]
        assert values[LwM2MPath(4, 0, 2)] == node.rssi and values[LwM2MPath(4, 0, 3)] == node.link_quality
        assert set(values[LwM2MPath(4, 0, 4)].values()) == {str(a) for a in ncp.core.node_addresses(node)}
        parent = values[LwM2MPath(4, 0, 5)][0]
        assert parent.endswith(f"ff:fe00:{ncp.core.node_rloc16(node) & 0xFC00:x}")
        assert devices.info(ep)["role"] == "child"

        tables.read_at = 0
        await devices.poll()  # seen just now
        ncp.core.remove_node("sensor", ncp.now)
        tables.read_at = 0
        await devices.poll()
        assert ep in engine.clients, "still within the absence timeout"
        await asyncio.sleep(1.6)
        tables.read_at = 0
        await devices.poll()
        assert ep not in engine.clients
        await server.wait_until(lambda: ep not in server.registrations)
        assert ("deregister", ep) in server.log
    finally:
        await devices.stop()
        await engine.stop()


def test_endpoint_keys_are_stable_distinct_and_follow_the_server_key() -> None:
    account = UpstreamAccount("coaps://lwm2m.example:5684", "gw-kitchen",
                              bytes.fromhex("00112233445566778899aabbccddeeff"))
    a = endpoint_account(account, "thread-1122334455667788")
    assert a.identity == "thread-1122334455667788" and a.uri == account.uri and len(a.key) == 16
    # keys already entered on a server must survive upgrades: this value is part of the interface
    assert a.key.hex() == "7fcea3c73c6a89501556d5a4d976ff75"
    assert endpoint_account(account, "thread-1122334455667789").key != a.key
    other_server = UpstreamAccount(account.uri, account.identity, b"another key")
    assert endpoint_account(other_server, a.identity).key != a.key
    assert repr(a.key) not in repr(a), "the derived key stays out of repr() (and so out of logs)"


async def test_per_node_psk_registers_each_node_with_its_own_identity_over_dtls() -> None:
    """A server that knows only the per-node identities (as Leshan would, one per endpoint) takes every node."""
    ncp = SimClient(seed=3, formed=True)
    port = free_udp_port()
    account = UpstreamAccount(f"coaps://127.0.0.1:{port}", "gateway-identity", b"gateway-psk-7f1e", 60)
    eui64s = [SENSOR, "1122334455660001"]
    eps = [f"thread-{e}" for e in eui64s]
    server = DtlsLwM2MServer(port, {ep.encode(): endpoint_account(account, ep).key for ep in eps})
    await server.start()
    engine = LwM2MEngine(None, ClientSettings(lifetime=60))
    cfg = ThreadDevicesConfig(enabled=True, poll_interval=0.5, account=account, per_node_psk=True)
    devices = ThreadDevices(cfg, engine, REGISTRY, ClientSettings(lifetime=60, request_timeout=5),
                            NcpTables(lambda: ncp))
    try:
        for i, eui64 in enumerate(eui64s):
            ncp.core.add_node(f"node{i}", bytes.fromhex(eui64), ncp.now)
        ncp.advance(0.5)
        await devices.poll()
        for ep in eps:
            await server.wait_event(lambda e, ep=ep: e.get("event") == "register" and e["ep"] == ep, timeout=20)
        assert all(engine.clients[ep].store.get(LwM2MPath(0, 0, 3)) == ep.encode() for ep in eps)
        resp = await server.request(eps[1], "GET", "/3/0/2")
        assert (resp["code"], resp["payload"]) == ("2.05", eui64s[1].encode())
    finally:
        await devices.stop()
        await engine.stop()
        await server.stop()


async def test_a_node_the_ncp_announces_is_registered_without_waiting_for_the_next_poll() -> None:
    """An idle gateway reads no tables between polls; a child arriving is read at once all the same."""
    ncp = SimClient(seed=3, formed=True)
    engine = LwM2MEngine(None, ClientSettings(lifetime=60))
    tables = NcpTables(lambda: ncp)
    reads = 0
    get = ncp.get

    async def counting_get(prop: int):
        nonlocal reads
        reads += prop == Prop.THREAD_CHILD_TABLE
        return await get(prop)

    ncp.get = counting_get
    cfg = ThreadDevicesConfig(enabled=True, poll_interval=3600,
                              account=UpstreamAccount(f"coap://127.0.0.1:{free_udp_port()}", lifetime=60))
    devices = ThreadDevices(cfg, engine, REGISTRY, ClientSettings(lifetime=60), tables)
    try:
        devices.start()
        for _ in range(50):
            await asyncio.sleep(0.02)
            if reads:
                break
        await asyncio.sleep(0.2)
        assert reads == 1 and not devices.nodes, "one read at start, then quiet"
        ncp.core.add_node("sensor", bytes.fromhex(SENSOR), ncp.now, kind="mtd")
        ncp.advance(0.5)  # the NCP pushes the child table INSERTED
        for _ in range(100):
            await asyncio.sleep(0.02)
            if f"thread-{SENSOR}" in devices.nodes:
                break
        assert f"thread-{SENSOR}" in devices.nodes and reads == 2
    finally:
        await devices.stop()
        await engine.stop()


class _RoleChanging:
    """The NCP as seen while it becomes leader: its RLOC16 read a moment before the router table (0xfffe,
    detached), the router table read after (itself in it with its leader RLOC16)."""

    def __init__(self, ncp: SimClient) -> None:
        self.ncp = ncp

    async def get(self, prop: Prop) -> object:
        return 0xFFFE if prop == Prop.THREAD_RLOC16 else await self.ncp.get(prop)


async def test_the_border_routers_own_ncp_is_never_a_node() -> None:
    """Its router-table entry is its own: a virtual client for it would register a ``thread-<own address>``
    endpoint that is no device (seen in the demo as a sixth client)."""
    ncp = SimClient(seed=3, formed=True)
    ncp.core.add_node("router-capable", bytes.fromhex(FTD), ncp.now)
    ncp.advance(0.5)
    own = bytes(await ncp.get(Prop.MAC_15_4_LADDR)).hex()
    assert own in {r.ext_address.hex() for r in await ncp.get(Prop.THREAD_ROUTER_TABLE)}, "the NCP lists itself"
    tables = NcpTables(lambda: _RoleChanging(ncp))
    assert await tables.refresh(max_age=0)
    assert set(tables.nodes) == {FTD}
