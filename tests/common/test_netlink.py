"""common/netlink.py: the rtnetlink codec (properties) and the requests on a real kernel (in a namespace)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import netlink
from common.netlink import Message, NetlinkDecodeError
from tests.conftest import ROOT

attrs = st.lists(st.tuples(st.integers(0, 0x3FFF), st.binary(max_size=40)), max_size=8)


@given(attrs)
def test_attributes_decode_as_encoded_first_of_a_type_winning(items: list[tuple[int, bytes]]) -> None:
    expected: dict[int, bytes] = {}
    for kind, value in items:
        expected.setdefault(kind, value)
    assert netlink.decode_attrs(netlink.encode_attrs(items)) == expected


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
                          st.binary(max_size=24), attrs), max_size=5))
def test_messages_decode_as_encoded(msgs: list[tuple[int, int, int, bytes, list[tuple[int, bytes]]]]) -> None:
    header_pad = [h + bytes(-len(h) % 4) for _, _, _, h, _ in msgs]  # family headers are 4-byte multiples
    wire = b"".join(netlink.encode(k, f, s, h, a) for (k, f, s, _, a), h in zip(msgs, header_pad, strict=True))
    got = netlink.decode(wire)
    assert [(m.type, m.flags, m.seq) for m in got] == [(k, f, s) for k, f, s, _, _ in msgs]
    for m, (_, _, _, _, a), h in zip(got, msgs, header_pad, strict=True):
        assert m.payload.startswith(h)
        assert netlink.decode_attrs(m.payload[len(h):]) == netlink.decode_attrs(netlink.encode_attrs(a))


@given(st.binary(max_size=300))
def test_bad_bytes_raise_only_the_decode_error(data: bytes) -> None:
    for decode in (netlink.decode, netlink.decode_attrs,
                   lambda d: netlink.decode_link(Message(netlink.RTM_NEWLINK, 0, 0, d)),
                   lambda d: netlink.decode_route(Message(netlink.RTM_NEWROUTE, 0, 0, d)),
                   lambda d: netlink.error_of(Message(netlink.NLMSG_ERROR, 0, 0, d))):
        try:
            decode(data)
        except NetlinkDecodeError:
            pass


def test_a_route_reads_back_its_fields_and_multipath_interfaces() -> None:
    hops = netlink.RTNEXTHOP.pack(8, 0, 0, 7) + netlink.RTNEXTHOP.pack(8, 0, 0, 9)
    header = netlink.RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 3, 0, netlink.RTN_UNICAST, 0)
    wire = netlink.encode(netlink.RTM_NEWROUTE, 0, 1, header, [
        (netlink.RTA_TABLE, netlink.U32.pack(254)), (netlink.RTA_GATEWAY, bytes([10, 0, 0, 1])),
        (netlink.RTA_MULTIPATH, hops)])
    route = netlink.decode_route(netlink.decode(wire)[0])
    assert (route.table, route.oif, route.nexthops, route.interface) == (254, None, (7, 9), 7)
    assert route.gateway == bytes([10, 0, 0, 1])


PROBE = """
import json, socket, subprocess
from common.netlink import NetlinkError, Rtnl
def ip(*a): return subprocess.run(["ip", *a], capture_output=True, text=True, check=True).stdout
out = {}
with Rtnl() as rt:
    link = rt.link(name="nl0")
    out["missing"] = rt.link(name="nl-none") is None
    out["by_index"] = rt.link(index=link.index).name
    rt.set_link(link.index, mtu=1280)
    rt.set_link(link.index, up=True)
    rt.set_link(rt.link(name="nl1").index, up=True)
    after = rt.link(name="nl0")
    out["mtu_up"] = [after.mtu, bool(after.flags & 1)]
    rt.add_address(link.index, "fd00:77::1", 64, flags=0x02, preferred=0, valid=0xFFFFFFFF)
    rt.add_address(link.index, "10.77.0.1", 24)
    try:
        rt.add_address(link.index, "fd00:77::1", 64, flags=0x02)
    except NetlinkError as exc:
        out["again"] = exc.code
    out["addr6"] = ip("-6", "addr", "show", "nl0")
    rt.replace_route("100.64.77.0/24", link.index)
    rt.replace_route("fd64:77::/96", link.index, metric=512)
    rt.replace_route("fd64:77::/96", link.index, metric=512)
    out["routes"] = ip("route") + ip("-6", "route")
    ip("route", "add", "default", "via", "10.77.0.2")
    ip("-6", "route", "add", "default", "via", "fd00:77::2", "dev", "nl0")
    ip("-6", "route", "add", "unreachable", "default", "metric", "9999")
    out["defaults"] = [[r.family, r.interface, r.gateway.hex()] for f in (socket.AF_INET, socket.AF_INET6)
                       for r in rt.default_routes(f)]
    rt.delete_route("fd64:77::/96", link.index, metric=512)
    rt.delete_address(link.index, "fd00:77::1", 64)
    try:
        rt.delete_route("fd64:77::/96", link.index, metric=512)
    except NetlinkError as exc:
        out["gone"] = exc.code
    out["after"] = ip("-6", "route") + ip("-6", "addr", "show", "nl0")
    rt.delete_link(link.index)
    out["deleted"] = rt.link(name="nl0") is None
    out["index"] = link.index
print(json.dumps(out))
"""


@pytest.mark.root
def test_requests_on_a_real_kernel() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"nl-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "add", "nl0", "type", "veth", "peer", "name", "nl1"],
                       check=True)
        run = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE], cwd=ROOT, check=True,
                             capture_output=True, text=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    out = json.loads(run.stdout)
    assert out["missing"] and out["by_index"] == "nl0" and out["mtu_up"] == [1280, True]
    assert out["again"] == 17  # EEXIST, what wpan.py tells apart
    assert "inet6 fd00:77::1/64 scope global nodad deprecated" in out["addr6"]
    assert "preferred_lft 0sec" in out["addr6"]
    assert "100.64.77.0/24 dev nl0 proto static" in out["routes"]
    assert "fd64:77::/96 dev nl0 proto static metric 512" in out["routes"]
    assert out["routes"].count("fd64:77::/96") == 1  # replaced, not added twice
    # the unreachable default is not an upstream
    assert out["defaults"] == [[socket.AF_INET, out["index"], "0a4d0002"],
                               [socket.AF_INET6, out["index"], "fd000077" + "0" * 22 + "02"]]
    assert out["gone"] == 3  # ESRCH
    assert "fd64:77::" not in out["after"] and "fd00:77::1" not in out["after"]
    assert out["deleted"]
