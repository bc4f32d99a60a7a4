"""Hypothesis: every value of every type survives encode → decode in every format that can carry it,
and decoders turn arbitrary input into entries or CodecError, nothing else."""

from __future__ import annotations

import json

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.lwm2m.codecs import CodecError, ContentFormat, decode, encode
from gatewayd.lwm2m.codecs.linkformat import decode_links, encode_links
from gatewayd.lwm2m.definitions import ObjLnk
from gatewayd.lwm2m.numbers import ResourceType
from gatewayd.lwm2m.paths import LwM2MPath as P

from .objects import ALL_TYPES_ID, TYPES, make_registry

REGISTRY = make_registry()

VALUES = {
    ResourceType.STRING: st.text(max_size=40),
    ResourceType.CORELNK: st.text(max_size=40),
    ResourceType.INTEGER: st.integers(-(2**63), 2**63 - 1),
    ResourceType.TIME: st.integers(-(2**63), 2**63 - 1),
    ResourceType.UNSIGNED: st.integers(0, 2**64 - 1),
    ResourceType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    ResourceType.BOOLEAN: st.booleans(),
    ResourceType.OPAQUE: st.binary(max_size=40),
    ResourceType.OBJLNK: st.builds(ObjLnk, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
}

MULTI_VALUE_FORMATS = [
    ContentFormat.TLV,
    ContentFormat.SENML_JSON,
    ContentFormat.SENML_CBOR,
    ContentFormat.LWM2M_JSON,
    ContentFormat.LWM2M_CBOR,
]
SINGLE_VALUE_FORMATS = [ContentFormat.TEXT, ContentFormat.CBOR, *MULTI_VALUE_FORMATS]


def _type_index(rtype: ResourceType) -> int:
    return TYPES.index(rtype.value)


@st.composite
def single_resource(draw):
    rtype = draw(st.sampled_from(list(VALUES)))
    path = P(ALL_TYPES_ID, draw(st.integers(0, 0xFFFF)), 10 * _type_index(rtype))
    return path, draw(VALUES[rtype])


@st.composite
def instance_entries(draw, iid=None):
    iid = draw(st.integers(0, 0xFFFF)) if iid is None else iid
    entries = []
    for rtype in draw(st.sets(st.sampled_from(list(VALUES)), max_size=len(VALUES))):
        k = _type_index(rtype)
        entries.append((P(ALL_TYPES_ID, iid, 10 * k), draw(VALUES[rtype])))
        if draw(st.booleans()):
            ris = draw(st.dictionaries(st.integers(0, 0xFFFF), VALUES[rtype], min_size=1, max_size=4))
            entries.append((P(ALL_TYPES_ID, iid, 10 * k + 1), ris))
    return sorted(entries)


@settings(max_examples=300)
@given(single_resource(), st.sampled_from(SINGLE_VALUE_FORMATS))
def test_single_resource_round_trip(item, fmt):
    path = item[0]
    payload = encode(fmt, path, [item], REGISTRY)
    assert decode(fmt, path, payload, REGISTRY) == [item]


@given(st.binary(max_size=64), st.integers(0, 0xFFFF))
def test_opaque_round_trip(data, iid):
    path = P(ALL_TYPES_ID, iid, 10 * _type_index(ResourceType.OPAQUE))
    assert decode(ContentFormat.OPAQUE, path, encode(ContentFormat.OPAQUE, path, [(path, data)], REGISTRY)) == [
        (path, data)
    ]


@settings(max_examples=200)
@given(instance_entries(), st.sampled_from(MULTI_VALUE_FORMATS))
def test_instance_round_trip(entries, fmt):
    if not entries:
        return
    base = entries[0][0].parent
    payload = encode(fmt, base, entries, REGISTRY)
    assert decode(fmt, base, payload, REGISTRY) == entries


@settings(max_examples=100)
@given(st.lists(instance_entries(iid=0), min_size=1, max_size=3), st.sampled_from(MULTI_VALUE_FORMATS))
def test_object_round_trip(instances, fmt):
    entries = []
    for iid, inst in enumerate(instances):
        entries += [(P(p.object, iid, p.resource), v) for p, v in inst]
    if not entries:
        return
    payload = encode(fmt, P(ALL_TYPES_ID), entries, REGISTRY)
    assert decode(fmt, P(ALL_TYPES_ID), payload, REGISTRY) == entries


@settings(max_examples=100)
@given(instance_entries(iid=7))
def test_multiple_resource_round_trip_at_resource_level(entries):
    for path, value in entries:
        if isinstance(value, dict):
            for fmt in MULTI_VALUE_FORMATS:
                assert decode(fmt, path, encode(fmt, path, [(path, value)], REGISTRY), REGISTRY) == [(path, value)]


# --- decoders on hostile input ----------------------------------------------------------------------

PATHS = [P(3), P(3, 0), P(3, 0, 9), P(3, 0, 6), P(3, 0, 6, 1), P(1, 0), P(ALL_TYPES_ID, 0), P(5, 0, 0)]
RESOURCE_PATHS = [p for p in PATHS if p.depth >= 3] + [P(ALL_TYPES_ID, 0, 10 * k) for k in range(len(TYPES))]


def _only_codec_error(fmt, path, payload):
    try:
        decode(fmt, path, payload, REGISTRY, default_instance=0)
    except CodecError:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=200), st.sampled_from(MULTI_VALUE_FORMATS), st.sampled_from(PATHS))
def test_structured_decoders_on_arbitrary_bytes(payload, fmt, path):
    _only_codec_error(fmt, path, payload)


@settings(max_examples=200)
@given(
    st.binary(max_size=100), st.sampled_from([ContentFormat.TEXT, ContentFormat.CBOR]), st.sampled_from(RESOURCE_PATHS)
)
def test_single_value_decoders_on_arbitrary_bytes(payload, fmt, path):
    if path == P(3, 0, 6):  # a multiple resource: single-value formats refuse the path itself
        return
    _only_codec_error(fmt, path, payload)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
SENML_KEYS = st.sampled_from(["bn", "bt", "bv", "n", "v", "vs", "vb", "vd", "vlo", "t", "u", "e", "sv", "ov"])
NAMES = st.sampled_from(["/3/0/", "/3/0/9", "9", "6/0", "/", "3/0/13", "", "/32769/0/", "61", "/1/0/6"])
RECORD = st.dictionaries(SENML_KEYS, NAMES | JSON_VALUES, max_size=5)


@settings(max_examples=300)
@given(st.lists(RECORD, max_size=5) | JSON_VALUES, st.sampled_from(PATHS))
def test_senml_json_on_json_documents(doc, path):
    _only_codec_error(ContentFormat.SENML_JSON, path, json.dumps(doc).encode())
    _only_codec_error(ContentFormat.LWM2M_JSON, path, json.dumps({"bn": "/3/0/", "e": doc}).encode())


@settings(max_examples=150)
@given(
    st.lists(
        st.dictionaries(st.integers(-6, 8) | SENML_KEYS, NAMES | JSON_VALUES | st.binary(max_size=8), max_size=5),
        max_size=5,
    ),
    st.sampled_from(PATHS),
)
def test_senml_cbor_on_cbor_documents(pack, path):
    _only_codec_error(ContentFormat.SENML_CBOR, path, cbor2.dumps(pack))


@given(st.text(alphabet='<>/;,="\\ ab1.\t', max_size=60))
def test_link_format_on_arbitrary_text(text):
    try:
        links = decode_links(text.encode())
    except CodecError:
        return
    assert decode_links(encode_links(links)) == links
