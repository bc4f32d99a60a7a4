"""Object store: LwM2M operation semantics and their response codes."""

from __future__ import annotations

import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.codecs import ContentFormat, decode, encode
from gatewayd.lwm2m.definitions import ObjLnk
from gatewayd.lwm2m.errors import LwM2MError
from gatewayd.lwm2m.paths import LwM2MPath as P
from gatewayd.lwm2m.store import ObjectStore, Origin, parse_execute_arguments

from .test_tlv import DEVICE_ENTRIES, DEVICE_TLV

C = Code


@pytest.fixture
def store(registry):
    s = ObjectStore(registry)
    s.add_instance(3, 0, {rid: v for p, v in DEVICE_ENTRIES for rid in [p.resource]})
    s.add_instance(1, 0, {0: 101, 1: 300, 6: True, 7: "U"})
    s.add_instance(0, 0, {0: "coap://127.0.0.1:5683", 1: False, 2: 3, 3: b"", 4: b"", 5: b"secret", 10: 101})
    s.add_instance(3311, 0, {5850: False, 5851: 40})
    s.add_object(3303)
    return s


@pytest.fixture
def changes(store):
    seen: list[tuple[list[P], Origin]] = []
    store.on_change(lambda paths, origin: seen.append((paths, origin)))
    return seen


def code_of(fn, *args, **kwargs) -> Code:
    with pytest.raises(LwM2MError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_read_instance_encodes_to_the_spec_bytes(store, registry):
    entries = store.read(P(3, 0))
    assert entries == DEVICE_ENTRIES
    assert encode(ContentFormat.TLV, P(3, 0), entries, registry) == DEVICE_TLV


def test_read_levels(store):
    assert store.read(P(3, 0, 9)) == [(P(3, 0, 9), 100)]
    assert store.read(P(3, 0, 7)) == [(P(3, 0, 7), {0: 3800, 1: 5000})]
    assert store.read(P(3, 0, 7, 1)) == [(P(3, 0, 7, 1), 5000)]
    assert store.read(P(3311)) == [(P(3311, 0, 5850), False), (P(3311, 0, 5851), 40)]
    assert store.read(P(3303)) == []


def test_read_errors(store):
    assert code_of(store.read, P(3, 1)) is C.NOT_FOUND
    assert code_of(store.read, P(3, 0, 15)) is C.NOT_FOUND  # defined, no value
    assert code_of(store.read, P(3, 0, 999)) is C.NOT_FOUND  # not defined
    assert code_of(store.read, P(3, 0, 7, 9)) is C.NOT_FOUND
    assert code_of(store.read, P(3, 0, 9, 0)) is C.NOT_FOUND  # single resource has no instances
    assert code_of(store.read, P(4)) is C.NOT_FOUND  # defined, not supported
    assert code_of(store.read, P(3, 0, 4)) is C.METHOD_NOT_ALLOWED  # executable
    assert code_of(store.read, P()) is C.METHOD_NOT_ALLOWED
    assert code_of(store.read, P(0, 0)) is C.UNAUTHORIZED  # Security is for bootstrap only
    assert store.read(P(0, 0, 5), bootstrap=True) == [(P(0, 0, 5), b"secret")]


def test_write_to_read_only_resource_is_405_unless_bootstrap(store, changes):
    assert code_of(store.write, P(3, 0, 9), [(P(3, 0, 9), 5)]) is C.METHOD_NOT_ALLOWED
    assert code_of(store.write, P(1, 0), [(P(1, 0, 0), 7)], replace=False) is C.METHOD_NOT_ALLOWED
    assert store.get(P(3, 0, 9)) == 100 and changes == []
    store.write(P(3, 0, 9), [(P(3, 0, 9), 5)], bootstrap=True)
    assert store.get(P(3, 0, 9)) == 5
    assert changes == [([P(3, 0, 9)], Origin.BOOTSTRAP)]


def test_write_type_and_path_errors(store):
    assert code_of(store.write, P(3, 0, 13), [(P(3, 0, 13), "now")]) is C.BAD_REQUEST
    assert code_of(store.write, P(3, 0, 13), [(P(3, 0, 14), "+01:00")]) is C.BAD_REQUEST
    assert code_of(store.write, P(3, 0, 888), [(P(3, 0, 888), 1)]) is C.NOT_FOUND
    assert code_of(store.write, P(3, 7, 13), [(P(3, 7, 13), 1)]) is C.NOT_FOUND
    assert code_of(store.write, P(3), []) is C.METHOD_NOT_ALLOWED
    assert code_of(store.write, P(3311, 0, 5851), [(P(3311, 0, 5851), {0: 1})]) is C.BAD_REQUEST


def test_partial_update_keeps_other_resources(store, changes):
    store.write(P(1, 0), [(P(1, 0, 1), 60), (P(1, 0, 2), 5)], replace=False)
    assert store.read(P(1, 0)) == [
        (P(1, 0, 0), 101),
        (P(1, 0, 1), 60),
        (P(1, 0, 2), 5),
        (P(1, 0, 6), True),
        (P(1, 0, 7), "U"),
    ]
    assert changes == [([P(1, 0, 1), P(1, 0, 2)], Origin.SERVER)]


def test_replace_drops_optional_writable_resources_left_out(store):
    store.write(P(1, 0), [(P(1, 0, 2), 5), (P(1, 0, 3), 50)], replace=False)
    store.write(P(1, 0), [(P(1, 0, 1), 120), (P(1, 0, 3), 70)], replace=True)
    # 2 (optional, writable) is gone; 0 (read-only) and 6, 7 (mandatory) stay
    assert dict((p.resource, v) for p, v in store.read(P(1, 0))) == {0: 101, 1: 120, 3: 70, 6: True, 7: "U"}


def test_write_is_all_or_nothing(store):
    before = store.read(P(1, 0))
    assert code_of(store.write, P(1, 0), [(P(1, 0, 1), 5), (P(1, 0, 7), 9)], replace=False) is C.BAD_REQUEST
    assert store.read(P(1, 0)) == before


def test_multiple_resource_replace_and_merge(store):
    store.write(P(1, 0, 10), [(P(1, 0, 10), ObjLnk(11, 0))])
    assert store.get(P(1, 0, 10)) == ObjLnk(11, 0)
    # Device 22 is read-only: the bootstrap view writes it
    store.write(P(3, 0, 22), [(P(3, 0, 22), {0: ObjLnk(3303, 0), 1: ObjLnk(3303, 1)})], bootstrap=True)
    store.write(P(3, 0, 22), [(P(3, 0, 22), {5: ObjLnk(1, 1)})], replace=False, bootstrap=True)
    assert store.get(P(3, 0, 22)) == {0: ObjLnk(3303, 0), 1: ObjLnk(3303, 1), 5: ObjLnk(1, 1)}
    store.write(P(3, 0, 22), [(P(3, 0, 22), {7: ObjLnk(2, 2)})], replace=True, bootstrap=True)
    assert store.get(P(3, 0, 22)) == {7: ObjLnk(2, 2)}
    store.write(P(3, 0, 22, 8), [(P(3, 0, 22, 8), ObjLnk(4, 4))], bootstrap=True)
    assert store.read(P(3, 0, 22)) == [(P(3, 0, 22), {7: ObjLnk(2, 2), 8: ObjLnk(4, 4)})]


def test_write_from_a_decoded_payload(store, registry):
    payload = b'[{"bn":"/3311/0/","n":"5850","vb":true},{"n":"5851","v":75}]'
    entries = decode(ContentFormat.SENML_JSON, P(3311, 0), payload, registry)
    store.write(P(3311, 0), entries, replace=False)
    assert store.get(P(3311, 0, 5850)) is True and store.get(P(3311, 0, 5851)) == 75


def test_execute(store):
    calls = []
    store.set_execute_handler(3, 4, lambda path, args: calls.append((path, args)))
    store.execute(P(3, 0, 4), b"0='soon'")
    assert calls == [(P(3, 0, 4), b"0='soon'")]
    assert code_of(store.execute, P(3, 0, 9)) is C.METHOD_NOT_ALLOWED  # not executable
    assert code_of(store.execute, P(3, 0)) is C.METHOD_NOT_ALLOWED
    assert code_of(store.execute, P(3, 0, 5)) is C.NOT_FOUND  # executable, no handler
    assert code_of(store.execute, P(3, 1, 4)) is C.NOT_FOUND
    assert code_of(store.execute, P(3, 0, 999)) is C.NOT_FOUND

    def broken(path, args):
        raise RuntimeError("boom")

    store.set_execute_handler(3, 12, broken)
    assert code_of(store.execute, P(3, 0, 12)) is C.INTERNAL_SERVER_ERROR
    with pytest.raises(KeyError):
        store.set_execute_handler(3, 9, broken)


def test_execute_arguments():
    assert parse_execute_arguments(b"") == {}
    assert parse_execute_arguments(b"0='a,b',1,2=''") == {0: "a,b", 1: None, 2: ""}
    for bad in (b"x", b"0=a", b"0='a", b"0,0", b"0,", b"10"):
        with pytest.raises(LwM2MError) as info:
            parse_execute_arguments(bad)
        assert info.value.code is C.BAD_REQUEST


def test_create_and_delete(store, changes):
    iid = store.create(3303, [])
    assert iid == 0 and store.instance_ids(3303) == [0]
    # Create on /3311 whose TLV carries no instance id: On/Off (5850, a 16-bit id) = true
    payload = bytes.fromhex("E1 16 DA 01")
    entries = decode(ContentFormat.TLV, P(3311), payload, store.registry, default_instance=store.next_instance_id(3311))
    assert store.create(3311, entries) == 1
    assert store.get(P(3311, 1, 5850)) is True
    assert store.create(3303, [(P(3303, 5, 5750), "kitchen")]) == 5
    assert changes[-1] == ([P(3303, 5)], Origin.SERVER)
    store.delete(P(3303, 5))
    assert store.instance_ids(3303) == [0]
    assert changes[-1] == ([P(3303, 5)], Origin.SERVER)


def test_create_errors(store):
    assert code_of(store.create, 3, []) is C.BAD_REQUEST  # single instance object already has one
    assert code_of(store.create, 3311, [], 0) is C.BAD_REQUEST  # exists
    assert code_of(store.create, 3311, [(P(3311, 2, 5851), 5)]) is C.BAD_REQUEST  # mandatory On/Off missing
    assert code_of(store.create, 3303, [(P(3303, 1, 5700), 1.0)]) is C.BAD_REQUEST  # read-only resource
    assert code_of(store.create, 4, []) is C.NOT_FOUND  # object not supported
    assert code_of(store.create, 0, []) is C.UNAUTHORIZED
    assert store.create(0, [(P(0, 1, 1), True)], bootstrap=True) == 1


def test_delete_errors_and_bootstrap_delete(store):
    assert code_of(store.delete, P(3311, 9)) is C.NOT_FOUND
    assert code_of(store.delete, P(3, 0)) is C.METHOD_NOT_ALLOWED  # the Device instance stays
    assert code_of(store.delete, P(3311)) is C.METHOD_NOT_ALLOWED
    assert code_of(store.delete, P(3311, 0, 5850)) is C.METHOD_NOT_ALLOWED
    store.create(0, [(P(0, 1, 1), True)], bootstrap=True)
    store.delete(P(), bootstrap=True)
    assert store.instance_ids(0) == [1]  # the Bootstrap-Server account survives
    assert store.instance_ids(3) == [0]
    assert store.instance_ids(1) == [] and store.instance_ids(3311) == []


def test_bootstrap_write_creates_instances(store):
    store.write(
        P(1, 1), [(P(1, 1, 0), 202), (P(1, 1, 1), 86400), (P(1, 1, 6), False), (P(1, 1, 7), "U")], bootstrap=True
    )
    assert store.get(P(1, 1, 0)) == 202
    store.write(P(0), [(P(0, 3, 0), "coaps://[::1]:5684"), (P(0, 3, 1), False)], bootstrap=True)
    assert store.get(P(0, 3, 0)) == "coaps://[::1]:5684"
    assert code_of(store.write, P(1, 2), [(P(1, 2, 1), 5)]) is C.NOT_FOUND


def test_local_set_notifies_only_on_change(store, changes):
    assert store.set(P(3311, 0, 5851), 40) is False
    assert store.set(P(3311, 0, 5851), 41) is True
    assert store.set(P(3, 0, 9), 80) is True  # local updates may touch read-only resources
    assert store.set(P(3, 0, 7, 2), 12000) is True
    assert changes == [([P(3311, 0, 5851)], Origin.LOCAL), ([P(3, 0, 9)], Origin.LOCAL), ([P(3, 0, 7)], Origin.LOCAL)]
    assert code_of(store.set, P(3, 0, 9), "high") is C.BAD_REQUEST


def test_write_hook_can_veto(store):
    seen = []

    def hook(path, entries, origin):
        seen.append((path, entries, origin))
        if any(v == 0 for _, v in entries):
            raise LwM2MError(C.BAD_REQUEST, "dimmer 0 not supported")

    store.set_write_hook(3311, hook)
    store.write(P(3311, 0, 5851), [(P(3311, 0, 5851), 10)])
    assert code_of(store.write, P(3311, 0, 5851), [(P(3311, 0, 5851), 0)]) is C.BAD_REQUEST
    assert store.get(P(3311, 0, 5851)) == 10
    assert seen[0] == (P(3311, 0, 5851), [(P(3311, 0, 5851), 10)], Origin.SERVER)


def test_discover_and_registration(store):
    store.set_execute_handler(3, 4, lambda p, a: None)
    listed = store.discover(P(3, 0))
    assert listed[:3] == [(P(3, 0), None), (P(3, 0, 0), None), (P(3, 0, 1), None)]
    assert (P(3, 0, 4), None) in listed and (P(3, 0, 5), None) not in listed
    assert (P(3, 0, 7), 2) in listed
    assert store.discover(P(3, 0, 7)) == [(P(3, 0, 7), 2)]
    assert code_of(store.discover, P(3, 0, 15)) is C.NOT_FOUND
    objects, versions = store.registered_objects()
    assert objects == {1: [0], 3: [0], 3303: [], 3311: [0]}  # no Security
    assert versions == {1: "1.1", 3: "1.1", 3303: "1.1"}


def test_callback_errors_do_not_break_the_store(store):
    store.on_change(lambda paths, origin: 1 / 0)
    assert store.set(P(3311, 0, 5850), True) is True
    unsubscribe = store.on_change(lambda paths, origin: None)
    unsubscribe()


def test_response_codes_are_coap_codes():
    from aiocoap.numbers.codes import Code

    assert Code(int(C.NOT_FOUND)) is Code.NOT_FOUND
    assert Code(int(C.UNSUPPORTED_CONTENT_FORMAT)) is Code.UNSUPPORTED_CONTENT_FORMAT
    assert [c.dotted for c in (C.BAD_REQUEST, C.METHOD_NOT_ALLOWED, C.NOT_ACCEPTABLE, C.INTERNAL_SERVER_ERROR)] == [
        "4.00",
        "4.05",
        "4.06",
        "5.00",
    ]
    assert str(LwM2MError(C.NOT_FOUND, "/3/9")) == "4.04 /3/9"


def test_secrets_stay_out_of_repr(store):
    assert "secret" not in repr(store.instance(0, 0))
    assert repr(store.instance(0, 0)) == "ObjectInstance(/0/0, resources=[0, 1, 2, 3, 4, 5, 10])"


def test_create_from_an_empty_instance_tlv(store, registry):
    entries = decode(ContentFormat.TLV, P(3303), bytes.fromhex("08 07 00"), registry)
    assert entries == [(P(3303, 7), None)]
    assert store.create(3303, entries) == 7
