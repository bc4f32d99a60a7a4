"""Non-LwM2M devices behind the border router as LwM2M clients of an IPv4-only server (npm
lwm2m-node-lib) reached through the daemon's NAT64: two plain CoAP sensors on simulated Thread nodes
(one observable, one not), a silent device, Thread nodes joining and leaving, a device added by SIGHUP."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import signal
import time

import pytest

from .conftest import LWM2M_PORT, ProxyTopology

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(240)]
SENSOR_EUI, LAMP_EUI = "0011223344556677", "0011223344556688"
TEMP = ('[[lwm2m.device]]\nendpoint = "temp-sensor"\neui64 = "0011223344556677"\ntimeout = 2\n'
        'resources = { "/3303/0/5700" = { get = "/sensors/temp", type = "float" }, '
        '"/3311/0/5850" = { get = "/actuators/led", put = "/actuators/led" }, "/3/0/4" = { post = "/reboot" } }\n')


def polled(address: str) -> str:
    return ('[[lwm2m.device]]\nendpoint = "poll-sensor"\naddress = "' + address + '"\ntimeout = 2\n'
            'resources = { "/3303/0/5700" = { get = "/sensors/temp", observe = false } }\n')


def silent(address: str) -> str:
    return ('[[lwm2m.device]]\nendpoint = "silent-sensor"\naddress = "' + address + '"\ntimeout = 1.5\n'
            'resources = { "/3303/0/5700" = { get = "/sensors/temp" } }\n')


async def until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.2)


def ctl(gw, *words: str):
    return json.loads(gw.ctl("--json", *words).stdout)


async def test_devices_appear_upstream_and_are_operated_through_the_gateway(topo: ProxyTopology, lwm2m_server):
    srv = lwm2m_server
    gw = topo.start_daemon(topo.lwm2m_toml(TEMP))
    state, nodes = await until(topo.attached, 30, "both nodes attached with addresses")
    # The sensor node is an MTD: it registered its addresses, and the gateway reaches it at the routable one.
    sensor_address = await until(lambda: topo.routable_address(SENSOR_EUI), 10, "the sensor's OMR address")
    temp = topo.sensor(sensor_address)
    lamp_address = nodes[LAMP_EUI]["addresses"][0]
    poll = topo.sensor(lamp_address, "--no-observe", "--max-age", "0")

    # each device is an endpoint of its own on the IPv4-only server, reached through NAT64
    for ep in ("temp-sensor", f"thread-{SENSOR_EUI}", f"thread-{LAMP_EUI}"):
        await srv.wait_for(rf"Endpoint name: {ep}\s", timeout=60)
    ids = await srv.device_ids()
    rows = {r["endpoint"]: r for r in ctl(gw, "lwm2m", "clients")}
    assert rows["temp-sensor"]["adapter"] == "coap" and rows["temp-sensor"]["state"] == "registered"
    assert rows["temp-sensor"]["location"].startswith("/rd/")
    assert rows[f"thread-{SENSOR_EUI}"]["adapter"] == "thread"
    # the MTD is shown with the addresses it registered; the FTD lamp registered none: shown by its RLOC16
    assert sensor_address in rows[f"thread-{SENSOR_EUI}"]["device"].split(", ")
    assert rows[f"thread-{LAMP_EUI}"]["device"].startswith("rloc16 0x"), rows[f"thread-{LAMP_EUI}"]
    assert any(r["remote"] == f"100.64.0.10:{LWM2M_PORT}" for r in ctl(gw, "nat64", "mappings")), \
        "registrations crossed the NAT64"

    # Read: the sensor's current value, found by EUI-64 through the NCP's child table
    tid = ids["temp-sensor"]
    m = await srv.command(f"read {tid} /3303/0/5700", r"Value: (.*)", timeout=15)
    assert m.group(1).strip() == "21.5"
    row = next(r for r in ctl(gw, "lwm2m", "clients") if r["endpoint"] == "temp-sensor")
    assert row["device"] == f"{SENSOR_EUI} → {sensor_address} port 5683" and row["reachable"]
    assert row["last_contact"]
    # Write and Execute reach the device
    await srv.command(f"write {tid} /3311/0/5850 1", r"Value written successfully", timeout=15)
    await until(lambda: any(r["method"] == "PUT" and r["payload"] == "true" for r in temp.requests()), 10,
                what="the PUT on the sensor")
    await srv.command(f"execute {tid} /3/0/4 null", r"Command executed successfully", timeout=15)
    await until(lambda: any(r["method"] == "POST" and r["path"] == "/reboot" for r in temp.requests()), 10,
                what="the POST on the sensor")

    # Observe: the gateway observes the sensor; a new value is notified upstream
    await srv.command(f"observe {tid} 3303 0 5700", r"Observer stablished", timeout=15)
    await until(lambda: any(r["observe"] == 0 for r in temp.requests()), 10, what="an observation on the device")
    temp.send("temp 25.5")
    await srv.wait_for(r"Got new value: 25\.5", timeout=15)
    shown = ctl(gw, "lwm2m", "show", "temp-sensor")
    value = next(v for v in shown["values"] if v["path"] == "/3303/0/5700")
    assert value["value"] == 25.5 and value["watch"] == "observing" and shown["reachable"] is True

    # SIGHUP adds devices live; the others keep their registration
    ml = ipaddress.IPv6Network(state["mesh_local_prefix"])
    hole = str(ml.network_address + 0xDEAD)
    gw.write_config(topo.lwm2m_toml(TEMP + polled(lamp_address) + silent(hole)))
    gw.signal(signal.SIGHUP)
    for ep in ("poll-sensor", "silent-sensor"):
        await srv.wait_for(rf"Endpoint name: {ep}\s", timeout=30)
    assert len(re.findall(r"Endpoint name: temp-sensor\s", srv.output)) == 1
    ids = await srv.device_ids()

    # a device that cannot observe is polled: notifications at pmax, and changes arrive
    pid = ids["poll-sensor"]
    await srv.command(f"writeAttr {pid} 3303 0 5700 pmax=2", r"Attributes wrote", timeout=15)
    mark = len(srv.output)
    await srv.command(f"observe {pid} 3303 0 5700", r"Observer stablished", timeout=15)
    await srv.wait_for(r"Got new value: 21\.5[\s\S]*Got new value: 21\.5", timeout=10, start=mark)
    poll.send("temp 30.25")
    await srv.wait_for(r"Got new value: 30\.25", timeout=10, start=mark)
    assert not any(r["observe"] == 0 for r in poll.requests())

    # a silent device: a bounded error, and it shows as unreachable
    sid = ids["silent-sensor"]
    started = time.monotonic()
    await srv.command(f"read {sid} /3303/0/5700", r"Error code recieved from the client: 5\.03", timeout=15)
    assert time.monotonic() - started < 8
    silent_row = next(r for r in ctl(gw, "lwm2m", "clients") if r["endpoint"] == "silent-sensor")
    assert silent_row["reachable"] is False
    m = await srv.command(f"read {sid} /4/0/3", r"Value: (.*)", timeout=15)
    assert m.group(1).strip() == "0", "Link Quality 0 while the device is unreachable"

    # Thread nodes: one joins and gets a client, one leaves and is deregistered after the absence timeout
    topo.sim("node_add", name="newbie", eui64="00112233445566aa")
    await srv.wait_for(r"Endpoint name: thread-00112233445566aa\s", timeout=20)
    topo.sim("node_remove", name="lamp")
    await srv.wait_for(rf"Device unregistration:[\s\S]*name: 'thread-{LAMP_EUI}'", timeout=20)
    assert f"thread-{LAMP_EUI}" not in {r["endpoint"] for r in ctl(gw, "lwm2m", "clients")}

    gw.signal(signal.SIGTERM)
    assert await asyncio.to_thread(gw.proc.wait, 20) == 0
