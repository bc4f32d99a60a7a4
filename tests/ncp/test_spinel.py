"""Spinel codec: golden vectors, format-string round trips, frames, tables."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.spinel import (
    Command,
    Prop,
    SpinelError,
    SpinelFrame,
    Status,
    element_format,
    is_reset,
    pack,
    pack_prop,
    pack_uint,
    pack_value,
    unpack,
    unpack_prop,
    unpack_uint,
    unpack_value,
)


def test_golden_packed_uint():
    assert pack_uint(1337) == b"\xb9\x0a"
    assert unpack_uint(b"\xb9\x0a") == (1337, 2)
    assert pack_uint(0) == b"\x00"
    assert pack_uint(127) == b"\x7f"
    assert pack_uint(128) == b"\x80\x01"


def test_golden_frames():
    get = SpinelFrame(0, 1, Command.PROP_VALUE_GET, Prop.PROTOCOL_VERSION)
    assert get.encode() == bytes.fromhex("81 02 01")
    reply = SpinelFrame.decode(bytes.fromhex("81 06 01 04 03"))
    assert (reply.iid, reply.tid, reply.command, reply.prop) == (0, 1, Command.PROP_VALUE_IS, 1)
    assert unpack_prop(reply.prop, reply.value) == (4, 3)
    boot = SpinelFrame.decode(bytes.fromhex("80 06 00 70"))
    assert boot.tid == 0 and boot.prop is Prop.LAST_STATUS
    status = unpack_prop(boot.prop, boot.value)
    assert status == Status.RESET_POWER_ON and is_reset(status)
    itype = SpinelFrame.decode(bytes.fromhex("83 06 03 03"))
    assert itype.tid == 3 and unpack_prop(itype.prop, itype.value) == 3


def test_is_reset_covers_exactly_the_reset_range():
    assert [s for s in range(200) if is_reset(s)] == list(range(112, 128))
    assert not is_reset(Status.OK) and not is_reset(Status.PARSE_ERROR)


def test_names_follow_spinel_h():
    assert Prop.NET_ROLE.spinel_name == "SPINEL_PROP_NET_ROLE"
    assert Status.RESET_WATCHDOG.spinel_name == "SPINEL_STATUS_RESET_WATCHDOG"
    assert Command.PROP_VALUE_INSERTED.spinel_name == "SPINEL_CMD_PROP_VALUE_INSERTED"
    assert (Prop.THREAD_NEIGHBOR_TABLE, Prop.THREAD_ROUTER_TABLE, Prop.STREAM_NET) == (0x150B, 0x1517, 114)
    assert Prop.THREAD_CHILD_TABLE.fmt == "A(t(ESLLCCcCc))"
    assert Prop.NET_NETWORK_KEY.secret and not Prop.NET_ROLE.secret


def test_unknown_property_passes_through_as_raw_bytes():
    frame = SpinelFrame.decode(b"\x80\x06" + pack_uint(0x3C05) + b"\x01\x02")
    assert frame.prop == 0x3C05 and not isinstance(frame.prop, Prop)
    assert unpack_prop(frame.prop, frame.value) == b"\x01\x02"
    assert pack_prop(0x3C05, b"\xaa") == b"\xaa"


def test_unknown_command_passes_through():
    frame = SpinelFrame.decode(b"\x80" + pack_uint(15360) + b"xyz")
    assert frame.command == 15360 and frame.prop is None and frame.value == b"xyz"
    assert frame.encode() == b"\x80" + pack_uint(15360) + b"xyz"


def test_network_name_needs_nul_terminator():
    assert pack_prop(Prop.NET_NETWORK_NAME, "OpenThread") == b"OpenThread\0"
    with pytest.raises(SpinelError):
        unpack_prop(Prop.NET_NETWORK_NAME, b"OpenThread")


def test_stream_net_layout():
    packet = bytes(range(40))
    value = pack_prop(Prop.STREAM_NET, (packet, b""))
    assert value == len(packet).to_bytes(2, "little") + packet
    assert unpack_prop(Prop.STREAM_NET, value + b"\x01\x02") == (packet, b"\x01\x02")


def test_struct_ignores_extra_bytes_inside_and_array_element_format():
    # A struct with one more byte than the format uses: later NCPs may append fields.
    data = b"\x03\x00" + b"\x05\x06\x07" + b"\x02\x00\x09\x0a"
    assert unpack_value("A(t(CC))", data) == [(5, 6), (9, 10)]
    assert element_format("A(t(6CbCbSC))") == "6CbCbSC"
    assert element_format("A(C)") == "C"
    route = ("fd00::", 64, True, 0x31, True, 0x0400, 0)
    raw = pack_prop(Prop.THREAD_ON_MESH_NETS, route, element=True)
    assert len(raw) == 16 + 1 + 1 + 1 + 1 + 2 + 1
    assert unpack_prop(Prop.THREAD_ON_MESH_NETS, raw, element=True)[0] == ipaddress.IPv6Address("fd00::")


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("C", b""),
        ("S", b"\x01"),
        ("L", b"\x01\x02\x03"),
        ("i", b"\x80"),
        ("i", b"\xff\xff\xff\xff\xff\x01"),
        ("6", b"\x00" * 15),
        ("E", b"\x00" * 7),
        ("d", b"\x05\x00abc"),
        ("U", b"\xff\xfe\x00"),
        ("t(C)", b"\x05\x00\x01"),
        ("A(S)", b"\x01\x00\x02"),
    ],
)
def test_truncated_or_invalid_values_raise_spinel_error(fmt, data):
    with pytest.raises(SpinelError):
        unpack(fmt, data)


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("C", 256),
        ("c", -129),
        ("S", -1),
        ("i", -1),
        ("i", 2**32),
        ("b", 2),
        ("U", "a\0b"),
        ("E", b"1234"),
        ("6", "not-an-address"),
        ("C", "1"),
        ("dD", (b"x",)),
    ],
)
def test_bad_values_to_pack_raise_spinel_error(fmt, value):
    with pytest.raises(SpinelError):
        pack_value(fmt, value)


@pytest.mark.parametrize("fmt", ["Q", "t(", "A()", "C)", "tC"])
def test_bad_formats_raise_spinel_error(fmt):
    with pytest.raises(SpinelError):
        pack(fmt)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81",
        b"\x01\x02\x01",
        b"\xc1\x02\x01",
        b"\x81\x02",
        b"\x81\x06\x80",
        b"\x81\xff\xff\xff\xff\xff",
    ],
)
def test_bad_frames_raise_spinel_error(data):
    with pytest.raises(SpinelError):
        SpinelFrame.decode(data)


# --- property tests --------------------------------------------------------------------------

SCALARS = {
    "b": st.booleans(),
    "C": st.integers(0, 0xFF),
    "c": st.integers(-0x80, 0x7F),
    "S": st.integers(0, 0xFFFF),
    "s": st.integers(-0x8000, 0x7FFF),
    "L": st.integers(0, 0xFFFFFFFF),
    "l": st.integers(-(2**31), 2**31 - 1),
    "X": st.integers(0, 2**64 - 1),
    "x": st.integers(-(2**63), 2**63 - 1),
    "i": st.integers(0, 0xFFFFFFFF),
    "6": st.binary(min_size=16, max_size=16).map(ipaddress.IPv6Address),
    "E": st.binary(min_size=8, max_size=8),
    "e": st.binary(min_size=6, max_size=6),
    "d": st.binary(max_size=300),
    "U": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40),
}


@pytest.mark.parametrize("ch", sorted(SCALARS))
@given(data=st.data())
def test_every_format_character_round_trips(ch, data):
    value = data.draw(SCALARS[ch])
    packed = pack_value(ch, value)
    assert unpack_value(ch, packed) == value
    # Followed by data-to-end: the item must consume exactly its own bytes.
    tail = data.draw(st.binary(max_size=10))
    assert unpack(ch + "D", packed + tail) == (value, tail)


@given(st.integers(0, 0xFFFFFFFF))
def test_packed_uint_round_trip_and_minimal_length(v):
    raw = pack_uint(v)
    assert unpack_uint(raw) == (v, len(raw))
    assert len(raw) == max(1, (v.bit_length() + 6) // 7)
    assert all(b & 0x80 for b in raw[:-1]) and not raw[-1] & 0x80


@given(
    st.lists(
        st.tuples(
            SCALARS["6"], SCALARS["C"], SCALARS["b"], SCALARS["C"], SCALARS["b"], SCALARS["S"], SCALARS["C"]
        ),
        max_size=5,
    )
)
def test_array_of_structs_round_trips(routes):
    fmt = Prop.THREAD_ON_MESH_NETS.fmt
    assert unpack_value(fmt, pack_value(fmt, routes)) == routes


@given(
    st.lists(st.tuples(SCALARS["U"], SCALARS["d"], st.lists(SCALARS["S"], max_size=4)), max_size=4),
    st.binary(max_size=20),
)
def test_nested_structs_round_trip(items, tail):
    fmt = "A(t(Udt(A(S))))"
    value = [(u, d, (arr,)) for u, d, arr in items]
    assert unpack_value(fmt, pack_value(fmt, value)) == value
    assert unpack("t(A(t(Ud)))D", pack("t(A(t(Ud)))D", ([(u, d) for u, d, _ in items],), tail)) == (
        ([(u, d) for u, d, _ in items],),
        tail,
    )


prop_ids = st.one_of(st.sampled_from(list(Prop)), st.integers(0, 2**21 - 1))


@given(
    iid=st.integers(0, 3),
    tid=st.integers(0, 15),
    command=st.one_of(st.sampled_from(list(Command)), st.integers(0, 2**21 - 1)),
    prop=prop_ids,
    value=st.binary(max_size=64),
)
def test_frames_round_trip(iid, tid, command, prop, value):
    from ncp.spinel import PROP_COMMANDS

    frame = SpinelFrame(iid, tid, command, prop if command in PROP_COMMANDS else None, value)
    decoded = SpinelFrame.decode(frame.encode())
    assert decoded == frame
    assert decoded.encode() == frame.encode()


@given(st.binary(max_size=64))
def test_frame_decoder_raises_only_spinel_error(data):
    try:
        frame = SpinelFrame.decode(data)
    except SpinelError:
        return
    assert SpinelFrame.decode(frame.encode()) == frame


@given(st.sampled_from([p for p in Prop if p.fmt]), st.binary(max_size=64))
def test_property_decoders_raise_only_spinel_error(prop, data):
    try:
        unpack_prop(prop, data)
    except SpinelError:
        pass
