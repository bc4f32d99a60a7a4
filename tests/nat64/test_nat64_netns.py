"""End to end: an IPv6-only host reaches an IPv4-only server through the builtin backend on a TUN.

v6host (fd00:64::2, IPv6 only) ── veth ── gw (builtin NAT64 on TUN "nat64") ── veth ── inet (100.64.0.10)

The NAT64 prefix is network-specific (2001:db8:64::/96) because 100.64.0.0/10 is not global and the
Well-Known Prefix must refuse it. The pool is 100.64.1.1, routed back to gw from inet.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from devtools.testbed import nat64_peer

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PEER = nat64_peer.__file__
PY = sys.executable
PREFIX = "2001:db8:64::/96"
POOL = "100.64.1.1"
SERVER4 = "100.64.0.10"
SERVER6 = "2001:db8:64::6440:a"
UDP_PORT, TCP_PORT, CLOSED_PORT = 7007, 8008, 9009


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {r.stderr}")
    return r


class Topology:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.v6host, self.gw, self.inet = f"n64h-{tag}", f"n64g-{tag}", f"n64i-{tag}"
        self.procs: list[subprocess.Popen] = []

    def ns(self, name: str, *cmd: str, **kw) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", name, *cmd, **kw)

    def up(self) -> None:
        for n in (self.v6host, self.gw, self.inet):
            sh("ip", "netns", "add", n)
            self.ns(n, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "n64a", "netns", self.v6host, "type", "veth", "peer", "name", "n64b",
           "netns", self.gw)
        sh("ip", "link", "add", "n64c", "netns", self.gw, "type", "veth", "peer", "name", "n64d",
           "netns", self.inet)
        h, g, i = self.v6host, self.gw, self.inet
        self.ns(h, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0")
        self.ns(h, "ip", "addr", "add", "fd00:64::2/64", "dev", "n64a", "nodad")
        self.ns(h, "ip", "link", "set", "n64a", "up")
        self.ns(h, "ip", "-6", "route", "add", "default", "via", "fd00:64::1")
        self.ns(g, "ip", "addr", "add", "fd00:64::1/64", "dev", "n64b", "nodad")
        self.ns(g, "ip", "addr", "add", "100.64.0.1/24", "dev", "n64c")
        self.ns(g, "ip", "link", "set", "n64b", "up")
        self.ns(g, "ip", "link", "set", "n64c", "up")
        self.ns(g, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.ns(g, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.ns(g, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
        self.ns(i, "ip", "addr", "add", f"{SERVER4}/24", "dev", "n64d")
        self.ns(i, "ip", "link", "set", "n64d", "up")
        self.ns(i, "ip", "route", "add", "100.64.1.0/24", "via", "100.64.0.1")
        self.ns(i, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")  # IPv4-only
        self.server("udp-echo", str(UDP_PORT))
        self.server("tcp-server", str(TCP_PORT))

    def server(self, *args: str) -> None:
        p = subprocess.Popen(["ip", "netns", "exec", self.inet, PY, PEER, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def client(self, *args: str, timeout: float = 60) -> dict:
        r = self.ns(self.v6host, PY, PEER, *args, timeout=timeout)
        return json.loads(r.stdout)

    def down(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for n in (self.v6host, self.gw, self.inet):
            sh("ip", "netns", "del", n, check=False)


class Backend:
    """The builtin backend as a subprocess inside gw, answering stdin commands with JSON lines."""

    def __init__(self, topo: Topology, *extra: str) -> None:
        cmd = ["ip", "netns", "exec", topo.gw, PY, "-m", "nat64.backends.builtin", "--prefix", PREFIX,
               "--pool", POOL, "--tun", "nat64", "--install-routes", *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        ready = self._line(15)
        assert ready.get("ready"), ready

    def _line(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise AssertionError(f"backend silent; stderr: {self.stop()}")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"backend exited; stderr: {self.stop()}")
        return json.loads(line)

    def ask(self, cmd: str):
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._line(5)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture
def topo():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and TUN")
    t = Topology()
    try:
        t.up()
        yield t
    finally:
        t.down()


@pytest.fixture
def backend_factory(topo):
    started: list[Backend] = []

    def make(*extra: str) -> Backend:
        b = Backend(topo, *extra)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


def test_ping_udp_tcp_icmp_error_mappings_and_expiry(topo, backend_factory):
    be = backend_factory("--udp-timeout", "2", "--icmp-timeout", "2", "--tcp-trans-timeout", "2",
                         "--expire-interval", "0.2")
    r = topo.ns(topo.v6host, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", SERVER6, check=False)
    assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout

    udp = topo.client("udp-client", SERVER6, str(UDP_PORT), "5")
    assert udp["echoed"] == 5

    tcp = topo.client("tcp-client", SERVER6, str(TCP_PORT), str(1 << 20), str(1 << 20))
    assert tcp["sent_intact"] and tcp["received_intact"] and tcp["received"] == 1 << 20

    assert topo.client("udp-error", SERVER6, str(CLOSED_PORT)) == {"error": "ECONNREFUSED"}

    rows = be.ask("mappings")
    by_proto = {(m["protocol"], m["dst_port"]): m for m in rows}
    assert ("ICMP", 0) in by_proto
    u = by_proto[("UDP", UDP_PORT)]
    assert u["v6_src"] == "fd00:64::2" and u["v4_pool"] == POOL and u["dst"] == SERVER4
    assert u["v6_src_port"] == udp["local_port"] and u["packets_6to4"] == 5 and u["packets_4to6"] == 5
    t = by_proto[("TCP", TCP_PORT)]
    assert t["bytes_6to4"] > 1 << 20 and t["bytes_4to6"] > 1 << 20
    assert t["state"] in ("V4 FIN + V6 FIN RCV", "TRANS")

    counters = be.ask("counters")
    assert counters["translated"]["6to4"]["udp"] >= 5 and counters["translated"]["4to6"]["icmp"] >= 4
    # The 1 MB download was sized for IPv4 MTU 1500: the server got Fragmentation Needed (1260) first.
    assert counters["icmp_errors_sent"].get("icmp4_3_4", 0) >= 1

    deadline = time.monotonic() + 10
    while be.ask("mappings") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert be.ask("mappings") == []
    assert be.ask("counters")["sessions_expired"] >= 4


def test_session_cap_refuses_new_flows_and_keeps_existing(topo, backend_factory):
    be = backend_factory("--max-sessions-per-source", "2")
    # Fixed, distinct source ports: two clients given the same ephemeral port would be one flow.
    assert topo.client("udp-client", SERVER6, str(UDP_PORT), "1", "40001")["echoed"] == 1
    r = topo.ns(topo.v6host, "ping", "-6", "-c", "1", "-W", "2", SERVER6, check=False)
    assert r.returncode == 0
    # a third flow from the same source is refused with administratively prohibited
    assert topo.client("udp-error", SERVER6, str(UDP_PORT), "40002") == {"error": "EACCES"}
    assert be.ask("counters")["dropped"]["source_cap"] >= 1
    # the refused flow left the two existing sessions as they were
    rows = be.ask("mappings")
    assert len(rows) == 2 and {m["protocol"] for m in rows} == {"UDP", "ICMP"}


def test_masquerade_table_installs_and_goes_away(topo, backend_factory):
    if not Path("/usr/sbin/nft").exists():
        pytest.skip("nft not installed")
    # Remove the route back to the pool: only masquerade on the uplink can make replies come back.
    topo.ns(topo.inet, "ip", "route", "del", "100.64.1.0/24")
    be = backend_factory("--masquerade", "n64c")
    assert "gatewayd_nat64" in topo.ns(topo.gw, "nft", "list", "tables").stdout
    assert topo.client("udp-client", SERVER6, str(UDP_PORT), "3")["echoed"] == 3
    be.stop()
    assert "gatewayd_nat64" not in topo.ns(topo.gw, "nft", "list", "tables").stdout
    routes = topo.ns(topo.gw, "ip", "-6", "route").stdout
    assert "2001:db8:64::/96" not in routes
