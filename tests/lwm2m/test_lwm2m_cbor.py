"""LwM2M CBOR (11544, LwM2M 1.2): byte vectors, property round trips, and a 1.2 client using it for
Read, Read-/Observe-/Write-Composite against the aiocoap test server."""

from __future__ import annotations

import cbor2
import pytest
from aiocoap.numbers.codes import Code
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine
from gatewayd.lwm2m.codecs import CodecError, ContentFormat, decode, decode_links, encode
from gatewayd.lwm2m.codecs.lwm2m_cbor import LwM2MCborCodec
from gatewayd.lwm2m.codecs.senml import SenMLCborCodec
from gatewayd.lwm2m.definitions import ObjLnk
from gatewayd.lwm2m.paths import LwM2MPath as P
from gatewayd.lwm2m.proxy.component import LwM2MProxy

from .objects import ALL_TYPES_ID, TYPES, make_registry
from .proxy.test_coap_adapter import proxied, sensors  # noqa: F401 (sensors: a fixture)
from .servers import REGISTRY as REGISTRY_SHIPPED
from .test_client_ops import registered

REGISTRY = make_registry()
CF = ContentFormat.LWM2M_CBOR
CODEC = LwM2MCborCodec()
pytestmark = pytest.mark.timeout(60)

# The Device object instance the data-format examples of the LwM2M Core TS use (§7.4), in LwM2M CBOR:
# {3: {0: {0: "Open Mobile Alliance", 1: "Lightweight M2M Client", 2: "345000123", 3: "1.0",
#          6: {0: 1, 1: 5}, 7: {0: 3800, 1: 5000}, 8: {0: 125, 1: 900}, 9: 100, 10: 15, 11: {0: 0},
#          13: 1367491215, 14: "+02:00", 16: "U"}}}
DEVICE_ENTRIES = [
    (P(3, 0, 0), "Open Mobile Alliance"), (P(3, 0, 1), "Lightweight M2M Client"), (P(3, 0, 2), "345000123"),
    (P(3, 0, 3), "1.0"), (P(3, 0, 6), {0: 1, 1: 5}), (P(3, 0, 7), {0: 3800, 1: 5000}),
    (P(3, 0, 8), {0: 125, 1: 900}), (P(3, 0, 9), 100), (P(3, 0, 10), 15), (P(3, 0, 11), {0: 0}),
    (P(3, 0, 13), 1367491215), (P(3, 0, 14), "+02:00"), (P(3, 0, 16), "U"),
]


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# (what, request path, payload, entries) — hand-assembled CBOR; the shapes an independent
# implementation (AVSystem Anjay's LwM2M CBOR tests) reads, each checked here byte for byte
DECODE_VECTORS = [
    ("one resource, array key {[13, 26, 1]: 42}", P(13, 26, 1), "a1 83 0d 18 1a 01 18 2a", [(P(13, 26, 1), 42)]),
    ("nested maps {13: {26: {1: 42}}}", P(13, 26, 1), "a1 0d a1 18 1a a1 01 18 2a", [(P(13, 26, 1), 42)]),
    ("one-element array keys {[13]: {[26]: {[1]: 42}}}", P(13, 26, 1),
     "a1 81 0d a1 81 18 1a a1 81 01 18 2a", [(P(13, 26, 1), 42)]),
    ("indefinite map and array {_ [_ 13, 26, 1]: 42}", P(13, 26, 1), "bf 9f 0d 18 1a 01 ff 18 2a ff",
     [(P(13, 26, 1), 42)]),
    ("instance {[13, 26]: {1: 42, 2: 21}}", P(13, 26), "a1 82 0d 18 1a a2 01 18 2a 02 15",
     [(P(13, 26, 1), 42), (P(13, 26, 2), 21)]),
    ("mixed depths {[13, 26]: {1: 42}, [13, 26, 2]: 21}", P(13, 26), "a2 82 0d 18 1a a1 01 18 2a 83 0d 18 1a 02 15",
     [(P(13, 26, 1), 42), (P(13, 26, 2), 21)]),
    ("composite {13: {26: {1: 1}}, 14: {27: {2: 2}}}", P(), "a2 0d a1 18 1a a1 01 01 0e a1 18 1b a1 02 02",
     [(P(13, 26, 1), 1), (P(14, 27, 2), 2)]),
    ("decimal fraction 4([-1, 45]) is 4.5", P(13, 26, 1, 2), "a1 81 0d a1 81 18 1a a1 81 01 a1 81 02 c4 82 20 18 2d",
     [(P(13, 26, 1, 2), 4.5)]),
    ("half float 2.5", P(13, 26, 3), "a1 83 0d 18 1a 03 f9 41 00", [(P(13, 26, 3), 2.5)]),
    ("bytes in chunks (_ h'0011', h'2233')", P(13, 26, 1), "a1 83 0d 18 1a 01 5f 42 00 11 42 22 33 ff",
     [(P(13, 26, 1), b"\x00\x11\x22\x33")]),
]


@pytest.mark.parametrize(("what", "base", "payload", "entries"), DECODE_VECTORS, ids=[v[0] for v in DECODE_VECTORS])
def test_decode_vectors(what, base, payload, entries):
    assert decode(CF, base, h(payload)) == entries


def test_device_object_example_both_ways():
    payload = encode(CF, P(3, 0), DEVICE_ENTRIES, REGISTRY)
    # every value where the example puts it, all under one array key [3, 0]
    item = cbor2.loads(payload)
    assert list(item) == [(3, 0)]
    assert item[(3, 0)][6] == {0: 1, 1: 5} and item[(3, 0)][13] == 1367491215 and item[(3, 0)][16] == "U"
    assert decode(CF, P(3, 0), payload, REGISTRY) == DEVICE_ENTRIES
    nested = cbor2.dumps({3: {0: {rid: v for (p, v) in DEVICE_ENTRIES for rid in [p.resource]}}})
    assert decode(CF, P(3), nested, REGISTRY) == DEVICE_ENTRIES


ENCODE_VECTORS = [
    ("a single resource folds into one array key", P(13, 26, 1), [(P(13, 26, 1), 42)], "a1 83 0d 18 1a 01 18 2a"),
    ("an instance", P(13, 26), [(P(13, 26, 1), 42), (P(13, 26, 2), 21)], "a1 82 0d 18 1a a2 01 18 2a 02 15"),
    ("two objects: each chain folded", P(), [(P(13, 26, 1), 42), (P(14, 27, 1), 43)],
     "a2 83 0d 18 1a 01 18 2a 83 0e 18 1b 01 18 2b"),
    ("resource instances", P(13, 26, 3), [(P(13, 26, 3), {21: 69.68, 37: False})],
     "a1 83 0d 18 1a 03 a2 15 fb 40 51 6b 85 1e b8 51 ec 18 25 f4"),
]


@pytest.mark.parametrize(("what", "base", "entries", "payload"), ENCODE_VECTORS, ids=[v[0] for v in ENCODE_VECTORS])
def test_encode_vectors(what, base, entries, payload):
    assert encode(CF, base, entries).hex(" ") == h(payload).hex(" ")


def _res(type_name: str, multiple: bool = False) -> int:
    return 10 * TYPES.index(type_name) + int(multiple)


def test_types_by_the_object_model():
    base = P(ALL_TYPES_ID, 0)
    entries = [(base.child(_res("Objlnk")), ObjLnk(12, 34)), (base.child(_res("Time")), 1_700_000_000),
               (base.child(_res("Opaque")), b"\x01\x02"), (base.child(_res("Unsigned Integer")), 2**64 - 1),
               (base.child(_res("Float")), 1.5)]
    payload = encode(CF, base, entries, REGISTRY)
    raw = cbor2.loads(payload)[(ALL_TYPES_ID, 0)]
    assert raw[_res("Objlnk")] == "12:34", "an object link is \"oid:iid\" text"
    assert raw[_res("Opaque")] == b"\x01\x02"
    assert decode(CF, base, payload, REGISTRY) == entries
    # Time as tag 1 (epoch seconds) is read too
    tagged = cbor2.dumps({(ALL_TYPES_ID, 0, _res("Time")): cbor2.CBORTag(1, 1_700_000_000)})
    assert decode(CF, base, tagged, REGISTRY) == [(base.child(_res("Time")), 1_700_000_000)]


BAD = [
    ("not a map", P(), "00"),
    ("an array at the top", P(), "84 01 02 03 04"),
    ("id over 65535", P(13, 26), "a1 82 0d 18 1a a1 1a 00 01 00 00 05"),
    ("five levels in one key", P(13, 26), "a1 85 0d 18 1a 03 04 05 05"),
    ("five levels by nesting", P(), "a1 0d a1 18 1a a1 01 a1 02 a1 03 04"),
    ("an empty array key", P(), "a2 0d a1 80 18 1a a1 80 01 18 2a"),
    ("a path outside the request's", P(14), "a1 83 0d 18 1a 01 18 2a"),
    ("a float key", P(), "a1 83 0d fb 3f d0 a3 d7 0a 3d 70 a4 01 18 2a"),
    ("a text key", P(), "a1 0d a1 62 32 36 a1 01 18 2a"),
    ("an array value", P(), "a1 0d a1 18 1a 81 a1 01 18 2a"),
    ("cut short", P(), "a1 82 0d 18 1a a1"),
    ("a value at an instance", P(), "a1 82 0d 18 1a 05"),
    ("the same path twice", P(), "a2 83 0d 18 1a 01 01 0d a1 18 1a a1 01 02"),
    ("null where a Write needs a value", P(13, 26), "a1 83 0d 18 1a 01 f6"),
    ("trailing bytes", P(13, 26, 1), "a1 83 0d 18 1a 01 18 2a 00"),
]


@pytest.mark.parametrize(("what", "base", "payload"), BAD, ids=[b[0] for b in BAD])
def test_bad_payloads_are_codec_errors(what, base, payload):
    with pytest.raises(CodecError):
        decode(CF, base, h(payload), REGISTRY)


def test_composite_request_paths_with_null():
    # {[13, 26, 1]: {2: null, 3: 5}} names two resource instances; a Read-Composite request is all nulls
    assert CODEC.decode_paths(h("a1 83 0d 18 1a 01 a2 02 f6 03 05")) == [P(13, 26, 1, 2), P(13, 26, 1, 3)]
    paths = [P(3, 0, 0), P(3, 0, 13), P(1, 0, 1), P(4)]
    payload = CODEC.encode_paths(paths)
    assert cbor2.loads(payload) == {(3, 0): {0: None, 13: None}, (1, 0, 1): None, 4: None}
    assert sorted(CODEC.decode_paths(payload)) == sorted(paths)


# --- properties ------------------------------------------------------------------------------------

IDS = st.integers(0, 0xFFFF)
LEAF = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=6) | st.binary(
    max_size=6)
KEYS = IDS | st.lists(IDS, min_size=0, max_size=5).map(tuple) | st.text(max_size=3) | st.floats()
DOCS = st.recursive(LEAF, lambda inner: st.dictionaries(KEYS, inner, max_size=4) | st.lists(inner, max_size=2),
                    max_leaves=16)


@settings(max_examples=300)
@given(DOCS, st.sampled_from([P(), P(3), P(3, 0), P(3, 0, 6), P(ALL_TYPES_ID, 0), P(3, 0, 6, 1)]))
def test_decoder_on_cbor_documents_gives_entries_or_codec_error(doc, base):
    for codec_call in (lambda p: decode(CF, base, p, REGISTRY), CODEC.decode_paths):
        try:
            codec_call(cbor2.dumps(doc))
        except CodecError:
            pass


@settings(max_examples=200)
@given(st.lists(st.lists(IDS, min_size=1, max_size=4).map(lambda ids: P(*ids)), min_size=1, max_size=6, unique=True))
def test_composite_paths_round_trip(paths):
    if any(a != b and a.is_prefix_of(b) for a in paths for b in paths):
        with pytest.raises(CodecError):
            CODEC.encode_paths(paths)
        return
    assert sorted(CODEC.decode_paths(CODEC.encode_paths(paths))) == sorted(paths)


# --- a 1.2 client ----------------------------------------------------------------------------------

async def test_a_1_2_client_registers_lwm2m_cbor_and_answers_in_it(server, clients) -> None:
    await registered(server, clients, lwm2m_version="1.2")
    reg = server.registrations["ep-1"]
    assert reg.query["lwm2m"] == "1.2"
    links = {link.target: link.attributes for link in decode_links(reg.links.encode())}
    assert links["/"] == {"rt": "oma.lwm2m", "ct": "11544"}
    resp = await server.op("ep-1", Code.GET, "/3/0")
    assert resp.code == Code.CONTENT and int(resp.opt.content_format) == CF
    got = dict(decode(CF, P(3, 0), resp.payload, REGISTRY))
    assert got[P(3, 0, 0)] == "gatewayd tests"


async def test_a_1_1_client_answers_an_accept_of_lwm2m_cbor(server, clients) -> None:
    await registered(server, clients)
    resp = await server.op("ep-1", Code.GET, "/1/0", accept=CF)
    assert resp.code == Code.CONTENT and int(resp.opt.content_format) == CF
    assert dict(decode(CF, P(1, 0), resp.payload, REGISTRY))[P(1, 0, 1)] == 60


async def test_read_observe_and_write_composite_in_lwm2m_cbor(server, clients) -> None:
    client = await registered(server, clients, lwm2m_version="1.2")
    request = CODEC.encode_paths([P(3, 0, 0), P(3, 0, 13), P(1, 0, 1)])
    resp = await server.op("ep-1", Code.FETCH, "/", request, CF)
    assert resp.code == Code.CONTENT and int(resp.opt.content_format) == CF
    assert dict(decode(CF, P(), resp.payload, REGISTRY)) == {
        P(3, 0, 0): "gatewayd tests", P(3, 0, 13): 1_700_000_000, P(1, 0, 1): 60}
    # SenML names in, LwM2M CBOR out
    senml_paths = SenMLCborCodec().encode_paths([P(3, 0, 13)])
    resp = await server.op("ep-1", Code.FETCH, "/", senml_paths, ContentFormat.SENML_CBOR, accept=CF)
    assert resp.code == Code.CONTENT and dict(decode(CF, P(), resp.payload, REGISTRY)) == {P(3, 0, 13): 1_700_000_000}

    obs = server.observe("ep-1", "/", code=Code.FETCH, payload=request, content_format=CF)
    first = await obs.first()
    assert first.code == Code.CONTENT and int(first.opt.content_format) == CF
    client.store.set(P(3, 0, 13), 1_700_000_999)
    note = await obs.next()
    assert int(note.opt.content_format) == CF
    assert dict(decode(CF, P(), note.payload, REGISTRY))[P(3, 0, 13)] == 1_700_000_999
    obs.cancel()

    write = encode(CF, P(), [(P(3, 0, 14), "+03"), (P(1, 0, 1), 120)], REGISTRY)
    resp = await server.op("ep-1", Code.iPATCH, "/", write, CF)
    assert resp.code == Code.CHANGED
    assert client.store.get(P(3, 0, 14)) == "+03" and client.store.get(P(1, 0, 1)) == 120
    bad = await server.op("ep-1", Code.iPATCH, "/", h("a1 83 03 00 0e f6"), CF)
    assert bad.code == Code.BAD_REQUEST, "null is no value to write"


# --- a proxied device: composite operations reach the device through the virtual client ------------

async def test_proxied_device_read_and_write_composite_in_lwm2m_cbor(server, sensors) -> None:  # noqa: F811
    engine = LwM2MEngine(None, ClientSettings(lifetime=60, lwm2m_version="1.2"))
    proxy = LwM2MProxy(engine, REGISTRY_SHIPPED, ClientSettings(lifetime=60, lwm2m_version="1.2"))
    try:
        sensor = await sensors(max_age=0)
        await proxied(server, proxy, "dev-c", sensor.port)
        sensor.set_temp(18.5)
        request = CODEC.encode_paths([P(3303, 0, 5700), P(3311, 0, 5850)])
        resp = await server.op("dev-c", Code.FETCH, "/", request, CF)
        assert resp.code == Code.CONTENT and int(resp.opt.content_format) == CF
        got = dict(decode(CF, P(), resp.payload, REGISTRY_SHIPPED))
        assert got == {P(3303, 0, 5700): 18.5, P(3311, 0, 5850): False}, "both read from the device just now"
        write = encode(CF, P(), [(P(3311, 0, 5850), True)], REGISTRY_SHIPPED)
        resp = await server.op("dev-c", Code.iPATCH, "/", write, CF)
        assert resp.code == Code.CHANGED and sensor.led is True
        assert sensor.requests[-1]["method"] == "PUT" and sensor.requests[-1]["payload"] == "true"
    finally:
        await proxy.stop()
        await engine.stop()


def test_a_1_2_client_names_its_version_in_bootstrap_discover():
    from gatewayd.lwm2m.client import ServerOperations
    from gatewayd.lwm2m.client.operations import OpRequest

    from .servers import device_store

    ops = ServerOperations(device_store("coap://lwm2m.example.com:5683"), version="1.2")
    resp = ops.handle(OpRequest("GET", (), accept=ContentFormat.LINK_FORMAT), bootstrap=True)
    assert resp.payload.startswith(b"</>;lwm2m=1.2,")
