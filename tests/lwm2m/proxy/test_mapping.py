"""Resource mapping and device value decoding (sans-I/O), with hypothesis properties."""

from __future__ import annotations

import json
import math

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.lwm2m import load_registry
from gatewayd.lwm2m.numbers import ResourceType
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.proxy.mapping import (
    CF_CBOR,
    CF_JSON,
    MappingError,
    ValueDecodeError,
    decode_value,
    encode_value,
    mapped_under,
    parse_mappings,
    parse_pointer,
)

REGISTRY = load_registry()


def test_mapping_takes_the_type_from_the_object_model() -> None:
    maps = parse_mappings({"/3303/0/5700": {"get": "/sensors/temp"},
                           "/3311/0/5850": {"get": "/led", "put": "/led", "format": "json", "pointer": "/on"},
                           "/3/0/4": {"post": "/reboot"}}, REGISTRY)
    temp = maps[LwM2MPath(3303, 0, 5700)]
    assert temp.type is ResourceType.FLOAT and temp.get == "/sensors/temp" and temp.observe
    led = maps[LwM2MPath(3311, 0, 5850)]
    assert led.type is ResourceType.BOOLEAN and led.write_target == ("PUT", "/led")
    assert maps[LwM2MPath(3, 0, 4)].execute_target == "/reboot"
    # a Read of the instance touches the mapped resources below it, nothing else
    assert mapped_under(maps.values(), [LwM2MPath(3303, 0)]) == [temp]
    assert mapped_under(maps.values(), [LwM2MPath(3303, 0, 5701)]) == []


@pytest.mark.parametrize(("path", "spec", "says"), [
    ("/3303/0", {"get": "/t"}, "not a resource path"),
    ("/3303/x/5700", {"get": "/t"}, "bad id"),
    ("/9999/0/1", {"get": "/t"}, "not in the object model"),
    ("/3303/0/5700", {}, "at least one of"),
    ("/3303/0/5700", {"gett": "/t"}, "unknown field 'gett'"),
    ("/3303/0/5700", {"get": "sensors/temp"}, "CoAP path"),
    ("/3303/0/5700", {"get": "/t", "type": "double"}, "type must be one of"),
    ("/3303/0/5700", {"get": "/t", "format": "xml"}, "format must be"),
    ("/3303/0/5700", {"get": "/t", "format": "text", "pointer": "/a"}, "needs format json or cbor"),
    ("/3303/0/5700", {"get": "/t", "pointer": "a"}, 'starts with "/"'),
    ("/3303/0/5700", {"put": "/t"}, "not writable"),
    ("/3/0/4", {"get": "/reboot"}, "executable"),
])
def test_bad_mappings_say_what_is_wrong(path, spec, says) -> None:
    with pytest.raises(MappingError, match=says):
        parse_mappings({path: spec}, REGISTRY)


@pytest.mark.parametrize(("payload", "rtype", "fmt", "pointer", "cf", "value"), [
    (b"21.5", ResourceType.FLOAT, "", "", None, 21.5),
    (b" 21 \n", ResourceType.INTEGER, "text", "", None, 21),
    (b"on", ResourceType.BOOLEAN, "", "", 0, True),
    (b'{"temp": 21.5, "unit": "Cel"}', ResourceType.FLOAT, "json", "/temp", None, 21.5),
    (b'{"a": [1, {"b/c": "x"}]}', ResourceType.STRING, "", "/a/1/b~1c", CF_JSON, "x"),
    (cbor2.dumps({"t": 7}), ResourceType.INTEGER, "", "/t", CF_CBOR, 7),
    (cbor2.dumps({1: True}), ResourceType.BOOLEAN, "cbor", "/1", None, True),
    (b"\x00\xff", ResourceType.OPAQUE, "", "", None, b"\x00\xff"),
])
def test_decode_device_values(payload, rtype, fmt, pointer, cf, value) -> None:
    assert decode_value(payload, rtype, fmt, pointer, cf) == value


@pytest.mark.parametrize(("payload", "rtype", "fmt", "pointer"), [
    (b"warm", ResourceType.FLOAT, "text", ""),
    (b"nan", ResourceType.FLOAT, "text", ""),
    (b'{"temp": 1}', ResourceType.FLOAT, "json", "/tmp"),
    (b"[1, 2]", ResourceType.INTEGER, "json", "/5"),
    (b"{", ResourceType.INTEGER, "json", ""),
    (b"\xff\xff", ResourceType.STRING, "text", ""),
    (b"\x9f", ResourceType.INTEGER, "cbor", ""),
    (b"-1", ResourceType.UNSIGNED, "text", ""),
    (b"1e999", ResourceType.FLOAT, "json", ""),
])
def test_bad_device_values_raise_the_documented_error(payload, rtype, fmt, pointer) -> None:
    with pytest.raises(ValueDecodeError):
        decode_value(payload, rtype, fmt, pointer)


SCALARS = {
    ResourceType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    ResourceType.INTEGER: st.integers(-(2**63), 2**63 - 1),
    ResourceType.UNSIGNED: st.integers(0, 2**64 - 1),
    ResourceType.BOOLEAN: st.booleans(),
    ResourceType.STRING: st.text(max_size=50),
    ResourceType.OPAQUE: st.binary(max_size=50),
}
POINTERS = st.lists(st.text(alphabet="ab/~0", min_size=1, max_size=4), max_size=3).map(
    lambda ts: "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in ts))


@given(st.sampled_from(list(SCALARS)).flatmap(lambda t: st.tuples(st.just(t), SCALARS[t])),
       st.sampled_from(["text", "json", "cbor"]), POINTERS)
def test_what_a_write_encodes_reads_back_as_the_same_value(typed, fmt, pointer) -> None:
    rtype, value = typed
    if fmt == "text":
        pointer = ""
        if rtype is ResourceType.STRING:
            value = value.strip() or "x"
    payload, cf = encode_value(value, rtype, fmt, pointer)
    if fmt == "json" and rtype is ResourceType.OPAQUE:
        value = value.decode("utf-8", "replace").encode("utf-8")
    back = decode_value(payload, rtype, "", pointer, cf)
    if rtype is ResourceType.FLOAT:
        assert math.isclose(back, value, rel_tol=0, abs_tol=0) or back == value
    else:
        assert back == value


@given(st.binary(max_size=300), st.sampled_from(list(ResourceType)), st.sampled_from(["", "text", "json", "cbor"]),
       st.sampled_from(["", "/a", "/0", "/a/b", "~", "x"]), st.sampled_from([None, 0, 50, 60, 42]))
def test_any_payload_decodes_or_raises_value_decode_error(payload, rtype, fmt, pointer, cf) -> None:
    try:
        decode_value(payload, rtype, fmt, pointer, cf)
    except ValueDecodeError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3),
                    max_leaves=10))
def test_the_whole_json_document_is_a_string_resource_only_when_it_is_one(doc) -> None:
    payload = json.dumps(doc).encode()
    try:
        value = decode_value(payload, ResourceType.STRING, "json")
    except ValueDecodeError:
        assert isinstance(doc, list | dict) or doc is None
    else:
        assert value == (doc if isinstance(doc, str) else ("true" if doc is True else "false" if doc is False
                                                            else str(doc)))


def test_pointer_escapes() -> None:
    assert parse_pointer("/a~1b/~0c/") == ("a/b", "~c", "")
    with pytest.raises(MappingError):
        parse_pointer("/a~2")
