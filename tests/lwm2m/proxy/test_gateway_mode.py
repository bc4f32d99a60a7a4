"""Gateway mode: proxied devices as LwM2M Gateway (object 25) instances under the gateway's registration,
their objects reached by prefix (OMA-TS-LWM2M_Gateway-V1_1_1 §6, §8)."""

from __future__ import annotations

import json

import pytest
from aiocoap.numbers.codes import Code

from gatewayd.config.loader import ConfigError, parse
from gatewayd.control import CommandError, Request
from gatewayd.lwm2m.client import LwM2MClient
from gatewayd.lwm2m.codecs import ContentFormat, decode, parse_registration
from gatewayd.lwm2m.component import LwM2MComponent
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.persist import StateStore
from gatewayd.lwm2m.proxy import gateway_mode
from tests.lwm2m.servers import REGISTRY, device_store, gateway_with_devices, until

from .test_component import device

pytestmark = pytest.mark.timeout(60)
GW = "urn:dev:ops:test-gateway"


def config(tmp_path, uri: str, devices: str, mode: str = "gateway"):
    return parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[lwm2m]\nenabled = true\nproxy_mode = "{mode}"\n'
                 f'[lwm2m.server]\nuri = "{uri}"\nlifetime = 60\n[lwm2m.gateway]\nendpoint = "{GW}"\n{devices}',
                 base_dir=tmp_path)


def led(ep: str, port: int) -> str:
    return device(ep, port) + '"/3311/0/5850" = { get = "/actuators/led", put = "/actuators/led" }\n'


def objects(links: str) -> dict[int, list[int]]:
    return parse_registration(links.encode())[0]


def latest(reg) -> str:
    """The object list the server holds for a registration: the last one an Update carried, else Register's."""
    return next((u["payload"] for u in reversed(reg.updates) if u["payload"]), reg.links)


async def read_25(server) -> dict[str, dict[int, object]]:
    """The gateway's /25 as the server reads it: Device ID → {resource: value}."""
    resp = await server.op(GW, Code.GET, "/25", accept=ContentFormat.SENML_JSON)
    assert resp.code == Code.CONTENT
    by_instance: dict[int, dict[int, object]] = {}
    for path, value in decode(ContentFormat.SENML_JSON, LwM2MPath(25), resp.payload, REGISTRY):
        by_instance.setdefault(path.instance, {})[path.resource] = value
    return {str(v[0]): {"instance": i, **v} for i, v in by_instance.items()}


def test_gateway_mode_needs_the_gateway_client_and_lwm2m_1_1(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"lwm2m.proxy_mode: gateway mode .* \[lwm2m.gateway\] enabled"):
        parse('[lwm2m]\nproxy_mode = "gateway"\n[lwm2m.gateway]\nenabled = false\n')
    with pytest.raises(ConfigError, match=r"LwM2M 1\.1 or later"):
        parse('[lwm2m]\nproxy_mode = "gateway"\nlwm2m_version = "1.0"\n')


async def test_devices_behind_one_registration_reached_by_prefix(server, sensors, tmp_path) -> None:
    a, b, c = sensors
    comp = LwM2MComponent(config(tmp_path, server.uri, led("dev-a", a.port) + device("dev-b", b.port)))
    await comp.start()
    try:
        await server.wait_until(lambda: GW in server.registrations
                                and objects(latest(server.registrations[GW])).get(25) == [0, 1])
        # one registration: the gateway's, never the devices' own (Gateway TS §6)
        assert set(server.registrations) == {GW}
        reg = server.registrations[GW]
        links = latest(reg)
        listed = objects(links)
        assert listed[25] == [0, 1] and 3303 not in listed and 3311 not in listed
        assert "</25>;ver=2.0" in links

        # /25: Device ID, Prefix, IoT Device Objects per device
        table = await read_25(server)
        assert {ep: (row[1]) for ep, row in table.items()} == {"dev-a": "dev0", "dev-b": "dev1"}
        assert objects(str(table["dev-a"][3])) == {3: [0], 4: [0], 3303: [0], 3311: [0]}
        assert objects(str(table["dev-b"][3])) == {3: [0], 4: [0], 3303: [0]}

        # Read through the prefix reaches the device; SenML names carry the prefix (Gateway TS §9)
        resp = await server.op(GW, Code.GET, "/dev0/3303/0/5700")
        assert (resp.code, resp.payload) == (Code.CONTENT, b"21.5")
        assert a.count("GET", "/sensors/temp") >= 1
        resp = await server.op(GW, Code.GET, "/dev1/3303/0", accept=ContentFormat.SENML_JSON)
        assert resp.code == Code.CONTENT
        assert json.loads(resp.payload)[0]["bn"] == "/dev1/3303/0/"
        # Discover under a prefix lists the device's objects without it (§8.3.1)
        resp = await server.op(GW, Code.GET, "/dev0/3311", accept=ContentFormat.LINK_FORMAT)
        assert resp.code == Code.CONTENT and b"</3311/0/5850>" in resp.payload and b"dev0" not in resp.payload
        # Write through the prefix reaches the device
        resp = await server.op(GW, Code.PUT, "/dev0/3311/0/5850", b"1", ContentFormat.TEXT)
        assert resp.code == Code.CHANGED and a.led is True
        # a Write in SenML names the prefixed path
        body = json.dumps([{"n": "/dev0/3311/0/5850", "vb": False}]).encode()
        resp = await server.op(GW, Code.PUT, "/dev0/3311/0/5850", body, ContentFormat.SENML_JSON)
        assert resp.code == Code.CHANGED and a.led is False
        # an unknown prefix, and the gateway's account objects under a prefix, are not found
        assert (await server.op(GW, Code.GET, "/dev9/3303/0/5700")).code == Code.NOT_FOUND
        assert (await server.op(GW, Code.GET, "/dev0/1/0")).code == Code.NOT_FOUND
        # the gateway's own objects stay where they were
        resp = await server.op(GW, Code.GET, "/3/0/19")
        assert resp.code == Code.CONTENT and resp.payload

        # Observe under a prefix follows the device
        obs = server.observe(GW, "/dev0/3303/0/5700")
        assert (await obs.first()).payload == b"21.5"
        a.set_temp(22.0)
        assert (await obs.next()).payload == b"22.0"
        obs.cancel()

        # gatewayctl lwm2m clients: the gateway and the devices behind it
        rows = {r["endpoint"]: r for r in await comp._cmd_clients(Request([]))}
        assert rows[GW]["mode"] == "gateway" and rows[GW]["state"] == "registered"
        assert rows["dev-a"]["mode"] == "gateway" and rows["dev-a"]["gateway"] == GW
        assert rows["dev-a"]["prefix"] == "/dev0" and rows["dev-a"]["instance"] == "/25/0"
        assert rows["dev-a"]["adapter"] == "coap" and rows["dev-a"]["state"] == "registered"
        shown = await comp._cmd_show(Request(["dev-b"]))
        assert shown["prefix"] == "/dev1" and shown["mode"] == "gateway"
        with pytest.raises(CommandError, match="behind the gateway's registration"):
            await comp._cmd_send(Request(["dev-b", "/3303/0/5700"]))
        assert (await comp._cmd_send(Request([GW, "/3/0/19"])))["code"] == "2.04", "the gateway's own Send goes"

        # reload: dev-b leaves, dev-c comes; an Update tells the server, dev-c does not take dev-b's prefix
        updates = len(reg.updates)
        await comp.reload(config(tmp_path, server.uri, led("dev-a", a.port) + device("dev-c", c.port)))
        await server.wait_until(lambda: len(reg.updates) > updates and objects(latest(reg)).get(25) == [0, 2])
        assert server.count("register", GW) == 1
        table = await read_25(server)
        assert set(table) == {"dev-a", "dev-c"} and table["dev-c"][1] == "dev2"
        assert (await server.op(GW, Code.GET, "/dev1/3303/0/5700")).code == Code.NOT_FOUND
        resp = await server.op(GW, Code.GET, "/dev2/3303/0/5700")
        assert resp.code == Code.CONTENT and c.count("GET", "/sensors/temp") >= 1
    finally:
        await comp.stop()
    assert not server.registrations

    # a restart keeps every device's prefix (the assignment is saved in the state directory)
    comp = LwM2MComponent(config(tmp_path, server.uri, device("dev-c", c.port) + led("dev-a", a.port)))
    await comp.start()
    try:
        await server.wait_until(lambda: GW in server.registrations)
        await server.wait_until(lambda: len(comp.proxy.engine.devices) == 2)
        prefixes = {ep: d.prefix for ep, d in comp.proxy.engine.devices.items()}
        assert prefixes == {"dev-a": "dev0", "dev-c": "dev2"}
    finally:
        await comp.stop()


async def test_registrations_mode_is_the_default_and_shows_in_clients(server, sensors, tmp_path) -> None:
    a = sensors[0]
    cfg = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[lwm2m]\nenabled = true\n[lwm2m.server]\n'
                f'uri = "{server.uri}"\nlifetime = 60\n[lwm2m.gateway]\nendpoint = "{GW}"\n{device("dev-a", a.port)}',
                base_dir=tmp_path)
    assert cfg.lwm2m.proxy_mode == "registrations"
    comp = LwM2MComponent(cfg)
    await comp.start()
    try:
        await server.wait_until(lambda: {GW, "dev-a"} <= set(server.registrations))
        assert 25 not in objects(server.registrations[GW].links)
        rows = {r["endpoint"]: r for r in await comp._cmd_clients(Request([]))}
        assert rows[GW]["mode"] == rows["dev-a"]["mode"] == "registration"
    finally:
        await comp.stop()


async def test_thread_nodes_come_and_go_as_gateway_instances(server, tmp_path) -> None:
    """[lwm2m.thread_devices] in gateway mode: a node the NCP lists is a /25 instance, read by prefix; when it
    has been gone past absence_timeout its instance goes and an Update says so."""
    import asyncio

    from gatewayd.lwm2m.bootstrap import factory_bootstrap
    from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine
    from gatewayd.lwm2m.proxy.gateway_mode import GatewayEngine
    from gatewayd.lwm2m.proxy.thread_adapter import NcpTables, ThreadDevices, ThreadDevicesConfig
    from gatewayd.lwm2m.proxy.virtual import UpstreamAccount
    from tests.lwm2m.servers import device_store
    from tests.simclient import SimClient

    sensor = "1122334455667788"
    ncp = SimClient(seed=3, formed=True)
    engine = LwM2MEngine(None, ClientSettings(lifetime=60))
    store = device_store()
    factory_bootstrap(store, server.uri, lifetime=60)
    gateway = await engine.add(GW, store)
    gw_engine = GatewayEngine(gateway)
    tables = NcpTables(lambda: ncp)
    cfg = ThreadDevicesConfig(enabled=True, absence_timeout=1.5, poll_interval=0.5,
                              account=UpstreamAccount(server.uri, lifetime=60))
    devices = ThreadDevices(cfg, gw_engine, REGISTRY, ClientSettings(lifetime=60), tables)
    ep = f"thread-{sensor}"
    try:
        await server.wait_until(lambda: GW in server.registrations)
        ncp.core.add_node("sensor", bytes.fromhex(sensor), ncp.now, kind="mtd")
        ncp.advance(0.5)
        tables.read_at = 0
        await devices.poll()
        reg = server.registrations[GW]
        await server.wait_until(lambda: objects(latest(reg)).get(25) == [0])
        assert set(server.registrations) == {GW}
        table = await read_25(server)
        assert table[ep][1] == "dev0" and objects(str(table[ep][3])) == {3: [0], 4: [0]}
        resp = await server.op(GW, Code.GET, "/dev0/3/0/2")
        assert (resp.code, resp.payload.decode()) == (Code.CONTENT, sensor)

        ncp.core.remove_node("sensor", ncp.now)
        await asyncio.sleep(1.6)
        tables.read_at = 0
        await devices.poll()
        await server.wait_until(lambda: 25 not in objects(latest(reg)) or objects(latest(reg))[25] == [])
        assert (await server.op(GW, Code.GET, "/dev0/3/0/2")).code == Code.NOT_FOUND
        assert ("deregister", ep) not in server.log and server.count("register", GW) == 1
    finally:
        await devices.stop()
        await gw_engine.stop()
        await engine.stop()


async def test_prefixes_come_back_to_their_devices_and_forgotten_ones_are_reused(tmp_path, monkeypatch) -> None:
    """A device that leaves keeps its /25 instance (its prefix) for when it returns, also across restarts;
    newcomers take the lowest instance nobody holds, and one of a forgotten device."""
    state = StateStore(tmp_path)

    def engine() -> gateway_mode.GatewayEngine:
        store = device_store()
        store.add_object(25)
        return gateway_mode.GatewayEngine(LwM2MClient(GW, store), state)

    def prefixes(gw: gateway_mode.GatewayEngine) -> dict[str, str]:
        return {ep: d.prefix for ep, d in gw.devices.items()}

    gw = engine()
    for ep in ("a", "b", "c"):
        await gw.add(ep, device_store())
    await gw.remove("b")
    await gw.add("d", device_store())
    await gw.add("b", device_store())
    assert prefixes(gw) == {"a": "dev0", "b": "dev1", "c": "dev2", "d": "dev3"}
    await gw.stop()

    gw = engine()  # restarted: c returns, a newcomer does not take a's, b's or d's prefix
    await gw.add("c", device_store())
    await gw.add("e", device_store())
    assert prefixes(gw) == {"c": "dev2", "e": "dev4"}

    monkeypatch.setattr(gateway_mode, "REMEMBERED", 0)
    monkeypatch.setattr(gateway_mode, "SAVE_DELAY", 0.01)
    await gw.remove("c")
    await gw.add("f", device_store())  # saving (soon) forgets a, b, c and d
    assert prefixes(gw) == {"e": "dev4", "f": "dev5"}
    await until(lambda: set(state.load(f"{GW}#gateway-devices")["instances"]) == {"e", "f"})
    await gw.add("g", device_store())
    await gw.add("h", device_store())
    assert prefixes(gw) == {"e": "dev4", "f": "dev5", "g": "dev0", "h": "dev1"}
    await gw.stop()



async def test_a_registration_of_7000_devices_goes_block_wise(server, clients) -> None:
    """7,000 devices behind the gateway: a Register object list of 75,969 bytes, more than a UDP datagram
    holds and over the link-format decoder's old 64 KiB bound, reaches the server block-wise (Block1) and
    decodes (the test server parses it with our decoder) with every /25 instance listed."""
    gateway, engine = await gateway_with_devices(server.uri, GW, 7000)
    clients.append(gateway)
    await gateway.start()
    await server.wait_until(lambda: gateway.registration is not None, timeout=30)
    links = latest(server.registrations[GW])
    assert len(links) == 75_969
    assert objects(links)[25] == list(range(7000))
    assert gateway.registration.objects == links, "the server holds what the client registered"
    await engine.stop()


async def test_a_server_that_bounds_the_object_list_refuses_with_the_reason_shown(server, clients) -> None:
    """A server that takes at most 65,535 bytes of object list (Wakaama's bound) refuses 7,000 devices:
    the gateway's client fails saying how long its list is and what to do, and retries."""
    server.max_object_list = 65535
    gateway, engine = await gateway_with_devices(server.uri, GW, 7000)
    clients.append(gateway)
    await gateway.start()
    await until(lambda: "object list" in gateway.last_error)
    assert gateway.last_error.startswith("Register rejected with 4.13 (the object list is 75969 bytes, over the "
                                         "65535 some servers take")
    assert GW not in server.registrations and gateway.info()["state"] == "failed"
    await engine.stop()
