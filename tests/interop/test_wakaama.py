"""gatewayd's LwM2M clients against Eclipse Wakaama's real ``lwm2mserver`` and ``bootstrap_server``.

gatewayd runs as users run it (``python -m gatewayd -c FILE``, no NCP attached); Wakaama is driven
through its command line (tests/interop/wakaama.py). Skipped unless GATEWAYD_INTEROP_DIR names a
directory holding the Wakaama binaries. What Wakaama sent in these scenarios is kept in
tests/lwm2m/data/wakaama.txt, which tests/lwm2m/test_wakaama_replay.py replays without Wakaama.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.testbed.sensors import SensorProcess
from devtools.testbed.topology import NODES
from tests.conftest import PYTHON, ROOT, DaemonProcess
from tests.interop.wakaama import (
    MANUFACTURER,
    BootstrapServer,
    LwM2MServer,
    bootstrap_ini,
    free_udp_port,
    gatewayd_toml,
    lwm2m_toml,
)

pytestmark = pytest.mark.timeout(90)
EP = "gw-wakaama"


@pytest.fixture
def gatewayd(daemon) -> Callable[..., DaemonProcess]:
    """Start gatewayd registering its own client with a server: gatewayd(uri, version=, bootstrap=, extra=)."""
    def start(server_uri: str, **options) -> DaemonProcess:
        return daemon(gatewayd_toml(server_uri, endpoint=EP, **options))
    return start


def senml(result) -> dict[str, object]:
    """SenML JSON records of a result as {name: value}, names resolved against the base name."""
    assert result.content_type == "application/senml+json", result
    out: dict[str, object] = {}
    base = ""
    for record in json.loads(result.body):
        base = record.get("bn", base)
        out[base + record.get("n", "")] = next(record[k] for k in ("v", "vs", "vb", "vd", "vlo") if k in record)
    return out


def clients(gw: DaemonProcess) -> dict[str, dict]:
    return {row["endpoint"]: row for row in json.loads(gw.ctl("--json", "lwm2m", "clients").stdout)}


def test_gateway_registers_and_wakaama_reads_writes_executes_discovers(lwm2mserver, gatewayd) -> None:
    server = lwm2mserver
    gw = gatewayd(server.uri)
    c = server.client_id(EP)
    reg = server.registration(c)
    assert reg["version"] == '"1.1"' and reg["lifetime"] == "120 sec"
    assert {"/1/0", "/3/0", "/4/0"} <= set(reg["objects"].replace(",", " ").split())
    row = clients(gw)[EP]
    assert row["state"] == "registered" and row["server"] == server.uri and row["location"].startswith("/rd/")

    device = senml(server.request(f"read {c} /3/0"))
    assert device["/3/0/0"] == MANUFACTURER and device["/3/0/13"] > 1_700_000_000
    assert senml(server.request(f"read {c} /3/0/0")) == {"/3/0/0": MANUFACTURER}
    missing = server.request(f"read {c} /3/0/99")
    assert (missing.code, missing.data) == ("4.04", b"/3/0/99 is not defined")

    # Write (text/plain from Wakaama) and read back
    assert server.request(f"write {c} /3/0/14 +02").code == "2.04"
    assert senml(server.request(f"read {c} /3/0/14")) == {"/3/0/14": "+02"}
    # the lifetime: the client sends an Update with the new one
    mark = server.mark
    assert server.request(f"write {c} /1/0/1 90").code == "2.04"
    server.wait_for(rf"^Client #{c} updated\.", 10, mark)
    assert server.registration(c)["lifetime"] == "90 sec"
    # Execute Registration Update Trigger: another Update
    mark = server.mark
    assert server.request(f"exec {c} /1/0/8").code == "2.04"
    server.wait_for(rf"^Client #{c} updated\.", 10, mark)

    disc = server.request(f"disc {c} /3/0")
    assert disc.code == "2.05" and disc.content_type == "application/link-format"
    assert {"</3/0>", "</3/0/0>", "</3/0/13>", "</3/0/14>"} <= set(disc.body.split(","))
    assert clients(gw)[EP]["state"] == "registered"


def test_observe_notifies_as_the_value_changes_until_cancelled(lwm2mserver, gatewayd) -> None:
    server = lwm2mserver
    gw = gatewayd(server.uri)
    c = server.client_id(EP)
    start = server.mark
    server.command(f"observe {c} /3/0/13")  # the current time: changes every second
    values = []
    for _ in range(3):
        note = server.result(c, "/3/0/13", 10, start, notification=True)
        values.append(senml(note)["/3/0/13"])
        start = server.wait_for(rf"^Notify from client #{c} /3/0/13 number {note.number}\n", 1, start).end()
    assert values == sorted(values) and len(set(values)) == 3
    rows = json.loads(gw.ctl("--json", "lwm2m", "observations").stdout)
    assert [(r["endpoint"], r["paths"]) for r in rows] == [(EP, "/3/0/13")]

    cancelled = server.request(f"cancel {c} /3/0/13")
    assert cancelled.code == "0.00"  # Wakaama's "no error": the GET with Observe 1 was answered...
    assert cancelled.content_type == "text/plain" and int(cancelled.data) >= values[-1]  # ...without Accept
    after = server.mark
    time.sleep(2.5)
    assert f"Notify from client #{c}" not in server.output[after:], "notifications stop after cancel"
    assert json.loads(gw.ctl("--json", "lwm2m", "observations").stdout) == []


def test_lwm2m_1_0_registration_is_read_in_tlv(lwm2mserver, gatewayd) -> None:
    server = lwm2mserver
    gatewayd(server.uri, version="1.0")
    c = server.client_id(EP)
    assert server.registration(c)["version"] == '"1.0"'
    result = server.request(f"read {c} /3/0")
    assert result.code == "2.05" and result.content_type == "application/vnd.oma.lwm2m+tlv"
    assert MANUFACTURER in result.body and "ID: 13 type: Resource Value" in result.body
    assert server.request(f"write {c} /3/0/14 -05").code == "2.04"
    result = server.request(f"read {c} /3/0/14")
    assert result.content_type == "application/vnd.oma.lwm2m+tlv" and "-05" in result.body


def test_gatewayd_deregisters_when_it_stops(lwm2mserver, gatewayd) -> None:
    server = lwm2mserver
    gw = gatewayd(server.uri)
    c = server.client_id(EP)
    mark = server.mark
    assert gw.stop() == 0
    server.wait_for(rf"^Client #{c} unregistered\.", 5, mark)
    assert server.listing() == "No client."


def test_bootstrap_server_provisions_the_gateway(lwm2mserver, gatewayd, tmp_path: Path) -> None:
    server = lwm2mserver
    ini = tmp_path / "bootstrap.ini"
    ini.write_text(bootstrap_ini(EP, server.uri, lifetime=100))
    bs = BootstrapServer(free_udp_port(), ini)
    try:
        gw = gatewayd(bs.uri, bootstrap=True)
        bs.wait_for(rf'Bootstrap request from "{EP}"', 20)
        bs.wait_for(r"Sending BOOTSTRAP FINISH", 10)
        c = server.client_id(EP)
        assert server.registration(c)["lifetime"] == "100 sec", "the lifetime the Bootstrap-Server wrote"
        row = clients(gw)[EP]
        assert row["state"] == "registered" and row["server"] == server.uri
        assert senml(server.request(f"read {c} /1/1/1")) == {"/1/1/1": 100}
    finally:
        bs.stop()


@pytest.fixture
def coap_device() -> Iterator[tuple[int, SensorProcess]]:
    """A plain CoAP device on loopback (devtools.testbed.sensors run as a program)."""
    port = free_udp_port()
    proc = subprocess.Popen([PYTHON, "-m", "devtools.testbed.sensors", "127.0.0.1", str(port), "--max-age", "0"],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        yield port, SensorProcess(proc)
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def test_a_proxied_coap_device_is_a_client_of_its_own(lwm2mserver, gatewayd, coap_device) -> None:
    port, sensor = coap_device
    server = lwm2mserver
    device = ('[[lwm2m.device]]\nendpoint = "wk-sensor"\naddress = "::ffff:127.0.0.1"\n'
              f'port = {port}\ntimeout = 2\n[lwm2m.device.resources]\n'
              '"/3303/0/5700" = { get = "/sensors/temp", type = "float" }\n'
              '"/3311/0/5850" = { get = "/actuators/led", put = "/actuators/led" }\n')
    gw = gatewayd(server.uri, extra=device)
    d = server.client_id("wk-sensor")
    assert "/3303/0" in server.registration(d)["objects"]
    assert senml(server.request(f"read {d} /3303/0/5700")) == {"/3303/0/5700": 21.5}
    sensor.send("temp 23.25")
    time.sleep(0.3)
    assert senml(server.request(f"read {d} /3303/0/5700")) == {"/3303/0/5700": 23.25}
    assert server.request(f"write {d} /3311/0/5850 1").code == "2.04"
    assert any(r["method"] == "PUT" and r["payload"] == "true" for r in sensor.requests())
    assert clients(gw)["wk-sensor"]["adapter"] == "coap"


@pytest.mark.root
def test_thread_nodes_are_clients_of_their_own(tmp_path: Path) -> None:
    """[lwm2m.thread_devices] with the simulated NCP (gatewayd and lwm2mserver in the testbed's br namespace)."""
    from tests.thread.conftest import Topology

    topo = Topology(tmp_path)
    try:
        topo.setup()
        # IPv6: with only loopback IPv4 in the namespace, 127.0.0.1 does not resolve for aiocoap (AI_ADDRCONFIG)
        server = LwM2MServer(free_udp_port(), netns=topo.br, ipv6=True)
        try:
            gw = topo.start_daemon("[nat64]\nenabled = false\n[dns64]\nenabled = false\n" + lwm2m_toml(
                server.uri, endpoint=EP, extra="[lwm2m.thread_devices]\nenabled = true\npoll_interval = 1\n"))
            ids = {eui: server.client_id(f"thread-{eui}", timeout=60) for eui in NODES.values()}
            for eui, n in ids.items():
                device = senml(server.request(f"read {n} /3/0"))
                assert device["/3/0/2"] == eui, "the serial number is the node's EUI-64"
                connectivity = senml(server.request(f"read {n} /4/0"))
                assert 0 <= connectivity["/4/0/3"] <= 3, "Thread link quality"
            rows = clients(gw)
            assert all(rows[f"thread-{eui}"]["adapter"] == "thread" for eui in NODES.values())
            server.client_id(EP, start=0)  # the gateway itself too
        finally:
            server.stop()
    finally:
        topo.close()


def test_gateway_mode_one_registration_with_object_25(lwm2mserver, daemon, coap_device) -> None:
    """proxy_mode = "gateway": Wakaama sees the gateway alone, with one /25 instance per device behind it,
    reads /25 (Device ID, Prefix, IoT Device Objects), and hears of devices coming and going by Update.
    Wakaama cannot send a prefixed path (its URIs are numeric): tests/lwm2m/proxy/test_gateway_mode.py
    routes /dev0/... with the in-tree server."""
    port, _sensor = coap_device
    server = lwm2mserver

    def device(ep: str) -> str:
        return (f'[[lwm2m.device]]\nendpoint = "{ep}"\naddress = "::ffff:127.0.0.1"\nport = {port}\ntimeout = 2\n'
                'resources = { "/3303/0/5700" = { get = "/sensors/temp", type = "float" } }\n')

    toml = gatewayd_toml(server.uri, endpoint=EP, extra=device("wk-a") + device("wk-b"))
    gw = daemon(toml.replace("[lwm2m]\n", '[lwm2m]\nproxy_mode = "gateway"\n', 1))
    c = server.client_id(EP)
    deadline = time.monotonic() + 10
    while "/25/1" not in server.registration(c)["objects"] and time.monotonic() < deadline:
        time.sleep(0.2)
    objects = server.registration(c)["objects"]
    assert "/25/0" in objects and "/25/1" in objects and "/3303" not in objects
    assert 'name: "wk-a"' not in server.listing() and 'name: "wk-b"' not in server.listing()
    table = senml(server.request(f"read {c} /25"))
    assert {table["/25/0/0"], table["/25/1/0"]} == {"wk-a", "wk-b"}
    assert {table["/25/0/1"], table["/25/1/1"]} == {"dev0", "dev1"}
    assert "</3303/0>" in str(table["/25/0/3"]).split(",")
    assert senml(server.request(f"read {c} /25/0/1")) == {"/25/0/1": table["/25/0/1"]}
    rows = clients(gw)
    assert rows[EP]["mode"] == "gateway" and rows["wk-a"]["mode"] == "gateway" and rows["wk-a"]["gateway"] == EP

    # a device leaves (reload): an Update without its /25 instance
    mark = server.mark
    gw.write_config(toml.replace("[lwm2m]\n", '[lwm2m]\nproxy_mode = "gateway"\n', 1).replace(device("wk-b"), ""))
    gw.signal(signal.SIGHUP)
    server.wait_for(rf"^Client #{c} updated\.", 15, mark)
    deadline = time.monotonic() + 10
    while "/25/1" in server.registration(c)["objects"] and time.monotonic() < deadline:
        time.sleep(0.2)
    gone = "/25/1" if table["/25/1/0"] == "wk-b" else "/25/0"
    assert gone not in server.registration(c)["objects"]


def test_wakaama_updates_the_ncp_firmware(lwm2mserver, daemon, tmp_path: Path) -> None:
    """Wakaama writes the Package URI and executes Update; the simulated Chili2 (EVBME DFU over the
    Cascoda link) restarts into the image and /3/0/3 reports its version. Wakaama's CLI writes text, so
    the pushed Package (opaque, block-wise) is tested with the in-tree server
    (tests/lwm2m/test_firmware_update.py)."""
    import http.server
    import os
    import pty
    import struct
    import threading
    import tty

    version = "OPENTHREAD/5a5a5a5; CASCODA; Dec  3 2026"
    body = struct.pack("<II", 0x20008000, 0x101) + version.encode() + b"\0"
    package = body + bytes(i & 0xFF for i in range(6000))

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(package)

        def log_message(self, *args) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    master, slave = pty.openpty()
    tty.setraw(master)
    sim = subprocess.Popen([PYTHON, "-m", "ncp.sim", "--link", "cascoda", "--firmware", str(tmp_path / "fw.json"),
                            "--log", str(tmp_path / "sim.log"), "--mle-interval", "0", "--leader-delay", "0.2"],
                           stdin=master, stdout=master, cwd=ROOT, start_new_session=True)
    os.close(master)
    try:
        server = lwm2mserver
        toml = gatewayd_toml(server.uri, endpoint=EP).replace(
            "spinel+hdlc+uart:///dev/null-no-ncp?baudrate=115200", f"cascoda+uart://{os.ttyname(slave)}")
        daemon(toml)
        c = server.client_id(EP)
        assert "/5/0" in server.registration(c)["objects"]
        deadline = time.monotonic() + 15
        while "SIMULATION" not in str(senml(server.request(f"read {c} /3/0/3")).get("/3/0/3")):
            assert time.monotonic() < deadline, "the NCP version never showed in /3/0/3"
            time.sleep(0.5)
        uri = f"http://127.0.0.1:{web.server_address[1]}/ncp.bin"
        assert server.request(f"write {c} /5/0/1 {uri}").code == "2.04"
        deadline = time.monotonic() + 15
        while senml(server.request(f"read {c} /5/0/3"))["/5/0/3"] != 2:
            assert time.monotonic() < deadline, "the package was not downloaded"
            time.sleep(0.3)
        assert server.request(f"exec {c} /5/0/2").code == "2.04"
        deadline = time.monotonic() + 30
        while senml(server.request(f"read {c} /5/0/5"))["/5/0/5"] != 1:
            assert time.monotonic() < deadline, "the update did not succeed"
            time.sleep(0.5)
        assert senml(server.request(f"read {c} /5/0/3"))["/5/0/3"] == 0
        assert senml(server.request(f"read {c} /3/0/3"))["/3/0/3"] == version
    finally:
        web.shutdown()
        web.server_close()
        sim.kill()
        sim.wait(5)
        os.close(slave)
