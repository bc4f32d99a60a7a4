"""The demo's bring-up (devtools.demo.Demo.start, the code `scripts/demo.sh` runs), every line it prints
checked against the system itself, and its clean-up when bring-up fails half way."""

from __future__ import annotations

import ipaddress
import shlex
import subprocess
from pathlib import Path

import pytest

from devtools.demo import JOINER_NAME, LWM2M_PORT, NODES, PSKD, READ_PATH, SERVER_NAME, Demo, DemoError
from devtools.testbed import INET4, INET6, NAT64_PREFIX
from tests.conftest import namespaces

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(180), pytest.mark.usefixtures("node_peers")]
SENSOR_ENDPOINTS = sorted(ep for _, ep, _ in NODES.values() if ep)


def assert_cleaned_up(demo: Demo) -> None:
    assert not set(demo.bed.namespaces) & namespaces(), "every namespace the demo made is gone"
    assert not any((Path("/etc/netns") / ns).exists() for ns in demo.bed.namespaces)
    assert demo.daemon is None or demo.daemon.poll() is not None, "gatewayd stopped"
    assert all(p.poll() is not None for p in demo.bed.procs), "every peer program stopped"
    assert demo.server is None or demo.server.proc is None, "the LwM2M server stopped"


@pytest.fixture
async def demo(tmp_path: Path):
    d = Demo(tmp_path)
    try:
        yield d
    finally:
        await d.close()
    assert_cleaned_up(d)


async def test_what_the_demo_shows_is_true(demo: Demo) -> None:
    s = await demo.start()
    bed = demo.bed

    # Thread: the daemon leads the network the nodes attached to
    state = demo.ctl("state")
    assert (s.role, s.channel, s.network_name) == ("leader", 15, state["network_name"])
    sim_nodes = {n["name"]: n["eui64"] for n in bed.sim("state")["nodes"]}
    assert sorted([*s.children, sim_nodes[JOINER_NAME]]) == sorted(c["extaddr"] for c in demo.ctl("child table"))
    assert len(s.children) == len(NODES) == len(sim_nodes) - 1  # and the commissioned one

    # Commissioning: the new device joined with the PSKd, a wrong one was refused, and the PSKd stays secret
    assert (s.commissioned, s.commissioned_attached, s.wrong_pskd_refused) == (JOINER_NAME, True, True)
    assert [(r["joiner"], r["pskd"]) for r in demo.ctl("joiner list")] == [("*", "********")]
    assert PSKD not in demo.log.read_text()

    # OMR prefix: published, on the border router's wpan0 and on every node
    omr = ipaddress.IPv6Network(s.omr_prefix)
    assert s.omr_prefix == state["omr_prefix"]
    assert any(ipaddress.IPv6Address(a) in omr for a in bed.addresses(bed.br, "wpan0"))
    _, nodes = bed.attached()
    assert all(any(ipaddress.IPv6Address(a) in omr for a in n["addresses"]) for n in nodes.values())
    assert s.lan_reaches_mesh

    # DNS64 gives the IPv4-only server's address in the NAT64 prefix
    # the DNS64 address is routed to the host, outside every prefix the (DNS-SD serving) NCP owns
    assert ipaddress.IPv6Address(s.dns64_server) not in omr and s.dns64_server in bed.addresses(bed.br, "wpan0")
    assert s.dns64_server == demo.ctl("state")["dns64_address"]
    assert s.resolved == [INET6] and ipaddress.IPv6Address(INET6) in ipaddress.IPv6Network(NAT64_PREFIX)
    # NAT64 carries a mesh node's traffic to it
    assert s.udp_echoed == (3, 3) and s.ping_through_nat64

    # LwM2M: the daemon resolved the server's name through DNS64 and registered through NAT64
    assert s.registrations_via_nat64
    assert any(m["remote"] == f"{INET4}:{LWM2M_PORT}" for m in demo.ctl("nat64", "mappings"))
    want = SENSOR_ENDPOINTS + sorted(f"thread-{eui}" for eui, _, _ in NODES.values())
    assert s.upstream_clients == sorted(want)
    # the commissioned device, once attached, is presented like every other Thread node
    assert s.commissioned_endpoint.startswith("thread-")
    rows = {r["endpoint"]: r for r in demo.ctl("lwm2m", "clients")}
    assert set(rows) == {*want, s.commissioned_endpoint}
    assert all(r["state"] == "registered" and r["server"] == f"coap://{SERVER_NAME}:{LWM2M_PORT}"
               for r in rows.values())

    # Read: the value each sensor program holds, fetched from the device through the gateway
    assert s.reads == {ep: args[args.index("--temp") + 1] for _, ep, args in NODES.values() if ep}
    polled = demo.sensors["polled-sensor"]
    assert any(r["method"] == "GET" and r["path"] == "/sensors/temp" for r in polled.requests())
    polled.send("temp 30.5")  # the sensor cannot be observed and says Max-Age 0: every Read asks it
    assert demo.server is not None
    assert await demo.server.read("polled-sensor", READ_PATH) == "30.5"

    # what is printed says the same, and the printed command works against the daemon
    text = "\n".join(s.lines())
    assert "FAILED" not in text
    for fact in (s.omr_prefix, s.dns64_server, INET6, "3/3", *want, "= 22.5"):
        assert fact in text
    status = subprocess.run(shlex.split(s.gatewayctl), capture_output=True, text=True, timeout=15)
    assert status.returncode == 0 and "leader" in status.stdout, status.stderr


async def test_a_failure_half_way_cleans_up_everything(tmp_path: Path) -> None:
    def progress(text: str) -> None:
        if "LwM2M clients" in text:
            raise DemoError("injected failure")

    demo = Demo(tmp_path, progress=progress)
    try:
        with pytest.raises(DemoError, match="injected"):
            await demo.start()
        assert demo.daemon is not None and demo.daemon.poll() is None, "it failed with everything running"
        assert set(demo.bed.namespaces) <= namespaces()
    finally:
        await demo.close()
    assert_cleaned_up(demo)
