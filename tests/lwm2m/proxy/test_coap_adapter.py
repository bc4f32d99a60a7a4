"""The CoAP adapter on loopback: aiocoap test devices proxied to the aiocoap LwM2M test server."""

from __future__ import annotations

import asyncio
import socket
import time

import aiocoap
import pytest
from aiocoap import resource
from aiocoap.numbers.codes import Code

from devtools.testbed.sensors import Sensor
from gatewayd.lwm2m import load_registry
from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine, RegistrationState
from gatewayd.lwm2m.codecs import ContentFormat
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.proxy import component
from gatewayd.lwm2m.proxy.coap_adapter import CoapDeviceConfig
from gatewayd.lwm2m.proxy.component import LwM2MProxy
from gatewayd.lwm2m.proxy.mapping import parse_mappings
from gatewayd.lwm2m.proxy.virtual import UpstreamAccount
from gatewayd.lwm2m.transport import ClientSite
from tests.lwm2m.aioserver import LwM2MTestServer
from tests.lwm2m.servers import HeldResource, free_udp_port, until

pytestmark = pytest.mark.timeout(60)
REGISTRY = load_registry()
MAPPING = {
    "/3303/0/5700": {"get": "/sensors/temp", "type": "float"},
    "/3304/0/5700": {"get": "/sensors/env", "format": "json", "pointer": "/rh"},
    "/3311/0/5850": {"get": "/actuators/led", "put": "/actuators/led"},
    "/3/0/4": {"post": "/reboot"},
}


@pytest.fixture
async def proxy():
    engine = LwM2MEngine(None, ClientSettings(lifetime=60))
    px = LwM2MProxy(engine, REGISTRY, ClientSettings(lifetime=60))
    try:
        yield px
    finally:
        await px.stop()
        await engine.stop()


@pytest.fixture
async def sensors():
    made: list[Sensor] = []

    async def make(**kw) -> Sensor:
        sensor = Sensor("127.0.0.1", free_udp_port(), **kw)
        await sensor.start()
        made.append(sensor)
        return sensor

    yield make
    for s in made:
        await s.stop()


async def proxied(server: LwM2MTestServer, proxy: LwM2MProxy, ep: str, port: int, timeout: float = 5.0,
                  observe: bool = True, mapping: dict | None = None):
    mapping = {k: dict(v, observe=observe) if "get" in v else v for k, v in (mapping or MAPPING).items()}
    cfg = CoapDeviceConfig(ep, UpstreamAccount(server.uri, lifetime=60), parse_mappings(mapping, REGISTRY),
                           address="127.0.0.1", port=port, timeout=timeout)
    device = await proxy.add_device(cfg)
    await server.wait_until(lambda: ep in server.registrations
                            and proxy.engine.clients[ep].state == RegistrationState.REGISTERED)
    return device


def watch(device, path: str = "/3303/0/5700") -> str:
    return next(v["watch"] for v in device.show()["values"] if v["path"] == path)


async def read(server, ep, path):
    resp = await server.op(ep, Code.GET, path)
    return resp.code, resp.payload.decode()


async def test_each_device_registers_its_mapped_objects(server, proxy, sensors) -> None:
    a, b = await sensors(), await sensors()
    await proxied(server, proxy, "dev-a", a.port)
    await proxied(server, proxy, "dev-b", b.port)
    links = server.registrations["dev-a"].links
    for target in ("</3/0>", "</4/0>", "</3303/0>", "</3304/0>", "</3311/0>"):
        assert target in links
    assert set(server.registrations) == {"dev-a", "dev-b"}


async def test_read_is_served_from_the_cache_while_max_age_lasts(server, proxy, sensors) -> None:
    fresh = await sensors(max_age=60)
    stale = await sensors(max_age=0)
    await proxied(server, proxy, "fresh", fresh.port)
    await proxied(server, proxy, "stale", stale.port)
    fresh.set_temp(19.25)
    stale.set_temp(19.25)
    # the prefetch at start cached 21.5 for 60 s on the first device; the second one is asked every time
    assert await read(server, "fresh", "/3303/0/5700") == (Code.CONTENT, "21.5")
    assert await read(server, "stale", "/3303/0/5700") == (Code.CONTENT, "19.25")
    gets = stale.count("GET", "/sensors/temp")
    assert await read(server, "stale", "/3303/0/5700") == (Code.CONTENT, "19.25")
    assert stale.count("GET", "/sensors/temp") == gets + 1
    assert fresh.count("GET", "/sensors/temp") == 1
    # a JSON pointer picks the value out of the document
    assert await read(server, "fresh", "/3304/0/5700") == (Code.CONTENT, "40.0")


async def test_write_and_execute_reach_the_device(server, proxy, sensors) -> None:
    s = await sensors()
    await proxied(server, proxy, "dev", s.port)
    resp = await server.op("dev", Code.PUT, "/3311/0/5850", b"1", ContentFormat.TEXT)
    assert resp.code == Code.CHANGED
    assert s.led is True and s.requests[-1]["payload"] == "true"
    assert await read(server, "dev", "/3311/0/5850") == (Code.CONTENT, "1")
    resp = await server.op("dev", Code.POST, "/3/0/4", b"")
    assert resp.code == Code.CHANGED and s.count("POST", "/reboot") == 1
    # not writable in the object model: the device never hears of it
    resp = await server.op("dev", Code.PUT, "/3303/0/5700", b"3", ContentFormat.TEXT)
    assert resp.code == Code.METHOD_NOT_ALLOWED
    # a value the device refuses is refused upstream with the device's code, and the store keeps the old one
    dimmer = await proxied(server, proxy, "dim", s.port, mapping={"/3311/0/5851": {"put": "/actuators/led"}})
    dimmer.store.set(LwM2MPath(3311, 0, 5851), 20)
    resp = await server.op("dim", Code.PUT, "/3311/0/5851", b"70", ContentFormat.TEXT)
    assert resp.code == Code.BAD_REQUEST and b"device answered 4.00" in resp.payload
    assert s.requests[-1]["payload"] == "70" and s.led is True
    assert dimmer.store.get(LwM2MPath(3311, 0, 5851)) == 20


async def test_observe_follows_the_device_observation(server, proxy, sensors, monkeypatch) -> None:
    monkeypatch.setattr(ClientSite, "confirm_interval", 0.0)  # every notification confirmable
    s = await sensors()
    device = await proxied(server, proxy, "obs", s.port)
    obs = server.observe("obs", "/3303/0/5700")
    first = await obs.first()
    assert first.payload == b"21.5"
    await asyncio.sleep(0.3)
    assert any(r["observe"] == 0 for r in s.requests), "the gateway observes the device's resource"
    s.set_temp(23.0)
    note = await obs.next()
    assert note.payload == b"23.0"
    s.set_temp(24.5)
    assert (await obs.next()).payload == b"24.5"
    assert device.counters["notifications_in"] >= 2, "notifications came from the device's observation"
    assert watch(device) == "observing"
    # the server forgets the observation (RST to the next notification): the gateway stops observing the
    # device
    obs.cancel()
    temp = 24.5
    deadline = time.monotonic() + 5
    while watch(device) and time.monotonic() < deadline:
        temp += 0.5
        s.set_temp(temp)
        await asyncio.sleep(0.2)
    assert watch(device) == "" and not device._watchers
    assert not proxy.engine.clients["obs"].observations


async def test_a_device_that_cannot_observe_is_polled_and_notified_at_pmax(server, proxy, sensors) -> None:
    s = await sensors(observable=False, max_age=0)
    device = await proxied(server, proxy, "poll", s.port)
    resp = await server.op("poll", Code.PUT, "/3303/0/5700", query=("pmax=2",))
    assert resp.code == Code.CHANGED
    obs = server.observe("poll", "/3303/0/5700")
    assert (await obs.first()).payload == b"21.5"
    start = time.monotonic()
    note = await obs.next(timeout=5)
    assert note.payload == b"21.5" and 1.5 < time.monotonic() - start < 3.5, "pmax notification"
    s.set_temp(30.0)
    note = await obs.next(timeout=5)
    while note.payload != b"30.0":
        note = await obs.next(timeout=5)
    assert watch(device) == "polling"
    assert s.count("GET", "/sensors/temp") >= 3
    obs.cancel()


async def test_a_silent_device_gives_a_bounded_503_and_shows_unreachable(server, proxy) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        await proxied(server, proxy, "silent", hole.getsockname()[1], timeout=1.0)
        start = time.monotonic()
        code, text = await read(server, "silent", "/3303/0/5700")
        assert code == Code.SERVICE_UNAVAILABLE and "did not answer" in text
        assert time.monotonic() - start < 3.0
        assert await read(server, "silent", "/3/0/11/0") == (Code.CONTENT, "7")
        assert await read(server, "silent", "/4/0/3") == (Code.CONTENT, "0")
        info = proxy.info("silent")
        assert info["adapter"] == "coap" and info["reachable"] is False and info["last_contact"] == ""


async def test_a_device_by_eui64_that_moved_is_asked_again_where_fresh_tables_put_it(server, proxy, sensors) -> None:
    """A node can move (a child that becomes a router gets a new RLOC) just after its tables were read."""
    sensor = await sensors()
    sensor.temp = 23.5
    eui64 = "1122334455667788"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:  # the old address: nothing answers
        hole.bind(("127.0.0.2", sensor.port))
        reads = ["127.0.0.2", "127.0.0.1"]  # what each fresh read of the tables shows: then it moved
        cached: list[str] = []

        async def address_of(wanted: str, fresh: bool = False) -> str | None:
            assert wanted == eui64
            if fresh or not cached:
                cached.append(reads.pop(0) if len(reads) > 1 else reads[0])
            return cached[-1]

        proxy.tables.address_of = address_of
        mapping = {"/3303/0/5700": {"get": "/sensors/temp", "type": "float", "observe": False}}
        cfg = CoapDeviceConfig("moved", UpstreamAccount(server.uri, lifetime=60), parse_mappings(mapping, REGISTRY),
                               eui64=eui64, port=sensor.port, timeout=1.0)
        device = await proxy.add_device(cfg)
        await server.wait_until(lambda: "moved" in server.registrations)
        code, text = await read(server, "moved", "/3303/0/5700")
        assert (code, float(text)) == (Code.CONTENT, 23.5)
        assert cached == ["127.0.0.2", "127.0.0.1"], "the unanswered request looked the node up in fresh tables"
        assert device.info()["device"].startswith(f"{eui64} → 127.0.0.1")
        assert await read(server, "moved", "/4/0/4/0") == (Code.CONTENT, "127.0.0.1")


class _HeldTemp(HeldResource):
    """A temperature every device serves only once the test lets it: counts the reads waiting at once."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        await self.held()
        return aiocoap.Message(payload=b"21.5", content_format=0)


async def test_first_reads_of_many_devices_go_a_few_at_a_time(proxy, monkeypatch) -> None:
    """A gateway starting with thousands of devices reads them PREFETCH_CONCURRENCY at a time, not all in
    one instant (most of such a burst times out); every device still gets its first read."""
    monkeypatch.setattr(component, "PREFETCH_CONCURRENCY", 3)
    px = LwM2MProxy(proxy.engine, REGISTRY, ClientSettings(lifetime=60))
    temp = _HeldTemp()
    site = resource.Site()
    site.add_resource(["sensors", "temp"], temp)
    contexts = []
    try:
        for i in range(10):
            port = free_udp_port()
            contexts.append(await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port),
                                                                        transports=["udp6"]))
            await px.add_device(CoapDeviceConfig(
                f"held-{i}", UpstreamAccount(f"coap://127.0.0.1:{free_udp_port()}", lifetime=60),
                parse_mappings({"/3303/0/5700": {"get": "/sensors/temp"}}, REGISTRY), address="127.0.0.1",
                port=port, timeout=30))
        await until(lambda: temp.pending == 3)
        assert not any(d.prefetched for d in px.devices.values())
        temp.release.set()
        await until(lambda: all(d.prefetched for d in px.devices.values()))
        assert temp.peak == 3
        assert all(d.store.get(LwM2MPath(3303, 0, 5700)) == 21.5 for d in px.devices.values())
    finally:
        temp.release.set()
        await px.stop()
        for ctx in contexts:
            await ctx.shutdown()
