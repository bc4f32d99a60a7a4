"""The simulator with its mesh in a network namespace: programs there behave as Thread devices."""

import ipaddress
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from ncp import ipv6
from ncp.meshcop import Dataset
from ncp.sim.netdata import NET_FLAG_DEFAULT_ROUTE, NET_FLAG_ON_MESH, NET_FLAG_PREFERRED, NET_FLAG_SLAAC
from ncp.spinel import Command, NetRole, Prop, Status, pack, unpack_prop

from .simproc import control, is_status

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and TUN devices"),
]

OMR = ipaddress.IPv6Network("fd5a:1:2:3::/64")
BR_ADDR = ipaddress.IPv6Address("fd5a:1:2:3::1")  # the host's own address in the OMR prefix
NODE_EUI = "0011223344556677"
NAT64_DST = ipaddress.IPv6Address("64:ff9b::6440:1")  # 100.64.0.1 behind the well-known prefix


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def netns():
    name = f"simt-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        ip("netns", "del", name, check=False)


def bring_up_with_omr(p):
    p.wait_for(is_status(Status.RESET_POWER_ON))
    ds = Dataset.generate(rng=random.Random(42))
    p.set(Prop.THREAD_ACTIVE_DATASET_TLVS, ds.to_tlvs())
    p.set(Prop.NET_IF_UP, True)
    p.set(Prop.NET_STACK_UP, True)
    p.wait_pushed(Prop.NET_ROLE, lambda r: r == NetRole.LEADER)
    p.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    flags = NET_FLAG_ON_MESH | NET_FLAG_SLAAC | NET_FLAG_PREFERRED | NET_FLAG_DEFAULT_ROUTE
    assert (
        p.request(
            Command.PROP_VALUE_INSERT, Prop.THREAD_ON_MESH_NETS, pack("6CbC", OMR.network_address, 64, True, flags)
        ).command
        == Command.PROP_VALUE_INSERTED
    )
    assert (
        p.request(Command.PROP_VALUE_INSERT, Prop.THREAD_OFF_MESH_ROUTES, pack("6CbC", "::", 0, True, 0)).command
        == Command.PROP_VALUE_INSERTED
    )
    p.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)
    p.wait_pushed(Prop.THREAD_ON_MESH_NETS, lambda rows: any(r[0] == OMR.network_address for r in rows))
    # The host's own address in the OMR prefix: the NCP passes host packets from an on-mesh source only
    # when it owns that source (Ip6::SendRaw; ot-ncp-ftd answers DROPPED otherwise).
    reply = p.request(Command.PROP_VALUE_INSERT, Prop.IPV6_ADDRESS_TABLE, pack("6CLL", BR_ADDR, 64, 0xFFFFFFFF,
                                                                               0xFFFFFFFF))
    assert reply.command == Command.PROP_VALUE_INSERTED
    return ds


def wait_node_address(sock, name, network, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = control(sock, {"cmd": "state"})
        for node in state["nodes"]:
            if node["name"] == name:
                found = [a for a in node["addresses"] if ipaddress.IPv6Address(a) in network]
                if found:
                    return ipaddress.IPv6Address(found[0]), state
        time.sleep(0.1)
    raise TimeoutError(f"{name} got no address in {network}: {state}")


def test_udp_between_netns_program_and_host(sim, netns, tmp_path):
    sock = str(tmp_path / "ctl.sock")
    p = sim(
        "--netns",
        netns,
        "--node",
        f"sensor:{NODE_EUI}",
        "--node",
        "lamp",
        "--control",
        sock,
        "--leader-delay",
        "0.2",
        "--attach-delay",
        "0.1",
        "--mle-interval",
        "0.5",
    )
    ds = bring_up_with_omr(p)
    node_addr, _ = wait_node_address(sock, "sensor", OMR)
    ml_addr, _ = wait_node_address(sock, "sensor", ds.mesh_local_prefix)

    # The nodes are children with their EUI-64s.
    children = p.get(Prop.THREAD_CHILD_TABLE)
    assert bytes.fromhex(NODE_EUI) in [c[0] for c in children] and len(children) == 2
    # Their addresses and routes really are in the namespace.
    addrs = ip("-n", netns, "-6", "addr", "show", "dev", "mesh0").stdout
    assert str(node_addr) in addrs and str(ml_addr) in addrs
    assert "mtu 1280" in ip("-n", netns, "link", "show", "mesh0").stdout
    routes = ip("-n", netns, "-6", "route", "show").stdout
    assert str(OMR) in routes and "default dev mesh0" in routes and str(ds.mesh_local_prefix) in routes

    # A program in the namespace sends UDP to the host's OMR address and waits for an answer.
    program = textwrap.dedent(f"""
        import socket
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("{node_addr}", 40000))
        s.settimeout(15)
        s.sendto(b"dns via nat64", ("{NAT64_DST}", 53))
        s.sendto(b"ping from mesh", ("{BR_ADDR}", 5683))
        data, peer = s.recvfrom(2000)
        print(data.decode(), peer[0], peer[1], flush=True)
    """)
    child = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def is_our_udp(frame):
            if frame.prop != Prop.STREAM_NET or frame.command != Command.PROP_VALUE_IS:
                return False
            pkt = ipv6.parse(unpack_prop(Prop.STREAM_NET, frame.value)[0])
            return pkt is not None and pkt.dst == BR_ADDR

        frame = p.wait_for(is_our_udp, timeout=15)
        pkt = ipv6.parse(unpack_prop(Prop.STREAM_NET, frame.value)[0])
        assert pkt.src == node_addr and pkt.udp_ports == (40000, 5683)
        assert pkt.payload[8:] == b"ping from mesh"
        assert ipv6.checksum(pkt.src, pkt.dst, ipv6.UDP, pkt.payload) == 0

        # Traffic to a NAT64 address follows the default route to the border router as well.
        nat64 = p.wait_for(
            lambda f: (
                f.prop == Prop.STREAM_NET and ipv6.parse(unpack_prop(Prop.STREAM_NET, f.value)[0]).dst == NAT64_DST
            )
        )
        assert ipv6.parse(unpack_prop(Prop.STREAM_NET, nat64.value)[0]).payload[8:] == b"dns via nat64"

        answer = ipv6.build_udp(BR_ADDR, node_addr, 5683, 40000, b"pong from host", hlim=64)
        reply = p.request(Command.PROP_VALUE_SET, Prop.STREAM_NET, pack("dD", answer, b""))
        assert unpack_prop(Prop.LAST_STATUS, reply.value) == Status.OK
        out, err = child.communicate(timeout=15)
        assert child.returncode == 0, err
        assert out.split() == ["pong", "from", "host", str(BR_ADDR), "5683"]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    # The host pings a node: the kernel in the namespace answers, the reply comes back as STREAM_NET.
    request = ipv6.build_echo_request(BR_ADDR, node_addr, 0x4242, 7, b"are you there")
    assert (
        unpack_prop(
            Prop.LAST_STATUS, p.request(Command.PROP_VALUE_SET, Prop.STREAM_NET, pack("dD", request, b"")).value
        )
        == Status.OK
    )
    pong = p.wait_for(
        lambda f: f.prop == Prop.STREAM_NET and ipv6.parse(unpack_prop(Prop.STREAM_NET, f.value)[0]).icmp_type == 129
    )
    pong = ipv6.parse(unpack_prop(Prop.STREAM_NET, pong.value)[0])
    assert (pong.src, pong.dst) == (node_addr, BR_ADDR) and pong.payload.endswith(b"are you there")

    # The NCP's own MLE multicast also reached the host, from its link-local address, not secured.
    mle = p.wait_for(
        lambda f: (
            f.prop == Prop.STREAM_NET_INSECURE
            and ipv6.parse(unpack_prop(f.prop, f.value)[0]).udp_ports == (19788, 19788)
        )
    )
    assert ipv6.parse(unpack_prop(mle.prop, mle.value)[0]).src == p.get(Prop.IPV6_LL_ADDR)

    # Ping from the namespace to the NCP's ML-EID is handed to the host.
    ncp_ml = p.get(Prop.IPV6_ML_ADDR)
    subprocess.run(
        ["ip", "netns", "exec", netns, "ping", "-6", "-c", "1", "-W", "1", "-I", str(ml_addr), str(ncp_ml)],
        capture_output=True,
        check=False,
    )
    echo = p.wait_for(
        lambda f: f.prop == Prop.STREAM_NET and ipv6.parse(unpack_prop(Prop.STREAM_NET, f.value)[0]).icmp_type == 128
    )
    assert ipv6.parse(unpack_prop(Prop.STREAM_NET, echo.value)[0]).dst == ncp_ml

    # Nodes come and go at run time; their addresses follow.
    assert control(sock, {"cmd": "node_add", "name": "door", "eui64": "aa:bb:cc:dd:ee:ff:00:11"})["ok"]
    door_addr, _ = wait_node_address(sock, "door", OMR)
    assert str(door_addr) in ip("-n", netns, "-6", "addr", "show", "dev", "mesh0").stdout
    assert control(sock, {"cmd": "node_remove", "name": "door"})["ok"]
    deadline = time.monotonic() + 5
    while str(door_addr) in ip("-n", netns, "-6", "addr", "show", "dev", "mesh0").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # Withdrawing the OMR prefix takes the SLAAC addresses away.
    p.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    p.request(Command.PROP_VALUE_REMOVE, Prop.THREAD_ON_MESH_NETS, pack("6C", OMR.network_address, 64))
    p.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)
    deadline = time.monotonic() + 5
    while str(node_addr) in ip("-n", netns, "-6", "addr", "show", "dev", "mesh0").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # On exit the TUN is gone; the namespace (ours) stays.
    p.stop()
    assert ip("-n", netns, "link", "show", "mesh0", check=False).returncode != 0
    assert netns in ip("netns", "list").stdout


def test_own_netns_is_created_and_deleted(sim, tmp_path):
    name = f"simo-{uuid.uuid4().hex[:8]}"
    try:
        p = sim("--netns", name, "--own-netns", "--mle-interval", "0")
        p.wait_for(is_status(Status.RESET_POWER_ON))
        assert name in ip("netns", "list").stdout
        assert ip("-n", name, "link", "show", "mesh0").returncode == 0
        p.stop()
        assert name not in ip("netns", "list").stdout
    finally:
        ip("netns", "del", name, check=False)


def node_state(sock, name):
    return next(n for n in control(sock, {"cmd": "state"})["nodes"] if n["name"] == name)


def test_rloc_reaches_the_node_program_and_dns_is_answered_by_the_ncp(sim, netns, tmp_path):
    """A program bound to a node's ML-EID answers on the node's RLOC, before and after it becomes a router;
    with --dnssd-server a DNS query to the NCP's address is answered NXDOMAIN by the NCP, never by the host."""
    sock = str(tmp_path / "ctl.sock")
    p = sim("--netns", netns, "--node", f"sensor:{NODE_EUI}", "--control", sock, "--leader-delay", "0.2",
            "--attach-delay", "0.1", "--mle-interval", "0", "--router-upgrade-delay", "2", "--dnssd-server")
    ds = bring_up_with_omr(p)
    ml_addr, _ = wait_node_address(sock, "sensor", ds.mesh_local_prefix)
    omr_addr, _ = wait_node_address(sock, "sensor", OMR)
    ncp_ml = p.get(Prop.IPV6_ML_ADDR)
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", textwrap.dedent(f"""
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("{ml_addr}", 7000))
            print("ready", flush=True)
            while True:
                data, peer = s.recvfrom(2000)
                s.sendto(b"echo:" + data, peer)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"

        def roundtrip(rloc: ipaddress.IPv6Address, text: bytes) -> None:
            # from the NCP's own ML-EID, as the host's kernel picks it for a mesh-local destination
            request = ipv6.build_udp(ncp_ml, rloc, 41000, 7000, text, hlim=64)
            assert unpack_prop(Prop.LAST_STATUS, p.set(Prop.STREAM_NET, (request, b"")).value) == Status.OK

            def is_echo(frame):
                if frame.prop != Prop.STREAM_NET or frame.command != Command.PROP_VALUE_IS:
                    return False
                pkt = ipv6.parse(unpack_prop(Prop.STREAM_NET, frame.value)[0])
                return pkt is not None and pkt.udp_ports == (7000, 41000)

            pkt = ipv6.parse(unpack_prop(Prop.STREAM_NET, p.wait_for(is_echo).value)[0])
            assert (pkt.src, pkt.dst, pkt.payload[8:]) == (rloc, ncp_ml, b"echo:" + text)

        child = node_state(sock, "sensor")
        assert child["role"] == "child"
        roundtrip(ipaddress.IPv6Address(child["rloc"]), b"as child")
        deadline = time.monotonic() + 10
        while (router := node_state(sock, "sensor"))["role"] != "router":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert router["rloc16"] & 0x3FF == 0 and router["rloc"] != child["rloc"]
        roundtrip(ipaddress.IPv6Address(router["rloc"]), b"as router")
    finally:
        server.kill()
        server.wait()

    # An unbound program's off-mesh traffic leaves from an OMR address, never from a mesh-local one
    # (the NCP would drop it, as the real one does).
    send = f"import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', ('{NAT64_DST}', 9))"
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", send], check=True, timeout=10)

    def to_nat64(frame):
        return frame.prop == Prop.STREAM_NET and ipv6.parse(unpack_prop(frame.prop, frame.value)[0]).dst == NAT64_DST

    out = p.wait_for(to_nat64)
    assert ipv6.parse(unpack_prop(out.prop, out.value)[0]).src in OMR

    query = bytes.fromhex("abcd01000001000000000000") + b"\x03foo\x07example\x03com\x00\x00\x1c\x00\x01"
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", textwrap.dedent(f"""
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("{omr_addr}", 0))
            s.settimeout(5)
            s.sendto(bytes.fromhex("{query.hex()}"), ("{ncp_ml}", 53))
            data, peer = s.recvfrom(2000)
            print(data.hex(), peer[0], peer[1])
        """)],
        capture_output=True, text=True, check=True, timeout=15,
    ).stdout.split()
    answer = bytes.fromhex(out[0])
    assert answer[:4] == bytes.fromhex("abcd8103") and answer[12:] == query[12:]  # NXDOMAIN, question echoed
    assert out[1:] == [str(ncp_ml), "53"]
    with pytest.raises(TimeoutError):
        p.wait_for(lambda f: f.prop == Prop.STREAM_NET and ipv6.parse(unpack_prop(f.prop, f.value)[0]).udp_ports
                   and ipv6.parse(unpack_prop(f.prop, f.value)[0]).udp_ports[1] == 53, timeout=1)
