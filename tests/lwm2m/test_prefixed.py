"""Prefixed paths and payloads of the LwM2M Gateway enabler, with the examples of
OMA-TS-LWM2M_Gateway-V1_1_1-20240312-A §10 as vectors."""

from __future__ import annotations

import json

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.lwm2m.codecs import ContentFormat, decode, encode, parse_registration
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.prefixed import PrefixError, add_prefix, split_prefix, strip_prefix, valid_prefix
from gatewayd.lwm2m.proxy.gateway_mode import device_objects
from gatewayd.lwm2m.store import ObjectStore

from .servers import REGISTRY

# Gateway TS §10: the Read of /d01/3303/0 through the gateway, as SenML JSON
TS_READ = (b'[\n{"bn":"/d01/3303/0/", "n":"5700", "v":22.1},\n{"n":"5601", "v":17.5},\n'
           b'{"n":"5602", "v":23.9},\n{"n":"5701", "vs":"Cel"}\n]')
# Gateway TS §10: Read-Composite answer in LwM2M CBOR naming two devices' /3/0/0 and /3/0/9
TS_CBOR = bytes.fromhex("a283636430310300a20069436f6d70616e79204109186483636430320300a20069436f6d70616e792042091841")
# Gateway TS §10: the gateway's Register payload (one /25 instance per device, no device objects)
TS_REGISTER = b"</1/0>,</3/0>,</5/0>,</25/0>,</25/1>"
# Gateway TS Table 10.-2: /25/1/3, IoT Device Objects of device d02
TS_DEVICE_OBJECTS = b"</3/0>;ver=1.1,</3306/0>"


def test_paths_split_at_a_first_segment_that_is_not_a_number() -> None:
    assert split_prefix(("d01", "3303", "0", "5700")) == ("d01", ("3303", "0", "5700"))
    assert split_prefix(("3303", "0")) == ("", ("3303", "0"))
    assert split_prefix(()) == ("", ())
    assert split_prefix(("dev1",)) == ("dev1", ())
    assert valid_prefix("d01") and valid_prefix("dev1") and not valid_prefix("12") and not valid_prefix("a/b")


def test_ts_senml_read_is_a_devices_read_under_its_prefix() -> None:
    # what the server gets (the TS example) carries, once the prefix is out, the device's own values
    plain = strip_prefix(ContentFormat.SENML_JSON, TS_READ, "d01")
    entries = decode(ContentFormat.SENML_JSON, LwM2MPath(3303, 0), plain, REGISTRY)
    assert dict(entries) == {LwM2MPath(3303, 0, 5700): 22.1, LwM2MPath(3303, 0, 5601): 17.5,
                             LwM2MPath(3303, 0, 5602): 23.9, LwM2MPath(3303, 0, 5701): "Cel"}
    # and the device's answer, prefixed, names what the TS example names
    ours = add_prefix(ContentFormat.SENML_JSON, encode(ContentFormat.SENML_JSON, LwM2MPath(3303, 0), entries,
                                                       REGISTRY), "d01")
    assert _names(ours) == _names(TS_READ)
    with pytest.raises(PrefixError):
        strip_prefix(ContentFormat.SENML_JSON, TS_READ, "d02")  # names another device


def _names(payload: bytes) -> dict[str, object]:
    out, bn = {}, ""
    for rec in json.loads(payload):
        bn = rec.get("bn", bn)
        out[bn + rec.get("n", "")] = rec.get("v", rec.get("vs"))
    return out


def test_ts_lwm2m_cbor_keys_lead_with_the_prefix() -> None:
    want = cbor2.loads(TS_CBOR)
    got: dict[object, object] = {}
    for prefix, maker, power in (("d01", "Company A", 100), ("d02", "Company B", 65)):
        plain = cbor2.dumps({(3, 0): {0: maker, 9: power}})
        got.update(cbor2.loads(add_prefix(ContentFormat.LWM2M_CBOR, plain, prefix)))
        # the nested form {3: {0: {...}}} gets the prefix as well
        nested = cbor2.loads(add_prefix(ContentFormat.LWM2M_CBOR, cbor2.dumps({3: {0: {0: maker}}}), prefix))
        assert nested == {(prefix, 3): {0: {0: maker}}}
    assert got == want
    with pytest.raises(PrefixError):  # a write naming two devices is not one device's
        strip_prefix(ContentFormat.LWM2M_CBOR, TS_CBOR, "d01")
    one = cbor2.dumps({("d01", 3, 0): {0: "Company A"}})
    assert cbor2.loads(strip_prefix(ContentFormat.LWM2M_CBOR, one, "d01")) == {(3, 0): {0: "Company A"}}


def test_ts_register_and_device_objects_vectors() -> None:
    objects, _ = parse_registration(TS_REGISTER)
    assert objects[25] == [0, 1] and set(objects) == {1, 3, 5, 25}
    store = ObjectStore(REGISTRY)
    store.add_instance(3, 0, {0: "Company B"})
    store.add_instance(3311, 0)  # a Light Control where the TS has an On/Off switch (3306)
    ts_objects, ts_versions = parse_registration(TS_DEVICE_OBJECTS)
    ours, versions = parse_registration(device_objects(store).encode())
    assert ts_objects == {3: [0], 3306: [0]} and ts_versions == {3: "1.1"}
    assert ours == {3: [0], 3311: [0]} and versions.get(3) == REGISTRY[3].object_version


def test_formats_without_names_pass_unchanged() -> None:
    for cf in (ContentFormat.TEXT, ContentFormat.TLV, ContentFormat.OPAQUE, ContentFormat.LINK_FORMAT, None):
        assert add_prefix(cf, b"\x01\x02", "d01") == b"\x01\x02"
        assert strip_prefix(cf, b"\x01\x02", "d01") == b"\x01\x02"


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR])
@pytest.mark.parametrize("payload", [b"{", b"\xff\x00", b"[1, 2]", b'[{"bn": 5}]', b"\xa1\xa0\x01", b"\x80"])
def test_bad_payloads_are_prefix_errors(cf, payload) -> None:
    for op in (add_prefix, strip_prefix):
        try:
            op(cf, payload, "d01")
        except PrefixError:
            pass


names = st.lists(st.integers(0, 65534), min_size=1, max_size=4).map(lambda ids: "/" + "/".join(map(str, ids)))
records = st.lists(st.fixed_dictionaries({"n": names, "v": st.integers(-1000, 1000)}), min_size=1, max_size=5)


@given(records=records, prefix=st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True),
       cbor=st.booleans(), based=st.booleans())
def test_strip_undoes_add(records, prefix, cbor, based) -> None:
    if based:
        records = [{"bn": records[0]["n"] + "/", "n": "1", "v": 0}, *records[1:]]
    if cbor:
        payload = cbor2.dumps([{(-2 if k == "bn" else 0 if k == "n" else 2): v for k, v in r.items()}
                               for r in records])
        cf = ContentFormat.SENML_CBOR
        back = cbor2.loads(strip_prefix(cf, add_prefix(cf, payload, prefix), prefix))
        assert back == cbor2.loads(payload)
    else:
        payload = json.dumps(records).encode()
        cf = ContentFormat.SENML_JSON
        prefixed = add_prefix(cf, payload, prefix)
        assert all(name.startswith(f"/{prefix}/") for name in _names(prefixed))
        assert json.loads(strip_prefix(cf, prefixed, prefix)) == records


@given(st.binary(max_size=200), st.sampled_from([ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR,
                                                ContentFormat.LWM2M_CBOR]))
def test_any_bytes_give_bytes_or_a_prefix_error(data, cf) -> None:
    for op in (add_prefix, strip_prefix):
        try:
            assert isinstance(op(cf, data, "dev1"), bytes)
        except PrefixError:
            pass
