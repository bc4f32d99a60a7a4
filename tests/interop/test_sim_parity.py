"""The NCP simulator against OpenThread's ot-ncp-ftd: one scenario on both, the same answers.

A leader with two children (an FTD that stays a child and an rx-on MTD) restarts: it comes back detached
with its old RLOC16 and no children listed, leads at once when the host sets NET_ROLE = leader, and lists
its children again (same RLOC16s) a moment later; then which host packets it drops, and that packets on
TID 0 get no answer.  The simulator runs with ``--ncp-generation`` matching each OpenThread generation.
The attach cycle a lone former leader runs when nobody tells it to lead (30-34.5 s on both generations)
is too slow for this suite: tests/ncp/sim/test_sim_core.py pins it with the measured numbers.
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ncp import ipv6
from ncp.meshcop import Dataset, Timestamp
from ncp.spinel import Command, NetRole, Prop, SpinelFrame, Status, pack_prop, unpack_prop
from ncp.spinel.dataset import dataset_from_props, dataset_to_props
from tests.interop.peers import OtCli
from tests.ncp.sim.simproc import SimProcess, is_status

pytestmark = [pytest.mark.timeout(300)]
FTD_EUI, MTD_EUI = "00000000000000f1", "00000000000000f2"
STREAMS = (Prop.STREAM_NET, Prop.STREAM_NET_INSECURE)


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace of its own: OpenThread's simulated radio is UDP on loopback."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    name = f"otpar-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def name(prop: int | None) -> str:
    try:
        return Prop(prop).name
    except ValueError:
        return hex(prop or 0)


def step(ncp: SimProcess, command: int, prop: int, value: bytes = b"", wait: float = 0.3) -> list[tuple[str, str]]:
    """One request and what followed it: ("reply"|"push", property) in order, the streams left out."""
    reply = ncp.request(command, prop, value)
    frames = [reply, *ncp.drain(wait)]
    return [("reply" if f is reply else "push", name(f.prop)) for f in frames if f.prop not in STREAMS]


def kinds(table: list, ml: ipaddress.IPv6Network) -> list[str]:
    def kind(address: ipaddress.IPv6Address) -> str:
        if address.is_link_local:
            return "ll"
        if ipv6.is_rloc_or_aloc(address):
            return "aloc" if address.packed[14] == 0xFC else "rloc"
        return "ml-eid" if address in ml else "other"

    return [kind(row.address) for row in table]


def scenario(ncp: SimProcess, generation: str, ds: Dataset, join: Callable[[], None]) -> dict[str, Any]:
    """Drive one NCP (real or simulated) through the scenario; what it answered, comparable across both."""
    seen: dict[str, Any] = {}
    ncp.wait_for(is_status(Status.RESET_POWER_ON), timeout=10)
    ncp.drain(0.3)

    def bring_up() -> list[tuple[str, str]]:
        if generation == "2023":
            out = step(ncp, Command.PROP_VALUE_SET, Prop.THREAD_ACTIVE_DATASET,
                       pack_prop(Prop.THREAD_ACTIVE_DATASET, dataset_to_props(ds)))
        else:
            out = step(ncp, Command.PROP_VALUE_SET, Prop.THREAD_ACTIVE_DATASET_TLVS, ds.to_tlvs())
        out += step(ncp, Command.PROP_VALUE_SET, Prop.NET_IF_UP, b"\x01")
        return out + step(ncp, Command.PROP_VALUE_SET, Prop.NET_STACK_UP, b"\x01")

    bring_up()
    seen["lead_fresh"] = bytes(ncp.set(Prop.NET_ROLE, NetRole.LEADER).value).hex()
    ncp.drain(0.5)
    join()
    deadline = time.monotonic() + 90
    while len(ncp.get(Prop.THREAD_CHILD_TABLE)) < 2:
        assert time.monotonic() < deadline, "the children did not attach"
        time.sleep(0.5)
    rloc16 = ncp.get(Prop.THREAD_RLOC16)
    children = sorted(c.rloc16 for c in ncp.get(Prop.THREAD_CHILD_TABLE))

    ncp.send(SpinelFrame(0, 1, Command.RESET))
    ncp.wait_for(is_status(Status.RESET_POWER_ON), timeout=10)
    ncp.drain(0.3)
    seen["bring_up_after_reset"] = bring_up()
    ml = ds.mesh_local_prefix
    seen["restored"] = (ncp.get(Prop.NET_ROLE), ncp.get(Prop.THREAD_RLOC16) == rloc16,
                        kinds(ncp.get(Prop.IPV6_ADDRESS_TABLE), ml), ncp.get(Prop.THREAD_CHILD_TABLE))
    ncp.drain(1.0)
    began = time.monotonic()
    seen["lead_after_reset"] = step(ncp, Command.PROP_VALUE_SET, Prop.NET_ROLE, bytes([NetRole.LEADER]), wait=0.05)
    seen["led"] = (ncp.get(Prop.NET_ROLE), ncp.get(Prop.THREAD_RLOC16) == rloc16,
                   kinds(ncp.get(Prop.IPV6_ADDRESS_TABLE), ml), len(ncp.get(Prop.THREAD_CHILD_TABLE)))
    inserted = []
    while len(inserted) < 2:
        inserted.append(ncp.wait_for(lambda f: f.command == Command.PROP_VALUE_INSERTED
                                     and f.prop == Prop.THREAD_CHILD_TABLE, timeout=10))
    seen["children_after"] = round(time.monotonic() - began, 1)
    seen["children_back"] = sorted(c.rloc16 for c in ncp.get(Prop.THREAD_CHILD_TABLE)) == children

    own = ncp.get(Prop.IPV6_ML_ADDR)
    node = ipaddress.IPv6Address(ml.network_address.packed[:8] + bytes.fromhex("1122334455667788"))
    lan = ipaddress.IPv6Address("2001:db8::2")
    statuses = []
    for src, dst in ((own, node), (lan, node), (lan, ipv6.rloc_address(ml, 0xFC00)), (lan, own),
                     (lan, ipaddress.IPv6Address("fe80::1")), (lan, ipaddress.IPv6Address("ff03::1")),
                     (node, own), (ipaddress.IPv6Address("::"), node)):
        packet = ipv6.build_udp(src, dst, 40000, 5000, b"x", hlim=64)
        reply = ncp.request(Command.PROP_VALUE_SET, Prop.STREAM_NET, pack_prop(Prop.STREAM_NET, (packet, b"")))
        statuses.append(unpack_prop(Prop.LAST_STATUS, reply.value))
    seen["host_packets"] = statuses
    for src in (own, lan):  # as gatewayd sends its packets: on TID 0
        packet = ipv6.build_udp(src, node, 40000, 5000, b"x", hlim=64)
        ncp.send(SpinelFrame(0, 0, Command.PROP_VALUE_SET, Prop.STREAM_NET, pack_prop(Prop.STREAM_NET, (packet, b""))))
    seen["tid0_ok_answers"] = [f for f in ncp.drain(0.5) if f.prop == Prop.LAST_STATUS
                               and unpack_prop(Prop.LAST_STATUS, f.value) == Status.OK]
    return seen


def test_the_simulator_restarts_and_drops_as_ot_ncp_ftd_does(ot: Path, netns: str, tmp_path: Path) -> None:
    generation = "2023" if ot.name == "ot-2023" else "2025"
    ds = Dataset.generate(rng=random.Random(21), channel=25)
    (tmp_path / "ncp").mkdir()
    real = SimProcess(log=tmp_path / "real.log", cwd=tmp_path / "ncp",
                      argv=["ip", "netns", "exec", netns, str(ot / "ot-ncp-ftd"), "1"])
    nodes: list[OtCli] = []

    def join_real() -> None:
        for node_id, mtd in ((2, False), (3, True)):
            node = OtCli(ot / "ot-cli-ftd", node_id, tmp_path / f"node{node_id}", netns=netns)
            nodes.append(node)
            if not mtd:
                node.cmd("routerupgradethreshold 0")  # an FTD that stays a child
            node.join(ds.to_tlvs().hex(), mtd=mtd)

    try:
        real_seen = scenario(real, generation, ds, join_real)
    finally:
        real.stop()
        for node in nodes:
            node.close()
    sim = SimProcess("--ncp-generation", generation, "--mle-interval", "0", "--node", f"ftd:{FTD_EUI}:ftd",
                     "--node", f"mtd:{MTD_EUI}:mtd", log=tmp_path / "sim.log")
    try:
        sim_seen = scenario(sim, generation, ds, lambda: None)
    finally:
        sim.stop()
    print("real:", real_seen)
    # the children answer their Child Update 0.2-0.9 s after the NCP leads (real); the sim takes 0.5 s
    assert 0.1 <= real_seen.pop("children_after") <= 1.5 and 0.1 <= sim_seen.pop("children_after") <= 1.5
    assert sim_seen == real_seen
    assert real_seen["restored"][:2] == (NetRole.DETACHED, True) and real_seen["children_back"]


def pending_scenario(ncp: SimProcess, generation: str, ds: Dataset) -> dict[str, Any]:
    """A leader takes a pending dataset (channel 25 → 20 after 3 s), reads it back counting down, moves with
    its role kept; then one whose active timestamp is older, one malformed, and one cleared."""
    seen: dict[str, Any] = {}
    tlvs = generation != "2023"
    way = Prop.THREAD_PENDING_DATASET_TLVS if tlvs else Prop.THREAD_PENDING_DATASET

    def encode(d: Dataset | None) -> bytes:
        if tlvs:
            return d.to_tlvs() if d is not None else b""
        return pack_prop(way, dataset_to_props(d) if d is not None else [])

    def decode(frame: SpinelFrame) -> Dataset | None:
        if frame.prop != way:
            return None
        value = unpack_prop(way, frame.value)
        return (Dataset.from_tlvs(value) if tlvs else dataset_from_props(value)) if value else None

    ncp.wait_for(is_status(Status.RESET_POWER_ON), timeout=10)
    ncp.drain(0.3)
    if tlvs:
        ncp.request(Command.PROP_VALUE_SET, Prop.THREAD_ACTIVE_DATASET_TLVS, ds.to_tlvs())
    else:
        ncp.set(Prop.THREAD_ACTIVE_DATASET, dataset_to_props(ds))
    ncp.set(Prop.NET_IF_UP, True)
    ncp.set(Prop.NET_STACK_UP, True)
    ncp.set(Prop.NET_ROLE, NetRole.LEADER)
    ncp.wait_pushed(Prop.NET_ROLE, lambda role: role == NetRole.LEADER)
    ncp.drain(1.0)
    seen["gets"] = [(name(p), name(r.prop), r.value.hex()) for p in (Prop.THREAD_PENDING_DATASET_TLVS,
                    Prop.THREAD_PENDING_DATASET) for r in [ncp.request(Command.PROP_VALUE_GET, p)]]
    newer = ds.with_(channel=20, active_timestamp=Timestamp(ds.active_timestamp.seconds + 1),
                     pending_timestamp=Timestamp(5), delay_timer=3000)
    echoed = decode(ncp.request(Command.PROP_VALUE_SET, way, encode(newer)))
    seen["echo"] = echoed.with_(delay_timer=None) if echoed else None
    time.sleep(1.0)
    read = decode(ncp.request(Command.PROP_VALUE_GET, way))
    seen["counting_down"] = read is not None and 1500 <= read.delay_timer <= 2500
    ncp.drain(0.2)
    ncp.wait_pushed(Prop.PHY_CHAN, lambda channel: channel == 20, timeout=5)
    seen["moved"] = (ncp.get(Prop.PHY_CHAN), ncp.get(Prop.NET_ROLE), decode(ncp.request(Command.PROP_VALUE_GET,
                                                                                          way)))
    older = ds.with_(channel=26, active_timestamp=Timestamp(1), pending_timestamp=Timestamp(6), delay_timer=500)
    ncp.request(Command.PROP_VALUE_SET, way, encode(older))
    ncp.drain(1.5)
    seen["older_taken"] = ncp.get(Prop.PHY_CHAN) == 26
    malformed = bytes.fromhex("330800") if tlvs else pack_prop(way, [(0x151E, b"\x01")])
    reply = ncp.request(Command.PROP_VALUE_SET, way, malformed)
    seen["malformed"] = unpack_prop(Prop.LAST_STATUS, reply.value) if reply.prop == Prop.LAST_STATUS else None
    ncp.request(Command.PROP_VALUE_SET, way, encode(newer.with_(pending_timestamp=Timestamp(9), delay_timer=60_000)))
    cleared = ncp.request(Command.PROP_VALUE_SET, way, encode(None))
    seen["cleared"] = (name(cleared.prop), decode(ncp.request(Command.PROP_VALUE_GET, way)))
    return seen


def test_the_simulator_takes_a_pending_dataset_as_ot_ncp_ftd_does(ot: Path, netns: str, tmp_path: Path) -> None:
    generation = "2023" if ot.name == "ot-2023" else "2025"
    ds = Dataset.generate(rng=random.Random(22), channel=25, timestamp=Timestamp(10))
    (tmp_path / "ncp").mkdir()
    real = SimProcess(log=tmp_path / "real.log", cwd=tmp_path / "ncp",
                      argv=["ip", "netns", "exec", netns, str(ot / "ot-ncp-ftd"), "1"])
    try:
        real_seen = pending_scenario(real, generation, ds)
    finally:
        real.stop()
    sim = SimProcess("--ncp-generation", generation, "--mle-interval", "0", log=tmp_path / "sim.log")
    try:
        sim_seen = pending_scenario(sim, generation, ds)
    finally:
        sim.stop()
    print("real:", real_seen)
    assert sim_seen == real_seen
    assert real_seen["moved"] == (20, NetRole.LEADER, None) and real_seen["counting_down"]
    assert real_seen["older_taken"] is (generation == "2023")
