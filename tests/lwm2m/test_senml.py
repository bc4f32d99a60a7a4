"""SenML JSON / SenML CBOR and LwM2M JSON: the specification's Device example, base fields, labels."""

from __future__ import annotations

import json

import cbor2
import pytest

from gatewayd.lwm2m.codecs import CodecError, ContentFormat, SenMLRecord, codec_for, decode, encode
from gatewayd.lwm2m.definitions import ObjLnk
from gatewayd.lwm2m.paths import LwM2MPath as P

from .test_tlv import DEVICE_ENTRIES

SENML_JSON = ContentFormat.SENML_JSON
SENML_CBOR = ContentFormat.SENML_CBOR
LWM2M_JSON = ContentFormat.LWM2M_JSON

# Read /3/0 answered in SenML JSON (LwM2M TS Core §7.4.4 example).
DEVICE_SENML = """[
 {"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
 {"n":"1","vs":"Lightweight M2M Client"},
 {"n":"2","vs":"345000123"},
 {"n":"3","vs":"1.0"},
 {"n":"6/0","v":1},
 {"n":"6/1","v":5},
 {"n":"7/0","v":3800},
 {"n":"7/1","v":5000},
 {"n":"8/0","v":125},
 {"n":"8/1","v":900},
 {"n":"9","v":100},
 {"n":"10","v":15},
 {"n":"11/0","v":0},
 {"n":"13","v":1367491215},
 {"n":"14","vs":"+02:00"},
 {"n":"16","vs":"U"}]"""

# The same read in the LwM2M 1.0 JSON format (TS 1.0 §6.4.4 example).
DEVICE_LWM2M_JSON = """{"bn":"/3/0/","e":[
 {"n":"0","sv":"Open Mobile Alliance"},
 {"n":"1","sv":"Lightweight M2M Client"},
 {"n":"2","sv":"345000123"},
 {"n":"3","sv":"1.0"},
 {"n":"6/0","v":1},{"n":"6/1","v":5},
 {"n":"7/0","v":3800},{"n":"7/1","v":5000},
 {"n":"8/0","v":125},{"n":"8/1","v":900},
 {"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},
 {"n":"13","v":1367491215},{"n":"14","sv":"+02:00"},{"n":"16","sv":"U"}]}"""


def test_senml_json_device_example_decodes(registry):
    assert decode(SENML_JSON, P(3, 0), DEVICE_SENML.encode(), registry) == DEVICE_ENTRIES


def test_senml_json_device_example_encodes(registry):
    payload = encode(SENML_JSON, P(3, 0), DEVICE_ENTRIES, registry)
    assert json.loads(payload) == json.loads(DEVICE_SENML)
    assert b" " not in payload.replace(b"Open Mobile Alliance", b"").replace(b"Lightweight M2M Client", b"")


def test_senml_cbor_uses_numeric_labels(registry):
    payload = encode(SENML_CBOR, P(3, 0), DEVICE_ENTRIES, registry)
    pack = cbor2.loads(payload)
    assert pack[0] == {-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"}
    assert pack[4] == {0: "6/0", 2: 1}
    assert pack[13] == {0: "13", 2: 1367491215}
    labelled = [{{-2: "bn", 0: "n", 2: "v", 3: "vs"}[k]: v for k, v in r.items()} for r in pack]
    assert labelled == json.loads(DEVICE_SENML)
    assert decode(SENML_CBOR, P(3, 0), payload, registry) == DEVICE_ENTRIES


def test_lwm2m_json_device_example(registry):
    assert decode(LWM2M_JSON, P(3, 0), DEVICE_LWM2M_JSON.encode(), registry) == DEVICE_ENTRIES
    assert json.loads(encode(LWM2M_JSON, P(3, 0), DEVICE_ENTRIES, registry)) == json.loads(DEVICE_LWM2M_JSON)
    # 1.0-era servers send 1543 and may leave out bn: names are then relative to the request path
    no_bn = b'{"e":[{"n":"9","v":100},{"n":"6/0","v":1}]}'
    assert decode(1543, P(3, 0), no_bn, registry) == [(P(3, 0, 9), 100), (P(3, 0, 6), {0: 1})]


def test_lwm2m_json_typed_fields(registry):
    entries = [(P(1, 0, 6), True), (P(1, 0, 10), ObjLnk(11, 0)), (P(5, 0, 1), "coap://x")]
    payload = encode(LWM2M_JSON, P(1, 0), entries[:2], registry)
    assert json.loads(payload) == {"bn": "/1/0/", "e": [{"n": "6", "bv": True}, {"n": "10", "ov": "11:0"}]}
    assert decode(LWM2M_JSON, P(1, 0), payload, registry) == entries[:2]
    opaque = encode(LWM2M_JSON, P(5, 0, 0), [(P(5, 0, 0), b"\x00\xff")], registry)
    assert json.loads(opaque) == {"bn": "/5/0/0", "e": [{"sv": "AP8="}]}
    assert decode(LWM2M_JSON, P(5, 0, 0), opaque, registry) == [(P(5, 0, 0), b"\x00\xff")]


def test_senml_base_name_changes_and_base_time(registry):
    payload = b"""[{"bn":"/3/0/","bt":1000,"n":"9","v":90,"t":5},
                   {"n":"10","v":7},
                   {"bn":"/1/0/","n":"6","vb":false,"t":-1}]"""
    codec = codec_for(SENML_JSON)
    records = codec.decode_records(P(), payload, registry)
    assert records == [
        SenMLRecord(P(3, 0, 9), 90, 1005),
        SenMLRecord(P(3, 0, 10), 7, 1000),
        SenMLRecord(P(1, 0, 6), False, 999),
    ]
    assert decode(SENML_JSON, P(), payload, registry) == [(P(3, 0, 9), 90), (P(3, 0, 10), 7), (P(1, 0, 6), False)]


def test_senml_opaque_and_objlnk_fields(registry):
    entries = [(P(5, 0, 0), b"\xfb\xff"), (P(3, 0, 22), {0: ObjLnk(3303, 0)})]
    payload = encode(SENML_JSON, P(), entries, registry)
    assert json.loads(payload) == [{"bn": "/", "n": "5/0/0", "vd": "-_8"}, {"n": "3/0/22/0", "vlo": "3303:0"}]
    assert decode(SENML_JSON, P(), payload, registry) == entries
    # padded standard base64 is accepted too
    assert decode(SENML_JSON, P(5, 0, 0), b'[{"bn":"/5/0/0","vd":"+/8="}]', registry) == [entries[0]]
    cbor = encode(SENML_CBOR, P(5, 0, 0), entries[:1], registry)
    assert cbor2.loads(cbor) == [{-2: "/5/0/0", 8: b"\xfb\xff"}]
    assert decode(SENML_CBOR, P(5, 0, 0), cbor, registry) == entries[:1]
    link = encode(SENML_CBOR, P(3, 0, 22, 0), [(P(3, 0, 22, 0), ObjLnk(1, 2))], registry)
    assert cbor2.loads(link) == [{-2: "/3/0/22/0", "vlo": "1:2"}]


def test_senml_single_resource_and_timestamps(registry):
    codec = codec_for(SENML_JSON)
    payload = encode(SENML_JSON, P(3, 0, 9), [(P(3, 0, 9), 100)], registry)
    assert json.loads(payload) == [{"bn": "/3/0/9", "v": 100}]
    timed = codec.encode_records(P(3303, 0, 5700), [SenMLRecord(P(3303, 0, 5700), 21.5, 1700000000)], registry)
    assert json.loads(timed) == [{"bn": "/3303/0/5700", "t": 1700000000, "v": 21.5}]
    assert codec.decode_records(P(), timed, registry) == [SenMLRecord(P(3303, 0, 5700), 21.5, 1700000000)]


def test_composite_request_paths():
    codec = codec_for(SENML_CBOR)
    payload = codec.encode_paths([P(3, 0, 9), P(1, 0, 1), P(3303)])
    assert codec.decode_paths(payload) == [P(3, 0, 9), P(1, 0, 1), P(3303)]
    assert codec_for(SENML_JSON).decode_paths(b'[{"n":"/3/0/9"},{"n":"/1/0"}]') == [P(3, 0, 9), P(1, 0)]


@pytest.mark.parametrize(
    ("fmt", "path", "payload"),
    [
        (SENML_JSON, P(3, 0), b'{"bn":"/3/0/"}'),  # not an array
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"9","vs":"100"}]'),  # string for an integer
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"9","v":1.5}]'),  # fraction for an integer
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"9","v":1,"vs":"1"}]'),  # two values
        (SENML_JSON, P(3, 0), b'[{"bn":"/4/0/","n":"2","v":1}]'),  # outside the request path
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"x","v":1}]'),  # name is no path
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"9","v":NaN}]'),  # NaN
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"9","v":1},{"n":"9","v":2}]'),  # twice
        (SENML_JSON, P(3, 0), b'[{"bn":"/3/0/","n":"9"}]'),  # no value in a write
        (SENML_JSON, P(3, 0), b'[{"bn_":"/3/0/","n":"9","v":1}]'),  # must-understand label
        (SENML_JSON, P(5, 0, 0), b'[{"bn":"/5/0/0","vd":"***"}]'),  # bad base64
        (SENML_CBOR, P(3, 0), b"\x81\xa2\x00\x619\x02\x18d\x00"),  # trailing byte
        (SENML_CBOR, P(3, 0), b"\xa1\x00\x619"),  # map, not array
        (LWM2M_JSON, P(3, 0), b'[{"n":"9","v":1}]'),  # no e array
        (LWM2M_JSON, P(3, 0), b'{"bn":"/3/0/","e":[{"n":"9","sv":"x"}]}'),  # string for an integer
        (LWM2M_JSON, P(3, 0), b'{"bn":"/3/0/","e":[{"n":"9"}]}'),  # no value
        (LWM2M_JSON, P(3, 0), b'{"bn":"/3/0/","e":[{"n":"65536","v":1}]}'),  # id out of range
    ],
)
def test_bad_payloads_raise_codec_error(registry, fmt, path, payload):
    with pytest.raises(CodecError):
        decode(fmt, path, payload, registry)
