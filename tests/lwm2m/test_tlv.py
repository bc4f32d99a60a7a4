"""OMA TLV: the core specification's examples byte for byte, plus header widths and error cases."""

from __future__ import annotations

import pytest

from gatewayd.lwm2m.codecs import CodecError, ContentFormat, UnsupportedContentFormat, decode, encode
from gatewayd.lwm2m.codecs.tlv import Tlv, TlvKind, parse_tlvs, tlv_header
from gatewayd.lwm2m.definitions import ObjLnk
from gatewayd.lwm2m.paths import LwM2MPath as P

TLV = ContentFormat.TLV


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(" ".join(line.split("#")[0] for line in text.splitlines()))


# Read /3/0 answered in TLV (LwM2M TS Core §7.4.3.2, single Object Instance example).
DEVICE_TLV = hexbytes("""
C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65   # 0 Manufacturer
C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74   # 1 Model Number
C8 02 09 33 34 35 30 30 30 31 32 33   # 2 Serial Number
C3 03 31 2E 30                         # 3 Firmware Version
86 06 41 00 01 41 01 05                # 6 Available Power Sources [1, 5]
88 07 08 42 00 0E D8 42 01 13 88       # 7 Power Source Voltage [3800, 5000]
87 08 41 00 7D 42 01 03 84             # 8 Power Source Current [125, 900]
C1 09 64                               # 9 Battery Level 100
C1 0A 0F                               # 10 Memory Free 15
83 0B 41 00 00                         # 11 Error Code [0]
C4 0D 51 82 42 8F                      # 13 Current Time 1367491215
C6 0E 2B 30 32 3A 30 30                # 14 UTC Offset +02:00
C1 10 55                               # 16 Binding U
""")

DEVICE_ENTRIES = [
    (P(3, 0, 0), "Open Mobile Alliance"),
    (P(3, 0, 1), "Lightweight M2M Client"),
    (P(3, 0, 2), "345000123"),
    (P(3, 0, 3), "1.0"),
    (P(3, 0, 6), {0: 1, 1: 5}),
    (P(3, 0, 7), {0: 3800, 1: 5000}),
    (P(3, 0, 8), {0: 125, 1: 900}),
    (P(3, 0, 9), 100),
    (P(3, 0, 10), 15),
    (P(3, 0, 11), {0: 0}),
    (P(3, 0, 13), 1367491215),
    (P(3, 0, 14), "+02:00"),
    (P(3, 0, 16), "U"),
]

# Read /2 answered in TLV (§7.4.3.2, multiple Object Instance example: two Access Control instances).
ACCESS_CONTROL_TLV = hexbytes("""
08 00 0E  C1 00 01  C1 01 00  83 02 41 7F 07  C1 03 7F
08 02 12  C1 00 03  C1 01 00  87 02 41 7F 07 61 01 36 01  C1 03 7F
""")

ACCESS_CONTROL_ENTRIES = [
    (P(2, 0, 0), 1),
    (P(2, 0, 1), 0),
    (P(2, 0, 2), {127: 7}),
    (P(2, 0, 3), 127),
    (P(2, 2, 0), 3),
    (P(2, 2, 1), 0),
    (P(2, 2, 2), {127: 7, 310: 1}),
    (P(2, 2, 3), 127),
]


def test_device_instance_decodes_to_the_spec_values(registry):
    assert decode(TLV, P(3, 0), DEVICE_TLV, registry) == DEVICE_ENTRIES


def test_device_instance_encodes_to_the_spec_bytes(registry):
    assert len(DEVICE_TLV) == 0x79
    assert encode(TLV, P(3, 0), DEVICE_ENTRIES, registry) == DEVICE_TLV


def test_device_object_read_wraps_the_instance(registry):
    payload = encode(TLV, P(3), DEVICE_ENTRIES, registry)
    assert payload == bytes([0x08, 0x00, 0x79]) + DEVICE_TLV
    assert decode(TLV, P(3), payload, registry) == DEVICE_ENTRIES
    # a client may wrap an instance read in its object-instance TLV too
    assert decode(TLV, P(3, 0), payload, registry) == DEVICE_ENTRIES


def test_multiple_object_instances_with_16_bit_resource_instance_id(registry):
    assert decode(TLV, P(2), ACCESS_CONTROL_TLV, registry) == ACCESS_CONTROL_ENTRIES
    assert encode(TLV, P(2), ACCESS_CONTROL_ENTRIES, registry) == ACCESS_CONTROL_TLV


def test_single_resource_and_resource_instance(registry):
    assert encode(TLV, P(3, 0, 0), [(P(3, 0, 0), "Open Mobile Alliance")], registry) == DEVICE_TLV[:23]
    assert encode(TLV, P(3, 0, 6), [(P(3, 0, 6), {0: 1, 1: 5})], registry) == hexbytes("86 06 41 00 01 41 01 05")
    assert decode(TLV, P(3, 0, 6), hexbytes("86 06 41 00 01 41 01 05"), registry) == [(P(3, 0, 6), {0: 1, 1: 5})]
    # a bare list of resource instances is accepted for a multiple resource
    assert decode(TLV, P(3, 0, 6), hexbytes("41 00 01 41 01 05"), registry) == [(P(3, 0, 6), {0: 1, 1: 5})]
    assert encode(TLV, P(3, 0, 6, 1), [(P(3, 0, 6, 1), 5)], registry) == hexbytes("41 01 05")
    assert decode(TLV, P(3, 0, 6, 1), hexbytes("41 01 05"), registry) == [(P(3, 0, 6, 1), 5)]


def test_flat_resource_instances_are_grouped_on_encode(registry):
    flat = [(P(3, 0, 6, 0), 1), (P(3, 0, 6, 1), 5)]
    assert encode(TLV, P(3, 0), flat, registry) == hexbytes("86 06 41 00 01 41 01 05")


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        (0, "00"),
        (-1, "FF"),
        (127, "7F"),
        (128, "00 80"),
        (-32768, "80 00"),
        (32768, "00 00 80 00"),
        (2**31, "00 00 00 00 80 00 00 00"),
        (-(2**63), "80 00 00 00 00 00 00 00"),
    ],
)
def test_integers_take_the_fewest_of_1_2_4_8_bytes(registry, value, raw):
    path = P(3, 0, 9)
    payload = encode(TLV, path, [(path, value)], registry)
    assert parse_tlvs(payload) == [Tlv(TlvKind.RESOURCE_VALUE, 9, bytes.fromhex(raw))]
    assert decode(TLV, path, payload, registry) == [(path, value)]


def test_float_uses_4_bytes_when_exact_else_8(registry):
    path = P(6, 0, 0)
    assert encode(TLV, path, [(path, 1.5)], registry) == hexbytes("C4 00 3F C0 00 00")
    eight = encode(TLV, path, [(path, 0.1)], registry)
    assert eight[0] == 0xC8 and eight[2] == 8
    assert decode(TLV, path, eight, registry) == [(path, 0.1)]


def test_objlnk_is_two_uint16(registry):
    path = P(3, 0, 22, 0)
    assert encode(TLV, path, [(path, ObjLnk(3303, 1))], registry) == hexbytes("44 00 0C E7 00 01")
    assert decode(TLV, path, hexbytes("44 00 0C E7 00 01"), registry) == [(path, ObjLnk(3303, 1))]


def test_header_forms():
    assert tlv_header(TlvKind.RESOURCE_VALUE, 1, 7) == bytes([0xC7, 0x01])
    assert tlv_header(TlvKind.RESOURCE_VALUE, 1, 8) == bytes([0xC8, 0x01, 0x08])
    assert tlv_header(TlvKind.RESOURCE_VALUE, 300, 256) == bytes([0xF0, 0x01, 0x2C, 0x01, 0x00])
    assert tlv_header(TlvKind.OBJECT_INSTANCE, 0, 70000) == bytes([0x18, 0x00, 0x01, 0x11, 0x70])
    long_value = b"x" * 70000
    assert parse_tlvs(tlv_header(TlvKind.RESOURCE_VALUE, 5, 70000) + long_value) == [
        Tlv(TlvKind.RESOURCE_VALUE, 5, long_value)
    ]


def test_unknown_resources_stay_opaque():
    assert decode(TLV, P(9999, 0), hexbytes("C1 05 2A"), None) == [(P(9999, 0, 5), b"\x2a")]


def test_create_payload_without_instance_uses_the_given_id(registry):
    payload = hexbytes("C1 00 01 C1 01 00 C1 03 7F")
    with pytest.raises(CodecError):
        decode(TLV, P(2), payload, registry)
    assert decode(TLV, P(2), payload, registry, default_instance=4) == [
        (P(2, 4, 0), 1),
        (P(2, 4, 1), 0),
        (P(2, 4, 3), 127),
    ]


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (P(3, 0), "C8 00 14 4F"),  # value runs past the end
        (P(3, 0), "C8"),  # header cut
        (P(3, 0, 9), "C3 09 00 00 01"),  # 3-byte integer
        (P(3, 0, 9), "C1 08 64"),  # another resource than addressed
        (P(3, 0), "C1 09 64 C1 09 65"),  # resource twice
        (P(3), "08 00 03 C1 09 64 08 00 03 C1 09 65"),  # instance twice
        (P(3, 0, 6), "86 06 41 00 01 41 00 02"),  # resource instance twice
        (P(3, 0), "86 06 C1 00 01"),  # a resource value inside a multiple resource
        (P(3, 0, 16), "C2 10 C3 28"),  # string not UTF-8
        (P(6, 0, 0), "C3 00 00 00 00"),  # 3-byte float
        (P(1, 0, 6), "C1 06 02"),  # boolean 2
        (P(3, 0, 22, 0), "43 00 00 00 01"),  # 3-byte objlnk
        (P(3, 0), "08 01 03 C1 09 64"),  # another object instance than addressed
        (P(3, 0, 6, 1), "41 02 05"),  # another resource instance than addressed
    ],
)
def test_bad_payloads_raise_codec_error(registry, path, payload):
    with pytest.raises(CodecError) as info:
        decode(TLV, path, hexbytes(payload), registry)
    assert info.value.code.dotted == "4.00"


def test_root_is_not_addressable():
    with pytest.raises(UnsupportedContentFormat):
        decode(TLV, P(), b"", None)


def test_draft_content_format_number_is_tlv(registry):
    assert decode(1542, P(3, 0), DEVICE_TLV, registry) == DEVICE_ENTRIES
