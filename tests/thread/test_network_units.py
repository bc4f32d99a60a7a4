"""Pieces of the Thread network component that need no namespaces."""

from __future__ import annotations

import asyncio
import ipaddress
import random

import pytest

from gatewayd.config.loader import parse
from gatewayd.ncp.component import NcpComponent
from gatewayd.thread.netdata import OMR_FLAGS
from gatewayd.thread.network import ResetThrottle, ThreadNetwork, _net_flags, _per_router
from gatewayd.thread.routing import Preference, with_preference
from gatewayd.thread.state import ThreadState
from gatewayd.thread.wpan import is_mle
from ncp.client import PropertyChanged
from ncp.meshcop import Dataset
from ncp.spinel import NetRole, Prop
from ncp.spinel.tables import OnMeshNet


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reset_throttle_allows_four_then_waits_quadratically():
    clock = Clock()
    throttle = ResetThrottle(clock)
    waits = [throttle.record() for _ in range(7)]  # a burst of resets at the same instant
    assert waits[:4] == [0, 0, 0, 0]
    assert waits[4:] == [0.5, 2.0, 4.5]  # (n-4)²/2 for n = 5, 6, 7


def test_reset_throttle_window_decays_one_per_15_s():
    clock = Clock()
    throttle = ResetThrottle(clock)
    for _ in range(6):
        throttle.record()
    clock.now += 30  # two resets forgiven
    assert throttle.record() == 0.5  # n = 6 - 2 + 1 = 5
    clock.now += 15 * 10
    assert throttle.record() == 0


def test_omr_flags_read_like_ot_ctl():
    assert _net_flags(OMR_FLAGS) == "paro"


def test_netdata_entries_listed_once_per_border_router_ours_marked_local():
    rows = [{"prefix": "fd00::/64", "local": False, "rloc16": "0x0400"},
            {"prefix": "fd00::/64", "local": False, "rloc16": "0x6c00"},
            {"prefix": "fd01::/64", "local": False, "rloc16": "0x6c00"},
            {"prefix": "fd00::/64", "local": True, "rloc16": "0x0400"},  # ours, registered: listed once
            {"prefix": "fd02::/64", "local": True, "rloc16": "0xfffe"}]  # ours, not at the leader yet
    assert _per_router(rows, 0x0400) == [
        {"prefix": "fd00::/64", "local": True, "rloc16": "0x0400"},
        {"prefix": "fd00::/64", "local": False, "rloc16": "0x6c00"},
        {"prefix": "fd01::/64", "local": False, "rloc16": "0x6c00"},
        {"prefix": "fd02::/64", "local": True, "rloc16": "0xfffe", "registered": False}]


def test_mle_is_recognised_and_host_udp_is_not():
    header = bytes([0x60, 0, 0, 0, 0, 16, 17, 255]) + bytes(32)
    mle = header + (19788).to_bytes(2, "big") + (19788).to_bytes(2, "big") + bytes(4)
    coap = header + (5683).to_bytes(2, "big") + (5683).to_bytes(2, "big") + bytes(4)
    assert is_mle(mle)
    assert not is_mle(coap)
    assert not is_mle(b"\x60")


def test_state_files_are_private_and_stable(tmp_path):
    state = ThreadState(str(tmp_path / "state"))
    prefix = state.ula_prefix()
    assert prefix.prefixlen == 48 and prefix.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert state.ula_prefix() == prefix, "generated once, then kept"
    assert (tmp_path / "state" / "border.json").stat().st_mode & 0o777 == 0o600


def test_a_damaged_dataset_file_is_named_in_the_error(tmp_path):
    state = ThreadState(str(tmp_path))
    dataset = Dataset.generate(rng=random.Random(3))
    state.save_dataset(dataset)
    assert state.load_dataset() == dataset
    state.dataset_path.write_text(dataset.hex()[:-3] + "\n")  # truncated: odd length, last TLV cut
    with pytest.raises(ValueError, match=r"dataset\.hex: .*remove it to form a new network"):
        state.load_dataset()


async def test_undecodable_pushes_change_nothing(tmp_path):
    config = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n')
    thread = ThreadNetwork(config, NcpComponent(config))
    thread.role = NetRole.LEADER
    for prop in (Prop.NET_ROLE, Prop.IPV6_ADDRESS_TABLE, Prop.THREAD_ON_MESH_NETS, Prop.THREAD_CHILD_TABLE):
        thread._on_event(PropertyChanged(prop, b"\x01\x02\x03"))  # what the client passes when decoding fails
    assert thread.role == NetRole.LEADER and thread.children == 0 and not thread._tasks


class _SlowLeader:
    """An NCP client whose first network-data read is held open, as a busy serial link holds it, so a push can
    land while an evaluation is reading."""

    def __init__(self, nets: list[OnMeshNet]) -> None:
        self.nets = nets
        self.reading = asyncio.Event()
        self.release = asyncio.Event()
        self.reads = 0

    async def get(self, prop: Prop) -> object:
        if prop == Prop.THREAD_ON_MESH_NETS:
            self.reads += 1
            nets = list(self.nets)  # what the leader had when the read started
            if self.reads == 1:
                self.reading.set()
                await self.release.wait()
            return nets
        return 0x0800 if prop == Prop.THREAD_RLOC16 else []


class _Publisher:
    def __init__(self) -> None:
        self.published: list[frozenset[ipaddress.IPv6Network]] = []

    async def publish(self, prefixes: set, routes: set) -> bool:
        self.published.append(frozenset(p.prefix for p in prefixes))
        return True


async def test_a_network_data_push_during_an_evaluation_is_not_lost(tmp_path):
    """Another border router's prefix pushed while an evaluation reads the NCP: the evaluation in flight read
    the old network data, so one more runs; otherwise ours stayed published next to the favoured one."""
    config = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n')
    thread = ThreadNetwork(config, NcpComponent(config))
    ours = ipaddress.IPv6Network("fd12:3456:789a:1::/64")
    theirs = OnMeshNet(ipaddress.IPv6Address("fd00:1111::"), 64, True,
                       with_preference(OMR_FLAGS, Preference.MEDIUM), False, 0x0400)
    client, publisher = _SlowLeader([]), _Publisher()
    thread._client, thread.netdata, thread.local_omr_prefix = client, publisher, ours  # type: ignore[assignment]
    thread.routing.set_local(omr_prefix=ours)
    thread.role = NetRole.LEADER

    thread._on_event(PropertyChanged(Prop.THREAD_OFF_MESH_ROUTES, []))  # our own publication echoed back
    await asyncio.wait_for(client.reading.wait(), 5)
    client.nets = [theirs]  # the other router's prefix reaches the leader ...
    thread._on_event(PropertyChanged(Prop.THREAD_OFF_MESH_ROUTES, []))  # ... and is pushed mid-read
    client.release.set()
    await asyncio.wait_for(thread._evaluation, 5)

    assert publisher.published[0] == {ours}, "the evaluation in flight saw no other router"
    assert publisher.published[-1] == frozenset(), "ours withdrawn once the push was evaluated"
    assert thread.routing.decision is not None and thread.routing.decision.omr_prefix == theirs.network
