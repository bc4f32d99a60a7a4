"""Server object Disable (/1/x/4): answer, deregister, stay away for the Disable Timeout, register again."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.client.disable import DEFAULT_DISABLE_TIMEOUT
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.persist import StateStore

from .servers import device_store, wait_state

pytestmark = pytest.mark.timeout(60)


async def test_disable_deregisters_stays_away_for_the_timeout_then_registers(server, clients) -> None:
    client = LwM2MClient("dis", device_store(server.uri), ClientSettings(keepalive=0.2))
    clients.append(client)
    await client.start()
    await server.wait_until(lambda: "dis" in server.registrations)
    await wait_state(client, RegistrationState.REGISTERED)
    resp = await server.op("dis", Code.PUT, "/1/0/5", b"2", 0)  # Disable Timeout: 2 s
    assert resp.code == Code.CHANGED
    remote = server.registrations["dis"].remote

    t0 = time.monotonic()
    resp = await server.op("dis", Code.POST, "/1/0/4")
    assert resp.code == Code.CHANGED
    await server.wait_until(lambda: server.count("deregister", "dis") == 1)
    await wait_state(client, RegistrationState.DISABLED)
    assert client.transport is None, "the connection to the server is gone"
    assert 0 < client.info()["disabled_for"] <= 2
    # nothing goes to the server while disabled (keepalive Updates included), nothing is answered
    updates = server.count("update", "dis")
    client.trigger_update()
    await asyncio.sleep(1.0)
    assert server.count("update", "dis") == updates and server.count("register", "dis") == 1
    with pytest.raises(Exception):  # noqa: B017 (timeout or port unreachable, whichever comes first)
        await server.request_to(remote, Code.GET, "/3/0/0", timeout=0.5)

    await server.wait_until(lambda: server.count("register", "dis") == 2, timeout=5)
    assert time.monotonic() - t0 >= 1.9
    await wait_state(client, RegistrationState.REGISTERED)
    assert client.disabled_until is None
    resp = await server.op("dis", Code.GET, "/3/0/0")
    assert resp.payload == b"gatewayd tests"


async def test_disable_timeout_defaults_to_a_day_and_survives_a_restart(server, clients, tmp_path) -> None:
    state = StateStore(tmp_path)
    store = device_store(server.uri)
    assert store.get(LwM2MPath(1, 0, 5)) is None
    client = LwM2MClient("dis-day", store, ClientSettings(), state)
    clients.append(client)
    await client.start()
    await server.wait_until(lambda: "dis-day" in server.registrations)
    await wait_state(client, RegistrationState.REGISTERED)
    resp = await server.op("dis-day", Code.POST, "/1/0/4")
    assert resp.code == Code.CHANGED
    await wait_state(client, RegistrationState.DISABLED)
    assert abs(client.disabled_until - (time.time() + DEFAULT_DISABLE_TIMEOUT)) < 5
    await client.stop()
    clients.remove(client)

    again = LwM2MClient("dis-day", device_store(server.uri), ClientSettings(), state)
    clients.append(again)
    await again.start()
    await wait_state(again, RegistrationState.DISABLED)
    await asyncio.sleep(0.5)
    assert server.count("register", "dis-day") == 1, "a restart does not end the Disable"


async def test_disable_of_another_servers_instance_changes_nothing(server, clients) -> None:
    store = device_store(server.uri)
    store.add_instance(1, 1, {0: 99, 1: 300, 6: False, 7: "U"})
    client = LwM2MClient("dis-other", store, ClientSettings())
    clients.append(client)
    await client.start()
    await server.wait_until(lambda: "dis-other" in server.registrations)
    resp = await server.op("dis-other", Code.POST, "/1/1/4")
    assert resp.code == Code.CHANGED
    await asyncio.sleep(0.3)
    assert client.state == RegistrationState.REGISTERED and server.count("deregister", "dis-other") == 0
