"""The client against a real third-party LwM2M server (npm lwm2m-node-lib), driven through its CLI."""

from __future__ import annotations

import asyncio

import pytest

from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.paths import LwM2MPath

from .servers import NodeServer, device_store, free_udp_port, node_server_available, wait_state

pytestmark = [
    pytest.mark.skipif(node_server_available() is not None, reason=str(node_server_available())),
    pytest.mark.timeout(60),
]


@pytest.fixture
async def node_server():
    server = NodeServer(free_udp_port())
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


async def test_register_operate_observe_deregister(node_server: NodeServer) -> None:
    store = device_store(f"coap://127.0.0.1:{node_server.port}", lifetime=120)
    executed: list[bytes] = []
    store.set_execute_handler(3, 4, lambda path, args: executed.append(args))
    client = LwM2MClient("gw-node-1", store, ClientSettings(lwm2m_version="1.0"))
    await client.start()
    try:
        m = await node_server.wait_for(r"Endpoint name: (\S+)\s+Lifetime: (\d+)\s+Binding: (\S+)")
        assert m.groups() == ("gw-node-1", "120", "U")
        await wait_state(client, RegistrationState.REGISTERED)
        assert client.registration is not None and client.registration.location == ("rd/1",)

        await node_server.command("list", r'Device Id "1"[\s\S]*"name": "gw-node-1"')

        m = await node_server.command("read 1 /3/0/0", r"Value: (.*)")
        assert m is not None and m.group(1).strip() == "gatewayd tests"

        await node_server.command("write 1 /3/0/14 +07", r"Value written successfully")
        assert store.get(LwM2MPath(3, 0, 14)) == "+07"
        m = await node_server.command("read 1 /3/0/14", r"Value: (.*)")
        assert m is not None and m.group(1).strip() == "+07"

        await node_server.command("execute 1 /3/0/4 null", r"Command executed successfully")
        assert executed == [b"null"]

        # a read-only resource refuses the write with 4.05
        await node_server.command("write 1 /3/0/0 x", r"4\.05")
        assert store.get(LwM2MPath(3, 0, 0)) == "gatewayd tests"

        await node_server.command("observe 1 3 0 13", r"Observer stablished over resource \[/3/0/13\]")
        assert len(client.observations) == 1
        store.set(LwM2MPath(3, 0, 13), 1_700_000_123)
        await node_server.wait_for(r"Got new value: 1700000123")
        store.set(LwM2MPath(3, 0, 13), 1_700_000_456)
        await node_server.wait_for(r"Got new value: 1700000456")

        await node_server.command("cancel 1 3 0 13", r"Observation cancelled")
        store.set(LwM2MPath(3, 0, 13), 1_700_000_789)
        await asyncio.sleep(0.5)
        assert "1700000789" not in node_server.output
    finally:
        await client.stop()
    await node_server.wait_for(r"Device unregistration:[\s\S]*name: 'gw-node-1'")
    assert client.state == RegistrationState.DEREGISTERED
