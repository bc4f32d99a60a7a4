"""Bootstrap, persistence across restarts, and recovery from a server that went away."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.codecs import decode_links
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.persist import StateStore

from .aioserver import BootstrapPlan, LwM2MTestServer
from .servers import device_store, free_udp_port, wait_state

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def servers():
    made: list[LwM2MTestServer] = []

    async def make(port: int | None = None) -> LwM2MTestServer:
        srv = LwM2MTestServer(port or free_udp_port())
        await srv.start()
        made.append(srv)
        return srv

    yield make
    for srv in made:
        await srv.stop()


async def test_client_initiated_bootstrap_then_register_and_resume_without_bootstrap(servers, clients,
                                                                                   tmp_path) -> None:
    bs = await servers()
    dm = await servers()
    bs.bootstrap["bs-ep"] = BootstrapPlan(dm.uri, short_server_id=7, lifetime=45)
    state = StateStore(tmp_path)
    client = LwM2MClient("bs-ep", device_store(bs.uri, bootstrap=True), ClientSettings(), state)
    clients.append(client)
    await client.start()
    await dm.wait_until(lambda: "bs-ep" in dm.registrations)
    assert [step for step, _ in bs.bootstrap_log] == ["delete /", "write /0/1", "write /1/0", "discover /",
                                                      "finish"]
    assert dict(bs.bootstrap_log)["finish"] == "2.04"
    discover = dict(bs.bootstrap_log)["discover /"]
    links = {link.target: link.attributes for link in decode_links(discover.encode())}
    assert links["/"] == {"lwm2m": "1.1"}
    assert links["/0/1"] == {"ssid": "7", "uri": dm.uri} and links["/1/0"] == {"ssid": "7"}
    assert links["/0/0"] == {"uri": bs.uri}, "Bootstrap-Delete of / keeps the Bootstrap-Server account"
    assert "/3/0" in links, "and the Device object"
    assert f'</0/1>;ssid=7;uri="{dm.uri}"' in discover, "uri= is a quoted string, as in the spec's examples"
    assert dm.registrations["bs-ep"].query["lt"] == "45"
    assert client.store.get(LwM2MPath(1, 0, 0)) == 7
    await wait_state(client, RegistrationState.REGISTERED)

    # a restart: the bootstrap-written account and the registration come back from the state file
    await client.stop(deregister=False)
    clients.remove(client)
    path = state.path_for("bs-ep")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["registration"]["server"] == dm.uri and saved["accounts"]["0"]["1"]["0"] == dm.uri
    again = LwM2MClient("bs-ep", device_store(bs.uri, bootstrap=True), ClientSettings(), state)
    clients.append(again)
    await again.start()
    await dm.wait_until(lambda: dm.count("update", "bs-ep") >= 1)
    await wait_state(again, RegistrationState.REGISTERED)
    assert bs.count("bootstrap-request", "bs-ep") == 1, "no second bootstrap"
    assert dm.count("register", "bs-ep") == 1, "the registration resumed with an Update"


def test_bootstrap_discover_quotes_the_server_uri() -> None:
    from gatewayd.lwm2m.client import ServerOperations
    from gatewayd.lwm2m.client.operations import OpRequest
    from gatewayd.lwm2m.codecs import ContentFormat

    store = device_store("coap://lwm2m.example.com:5683")
    resp = ServerOperations(store).handle(OpRequest("GET", ("0",), accept=ContentFormat.LINK_FORMAT), bootstrap=True)
    assert resp.payload == b'</>;lwm2m=1.1,</0>,</0/0>;ssid=1;uri="coap://lwm2m.example.com:5683"'


async def test_bootstrap_finish_refused_without_server_account(servers, clients) -> None:
    bs = await servers()
    bs.bootstrap["no-dm"] = BootstrapPlan("ftp://nowhere", short_server_id=7)
    client = LwM2MClient("no-dm", device_store(bs.uri, bootstrap=True),
                         ClientSettings(backoff_initial=30, bootstrap_timeout=2))
    clients.append(client)
    await client.start()
    await bs.wait_until(lambda: any(step == "finish" for step, _ in bs.bootstrap_log))
    assert dict(bs.bootstrap_log)["finish"] == "4.06"
    await wait_state(client, RegistrationState.FAILED)


async def test_fallback_to_bootstrap_after_failed_registrations(servers, clients) -> None:
    bs = await servers()
    dm = await servers()
    bs.bootstrap["fb"] = BootstrapPlan(dm.uri)
    dead = free_udp_port()
    store = device_store(f"coap://127.0.0.1:{dead}")
    from gatewayd.lwm2m.bootstrap import factory_bootstrap

    factory_bootstrap(store, bs.uri, bootstrap=True)
    client = LwM2MClient("fb", store, ClientSettings(backoff_initial=0.05, backoff_max=0.1, bootstrap_after=2,
                                                     request_timeout=1))
    clients.append(client)
    await client.start()
    await dm.wait_until(lambda: "fb" in dm.registrations)
    assert bs.count("bootstrap-request", "fb") == 1


async def test_restart_resumes_registration_and_written_values(servers, clients, tmp_path) -> None:
    dm = await servers()
    state = StateStore(tmp_path)
    client = LwM2MClient("resume", device_store(dm.uri), ClientSettings(), state)
    clients.append(client)
    await client.start()
    await dm.wait_until(lambda: "resume" in dm.registrations)
    from aiocoap.numbers.codes import Code

    resp = await dm.op("resume", Code.PUT, "/3/0/15", b"Europe/Paris", 0)
    assert resp.code == Code.CHANGED
    location = client.registration.location
    await client.stop(deregister=False)
    clients.remove(client)

    again = LwM2MClient("resume", device_store(dm.uri), ClientSettings(), state)
    clients.append(again)
    await again.start()
    assert again.store.get(LwM2MPath(3, 0, 15)) == "Europe/Paris"
    await dm.wait_until(lambda: dm.count("update", "resume") == 1)
    await wait_state(again, RegistrationState.REGISTERED)
    assert again.registration.location == location and dm.count("register", "resume") == 1
    # the server answers DM requests on the resumed registration's new socket
    resp = await dm.op("resume", Code.GET, "/3/0/15")
    assert resp.payload == b"Europe/Paris"


async def test_expired_registration_is_not_resumed(servers, clients, tmp_path) -> None:
    dm = await servers()
    state = StateStore(tmp_path)
    state.save("old", {"registration": {"server": dm.uri, "location": ["rd", "99"], "lifetime": 60,
                                        "expires": 1000.0, "objects": ""}, "values": {}})
    client = LwM2MClient("old", device_store(dm.uri), ClientSettings(), state)
    clients.append(client)
    await client.start()
    await dm.wait_until(lambda: "old" in dm.registrations)
    assert dm.count("update", "old") == 0 and dm.count("register", "old") == 1


async def test_server_down_for_a_while_then_reregistered_with_backoff(servers, clients) -> None:
    dm = await servers()
    port = dm.port
    client = LwM2MClient("down", device_store(dm.uri), ClientSettings(keepalive=0.3, backoff_initial=0.2,
                                                                      backoff_max=0.4, request_timeout=1))
    clients.append(client)
    await client.start()
    await dm.wait_until(lambda: "down" in dm.registrations)
    await dm.stop()
    await wait_state(client, RegistrationState.FAILED, timeout=5)
    assert "retry" in client.last_error
    await asyncio.sleep(1.0)
    fresh = await servers(port)  # came back without its registrations: Update gets 4.04, then Register
    await fresh.wait_until(lambda: "down" in fresh.registrations, timeout=10)
    await wait_state(client, RegistrationState.REGISTERED)
    assert fresh.count("register", "down") == 1
