"""``scripts/demo.sh``: the whole border router on one machine, with no radio.

Builds the testbed (:mod:`devtools.testbed`): a simulated NCP and a mesh of three Thread nodes (two
plain CoAP sensors on MTDs, one observable and one not, and an FTD that only routes), gatewayd in its own
namespace, a LAN host, and an IPv4-only "Internet" with an authoritative DNS server for example.test
and an LwM2M server (npm lwm2m-node-lib) at lwm2m.example.test. :meth:`Demo.start` brings it all up
and returns a :class:`Summary` of what a user wants to see (the end-to-end test asserts on the same
object); the demo prints it and stays up so gatewayctl works against the daemon until Ctrl-C. Every
namespace, interface and process is removed on exit, on SIGINT, SIGTERM and SIGHUP and on failure,
also when the reader of its output went away first (``./scripts/demo.sh | tee demo.log`` and Ctrl-C,
which ends tee too): messages then go to stderr or nowhere, never cutting the clean-up short. Every
process it starts dies with it even if it is killed (:func:`devtools.die_with_parent`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import die_with_parent
from devtools.testbed import DNS_ZONE, INET4, UDP_PORT, Testbed, nat64_toml
from devtools.testbed.lwm2m_server import NodeServer, node_server_available
from devtools.testbed.sensors import SensorProcess

SERVER_NAME = f"lwm2m.{DNS_ZONE}"
LWM2M_PORT = 5684
# name: (EUI-64, LwM2M endpoint of its CoAP sensor, sensor program arguments); "relay" runs no sensor.
# The sensors are MTDs (they register their addresses with the NCP), the relay an FTD.
PSKD = "J01NME"  # the seed's joiner credential
JOINER_NAME = "doorbell"
NODES = {
    "thermo": ("00124b0000000001", "temp-sensor", ("--temp", "22.5")),
    "meter": ("00124b0000000002", "polled-sensor", ("--temp", "19.25", "--no-observe", "--max-age", "0")),
    "relay": ("00124b0000000003", "", ()),
}
READ_PATH = "/3303/0/5700"  # Temperature Sensor Value

DEMO_TOML = """\
[daemon]
state_dir = "{work}/state"

[control]
socket = "{work}/control.sock"

[log]
target = "stderr"

"""
# The daemon resolves the server's name itself: its namespace's resolv.conf points at DNS64 on ::1,
# so the registrations go to the synthesized address and through NAT64 like the mesh's own traffic.
LWM2M_TOML = f"""\
listen = ["::1"]
allowed = ["::1/128"]
[lwm2m]
enabled = true
lwm2m_version = "1.0"
retry_max_backoff = 5
[lwm2m.server]
uri = "coap://{SERVER_NAME}:{LWM2M_PORT}"
lifetime = 120
[lwm2m.gateway]
enabled = false
[lwm2m.thread_devices]
enabled = true
"""
DEVICE_TOML = {
    "temp-sensor": 'resources = {{ "{p}" = {{ get = "/sensors/temp", type = "float" }}, '
                   '"/3311/0/5850" = {{ get = "/actuators/led", put = "/actuators/led" }} }}',
    "polled-sensor": 'resources = {{ "{p}" = {{ get = "/sensors/temp", type = "float", observe = false }} }}',
}


@dataclass
class Summary:
    """What the demo shows once everything is up."""

    network_name: str = ""
    role: str = ""
    channel: int = 0
    children: list[str] = field(default_factory=list)  # extended addresses, from gatewayctl child table
    omr_prefix: str = ""
    lan_reaches_mesh: bool = False
    dns64_server: str = ""  # where mesh devices ask: gatewayd's DNS64 address, routed to the host
    resolved: list[str] = field(default_factory=list)  # SERVER_NAME's AAAA, as a mesh device got it
    udp_echoed: tuple[int, int] = (0, 0)  # (echoed, sent) to the server's address through NAT64
    ping_through_nat64: bool = False
    registrations_via_nat64: bool = False  # the daemon's own resolution of SERVER_NAME went through DNS64
    upstream_clients: list[str] = field(default_factory=list)  # endpoints the LwM2M server lists
    reads: dict[str, str] = field(default_factory=dict)  # endpoint → READ_PATH's value read upstream
    # a device commissioned with `joiner start PSKD` after `gatewayctl joiner add * PSKD`: its name, whether it
    # joined and attached, whether the same device with a wrong PSKd was refused
    commissioned: str = ""
    commissioned_attached: bool = False
    commissioned_endpoint: str = ""  # its virtual LwM2M client, once the server lists it
    wrong_pskd_refused: bool = False
    gatewayctl: str = ""  # the command that talks to the daemon

    def lines(self) -> list[str]:
        echoed, sent = self.udp_echoed
        return [
            f"Thread      {self.role} of {self.network_name} on channel {self.channel}, "
            f"{len(self.children)} children: {', '.join(self.children)}",
            f"OMR prefix  {self.omr_prefix} (LAN host reaches the mesh: {ok(self.lan_reaches_mesh)})",
            f"DNS64       a mesh node asks {self.dns64_server}: {SERVER_NAME} AAAA → {', '.join(self.resolved)}",
            f"NAT64       UDP echo {self.resolved[0] if self.resolved else '?'} → {INET4}:{UDP_PORT}: "
            f"{echoed}/{sent}, ping {ok(self.ping_through_nat64)}",
            f"LwM2M       server {SERVER_NAME} (via DNS64/NAT64: {ok(self.registrations_via_nat64)}) lists "
            f"{len(self.upstream_clients)} clients: {', '.join(self.upstream_clients)}",
            "Read        " + ", ".join(f"{ep} {READ_PATH} = {v}" for ep, v in self.reads.items())
            + " (by the server, through the gateway)",
            f"Commission  `gatewayctl joiner add * {PSKD}`, then `joiner start {PSKD}` on {self.commissioned}: "
            f"attached {ok(self.commissioned_attached)}, registered as {self.commissioned_endpoint or 'FAILED'}; "
            f"a wrong PSKd refused {ok(self.wrong_pskd_refused)}",
        ]


def ok(flag: bool) -> str:
    return "ok" if flag else "FAILED"


class DemoError(RuntimeError):
    """Bring-up failed; the message says what did not happen and where the logs are."""


class Demo:
    """The demo's topology and gatewayd. ``async with Demo(work) as demo: summary = await demo.start()``."""

    def __init__(self, work: Path, progress: Callable[[str], None] = lambda _text: None):
        self.work = work
        self.progress = progress
        self.bed = Testbed(work, nodes={name: eui for name, (eui, _, _) in NODES.items()}, internet=True,
                           mtd={name for name, (_, endpoint, _) in NODES.items() if endpoint},
                           dnssd_server=True,  # as OpenThread border-router NCP firmware runs it
                           mle_interval=32.0)  # MLE advertisements at OpenThread's trickle maximum
        self.socket = work / "control.sock"
        self.log = work / "gatewayd.log"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.server: NodeServer | None = None
        self.sensors: dict[str, SensorProcess] = {}
        self.gatewayctl = Path(sys.executable).with_name("gatewayctl")

    async def __aenter__(self) -> Demo:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- helpers -------------------------------------------------------------------------------
    def ctl(self, *words: str) -> Any:
        out = subprocess.run([str(self.gatewayctl), "-s", str(self.socket), "--json", *words],
                             capture_output=True, text=True, timeout=15)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return json.loads(out.stdout)

    async def wait(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon is not None and self.daemon.poll() is not None:
                raise DemoError(f"gatewayd exited ({self.daemon.returncode}); see {self.log}")
            try:
                value = await asyncio.to_thread(check)
            except (RuntimeError, ValueError, OSError, KeyError, subprocess.SubprocessError):
                value = None
            if value:
                return value
            await asyncio.sleep(0.3)
        raise DemoError(f"timed out waiting for {what}; see {self.log}")

    async def run(self, ns: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.bed.run, ns, *cmd, check=False, timeout=timeout)

    # ---- bring-up ------------------------------------------------------------------------------
    async def start(self) -> Summary:
        if (why := node_server_available()) is not None:
            raise DemoError(why)
        s = Summary(gatewayctl=f"{self.gatewayctl} -s {self.socket} status")
        self.progress("creating namespaces: mesh (simulated NCP, 3 Thread nodes), border router, LAN host, "
                      "IPv4-only Internet")
        # Steps that create namespaces or processes run on the loop's thread, so a signal cancels the
        # bring-up between them and close() never races one half done.
        self.bed.setup()
        assert self.bed.inet is not None
        self.progress(f"Internet {INET4}: DNS for {DNS_ZONE}, UDP echo, LwM2M server {SERVER_NAME}:{LWM2M_PORT}")
        self.server = NodeServer(LWM2M_PORT, self.bed.inet)
        await self.server.start()
        self.start_daemon()

        state = await self.wait("the Thread network to form",
                                lambda: (st := self.ctl("state"))["role"] == "leader" and st["omr_prefix"] and st)
        s.network_name, s.role, s.channel, s.omr_prefix = (state["network_name"], state["role"], state["channel"],
                                                           state["omr_prefix"])
        self.progress(f"Thread network {s.network_name} formed on channel {s.channel}; waiting for the nodes")
        await self.wait("the Thread nodes to attach", self.bed.attached)
        children = await self.wait("the child table", lambda: len(c := self.ctl("child table")) == len(NODES) and c)
        s.children = [c["extaddr"] for c in children]
        for name, (eui, endpoint, args) in NODES.items():
            if endpoint:
                # the gateway reaches an MTD at the routable address it registered
                address = await self.wait(f"{name}'s OMR address", lambda eui=eui: self.bed.routable_address(eui))
                self.sensors[endpoint] = self.bed.sensor(address, *args)
        self.progress("CoAP sensors running on " + ", ".join(n for n, (_, ep, _) in NODES.items() if ep))

        await self.check_lan(s)
        await self.check_dns64_nat64(s)
        await self.check_lwm2m(s)
        await self.check_commissioning(s)
        return s

    def start_daemon(self) -> None:
        self.bed.resolver(self.bed.br, "::1")
        devices = "".join(f'[[lwm2m.device]]\nendpoint = "{ep}"\neui64 = "{eui}"\n'
                          + DEVICE_TOML[ep].format(p=READ_PATH) + "\n"
                          for eui, ep, _ in NODES.values() if ep)
        config = self.work / "gatewayd.toml"
        config.write_text(DEMO_TOML.format(work=self.work)
                          + self.bed.config(nat64_toml() + LWM2M_TOML + devices))
        config.chmod(0o600)
        self.progress(f"starting gatewayd in namespace {self.bed.br} (log: {self.log})")
        with open(self.log, "wb") as log:
            self.daemon = subprocess.Popen(
                ["ip", "netns", "exec", self.bed.br, sys.executable, "-m", "gatewayd", "-c", str(config)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent(),
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def check_lan(self, s: Summary) -> None:
        prefix = s.omr_prefix.split("::/")[0] + ":"
        node = await self.wait("a node address in the OMR prefix", lambda: next(
            (a for a in self.bed.addresses(self.bed.mesh, "mesh0") if a.startswith(prefix)), None))
        await self.wait("the LAN host to learn the mesh route",
                        lambda: s.omr_prefix in self.bed.run(self.bed.lan, "ip", "-6", "route").stdout)
        ping = await self.run(self.bed.lan, "ping", "-c", "1", "-W", "2", node)
        s.lan_reaches_mesh = ping.returncode == 0

    async def check_dns64_nat64(self, s: Summary) -> None:
        # Not an address the NCP owns: its DNS-SD server would answer port 53 there (docs/nat64.md).
        s.dns64_server = self.ctl("state")["dns64_address"]
        await self.wait(f"DNS64 answering on {s.dns64_server}", lambda: any(
            s.dns64_server in x for x in self.ctl("status")["components"]["dns64"].get("listen", [])))
        self.progress(f"a mesh node resolves {SERVER_NAME} through DNS64 and reaches it through NAT64")
        answer = await asyncio.to_thread(self.bed.node, "devtools.testbed.dns_peer", "resolve", s.dns64_server,
                                         SERVER_NAME, "AAAA")
        s.resolved = answer["answers"]
        if not s.resolved:
            raise DemoError(f"DNS64 did not synthesize an address for {SERVER_NAME}: {answer}")
        echo = await asyncio.to_thread(self.bed.node, "devtools.testbed.nat64_peer", "udp-client", s.resolved[0],
                                       str(UDP_PORT), "3")
        s.udp_echoed = (echo["echoed"], echo["sent"])
        s.ping_through_nat64 = await asyncio.to_thread(self.bed.ping, s.resolved[0], 2)

    async def check_lwm2m(self, s: Summary) -> None:
        assert self.server is not None
        expected = [ep for _, ep, _ in NODES.values() if ep] + [f"thread-{eui}" for eui, _, _ in NODES.values()]
        self.progress(f"waiting for {len(expected)} LwM2M clients to register with {SERVER_NAME}")
        for ep in expected:
            try:
                await self.server.wait_for(rf"Endpoint name: {re.escape(ep)}\s", timeout=60)
            except AssertionError:
                raise DemoError(f"{ep} did not register with the LwM2M server; see {self.log}") from None
        ids = await self.server.device_ids()
        s.upstream_clients = sorted(ids)
        s.registrations_via_nat64 = any(m.get("remote") == f"{INET4}:{LWM2M_PORT}"
                                        for m in self.ctl("nat64", "mappings"))
        for ep in (ep for _, ep, _ in NODES.values() if ep):
            try:
                s.reads[ep] = await self.server.read(ep, READ_PATH)
            except (AssertionError, KeyError):
                raise DemoError(f"the LwM2M server could not read {ep} {READ_PATH}; see {self.log}") from None

    async def check_commissioning(self, s: Summary) -> None:
        """A new device joins with a PSKd instead of the dataset (the simulator's joiner: no DTLS)."""
        self.progress(f"commissioning {JOINER_NAME} with the PSKd {PSKD}")
        self.ctl("joiner", "add", "*", PSKD)
        wrong = await asyncio.to_thread(self.bed.sim, "joiner_start", name=JOINER_NAME, pskd="WR0NG1")
        s.wrong_pskd_refused = wrong.get("error") == "Security"
        joined = await asyncio.to_thread(self.bed.sim, "joiner_start", name=JOINER_NAME, pskd=PSKD)
        if not joined.get("joined"):
            raise DemoError(f"{JOINER_NAME} could not join with {PSKD}: {joined}")
        s.commissioned = JOINER_NAME
        await self.wait(f"{JOINER_NAME} in the child table", lambda: any(
            c["extaddr"] == joined["eui64"] for c in self.ctl("child table")))
        s.commissioned_attached = True
        # like every Thread node, the new one is presented to the LwM2M server as a client of its own
        endpoint = f"thread-{joined['eui64']}"
        assert self.server is not None
        try:
            await self.server.wait_for(rf"Endpoint name: {re.escape(endpoint)}\s", timeout=60)
        except AssertionError:
            raise DemoError(f"{endpoint} did not register with the LwM2M server; see {self.log}") from None
        s.commissioned_endpoint = endpoint

    # ---- tear-down -----------------------------------------------------------------------------
    async def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.daemon.wait, 10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self.server is not None:
            await self.server.stop()
        await asyncio.to_thread(self.bed.close)


class Output:
    """The demo's messages: to stdout; once that is closed (the reader of ``| tee`` ended by the same
    Ctrl-C), to stderr; once that is closed too, nowhere. Writing never raises, so the clean-up always
    runs. A closed stream is pointed at /dev/null, so the interpreter's last flush does not fail either.
    ``on_closed`` is called once when stdout goes away (the demo then stops, as a program would on SIGPIPE)."""

    def __init__(self) -> None:
        self.streams = [s for s in (sys.stdout, sys.stderr) if s is not None]
        self.on_closed: Callable[[], None] | None = None

    def say(self, *lines: str, error: bool = False) -> None:
        for stream in sorted(self.streams, key=lambda s: s is not sys.stderr) if error else list(self.streams):
            try:
                for line in lines:
                    stream.write(line + "\n")
                stream.flush()
                return
            except (OSError, ValueError):
                self.lost(stream)

    def lost(self, stream: Any) -> None:
        self.streams.remove(stream)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        if stream is sys.stdout and self.on_closed is not None:
            self.on_closed()


output = Output()


def step(text: str) -> None:
    output.say(f"==> {text}")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, the terminal closed


async def run(work: Path, once: bool) -> int:
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, main.cancel)
    output.on_closed = main.cancel
    demo = Demo(work, progress=step)
    try:
        summary = await demo.start()
        output.say("", *summary.lines(), "",
                   f"gatewayd is up. Try:  {summary.gatewayctl}",
                   "    (or: state | child table | lwm2m clients | nat64 mappings | counters | help)",
                   "Ctrl-C stops everything and cleans up.")
        if not once:
            await asyncio.Event().wait()
        return 0
    except asyncio.CancelledError:  # Ctrl-C, SIGTERM, SIGHUP or stdout closed
        main.uncancel()
        return 0
    except (DemoError, RuntimeError, subprocess.SubprocessError, OSError) as exc:
        output.say(f"demo failed: {exc}", error=True)
        return 1
    finally:
        output.on_closed = None
        # a second Ctrl-C must not cut the clean-up short
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, lambda: None)
        output.say("", "cleaning up")
        # shielded: a cancellation still pending (stdout closed just before the end, a signal racing the
        # handlers above) must not cut it short either
        closing = asyncio.ensure_future(demo.close())
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                main.uncancel()
        closing.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description="gatewayd on a simulated mesh")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs) on exit; it is kept anyway when bring-up fails")
    parser.add_argument("--once", action="store_true", help="exit after bringing everything up")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        output.say("demo: run as root (it creates network namespaces and TUN devices)", error=True)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gatewayd-demo-"))
    code = 1
    try:
        code = asyncio.run(run(work, args.once))
        return code
    finally:
        if args.keep or code != 0:
            output.say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
