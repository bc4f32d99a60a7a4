"""MeshCoP active dataset codec."""

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.meshcop import (
    Dataset,
    MeshCoPError,
    SecurityPolicy,
    Timestamp,
    channels_from_channel_mask,
    decode_tlvs,
    encode_tlvs,
)

# Laid out by hand from the Thread spec TLV types, in the order `dataset active -x` prints.
GOLDEN = (
    "0e08"
    "000000000001"
    "0000"  # Active Timestamp (14): seconds=1, ticks=0, U=0
    "0003"
    "00"
    "000f"  # Channel (0): page 0, channel 15
    "3506"
    "00"
    "04"
    "001fffe0"  # Channel Mask (53): page 0, 4 bytes, channels 11..26 (bit 31-n)
    "0208"
    "dead00beef00cafe"  # Extended PAN ID (2)
    "0708"
    "fddead00beef0000"  # Mesh-Local Prefix (7)
    "0510"
    "00112233445566778899aabbccddeeff"  # Network Key (5)
    "030f"
    + b"OpenThread-1234".hex()  # Network Name (3)
    + "0102"
    "1234"  # PAN ID (1)
    "0410"
    "445f2b5ca6f2a93a55ce570a70efeecb"  # PSKc (4)
    "0c04"
    "02a0"
    "f7f8"  # Security Policy (12): 672 h, flags
)


def golden_dataset() -> Dataset:
    return Dataset(
        active_timestamp=Timestamp(1, 0, False),
        channel=15,
        channel_mask={0: sum(1 << c for c in range(11, 27))},
        extended_pan_id=bytes.fromhex("dead00beef00cafe"),
        mesh_local_prefix=ipaddress.IPv6Network("fdde:ad00:beef::/64"),
        network_key=bytes.fromhex("00112233445566778899aabbccddeeff"),
        network_name="OpenThread-1234",
        pan_id=0x1234,
        pskc=bytes.fromhex("445f2b5ca6f2a93a55ce570a70efeecb"),
        security_policy=SecurityPolicy(672, b"\xf7\xf8"),
    )


def test_golden_vector_encodes_by_hand_layout():
    assert golden_dataset().hex() == GOLDEN


def test_golden_vector_decodes():
    ds = Dataset.from_hex(GOLDEN)
    assert ds == golden_dataset()
    assert ds.is_complete
    assert channels_from_channel_mask(ds.channel_mask[0]) == list(range(11, 27))
    assert ds.security_policy.routers_enabled


def test_unknown_tlvs_survive_round_trip():
    # Wake-up channel (74) as newer stacks add it, plus a vendor TLV.
    extra = "4a03000014f00201ff"
    ds = Dataset.from_hex(GOLDEN + extra)
    assert ds.unknown == ((0x4A, bytes.fromhex("000014")), (0xF0, b"\x01\xff"))
    assert ds.hex() == GOLDEN + extra


def test_unknown_tlv_type_255_round_trips():
    ds = Dataset.from_hex("ff0101")
    assert ds.unknown == ((0xFF, b"\x01"),) and ds.hex() == "ff0101"


def test_secrets_hidden_from_repr():
    ds = golden_dataset()
    text = repr(ds) + str(ds)
    assert "00112233" not in text and "445f2b5c" not in text
    assert "OpenThread-1234" in text


def test_generate_is_complete_and_valid():
    ds = Dataset.generate(rng=random.Random(7))
    assert ds.is_complete
    assert ds.network_name == f"gatewayd-{ds.pan_id:04x}"
    assert ds.channel == 15
    assert ds.mesh_local_prefix.prefixlen == 64
    assert ds.mesh_local_prefix.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert ds.security_policy.rotation_time == 672
    assert channels_from_channel_mask(ds.channel_mask[0]) == list(range(11, 27))
    assert Dataset.from_tlvs(ds.to_tlvs()) == ds
    # Reproducible with a seeded rng, different without one.
    assert Dataset.generate(rng=random.Random(7)) == ds
    assert Dataset.generate().network_key != Dataset.generate().network_key
    assert Dataset.generate(name="lab", channel=20).network_name == "lab"


def test_partial_dataset_is_not_complete():
    ds = Dataset(channel=11, pan_id=0xABCD)
    assert not ds.is_complete
    assert Dataset.from_tlvs(ds.to_tlvs()) == ds


@pytest.mark.parametrize(
    "bad",
    [
        "0e",  # truncated header
        "0e0800",  # value runs past the end
        "0002000f",  # channel too short
        "0104123456",  # PAN ID too long
        "030011",  # empty name then garbage
        "0302ff fe",  # name not UTF-8
        "0c020102",  # security policy too short
        "3506000300ffff00",  # mask entry with 3 bytes
        "0e07" + "00" * 7,  # timestamp too short
        "zz",
    ],
)
def test_malformed_raises_meshcop_error(bad):
    with pytest.raises(MeshCoPError):
        Dataset.from_hex(bad.replace(" ", ""))


def test_encode_rejects_bad_fields():
    with pytest.raises(MeshCoPError):
        Dataset(network_key=b"short").to_tlvs()
    with pytest.raises(MeshCoPError):
        Dataset(network_name="x" * 17).to_tlvs()
    with pytest.raises(MeshCoPError):
        Dataset(mesh_local_prefix=ipaddress.IPv6Network("fd00::/48")).to_tlvs()


def test_meshcop_error_is_value_error():
    assert issubclass(MeshCoPError, ValueError)


datasets = st.builds(
    Dataset,
    active_timestamp=st.none()
    | st.builds(Timestamp, st.integers(0, 2**48 - 1), st.integers(0, 2**15 - 1), st.booleans()),
    channel=st.none() | st.integers(0, 0xFFFF),
    channel_page=st.integers(0, 255),
    channel_mask=st.none() | st.dictionaries(st.integers(0, 255), st.integers(0, 2**32 - 1), min_size=1),
    extended_pan_id=st.none() | st.binary(min_size=8, max_size=8),
    mesh_local_prefix=st.none()
    | st.binary(min_size=8, max_size=8).map(lambda b: ipaddress.IPv6Network((b + bytes(8), 64))),
    network_key=st.none() | st.binary(min_size=16, max_size=16),
    network_name=st.none() | st.text(min_size=1, max_size=4),
    pan_id=st.none() | st.integers(0, 0xFFFF),
    pskc=st.none() | st.binary(min_size=16, max_size=16),
    security_policy=st.none() | st.builds(SecurityPolicy, st.integers(1, 0xFFFF), st.binary(min_size=1, max_size=3)),
    unknown=st.lists(st.tuples(st.integers(100, 254), st.binary(max_size=20)), max_size=3).map(tuple),
    pending_timestamp=st.none()
    | st.builds(Timestamp, st.integers(0, 2**48 - 1), st.integers(0, 2**15 - 1), st.booleans()),
    delay_timer=st.none() | st.integers(0, 2**32 - 1),
)


@given(datasets)
def test_round_trip_property(ds):
    if ds.channel is None:
        ds = ds.with_(channel_page=0)
    assert Dataset.from_tlvs(ds.to_tlvs()) == ds


@given(st.binary(max_size=300))
def test_decoder_only_raises_meshcop_error(data):
    try:
        ds = Dataset.from_tlvs(data)
    except MeshCoPError:
        return
    # Whatever decodes re-encodes to something that decodes to the same dataset.
    assert Dataset.from_tlvs(ds.to_tlvs()) == ds


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=254)), max_size=5))
def test_tlv_list_round_trip(items):
    assert decode_tlvs(encode_tlvs(items)) == items


def test_a_pending_dataset_round_trips_and_becomes_its_active_dataset():
    active = Dataset.generate(rng=random.Random(3))
    pending = active.with_(channel=20, pending_timestamp=Timestamp(7), delay_timer=300_000)
    tlvs = pending.to_tlvs()
    assert bytes.fromhex("3308000000000007000034040004 93e0".replace(" ", "")) in tlvs
    assert Dataset.from_tlvs(tlvs) == pending
    assert pending.as_active == active.with_(channel=20)
    with pytest.raises(MeshCoPError, match="delay timer"):
        Dataset.from_tlvs(bytes.fromhex("3403000001"))
