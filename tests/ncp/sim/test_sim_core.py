"""The simulator's protocol core, driven directly with Spinel frames and a fake clock."""

import ipaddress
import random
import struct

import pytest

from ncp.meshcop import Dataset
from ncp.sim import SimConfig, SimNcp, ipv6
from ncp.sim.netdata import NET_FLAG_ON_MESH, NET_FLAG_PREFERRED, NET_FLAG_SLAAC, ROUTE_FLAG_NAT64
from ncp.spinel import Command, NetRole, Prop, SpinelFrame, Status, pack, pack_prop, unpack_prop

OMR = ipaddress.IPv6Network("fd11:22:33:44::/64")
OMR_FLAGS = NET_FLAG_ON_MESH | NET_FLAG_SLAAC | NET_FLAG_PREFERRED | 0x02  # + default route


class Host:
    """Plays the host side: sends frames with rotating TIDs, collects the replies."""

    def __init__(self, ncp: SimNcp):
        self.ncp = ncp
        self.now = 0.0
        self.tid = 0
        self.pushed: list[SpinelFrame] = []
        self.mesh: list[bytes] = []

    def _next_tid(self) -> int:
        self.tid = self.tid % 15 + 1
        return self.tid

    def request(self, command, prop=None, value=b"") -> SpinelFrame:
        tid = self._next_tid()
        self.ncp.handle_frame(SpinelFrame(0, tid, command, prop, value), self.now)
        frames, packets = self.ncp.take()
        self.mesh += packets
        replies = [f for f in frames if f.tid == tid]
        self.pushed += [f for f in frames if f.tid != tid]
        assert len(replies) == 1, frames
        return replies[0]

    def get(self, prop):
        reply = self.request(Command.PROP_VALUE_GET, prop)
        assert reply.prop == prop, reply
        return unpack_prop(prop, reply.value)

    def set(self, prop, value=None, raw=None) -> SpinelFrame:
        return self.request(Command.PROP_VALUE_SET, prop, raw if raw is not None else pack_prop(prop, value))

    def advance(self, seconds: float) -> list[SpinelFrame]:
        end = self.now + seconds
        while (deadline := self.ncp.next_deadline()) is not None and deadline <= end:
            self.now = deadline
            self.ncp.poll(self.now)
        self.now = end
        frames, _ = self.ncp.take()
        self.pushed += frames
        return frames

    def pushed_values(self, prop):
        return [
            unpack_prop(prop, f.value)
            for f in self.pushed
            if f.prop == prop and f.command == Command.PROP_VALUE_IS and f.tid == 0
        ]


def last_status(frame: SpinelFrame) -> int:
    assert frame.prop == Prop.LAST_STATUS, frame
    return unpack_prop(Prop.LAST_STATUS, frame.value)


@pytest.fixture
def host():
    ncp = SimNcp(SimConfig(leader_delay=0.5, attach_delay=0.2, mle_interval=0, seed=1))
    ncp.boot(0.0)
    h = Host(ncp)
    boot, _ = ncp.take()
    assert [last_status(f) for f in boot] == [Status.RESET_POWER_ON]
    assert boot[0].tid == 0
    return h


def form(host: Host, dataset: Dataset) -> None:
    assert host.set(Prop.THREAD_ACTIVE_DATASET_TLVS, dataset.to_tlvs()).prop == Prop.THREAD_ACTIVE_DATASET_TLVS
    host.set(Prop.NET_IF_UP, True)
    host.set(Prop.NET_STACK_UP, True)


def publish_omr(host: Host) -> None:
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    value = pack("6CbC", OMR.network_address, 64, True, OMR_FLAGS)
    reply = host.request(Command.PROP_VALUE_INSERT, Prop.THREAD_ON_MESH_NETS, value)
    assert reply.command == Command.PROP_VALUE_INSERTED
    reply = host.request(
        Command.PROP_VALUE_INSERT,
        Prop.THREAD_OFF_MESH_ROUTES,
        pack("6CbC", ipaddress.IPv6Address("64:ff9b::"), 96, True, ROUTE_FLAG_NAT64),
    )
    assert reply.command == Command.PROP_VALUE_INSERTED
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)


def test_identity(host):
    assert host.get(Prop.PROTOCOL_VERSION) == (4, 3)
    assert host.get(Prop.INTERFACE_TYPE) == 3
    assert host.get(Prop.NCP_VERSION).startswith("OPENTHREAD/")
    assert len(host.get(Prop.HWADDR)) == 8
    assert 32 in host.get(Prop.CAPS)  # CONFIG_FTD


def test_eui64_from_config():
    ncp = SimNcp(SimConfig(eui64=bytes.fromhex("0011223344556677")))
    assert Host(ncp).get(Prop.HWADDR) == bytes.fromhex("0011223344556677")


def test_complete_dataset_tlvs_make_leader(host):
    ds = Dataset.generate(rng=random.Random(3))
    form(host, ds)
    assert host.get(Prop.NET_ROLE) == NetRole.DETACHED
    host.advance(0.4)
    assert host.get(Prop.NET_ROLE) == NetRole.DETACHED
    host.advance(0.2)
    assert host.get(Prop.NET_ROLE) == NetRole.LEADER
    assert host.pushed_values(Prop.NET_ROLE)[-1] == NetRole.LEADER
    assert host.pushed_values(Prop.NET_PARTITION_ID)
    ml = host.get(Prop.IPV6_ML_ADDR)
    assert ml in ds.mesh_local_prefix
    table = [row[0] for row in host.get(Prop.IPV6_ADDRESS_TABLE)]
    assert ml in table and host.get(Prop.IPV6_LL_ADDR) in table
    assert host.get(Prop.THREAD_ACTIVE_DATASET_TLVS) == ds.to_tlvs()
    assert host.get(Prop.NET_NETWORK_NAME) == ds.network_name
    assert host.get(Prop.MAC_15_4_PANID) == ds.pan_id


def test_per_property_setters_alone_stay_detached(host):
    ds = Dataset.generate(rng=random.Random(4))
    for prop, value in [
        (Prop.PHY_CHAN, 15),
        (Prop.MAC_15_4_PANID, ds.pan_id),
        (Prop.NET_NETWORK_NAME, "lab"),
        (Prop.NET_XPANID, ds.extended_pan_id),
        (Prop.NET_NETWORK_KEY, ds.network_key),
        (Prop.NET_PSKC, ds.pskc),
        (Prop.IPV6_ML_PREFIX, (ds.mesh_local_prefix.network_address, 64)),
    ]:
        reply = host.set(prop, value)
        assert reply.command == Command.PROP_VALUE_IS and reply.prop == prop
        assert unpack_prop(prop, reply.value) == value
    host.set(Prop.NET_IF_UP, True)
    host.set(Prop.NET_STACK_UP, True)
    host.advance(30)
    assert host.get(Prop.NET_ROLE) == NetRole.DETACHED
    assert NetRole.LEADER not in host.pushed_values(Prop.NET_ROLE)
    # The values did land in the dataset.
    assert host.get(Prop.NET_NETWORK_NAME) == "lab"


def test_network_name_must_be_nul_terminated(host):
    reply = host.set(Prop.NET_NETWORK_NAME, raw=b"lab")
    assert last_status(reply) == Status.PARSE_ERROR
    reply = host.set(Prop.NET_NETWORK_NAME, raw=b"lab\0")
    assert reply.prop == Prop.NET_NETWORK_NAME
    assert host.get(Prop.NET_NETWORK_NAME) == "lab"


def test_unknown_property_and_bad_values(host):
    assert last_status(host.request(Command.PROP_VALUE_GET, 0x3FFF)) == Status.PROP_NOT_FOUND
    assert last_status(host.set(0x3FFF, raw=b"\x01")) == Status.PROP_NOT_FOUND
    assert last_status(host.set(Prop.NET_NETWORK_KEY, raw=b"short")) == Status.PARSE_ERROR
    assert last_status(host.set(Prop.THREAD_ACTIVE_DATASET_TLVS, raw=b"\x0e\x08\x00")) == Status.INVALID_ARGUMENT
    assert last_status(host.set(Prop.NET_STACK_UP, True)) == Status.INVALID_STATE  # interface down


def test_reset_answers_power_on_and_loses_runtime_state(host):
    ds = Dataset.generate(rng=random.Random(5))
    form(host, ds)
    host.advance(1)
    publish_omr(host)
    assert host.get(Prop.NET_ROLE) == NetRole.LEADER
    host.ncp.handle_frame(SpinelFrame(0, 3, Command.RESET), host.now)
    frames, _ = host.ncp.take()
    assert [(f.tid, last_status(f)) for f in frames] == [(0, Status.RESET_POWER_ON)]
    assert host.get(Prop.NET_ROLE) == NetRole.DISABLED
    assert host.get(Prop.NET_STACK_UP) is False
    assert host.get(Prop.THREAD_ON_MESH_NETS) == []
    assert host.get(Prop.THREAD_OFF_MESH_ROUTES) == []
    # The dataset is in "flash": bringing the stack up again forms the same network.
    assert host.get(Prop.THREAD_ACTIVE_DATASET_TLVS) == ds.to_tlvs()
    host.set(Prop.NET_IF_UP, True)
    host.set(Prop.NET_STACK_UP, True)
    host.advance(1)
    assert host.get(Prop.NET_ROLE) == NetRole.LEADER


def test_persisted_state_survives_restart(host):
    ds = Dataset.generate(rng=random.Random(6))
    saved = {}
    host.ncp.on_persist = saved.update
    form(host, ds)
    again = Host(SimNcp(SimConfig(leader_delay=0.1, mle_interval=0), persisted=saved))
    assert again.get(Prop.THREAD_ACTIVE_DATASET_TLVS) == ds.to_tlvs()
    again.set(Prop.NET_IF_UP, True)
    again.set(Prop.NET_STACK_UP, True)
    again.advance(0.2)
    assert again.get(Prop.NET_ROLE) == NetRole.LEADER
    assert again.get(Prop.HWADDR) == host.get(Prop.HWADDR)


def test_netdata_insert_publish_and_slaac(host):
    ds = Dataset.generate(rng=random.Random(7))
    host.ncp.add_node("sensor", bytes.fromhex("1122334455667788"), host.now)
    form(host, ds)
    host.advance(1)
    # Before publishing: inserts need ALLOW_LOCAL_NET_DATA_CHANGE.
    value = pack("6CbC", OMR.network_address, 64, True, OMR_FLAGS)
    assert last_status(host.request(Command.PROP_VALUE_INSERT, Prop.THREAD_ON_MESH_NETS, value)) == Status.INVALID_STATE
    host.pushed.clear()
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    reply = host.request(Command.PROP_VALUE_INSERT, Prop.THREAD_ON_MESH_NETS, value)
    assert reply.command == Command.PROP_VALUE_INSERTED and reply.value == value
    assert not host.pushed_values(Prop.THREAD_ON_MESH_NETS)  # not published yet
    assert host.ncp.mesh_config().addresses == {
        a for a in host.ncp.mesh_config().addresses if a in ds.mesh_local_prefix
    }
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)
    pushed = host.pushed_values(Prop.THREAD_ON_MESH_NETS)[-1]
    published = [row for row in pushed if not row[4]]
    assert [(row[0], row[1], row[3]) for row in published] == [(OMR.network_address, 64, OMR_FLAGS)]
    assert any(row[4] for row in pushed)  # the local copy too
    netdata = host.pushed_values(Prop.THREAD_LEADER_NETWORK_DATA)[-1]
    assert OMR.network_address.packed[:8] in netdata
    # The node got a SLAAC address in the OMR prefix besides its ML-EID; the NCP too.
    cfg = host.ncp.mesh_config()
    assert any(a in OMR for a in cfg.addresses) and any(a in ds.mesh_local_prefix for a in cfg.addresses)
    assert OMR in cfg.on_link and ipaddress.IPv6Network("::/0") in cfg.routes
    assert any(row[0] in OMR for row in host.get(Prop.IPV6_ADDRESS_TABLE))
    # Removing the prefix takes the SLAAC addresses away.
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    reply = host.request(Command.PROP_VALUE_REMOVE, Prop.THREAD_ON_MESH_NETS, pack("6C", OMR.network_address, 64))
    assert reply.command == Command.PROP_VALUE_REMOVED
    assert (
        last_status(
            host.request(Command.PROP_VALUE_REMOVE, Prop.THREAD_ON_MESH_NETS, pack("6C", OMR.network_address, 64))
        )
        == Status.ITEM_NOT_FOUND
    )
    host.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)
    assert host.pushed_values(Prop.THREAD_ON_MESH_NETS)[-1] == []
    assert not any(a in OMR for a in host.ncp.mesh_config().addresses)


def test_child_table_and_neighbors(host):
    form(host, Dataset.generate(rng=random.Random(8)))
    host.advance(0.6)
    host.ncp.add_node("a", bytes.fromhex("0000000000000001"), host.now)
    host.ncp.add_node("b", bytes.fromhex("0000000000000002"), host.now)
    assert host.get(Prop.THREAD_CHILD_TABLE) == []  # attaching takes a moment
    host.advance(0.3)
    children = host.get(Prop.THREAD_CHILD_TABLE)
    assert sorted(c[0] for c in children) == [bytes.fromhex("0000000000000001"), bytes.fromhex("0000000000000002")]
    leader_rloc = host.get(Prop.THREAD_RLOC16)
    assert all(c[1] & 0xFC00 == leader_rloc and c[1] & 0x1FF for c in children)
    assert len({c[1] for c in children}) == 2
    assert host.pushed_values(Prop.THREAD_CHILD_TABLE)[-1] == children
    inserted = [f for f in host.pushed if f.command == Command.PROP_VALUE_INSERTED]
    assert len(inserted) == 2
    neighbors = host.get(Prop.THREAD_NEIGHBOR_TABLE)
    assert {n[0] for n in neighbors} == {c[0] for c in children} and all(n[6] for n in neighbors)
    assert not [f for f in host.pushed if f.prop == Prop.THREAD_NEIGHBOR_TABLE]  # polled only
    assert host.get(Prop.THREAD_ROUTER_TABLE)[0][1] == leader_rloc
    host.pushed.clear()
    host.ncp.remove_node("a", host.now)
    host.advance(0)
    assert [c[0] for c in host.get(Prop.THREAD_CHILD_TABLE)] == [bytes.fromhex("0000000000000002")]
    assert next(f.command for f in host.pushed if f.prop == Prop.THREAD_CHILD_TABLE) == Command.PROP_VALUE_REMOVED


def test_stream_net_both_ways(host):
    ds = Dataset.generate(rng=random.Random(9))
    host.ncp.add_node("n", None, 0)
    form(host, ds)
    host.advance(1)
    publish_omr(host)
    node_addr = next(a for a in host.ncp.mesh_config().addresses if a in OMR)
    peer = ipaddress.IPv6Address("2001:db8::1")
    # Mesh -> host.
    pkt = ipv6.build_udp(node_addr, peer, 5000, 5683, b"hello")
    host.ncp.handle_mesh_packet(pkt, host.now)
    frames, _ = host.ncp.take()
    assert [f.prop for f in frames] == [Prop.STREAM_NET]
    data, _meta = unpack_prop(Prop.STREAM_NET, frames[0].value)
    assert data == pkt
    assert frames[0].value[:2] == struct.pack("<H", len(pkt))
    # Host -> mesh, answered with LAST_STATUS OK.
    reply_pkt = ipv6.build_udp(peer, node_addr, 5683, 5000, b"world")
    reply = host.set(Prop.STREAM_NET, (reply_pkt, b""))
    assert last_status(reply) == Status.OK
    assert host.mesh == [reply_pkt]
    # Kernel noise (router solicitation) is not mesh traffic.
    rs = ipv6._header(node_addr, ipaddress.IPv6Address("ff02::2"), 58, 8, 255) + bytes([133, 0, 0, 0, 0, 0, 0, 0])
    host.ncp.handle_mesh_packet(rs, host.now)
    assert host.ncp.take() == ([], [])


def test_echo_to_ncp_goes_to_host_unless_offload_all(host):
    form(host, Dataset.generate(rng=random.Random(10)))
    host.ncp.add_node("n", None, 0)
    host.advance(1)
    node = next(iter(host.ncp.mesh_config().addresses))
    ml_eid = host.get(Prop.IPV6_ML_ADDR)
    echo = ipv6._header(node, ml_eid, 58, 12, 64) + bytes([128, 0, 0, 0, 0, 1, 0, 1]) + b"ping"
    host.ncp.handle_mesh_packet(echo, host.now)
    frames, to_mesh = host.ncp.take()
    assert [f.prop for f in frames] == [Prop.STREAM_NET] and not to_mesh
    host.set(Prop.IPV6_ICMP_PING_OFFLOAD_MODE, 3)
    host.ncp.handle_mesh_packet(echo, host.now)
    frames, to_mesh = host.ncp.take()
    assert not frames
    reply = ipv6.parse(to_mesh[0])
    assert reply.icmp_type == 129 and reply.dst == node and reply.payload.endswith(b"ping")
    assert ipv6.checksum(reply.src, reply.dst, 58, reply.payload) == 0


def test_mle_multicast_forwarded_to_host():
    ncp = SimNcp(SimConfig(leader_delay=0.1, mle_interval=5, seed=2))
    h = Host(ncp)
    form(h, Dataset.generate(rng=random.Random(11)))
    h.advance(11)
    mle = [ipv6.parse(unpack_prop(Prop.STREAM_NET, f.value)[0]) for f in h.pushed if f.prop == Prop.STREAM_NET]
    assert len(mle) >= 2
    assert all(p.dst == ipaddress.IPv6Address("ff02::1") and p.udp_ports == (19788, 19788) for p in mle)
    assert all(p.src == h.get(Prop.IPV6_LL_ADDR) for p in mle)
