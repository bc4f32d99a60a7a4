"""The driver against what real OpenThread NCPs sent (recordings made by tests/interop on real NCPs).

These run everywhere, so a machine without the real peers still checks the real encodings: every value
the NCPs sent decodes, the tables read as records, and the Thread component's dataset hand-over picks
the way each NCP generation takes it.
"""

from __future__ import annotations

import ipaddress

import pytest

from gatewayd.thread.network import set_active_dataset
from ncp.client import NcpClient
from ncp.meshcop import Dataset
from ncp.record import frames, load
from ncp.spinel import Command, Prop, Status, prop_fmt, unpack_prop
from ncp.spinel.dataset import dataset_from_props
from ncp.spinel.tables import AddressEntry, ChildAddressesEntry, ChildEntry, OffMeshRoute, OnMeshNet, RouterEntry
from tests.ncp.replay import RECORDINGS, ReplayLink, exchanges

ALL = sorted(RECORDINGS.glob("*.jsonl"))
THREE_NODES = {p.stem[p.stem.rindex("ot-"):]: p for p in ALL if p.stem.startswith("three_nodes")}
VALUE_COMMANDS = (Command.PROP_VALUE_IS, Command.PROP_VALUE_INSERTED, Command.PROP_VALUE_REMOVED)


def test_recordings_exist_for_both_openthread_generations() -> None:
    assert set(THREE_NODES) == {"ot-current", "ot-2023"}, [p.name for p in ALL]


@pytest.mark.parametrize("recording", ALL, ids=[p.stem for p in ALL])
def test_every_value_a_real_ncp_sent_decodes(recording) -> None:
    decoded = 0
    for frame in frames(load(recording), "ncp"):
        if frame.prop is None or frame.command not in VALUE_COMMANDS or prop_fmt(frame.prop) is None:
            continue
        unpack_prop(frame.prop, frame.value, element=frame.command != Command.PROP_VALUE_IS)  # raises if not
        decoded += 1
    assert decoded > 20


def values(recording, prop: int) -> list:
    """Every whole table the NCP sent for ``prop`` (IS)."""
    return [unpack_prop(f.prop, f.value) for f in frames(load(recording), "ncp")
            if f.prop == prop and f.command == Command.PROP_VALUE_IS]


def rows(recording, prop: int) -> list:
    """Every row the NCP sent for ``prop``: those of whole tables and those INSERTED/REMOVED alone."""
    out = [row for table in values(recording, prop) for row in table]
    return out + [unpack_prop(f.prop, f.value, element=True) for f in frames(load(recording), "ncp")
                  if f.prop == prop and f.command in VALUE_COMMANDS[1:]]


@pytest.mark.parametrize("generation", sorted(THREE_NODES))
def test_real_tables_read_as_records(generation: str) -> None:
    recording = THREE_NODES[generation]
    tables = [t for t in values(recording, Prop.IPV6_ADDRESS_TABLE) if t]
    assert tables and all(isinstance(e, AddressEntry) for t in tables for e in t)
    # 25-byte entries: no flags byte, lifetimes 0 or infinite
    assert {e.flags for t in tables for e in t} == {None}
    assert {e.valid_lifetime for t in tables for e in t} <= {0, 0xFFFFFFFF}
    assert any(e.address.is_link_local for e in tables[-1])
    children = rows(recording, Prop.THREAD_CHILD_TABLE)
    assert len(children) >= 3 and all(isinstance(c, ChildEntry) for c in children)
    nets = rows(recording, Prop.THREAD_ON_MESH_NETS)
    assert nets and all(isinstance(n, OnMeshNet) and n.network.prefixlen == 64 for n in nets)
    routes = rows(recording, Prop.THREAD_OFF_MESH_ROUTES)
    assert routes and all(isinstance(r, OffMeshRoute) for r in routes)
    # the router neighbor announced on its own (INSERTED keeps the struct length): its true RLOC16
    router_rloc16s = {r.rloc16 for t in values(recording, Prop.THREAD_ROUTER_TABLE) for r in t}
    announced = [n for n in rows(recording, Prop.THREAD_NEIGHBOR_TABLE) if not n.is_child]
    assert announced and {n.rloc16 for n in announced} <= router_rloc16s, (announced, router_rloc16s)
    routers = values(recording, Prop.THREAD_ROUTER_TABLE)
    assert routers and all(isinstance(r, RouterEntry) for t in routers for r in t) and len(routers[-1]) == 2
    registered = rows(recording, Prop.THREAD_CHILD_TABLE_ADDRESSES)
    assert registered and all(isinstance(e, ChildAddressesEntry) for e in registered)
    assert [e for e in registered if not e.addresses], "the FTD child registered no addresses"
    assert [e for e in registered if e.addresses], "the MTD child registered its addresses"


def test_the_2023_ncp_refuses_dataset_tlvs_and_takes_the_dataset_as_properties() -> None:
    pairs, _ = exchanges(load(THREE_NODES["ot-2023"]))
    tlvs = [reply for request, reply in pairs if request.prop == Prop.THREAD_ACTIVE_DATASET_TLVS]
    assert tlvs and unpack_prop(Prop.LAST_STATUS, tlvs[0].value) == Status.PROP_NOT_FOUND
    sent, echoed = next((rq, rp) for rq, rp in pairs if rq.prop == Prop.THREAD_ACTIVE_DATASET)
    assert echoed.prop == Prop.THREAD_ACTIVE_DATASET
    ours = dataset_from_props(unpack_prop(Prop.THREAD_ACTIVE_DATASET, sent.value))
    theirs = dataset_from_props(unpack_prop(Prop.THREAD_ACTIVE_DATASET, echoed.value))
    assert theirs.network_name == ours.network_name and theirs.network_key == ours.network_key
    assert theirs.mesh_local_prefix == ours.mesh_local_prefix and theirs.channel == ours.channel


@pytest.mark.parametrize(("generation", "way"), [("ot-current", "THREAD_ACTIVE_DATASET_TLVS"),
                                                  ("ot-2023", "THREAD_ACTIVE_DATASET")])
async def test_the_driver_hands_each_generation_its_dataset_and_reads_its_tables(generation, way) -> None:
    link = ReplayLink(THREE_NODES[generation])
    client = NcpClient(link, request_timeout=1.0)
    await client.start()
    try:
        assert client.info["protocol_version"] == "4.3"
        await set_active_dataset(client, Dataset.generate(name="replay", channel=15))
        assert client.features["dataset"] == way
        addresses = await client.get(Prop.IPV6_ADDRESS_TABLE)
        assert all(isinstance(e.interface, ipaddress.IPv6Interface) for e in addresses)
        assert all(isinstance(r, ChildEntry) for r in await client.get(Prop.THREAD_CHILD_TABLE))
        assert client.counters.undecodable == 0 and not client.degraded
    finally:
        await client.stop()


CHANNEL_CHANGE = {p.stem[p.stem.rindex("ot-"):]: p for p in ALL if p.stem.startswith("channel_change")}
PENDING_WAYS = [("ot-current", Prop.THREAD_PENDING_DATASET_TLVS), ("ot-2023", Prop.THREAD_PENDING_DATASET)]


def _pending(frame) -> Dataset | None:
    value = unpack_prop(frame.prop, frame.value)
    if not value:
        return None
    return Dataset.from_tlvs(value) if frame.prop == Prop.THREAD_PENDING_DATASET_TLVS else dataset_from_props(value)


@pytest.mark.parametrize(("generation", "way"), PENDING_WAYS)
def test_each_generation_took_the_pending_dataset_and_moved_after_its_delay(generation, way) -> None:
    """gatewayctl channel change 20 --delay 10000 on the real NCPs (tests/interop/test_channel_change.py)."""
    pairs, unsolicited = exchanges(load(CHANNEL_CHANGE[generation]))
    sets = [(rq, rp) for rq, rp in pairs if rq.command == Command.PROP_VALUE_SET and rq.prop == way]
    assert len(sets) == 1 and sets[0][1].prop == way, "taken, and echoed as the property"
    sent, echoed = _pending(sets[0][0]), _pending(sets[0][1])
    assert sent is not None and echoed is not None and echoed.channel == sent.channel == 20
    assert sent.delay_timer == 10_000 and echoed.pending_timestamp == sent.pending_timestamp
    reads = [_pending(rp) for rq, rp in pairs if rq.command == Command.PROP_VALUE_GET and rp.prop == way]
    counting = [d for d in reads if d is not None]
    assert counting and all(0 < d.delay_timer < 10_000 for d in counting), "read back: the delay that remains"
    assert reads[-1] is None, "gone once active"
    assert unpack_prop(Prop.PHY_CHAN, [f for f in unsolicited if f.prop == Prop.PHY_CHAN][-1].value) == 20


@pytest.mark.parametrize(("generation", "way"), PENDING_WAYS)
async def test_the_driver_reads_and_writes_each_generations_pending_dataset(generation, way) -> None:
    from gatewayd.thread.network import PENDING_DATASET_PROPS, read_dataset, write_dataset

    client = NcpClient(ReplayLink(CHANNEL_CHANGE[generation]), request_timeout=1.0)
    await client.start()
    try:
        assert await read_dataset(client, PENDING_DATASET_PROPS) is None
        assert client.features["pending dataset"] == way.name
        pending = Dataset.generate(name="replay").with_(channel=20, delay_timer=10_000)
        await write_dataset(client, pending, PENDING_DATASET_PROPS)
        assert client.counters.undecodable == 0 and not client.degraded
    finally:
        await client.stop()
