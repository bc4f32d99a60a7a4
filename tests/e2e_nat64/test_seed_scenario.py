"""A Thread node reaches an IPv4-only server by name: DNS64 on the border router's mesh address,
NAT64 in the daemon, traffic crossing the Spinel pty. Once per backend, as a user would switch it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from tests.conftest import wait_until
from tests.e2e_nat64.conftest import (
    CLOSED_PORT,
    INET4,
    INET6,
    POOL,
    PREFIX,
    TCP_PORT,
    UDP_PORT,
    Nat64Topology,
    nat64_toml,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]


def ctl(gw, *words: str):
    return json.loads(gw.ctl("--json", *words).stdout)


def mesh_dns_server(topo: Nat64Topology, gw) -> str:
    """The border router's OMR address on wpan0, once the network formed and DNS64 answers there."""
    omr = wait_until(lambda: (s := ctl(gw, "state"))["role"] == "leader" and s["omr_prefix"], timeout=20,
                     what="leader role")
    prefix = omr.split("::/")[0] + ":"
    addr = wait_until(lambda: next((a for a in topo.addresses(topo.br, "wpan0") if a.startswith(prefix)), None),
                      timeout=15, what="an OMR address on wpan0")
    wait_until(lambda: any(addr in x for x in ctl(gw, "status")["components"]["dns64"].get("listen", [])),
               timeout=10, what=f"DNS64 answering on {addr}")
    # the node has its own OMR address, so its traffic comes from the OMR prefix
    wait_until(lambda: any(a.startswith(prefix) for a in topo.addresses(topo.mesh, "mesh0")), timeout=15,
               what="an OMR address on the mesh node")
    return addr


def the_node_talks_to_the_ipv4_server(topo: Nat64Topology, gw) -> None:
    dns_server = mesh_dns_server(topo, gw)

    # The IPv4-only name resolves to its address in the NAT64 prefix; a name with its own AAAA keeps it.
    assert topo.node("resolve", dns_server, "lwm2m.example.test", "AAAA") == {"rcode": "NOERROR",
                                                                             "answers": [INET6]}
    assert topo.node("resolve", dns_server, "dual.example.test", "AAAA")["answers"] == ["2001:db8::10"]
    assert topo.node("resolve", dns_server, "nowhere.example.test", "AAAA")["rcode"] == "NXDOMAIN"

    assert topo.ping(INET6), "ping through NAT64 from the mesh"
    udp = topo.node("udp-client", INET6, str(UDP_PORT), "5")
    assert udp["echoed"] == 5, udp
    tcp = topo.node("tcp-client", INET6, str(TCP_PORT), str(64 << 10), str(256 << 10))
    assert tcp["sent_intact"] and tcp["received_intact"] and tcp["received"] == 256 << 10, tcp
    # the IPv4 host's port unreachable comes back as an ICMPv6 error the node's socket sees
    assert topo.node("udp-error", INET6, str(CLOSED_PORT)) == {"error": "ECONNREFUSED"}


def test_builtin_backend(topo: Nat64Topology):
    gw = topo.start_daemon(nat64_toml("builtin", "udp_timeout = 8\nicmp_timeout = 8\ntcp_transitory_timeout = 8\n"))
    the_node_talks_to_the_ipv4_server(topo, gw)

    # gatewayctl: mappings like ot-ctl's, as a table and as JSON
    table = gw.ctl("nat64", "mappings").stdout
    assert "ipv6" in table.splitlines()[0] and f"{INET4}:{UDP_PORT}" in table
    rows = ctl(gw, "nat64", "mappings")
    udp = next(r for r in rows if r["remote"] == f"{INET4}:{UDP_PORT}")
    assert udp["proto"] == "udp" and udp["6to4_packets"] == 5 and udp["4to6_packets"] == 5
    assert udp["ipv4"].split(":")[0] in [f"100.64.1.{i}" for i in range(1, 255)]
    assert {r["proto"] for r in rows} >= {"udp", "tcp", "icmp"}
    counters = ctl(gw, "nat64", "counters")
    assert counters["translated"]["6to4"]["udp"] >= 5 and counters["translated"]["4to6"]["icmp"] >= 3
    assert counters["translated"]["4to6"]["tcp"] > 100
    # the TCP stream's established packets took the native fast path (nat64/_fastpath.c)
    assert counters["fast_path"] == "native" and counters["fast_path_packets"] > 100
    assert "NAT64" in ctl(gw, "status")["status"]

    # DNS64's cache and counters
    cache = ctl(gw, "dns64", "cache")
    assert any(e["name"] == "lwm2m.example.test." and e["type"] == "AAAA" and e["answer"] == INET6 for e in cache)
    assert "lwm2m.example.test." in gw.ctl("dns64", "cache").stdout
    dns = ctl(gw, "dns64", "counters")
    assert dns["queries"] >= 3 and dns["refused"] == 0

    # sessions expire (8 s timeouts here)
    wait_until(lambda: ctl(gw, "nat64", "mappings") == [], timeout=25, what="sessions expiring")
    assert ctl(gw, "nat64", "counters")["sessions_expired"] >= 4

    # caps are live keys: two sessions per host, then new flows are refused and old ones keep working
    gw.write_config(nat64_toml("builtin", "max_sessions_per_host = 2\n"))
    gw.signal(signal.SIGHUP)
    gw.wait_log("NAT64 timeouts and caps updated")
    # fixed, distinct source ports: two clients given the same ephemeral port would be one flow
    assert topo.node("udp-client", INET6, str(UDP_PORT), "1", "40001")["echoed"] == 1
    assert topo.ping(INET6, 1)
    assert topo.node("udp-error", INET6, str(UDP_PORT), "40002") == {"error": "EACCES"}
    assert ctl(gw, "nat64", "counters")["dropped"]["source_cap"] >= 1
    assert len(ctl(gw, "nat64", "mappings")) == 2

    # an orderly stop takes the routes, the masquerade and the forwarding it turned on away again
    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(15) == 0
    assert PREFIX not in topo.run(topo.br, "ip", "-6", "route").stdout
    assert POOL not in topo.run(topo.br, "ip", "route").stdout
    assert "gatewayd_nat64" not in topo.run(topo.br, "nft", "list", "tables").stdout
    assert topo.run(topo.br, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    assert topo.run(topo.br, "ip", "link", "show", "nat64", check=False).returncode != 0


@pytest.mark.skipif(shutil.which("tayga") is None, reason="tayga is not installed (scripts/setup.sh installs it)")
def test_tayga_backend(topo: Nat64Topology):
    gw = topo.start_daemon(nat64_toml("tayga"))
    the_node_talks_to_the_ipv4_server(topo, gw)

    status = ctl(gw, "status")["components"]["nat64"]
    assert status["backend"] == "tayga" and status["running"]
    conf = (topo.tmp / "state" / "tayga" / "tayga.conf").read_text()
    assert f"prefix {PREFIX}" in conf and f"dynamic-pool {POOL}" in conf
    # tayga gave the node an address of its own; gatewayctl shows it
    rows = ctl(gw, "nat64", "mappings")
    assert rows and all(r["ipv4"].startswith("100.64.1.") for r in rows)
    node_addrs = set(topo.addresses(topo.mesh, "mesh0"))
    assert any(r["ipv6"] in node_addrs for r in rows), (rows, node_addrs)
    counters = ctl(gw, "nat64", "counters")
    assert counters["backend"] == "tayga" and counters["tun_rx_packets"] > 100

    # tayga dies: the component restarts it and traffic flows again
    os.kill(status["pid"], signal.SIGKILL)
    wait_until(lambda: (s := ctl(gw, "status")["components"]["nat64"])["restarts"] >= 1 and s["running"],
               timeout=15, what="tayga restarted")
    assert ctl(gw, "status")["components"]["nat64"]["pid"] != status["pid"]
    assert "tayga exited" in gw.output()
    assert wait_until(lambda: topo.ping(INET6, 1), timeout=10, what="ping after the restart")

    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(15) == 0
    assert topo.run(topo.br, "ip", "link", "show", "nat64", check=False).returncode != 0
    assert PREFIX not in topo.run(topo.br, "ip", "-6", "route").stdout
    assert "gatewayd_nat64" not in topo.run(topo.br, "nft", "list", "tables").stdout
    # after the stop tayga's dynamic.map holds the node's map
    time.sleep(0.2)
    assert "100.64.1." in (topo.tmp / "state" / "tayga" / "dynamic.map").read_text()
