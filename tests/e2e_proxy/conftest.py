"""The NAT64 testbed (mesh, border router, IPv4-only Internet) with an LwM2M server in the Internet
namespace and plain CoAP sensors on simulated Thread nodes."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT
from tests.e2e_nat64.conftest import INET6, Nat64Topology, nat64_toml
from tests.lwm2m.servers import NODE_SERVER, PEERS, NodeServer, node_server_available

LWM2M_PORT = 5684
SERVER_URI = f"coap://[{INET6}]:{LWM2M_PORT}"  # the IPv4-only server, through the NAT64 prefix
SENSORS = str(ROOT / "tests" / "lwm2m" / "proxy" / "sensors.py")


class NetnsNodeServer(NodeServer):
    """lwm2m-node-lib's server inside a namespace (it listens on IPv4 0.0.0.0)."""

    def __init__(self, port: int, netns: str) -> None:
        super().__init__(port)
        self.netns = netns

    async def start(self) -> None:
        env = dict(os.environ, LWM2M_PORT=str(self.port), NODE_PATH=str(PEERS / "node_modules"))
        self.proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.netns, "node", str(NODE_SERVER), cwd=str(PEERS), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.command("start", r"Lightweight M2M Server started")

    async def device_ids(self) -> dict[str, str]:
        """Endpoint name → the server's device id, from `list`."""
        await self.command("list", r"Device list")
        await asyncio.sleep(0.3)
        chunk = self.output[self.output.rfind("Device list"):]
        out = {}
        for part in chunk.split('-> Device Id "')[1:]:
            ident = part.split('"', 1)[0]
            data = json.loads(part[part.index("{"):part.index("\n}") + 2])
            out[data["name"]] = ident
        return out


class SensorProcess:
    """sensors.py on a mesh node's address; its requests arrive as JSON lines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        assert ready == b"ready", (ready, proc.stderr.read() if proc.stderr else b"")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def requests(self) -> list[dict]:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.seen


class ProxyTopology(Nat64Topology):
    def sensor(self, address: str, *args: str) -> SensorProcess:
        proc = self.spawn(self.mesh, PYTHON, SENSORS, address, "5683", *args, stdin=subprocess.PIPE,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return SensorProcess(proc)

    def lwm2m_toml(self, devices: str = "") -> str:
        return (nat64_toml() + f'[lwm2m]\nenabled = true\nlwm2m_version = "1.0"\nkeepalive = 20\n'
                f'[lwm2m.server]\nuri = "{SERVER_URI}"\nlifetime = 60\n[lwm2m.gateway]\nenabled = false\n'
                '[lwm2m.thread_devices]\nenabled = true\nabsence_timeout = 4\npoll_interval = 1\n' + devices)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[ProxyTopology]:
    if node_server_available() is not None:
        pytest.skip(str(node_server_available()))
    topology = ProxyTopology(tmp_path)
    try:
        topology.setup()
        yield topology
    finally:
        topology.close()


@pytest.fixture
async def lwm2m_server(topo: ProxyTopology):
    server = NetnsNodeServer(LWM2M_PORT, topo.inet)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
