"""A border-router topology in network namespaces.

    mesh ns (simulator TUN, Thread nodes)  ←pty/Spinel→  br ns (gatewayd, wpan0, infra0)  ←veth→  lan ns (eth0)

gatewayd runs inside the br namespace, so nothing touches the machine's own interfaces.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYTHON, DaemonProcess

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces, TUN devices)", allow_module_level=True)

LAN_PREFIX = "fd00:1a4::"
NODES = {"sensor": "0011223344556677", "lamp": "0011223344556688"}


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Topology:
    def __init__(self, tmp: Path):
        tag = secrets.token_hex(3)
        self.tmp = tmp
        self.br, self.mesh, self.lan = f"gwbr-{tag}", f"gwmesh-{tag}", f"gwlan-{tag}"
        self.sim_control = tmp / "sim.sock"
        self.sim_log = tmp / "sim.log"
        self.daemons: list[DaemonProcess] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def setup(self) -> None:
        # All three are made here: a namespace created under `ip netns exec` (as the simulator would)
        # stays invisible outside that command's private mount namespace.
        for ns in (self.br, self.lan, self.mesh):
            ip("netns", "add", ns)
            self.run(ns, "ip", "link", "set", "lo", "up")
        ip("link", "add", "infra0", "netns", self.br, "type", "veth", "peer", "name", "eth0", "netns", self.lan)
        self.run(self.lan, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra_rt_info_max_plen=64")
        self.run(self.lan, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
        self.run(self.br, "sysctl", "-qw", "net.ipv6.conf.infra0.accept_dad=0")
        self.run(self.br, "ip", "link", "set", "infra0", "up")
        self.run(self.lan, "ip", "link", "set", "eth0", "up")
        # The LAN's own prefix, as a home router would have given both hosts by SLAAC.
        self.run(self.br, "ip", "-6", "addr", "add", f"{LAN_PREFIX}1/64", "dev", "infra0", "nodad")
        self.run(self.lan, "ip", "-6", "addr", "add", f"{LAN_PREFIX}2/64", "dev", "eth0", "nodad")

    def teardown(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in (self.br, self.lan, self.mesh):
            ip("netns", "del", ns, check=False)

    def run(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check,
                              timeout=timeout)

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def sim_url(self) -> str:
        args = ["-m", "ncp.sim", "--netns", self.mesh, "--control", str(self.sim_control),
                "--state", str(self.tmp / "sim.json"), "--log", str(self.sim_log), "--leader-delay", "0.3",
                "--attach-delay", "0.2", "--mle-interval", "1"]
        for name, eui in NODES.items():
            args += ["--node", f"{name}:{eui}"]
        return f"spinel+hdlc+forkpty://{PYTHON}?" + "&".join(f"args={a}" for a in args)

    def config(self, extra: str = "") -> str:
        return (f'[ncp]\nurl = "{self.sim_url()}"\n'
                '[border]\ninfra_interface = "infra0"\n' + extra)

    def start_daemon(self, extra: str = "") -> DaemonProcess:
        daemon = DaemonProcess(self.tmp, self.config(extra), netns=self.br)
        self.daemons.append(daemon)
        return daemon.start()

    def sim(self, cmd: str, **args: object) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.sim_control))
            s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def addresses(self, ns: str, dev: str) -> list[str]:
        out = self.run(ns, "ip", "-6", "-j", "addr", "show", "dev", dev).stdout
        return [a["local"] for link in json.loads(out) for a in link.get("addr_info", [])]


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    topology = Topology(tmp_path)
    try:
        topology.setup()
        yield topology
    finally:
        topology.teardown()
