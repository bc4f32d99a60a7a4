"""CoRE link format: Register payloads and Discover answers."""

from __future__ import annotations

import pytest

from gatewayd.lwm2m.codecs import CodecError, Link, decode_links, discover_link, encode_links
from gatewayd.lwm2m.codecs.linkformat import MAX_PAYLOAD, parse_registration, registration_links
from gatewayd.lwm2m.paths import LwM2MPath as P


def test_register_payload():
    links = registration_links({1: [0], 3: [0], 5: [], 3303: [1, 0]}, {1: "1.1", 3: "1.1"}, content_format=110)
    assert encode_links(links) == (
        b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</5>,</3303/0>,</3303/1>'
    )
    assert registration_links({3: [0]}) == [Link("/3/0")]


def test_parse_register_payload_with_alternate_path_and_versions():
    payload = b'</lwm2m>;rt="oma.lwm2m";ct="60 110", </lwm2m/1/0>,</lwm2m/3>;ver=1.1,</lwm2m/3/0>,</lwm2m/5>'
    objects, versions = parse_registration(payload)
    assert objects == {1: [0], 3: [0], 5: []}
    assert versions == {3: "1.1"}
    # the 1.0 style with ver on the instance link
    assert parse_registration(b"</1/0>,</3/0>;ver=1.1")[1] == {3: "1.1"}


def test_discover_answer():
    links = [
        discover_link(P(3, 0), {"pmin": 10, "pmax": 60}),
        discover_link(P(3, 0, 1)),
        discover_link(P(3, 0, 7), {"gt": 50.0, "lt": 42.2, "st": 0.5}, dim=2),
        discover_link(P(3303, 0, 5700), {"epmin": 1, "epmax": 30}),
    ]
    payload = encode_links(links)
    assert payload == (
        b"</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/7>;dim=2;gt=50;lt=42.2;st=0.5,</3303/0/5700>;epmin=1;epmax=30"
    )
    parsed = decode_links(payload)
    assert parsed == links
    assert parsed[2].path == P(3, 0, 7)
    assert parsed[2].int_attr("dim") == 2
    assert parsed[2].float_attr("lt") == 42.2
    assert parsed[0].float_attr("gt") is None


def test_quoted_values_and_valueless_attributes():
    payload = b'</a>;title="x, \\"y\\"; z";obs;if=core.b, </b>;ct="0 110"'
    links = decode_links(payload)
    assert links == [Link("/a", {"title": 'x, "y"; z', "obs": None, "if": "core.b"}), Link("/b", {"ct": "0 110"})]
    assert decode_links(encode_links(links)) == links
    assert decode_links(b"") == []


@pytest.mark.parametrize("bad", [b"/3/0", b"</3/0", b"</3/0>;", b'</3/0>;x="y', b"</3/0>x", b"</3/0>,", b"\xff"])
def test_malformed_link_format(bad):
    with pytest.raises(CodecError):
        decode_links(bad)


def test_link_path_and_attribute_errors():
    with pytest.raises(CodecError):
        _ = Link("/3/x").path
    with pytest.raises(CodecError):
        Link("/3", {"pmin": "ten"}).int_attr("pmin")


def test_a_gateway_registration_of_every_25_instance_is_within_the_bound():
    """The largest object list a gateway can register (65,535 /25 instances, about 770 KB) decodes, with its
    instances in order and duplicates listed once; one byte over the bound is a clear CodecError."""
    payload = encode_links(registration_links({1: [0], 3: [0], 25: list(range(65535))}, {25: "2.0"},
                                              content_format=110))
    assert 700_000 < len(payload) <= MAX_PAYLOAD
    objects, versions = parse_registration(payload + b",</25/7>")
    assert objects[25] == list(range(65535)) and versions[25] == "2.0" and objects[3] == [0]
    too_long = payload + b"," + b" " * (MAX_PAYLOAD - len(payload)) + b"</3/1>"
    with pytest.raises(CodecError, match=rf"link-format payload of {len(too_long)} bytes is over the "
                                         rf"{MAX_PAYLOAD} byte bound"):
        decode_links(too_long)
