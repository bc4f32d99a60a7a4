"""Simulated NCPs sharing a radio (ncp/sim/radio.py): one leader, one partition, one merged network data.

The cores are driven with Spinel frames and a fake clock, as in test_sim_core.py; :class:`Air` carries each
core's announcements to the others (what ncp/sim/radio_socket.py does over loopback UDP).
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.meshcop import Dataset
from ncp.netdata import ExternalRoute, OnMeshPrefix
from ncp.sim.radio import (
    HEADER_LEN,
    Announcement,
    RadioError,
    decode_announcement,
    encode_announcement,
    key_hash,
)
from ncp.spinel import NetRole, Prop, pack
from tests.ncp.sim.test_sim_core import OMR, OMR_FLAGS, Host, form, make_host

DEFAULT = ipaddress.IPv6Network("::/0")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
THEIR_OMR = ipaddress.IPv6Network("fd99:1:2:3::/64")

# --- the codec -------------------------------------------------------------------------------------------

prefixes = st.builds(lambda raw, plen: ipaddress.IPv6Network((raw, plen), strict=False),
                     st.binary(min_size=16, max_size=16), st.integers(0, 128))
on_mesh = st.builds(OnMeshPrefix, prefixes, st.integers(0, 255), st.booleans(), st.integers(0, 255))
routes = st.builds(ExternalRoute, prefixes, st.integers(0, 255), st.booleans())
announcements = st.builds(
    Announcement,
    ext_addr=st.binary(min_size=8, max_size=8),
    rloc16=st.integers(0, 0xFFFE),
    role=st.sampled_from(NetRole),
    partition_id=st.integers(0, 0xFFFFFFFF),
    xpanid=st.binary(min_size=8, max_size=8),
    key_hash=st.binary(min_size=8, max_size=8),
    prefixes=st.lists(on_mesh, max_size=6).map(tuple),
    routes=st.lists(routes, max_size=6).map(tuple),
)


@given(announcements)
def test_announcements_round_trip(a: Announcement):
    decoded = decode_announcement(encode_announcement(a))
    stamp = a.rloc16
    assert decoded.ext_addr == a.ext_addr and decoded.rloc16 == a.rloc16 and decoded.role == a.role
    assert (decoded.partition_id, decoded.network) == (a.partition_id, a.network)
    # the entries come back sorted and stamped with the sender's RLOC16 (duplicates stay)
    assert decoded.prefixes == tuple(sorted(OnMeshPrefix(p.prefix, p.flags, p.stable, p.flags_ext, stamp)
                                            for p in a.prefixes))
    assert decoded.routes == tuple(sorted(ExternalRoute(r.prefix, r.flags, r.stable, stamp) for r in a.routes))
    assert decode_announcement(encode_announcement(decoded)) == decoded


@given(announcements, st.data())
def test_damaged_announcements_are_refused_or_decoded(a: Announcement, data):
    wire = bytearray(encode_announcement(a))
    cut = data.draw(st.integers(0, len(wire)))
    flip = data.draw(st.integers(0, len(wire) - 1))
    wire[flip] ^= data.draw(st.integers(1, 255))
    for damaged in (bytes(wire), bytes(wire[:cut])):
        try:
            decode_announcement(damaged)
        except RadioError:
            pass


def test_what_is_refused():
    a = Announcement(bytes(8), 0x0400, NetRole.LEADER, 1, bytes(8), bytes(8))
    wire = encode_announcement(a)
    assert len(wire) == HEADER_LEN
    for bad, why in ((b"XXXX" + wire[4:], "not a shared-radio"), (wire[:4] + b"\x02" + wire[5:], "version 2"),
                     (wire[:15] + b"\x09" + wire[16:], "unknown role 9"), (wire[:-1], "not a shared-radio"),
                     (wire + b"\x02\x05\x00", "bad network data")):
        with pytest.raises(RadioError, match=why):
            decode_announcement(bad)
    with pytest.raises(RadioError):
        encode_announcement(Announcement(bytes(7), 0, NetRole.LEADER, 0, bytes(8), bytes(8)))


def test_the_network_key_is_never_sent():
    ds = Dataset.generate(rng=random.Random(3))
    assert ds.network_key is not None
    a = Announcement(bytes(8), 0, NetRole.LEADER, 0, ds.extended_pan_id or bytes(8), key_hash(ds.network_key))
    assert ds.network_key not in encode_announcement(a)
    assert key_hash(ds.network_key) != key_hash(bytes(16))


# --- two NCPs on one radio --------------------------------------------------------------------------------


class Air:
    """Carries every core's announcements to the others while ``up``."""

    def __init__(self, *hosts: Host):
        self.hosts = list(hosts)
        self.up = True

    def carry(self) -> None:
        for _ in range(50):
            moved = False
            for h in self.hosts:
                for datagram in h.ncp.take_radio():
                    moved = True
                    for other in self.hosts:
                        if other is not h and self.up and other.ncp.radio is not None:
                            other.ncp.radio_heard(datagram, other.now)
            if not moved:
                return
        raise AssertionError("announcements never settle")

    def advance(self, seconds: float, step: float = 0.1) -> None:
        for _ in range(round(seconds / step)):
            for h in self.hosts:
                h.advance(step)
            self.carry()


def radio_host(seed: int, **config) -> Host:
    return make_host(seed=seed, shared_radio=True, leader_delay=0.3, **config)


def publish(host: Host, air: Air, prefixes=(), routes=()) -> None:
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    for prefix, flags in prefixes:
        host.insert(Prop.THREAD_ON_MESH_NETS, pack("6CbC", prefix.network_address, prefix.prefixlen, True, flags))
    for prefix, flags in routes:
        host.insert(Prop.THREAD_OFF_MESH_ROUTES, pack("6CbC", prefix.network_address, prefix.prefixlen, True, flags))
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)
    air.carry()


def leader_entries(host: Host) -> set[tuple[str, int]]:
    prefixes = {(str(ipaddress.IPv6Network((p.prefix, p.prefix_length))), p.rloc16)
                for p in host.get(Prop.THREAD_ON_MESH_NETS) if not p.is_local}
    routes = {(str(ipaddress.IPv6Network((r.prefix, r.prefix_length))), r.rloc16)
              for r in host.get(Prop.THREAD_OFF_MESH_ROUTES) if not r.is_local}
    return prefixes | routes


@pytest.fixture
def two() -> tuple[Host, Host, Air, Dataset]:
    """A formed the network and leads; B, given the same dataset, attached to it as a router."""
    a, b = radio_host(1), radio_host(2)
    air = Air(a, b)
    ds = Dataset.generate(rng=random.Random(7))
    form(a, ds)
    air.carry()
    air.advance(1)
    assert a.get(Prop.NET_ROLE) == NetRole.LEADER
    form(b, ds)
    air.carry()
    air.advance(1)
    return a, b, air, ds


def aloc(h: Host) -> list[ipaddress.IPv6Address]:
    return [e.address for e in h.get(Prop.IPV6_ADDRESS_TABLE) if e.address.packed[-2:] == b"\xfc\x00"]


def test_a_second_ncp_attaches_as_a_router_of_the_leaders_partition(two):
    a, b, _air, _ds = two
    assert b.get(Prop.NET_ROLE) == NetRole.ROUTER
    assert b.get(Prop.NET_PARTITION_ID) == a.get(Prop.NET_PARTITION_ID)
    rloc_a, rloc_b = a.get(Prop.THREAD_RLOC16), b.get(Prop.THREAD_RLOC16)
    assert rloc_a != rloc_b and rloc_a & 0x3FF == rloc_b & 0x3FF == 0
    assert b.get(Prop.THREAD_LEADER_RID) == a.get(Prop.THREAD_LEADER_RID) == rloc_a >> 10
    assert b.get(Prop.THREAD_LEADER_ADDR) == a.get(Prop.THREAD_LEADER_ADDR)
    assert len(aloc(a)) == 1 and aloc(b) == [], "only the leader has the leader ALOC"
    assert sorted(r.rloc16 for r in b.get(Prop.THREAD_ROUTER_TABLE)) == sorted((rloc_a, rloc_b))
    assert [p["role"] for p in b.ncp.state()["radio"]["peers"]] == ["leader"]


def test_both_serve_the_merged_network_data_and_the_leader_carries_shared_routes(two):
    a, b, air, _ds = two
    rloc_a, rloc_b = a.get(Prop.THREAD_RLOC16), b.get(Prop.THREAD_RLOC16)
    b.ncp.add_node("n1", None, b.now, kind="mtd")
    publish(a, air, prefixes=[(OMR, OMR_FLAGS)], routes=[(NAT64, 0x20), (DEFAULT, 0)])
    publish(b, air, routes=[(DEFAULT, 0)])
    air.advance(1)
    merged = {(str(OMR), rloc_a), (str(NAT64), rloc_a), ("::/0", rloc_a), ("::/0", rloc_b)}
    assert leader_entries(a) == leader_entries(b) == merged
    # B's node configured an address in A's OMR prefix; ::/0 (published by both) and the NAT64 prefix
    # lead to A, the leader; on-mesh prefixes are on the link of both
    cfg_a, cfg_b = a.ncp.mesh_config(), b.ncp.mesh_config()
    assert any(addr in OMR for addr in cfg_b.addresses)
    assert cfg_a.routes == {DEFAULT, NAT64} and cfg_b.routes == frozenset()
    assert OMR in cfg_a.on_link and OMR in cfg_b.on_link
    # a route B publishes at high preference is carried by B
    publish(b, air, routes=[(DEFAULT, 0x40)])
    air.advance(0.5)
    assert b.ncp.mesh_config().routes == {DEFAULT} and a.ncp.mesh_config().routes == {NAT64}


def test_the_router_leads_when_the_leader_falls_silent(two):
    a, b, air, _ds = two
    publish(a, air, prefixes=[(OMR, OMR_FLAGS)], routes=[(DEFAULT, 0)])
    publish(b, air, prefixes=[(THEIR_OMR, OMR_FLAGS)], routes=[(DEFAULT, 0)])
    partition = a.get(Prop.NET_PARTITION_ID)
    air.up = False
    air.advance(b.ncp.config.radio_timeout * 0.6)
    assert b.get(Prop.NET_ROLE) == NetRole.ROUTER, "not before the timeout"
    air.advance(b.ncp.config.radio_timeout)
    assert b.get(Prop.NET_ROLE) == NetRole.LEADER and b.get(Prop.NET_PARTITION_ID) != partition
    rloc_b = b.get(Prop.THREAD_RLOC16)
    assert leader_entries(b) == {(str(THEIR_OMR), rloc_b), ("::/0", rloc_b)}
    assert b.ncp.mesh_config().routes == {DEFAULT}
    # A, alone, still leads its partition; back on the air the two partitions merge into one
    air.up = True
    air.advance(1)
    roles = sorted((a.get(Prop.NET_ROLE), b.get(Prop.NET_ROLE)))
    assert roles == [NetRole.ROUTER, NetRole.LEADER]
    assert a.get(Prop.NET_PARTITION_ID) == b.get(Prop.NET_PARTITION_ID)
    assert leader_entries(a) == leader_entries(b) and len(leader_entries(a)) == 4


def test_ncps_of_another_network_do_not_merge():
    a, b = radio_host(1), radio_host(2)
    air = Air(a, b)
    form(a, Dataset.generate(rng=random.Random(7)))
    form(b, Dataset.generate(rng=random.Random(8)))
    air.carry()
    air.advance(2)
    assert a.get(Prop.NET_ROLE) == b.get(Prop.NET_ROLE) == NetRole.LEADER
    assert a.ncp.state()["radio"]["peers"] == [] and a.ncp.state()["radio"]["counters"]["rx_other_network"] > 0


def test_without_the_option_nothing_is_announced():
    h = make_host()
    form(h, Dataset.generate(rng=random.Random(7)))
    h.advance(5)
    assert h.ncp.radio is None and h.ncp.take_radio() == [] and "radio" not in h.ncp.state()
    assert h.get(Prop.NET_ROLE) == NetRole.LEADER
