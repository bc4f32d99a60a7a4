"""Spinel table rows as records, and the dataset as Spinel properties: property-based tests."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.meshcop import Dataset, Timestamp
from ncp.spinel import Prop, SpinelError, pack_prop, unpack_prop
from ncp.spinel.dataset import dataset_from_props, dataset_to_props
from ncp.spinel.tables import AddressEntry, ChildEntry, NeighborEntry, OnMeshNet

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
i8 = st.integers(-128, 127)
addresses = st.builds(ipaddress.IPv6Address, st.binary(min_size=16, max_size=16))
eui = st.binary(min_size=8, max_size=8)
children = st.builds(ChildEntry, eui, u16, u32, u32, u8, u8, i8, u8, i8)
address_rows = st.builds(AddressEntry, addresses, u8, u32, u32, st.one_of(st.none(), u8))


@given(st.lists(children, max_size=5))
def test_child_table_round_trips(rows: list[ChildEntry]) -> None:
    assert unpack_prop(Prop.THREAD_CHILD_TABLE, pack_prop(Prop.THREAD_CHILD_TABLE, rows)) == rows


@given(st.lists(address_rows, max_size=5))
def test_address_table_round_trips_with_and_without_the_flags_byte(rows: list[AddressEntry]) -> None:
    assert unpack_prop(Prop.IPV6_ADDRESS_TABLE, pack_prop(Prop.IPV6_ADDRESS_TABLE, rows)) == rows


@given(children, st.binary(max_size=8))
def test_a_newer_ncps_extra_fields_are_ignored(row: ChildEntry, extra: bytes) -> None:
    body = pack_prop(Prop.THREAD_CHILD_TABLE, row, element=True) + extra
    wire = struct.pack("<H", len(body)) + body
    assert unpack_prop(Prop.THREAD_CHILD_TABLE, wire) == [row]


@given(children, st.integers(2, 9))
def test_an_older_ncps_missing_trailing_fields_read_as_none(row: ChildEntry, kept: int) -> None:
    short = ChildEntry(*row[:kept])
    got = unpack_prop(Prop.THREAD_CHILD_TABLE, pack_prop(Prop.THREAD_CHILD_TABLE, [short]))
    assert got == [short] and all(value is None for value in got[0][kept:])


@given(children, st.integers(0, 9))
def test_a_row_cut_inside_a_field_or_before_the_required_ones_is_refused(row: ChildEntry, cut: int) -> None:
    body = pack_prop(Prop.THREAD_CHILD_TABLE, row, element=True)
    sizes = [8, 2, 4, 4, 1, 1, 1, 1, 1]
    boundaries = {sum(sizes[:n]) for n in range(2, 10)}
    length = cut * 2 + 1  # odd lengths land inside a field somewhere in the first 19 bytes
    if length in boundaries:
        return
    wire = struct.pack("<H", length) + body[:length]
    with pytest.raises(SpinelError):
        unpack_prop(Prop.THREAD_CHILD_TABLE, wire)


def test_a_neighbor_announced_alone_keeps_its_struct_length() -> None:
    row = NeighborEntry(b"\x11" * 8, 0x1C00, 3, 3, -40, 0x0B, False, 5, 6, -41)
    wire = pack_prop(Prop.THREAD_NEIGHBOR_TABLE, row, element=True)
    assert struct.unpack_from("<H", wire)[0] == len(wire) - 2
    assert unpack_prop(Prop.THREAD_NEIGHBOR_TABLE, wire, element=True) == row


def test_on_mesh_nets_need_prefix_length_stable_and_flags() -> None:
    net = OnMeshNet(ipaddress.IPv6Address("fd00::"), 64, True, 0x31)
    assert unpack_prop(Prop.THREAD_ON_MESH_NETS, pack_prop(Prop.THREAD_ON_MESH_NETS, [net])) == [net]
    with pytest.raises(SpinelError, match="at least 4"):
        unpack_prop(Prop.THREAD_ON_MESH_NETS, struct.pack("<H", 17) + bytes(16) + b"\x40")


@given(st.text(min_size=1, max_size=16).filter(lambda s: "\0" not in s and len(s.encode()) <= 16),
       st.integers(11, 26))
def test_the_dataset_as_properties_round_trips(name: str, channel: int) -> None:
    dataset = Dataset.generate(name=name, channel=channel)
    wire = pack_prop(Prop.THREAD_ACTIVE_DATASET, dataset_to_props(dataset))
    back = dataset_from_props(unpack_prop(Prop.THREAD_ACTIVE_DATASET, wire))
    assert back.to_tlvs() == dataset.to_tlvs()  # seconds-only timestamps: generate() uses 1 s, no ticks


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**32 - 1))
def test_a_pending_dataset_as_properties_round_trips(pending_seconds: int, delay: int) -> None:
    """THREAD_PENDING_DATASET, the only way OpenThread 2023 takes a pending dataset."""
    pending = Dataset.generate().with_(pending_timestamp=Timestamp(pending_seconds), delay_timer=delay)
    wire = pack_prop(Prop.THREAD_PENDING_DATASET, dataset_to_props(pending))
    assert dataset_from_props(unpack_prop(Prop.THREAD_PENDING_DATASET, wire)) == pending


def test_a_malformed_dataset_property_is_a_spinel_error() -> None:
    with pytest.raises(SpinelError, match="delay timer"):
        dataset_from_props([(0x151E, b"\x01")])  # what ot-ncp-ftd 2023 answers PARSE_ERROR to
    with pytest.raises(SpinelError, match="network key"):
        dataset_from_props([(int(Prop.NET_NETWORK_KEY), b"short")])
    assert dataset_from_props([(0x3FFF, b"unknown keys are ignored")]) == Dataset()
