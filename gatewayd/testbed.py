"""A whole border-router setup on one machine, in network namespaces, with no radio.

    mesh ns (simulated NCP's TUN, Thread nodes)  ←pty/Spinel→  br ns (gatewayd: wpan0, infra0)  ←veth→  lan ns

Used by the demo (``scripts/demo.sh``) and the end-to-end tests. gatewayd runs inside
the br namespace, so nothing touches the machine's own interfaces, and ``close()``
removes every namespace and process it made.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path

LAN_PREFIX = "fd00:1a4::"
NODES = {"sensor": "0011223344556677", "lamp": "0011223344556688"}


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Testbed:
    def __init__(self, work: Path, nodes: dict[str, str] | None = None, tag: str | None = None):
        tag = tag or secrets.token_hex(3)
        self.work = work
        self.nodes = NODES if nodes is None else nodes
        self.br, self.mesh, self.lan = f"gwbr-{tag}", f"gwmesh-{tag}", f"gwlan-{tag}"
        self.sim_control = work / "sim.sock"
        self.sim_log = work / "sim.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    # ---- topology ------------------------------------------------------------------------------
    def setup(self) -> None:
        # All namespaces are made here: one created under `ip netns exec` (as the simulator would)
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

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for ns in (self.br, self.lan, self.mesh):
            ip("netns", "del", ns, check=False)

    def run(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check,
                              timeout=timeout)

    def spawn(self, ns: str, *cmd: str, **popen: object) -> subprocess.Popen[bytes]:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **popen)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    # ---- gatewayd configuration ----------------------------------------------------------------
    def sim_url(self, python: str = sys.executable) -> str:
        args = ["-m", "ncp.sim", "--netns", self.mesh, "--control", str(self.sim_control),
                "--state", str(self.work / "sim.json"), "--log", str(self.sim_log), "--leader-delay", "0.3",
                "--attach-delay", "0.2", "--mle-interval", "1"]
        for name, eui in self.nodes.items():
            args += ["--node", f"{name}:{eui}"]
        return f"spinel+hdlc+forkpty://{python}?" + "&".join(f"args={a}" for a in args)

    def config(self, extra: str = "") -> str:
        return f'[ncp]\nurl = "{self.sim_url()}"\n[border]\ninfra_interface = "infra0"\n{extra}'

    # ---- looking inside ------------------------------------------------------------------------
    def sim(self, cmd: str, **args: object) -> dict[str, object]:
        """A fault-injection or query command to the simulator's control socket."""
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
