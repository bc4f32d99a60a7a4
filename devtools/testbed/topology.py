"""A whole border-router setup on one machine, in network namespaces, with no radio.

    mesh ns (simulated NCP's TUN, Thread nodes)  ←pty/Spinel→  br ns (gatewayd: wpan0, infra0)  ←veth→  lan ns
                                                               br ns (uplink0 100.64.0.1)  ←veth→  inet ns

The inet namespace (``internet=True``) is an IPv4-only "Internet": no IPv6 at all, the br namespace's
IPv4 default route points at it (so "" as ``[nat64] uplink`` finds uplink0), and it runs the peers
of :mod:`devtools.testbed` (an authoritative DNS server for example.test, UDP echo and TCP servers).
100.64.0.0/10 is not global, so the NAT64 prefix is network-specific (RFC 6052 §3.1).

Used by the demo (``scripts/demo.sh``), the end-to-end tests and the benchmarks. gatewayd runs
inside the br namespace, so nothing touches the machine's own interfaces, and ``close()`` removes
every namespace, ``/etc/netns`` file and process it made. The processes it starts also die with the
process that owns it (:func:`devtools.die_with_parent`), should that die before ``close()``.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from devtools import die_with_parent, python_env

if TYPE_CHECKING:
    from devtools.testbed.sensors import SensorProcess

LAN_PREFIX = "fd00:1a4::"
NODES = {"sensor": "0011223344556677", "lamp": "0011223344556688"}
# Sensors are usually MTDs (rx-on `mode rn` children that register their addresses with their parent);
# the other nodes are FTDs, as ot-cli-ftd is by default: children that may become routers.
MTD_NODES = frozenset({"sensor"})

# The IPv4-only Internet and the NAT64 in front of it.
NAT64_PREFIX = "fd64:64::/96"
NAT64_POOL = "100.64.1.0/24"
UPLINK4 = "100.64.0.1"
INET4 = "100.64.0.10"
INET6 = "fd64:64::6440:a"  # INET4 in NAT64_PREFIX
DNS_ZONE = "example.test"
UDP_PORT, TCP_PORT, CLOSED_PORT = 7007, 8008, 9009


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def nat64_toml(backend: str = "builtin", extra: str = "") -> str:
    """[nat64] and [dns64] for the Internet namespace: the daemon's DNS64 asks the zone server there."""
    return (f'[nat64]\nbackend = "{backend}"\nprefix = "{NAT64_PREFIX}"\npool = ["{NAT64_POOL}"]\n{extra}'
            f'[dns64]\nupstream = ["{INET4}"]\n')


class Testbed:
    def __init__(self, work: Path, nodes: dict[str, str] | None = None, tag: str | None = None,
                 internet: bool = False, mtd: Iterable[str] | None = None, ncp_generation: str = "2025",
                 dnssd_server: bool = False, mle_interval: float = 1.0):
        """``nodes``: name → EUI-64 of the simulated Thread nodes; ``mtd``: the names of those that are MTDs
        (by default the ones MTD_NODES names), the others are FTDs; ``ncp_generation``: the OpenThread NCP
        the simulator imitates (``python -m ncp.sim --ncp-generation``); ``dnssd_server``: the NCP answers
        port 53 on its own addresses itself, as border-router firmware with OpenThread's DNS-SD server does."""
        tag = tag or secrets.token_hex(3)
        self.work = work
        self.nodes = NODES if nodes is None else nodes
        self.mtd = frozenset(MTD_NODES & self.nodes.keys() if mtd is None else mtd)
        self.ncp_generation = ncp_generation
        self.mle_interval = mle_interval  # the NCP's own MLE to the host: often, so tests see it
        self.dnssd_server = dnssd_server
        self.br, self.mesh, self.lan = f"gwbr-{tag}", f"gwmesh-{tag}", f"gwlan-{tag}"
        self.inet = f"gwinet-{tag}" if internet else None
        self.sim_control = work / "sim.sock"
        self.sim_log = work / "sim.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def namespaces(self) -> list[str]:
        return [ns for ns in (self.br, self.lan, self.mesh, self.inet) if ns is not None]

    # ---- topology ------------------------------------------------------------------------------
    def setup(self) -> None:
        # All namespaces are made here: one created under `ip netns exec` (as the simulator would)
        # stays invisible outside that command's private mount namespace.
        for ns in self.namespaces:
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
        if self.inet is not None:
            self._setup_internet(self.inet)

    def _setup_internet(self, inet: str) -> None:
        self.run(inet, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.run(inet, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        ip("link", "add", "uplink0", "netns", self.br, "type", "veth", "peer", "name", "eth0", "netns", inet)
        self.run(self.br, "ip", "addr", "add", f"{UPLINK4}/24", "dev", "uplink0")
        self.run(self.br, "ip", "link", "set", "uplink0", "up")
        self.run(self.br, "ip", "route", "add", "default", "via", INET4)
        self.run(inet, "ip", "addr", "add", f"{INET4}/24", "dev", "eth0")
        self.run(inet, "ip", "link", "set", "eth0", "up")
        self.serve("devtools.testbed.nat64_peer", "udp-echo", str(UDP_PORT))
        self.serve("devtools.testbed.nat64_peer", "tcp-server", str(TCP_PORT))
        self.serve("devtools.testbed.dns_peer", "zone", INET4)

    def serve(self, module: str, *args: str) -> subprocess.Popen[bytes]:
        """A peer program (``python -m module``) in the Internet namespace, once it printed "ready"."""
        assert self.inet is not None, "Testbed(internet=True) has the Internet namespace"
        proc = self.spawn(self.inet, sys.executable, "-m", module, *args)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            proc.kill()
            raise RuntimeError(f"{module} {' '.join(args)} did not start: {proc.communicate()[1].decode()[-500:]}")
        return proc

    def resolver(self, ns: str, nameserver: str) -> None:
        """The resolv.conf programs run by `ip netns exec ns` see (must be set before they start)."""
        etc = Path("/etc/netns") / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {nameserver}\n")

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        for ns in self.namespaces:
            ip("netns", "del", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)

    def run(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check,
                              timeout=timeout, env=python_env(), preexec_fn=die_with_parent())

    def spawn(self, ns: str, *cmd: str, **popen: object) -> subprocess.Popen[bytes]:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("start_new_session", True)  # a Ctrl-C reaches the owner, which stops them in order
        popen.setdefault("env", python_env())  # `python -m devtools...` from any working directory
        popen.setdefault("preexec_fn", die_with_parent())  # and if the owner dies first, they die with it
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **popen)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    # ---- a mesh node's view --------------------------------------------------------------------
    def node(self, module: str, *args: str, timeout: float = 60) -> dict:
        """A client subcommand of a peer program run as a mesh node; its JSON result."""
        return json.loads(self.run(self.mesh, sys.executable, "-m", module, *args, timeout=timeout).stdout)

    def sensor(self, address: str, *args: str) -> SensorProcess:
        """A plain CoAP device (:mod:`.sensors`) on a mesh node's address, port 5683."""
        from devtools.testbed.sensors import SensorProcess

        proc = self.spawn(self.mesh, sys.executable, "-m", "devtools.testbed.sensors", address, "5683", *args,
                          stdin=subprocess.PIPE)
        return SensorProcess(proc)

    def ping(self, target: str, count: int = 3) -> bool:
        r = self.run(self.mesh, "ping", "-6", "-c", str(count), "-i", "0.3", "-W", "2", target, check=False)
        return r.returncode == 0 and " 0% packet loss" in r.stdout

    # ---- gatewayd configuration ----------------------------------------------------------------
    def sim_url(self, python: str = sys.executable) -> str:
        args = ["-m", "ncp.sim", "--netns", self.mesh, "--control", str(self.sim_control),
                "--state", str(self.work / "sim.json"), "--log", str(self.sim_log), "--leader-delay", "0.3",
                "--attach-delay", "0.2", "--mle-interval", str(self.mle_interval),
                "--ncp-generation", self.ncp_generation]
        if self.dnssd_server:
            args.append("--dnssd-server")
        for name, eui in self.nodes.items():
            args += ["--node", f"{name}:{eui}:{'mtd' if name in self.mtd else 'ftd'}"]
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

    def routable_address(self, eui64: str) -> str | None:
        """The node's first address outside the mesh-local prefix (its OMR address) once it is on the TUN:
        where the gateway reaches an MTD, which registered it, and where LAN hosts reach any node."""
        state = self.sim("state")
        ml = ipaddress.IPv6Network(str(state["mesh_local_prefix"]))
        node = next((n for n in state["nodes"] if n["eui64"] == eui64), None)  # type: ignore[union-attr]
        on_tun = set(self.addresses(self.mesh, "mesh0"))
        return next((a for a in (node or {}).get("addresses", []) if ipaddress.IPv6Address(a) not in ml
                     and a in on_tun), None)

    def attached(self) -> tuple[dict, dict[str, dict]] | None:
        """(simulator state, EUI-64 → node) once every node is attached with its addresses on the TUN."""
        if not self.sim_control.exists():
            return None
        state = self.sim("state")
        nodes = {n["eui64"]: n for n in state["nodes"]}  # type: ignore[union-attr]
        on_tun = set(self.addresses(self.mesh, "mesh0"))
        if all(n["attached"] and n["addresses"] and n["addresses"][0] in on_tun for n in nodes.values()):
            return state, nodes
        return None
