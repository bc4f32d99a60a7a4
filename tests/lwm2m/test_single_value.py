"""Plain text, opaque and CBOR: one resource value each."""

from __future__ import annotations

import cbor2
import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.codecs import (
    CONTENT_FORMATS,
    CodecError,
    ContentFormat,
    UnsupportedContentFormat,
    codec_for,
    decode,
    encode,
)
from gatewayd.lwm2m.definitions import ObjLnk
from gatewayd.lwm2m.paths import LwM2MPath as P

TEXT, OPAQUE, CBOR = ContentFormat.TEXT, ContentFormat.OPAQUE, ContentFormat.CBOR


@pytest.mark.parametrize(
    ("path", "value", "text"),
    [
        (P(3, 0, 0), "Open Mobile Alliance", b"Open Mobile Alliance"),
        (P(3, 0, 9), 100, b"100"),
        (P(3, 0, 13), 1367491215, b"1367491215"),
        (P(6, 0, 0), -43.5, b"-43.5"),
        (P(1, 0, 6), True, b"1"),
        (P(1, 0, 6), False, b"0"),
        (P(1, 0, 10), ObjLnk(11, 0), b"11:0"),
        (P(1, 0, 11), 255, b"255"),
    ],
)
def test_plain_text(registry, path, value, text):
    assert encode(TEXT, path, [(path, value)], registry) == text
    assert decode(TEXT, path, text, registry) == [(path, value)]
    assert decode(1541, path, text, registry) == [(path, value)]


def test_plain_text_opaque_is_base64(registry):
    path = P(5, 0, 0)
    assert encode(TEXT, path, [(path, b"\x01\x02\xff")], registry) == b"AQL/"
    assert decode(TEXT, path, b"AQL/", registry) == [(path, b"\x01\x02\xff")]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (P(3, 0, 9), b"12a"),
        (P(3, 0, 9), b"1.5"),
        (P(1, 0, 11), b"-1"),  # unsigned
        (P(6, 0, 0), b"inf"),
        (P(6, 0, 0), b"1e999"),
        (P(1, 0, 6), b"2"),
        (P(1, 0, 10), b"11"),
        (P(1, 0, 10), b"70000:0"),
        (P(3, 0, 0), b"\xff\xfe"),
        (P(3, 0, 9), b"99999999999999999999"),  # over 64 bits
    ],
)
def test_plain_text_rejects(registry, path, text):
    with pytest.raises(CodecError):
        decode(TEXT, path, text, registry)


def test_single_value_formats_need_a_single_resource(registry):
    for fmt in (TEXT, OPAQUE, CBOR):
        with pytest.raises(UnsupportedContentFormat) as info:
            decode(fmt, P(3, 0), b"1", registry)
        assert info.value.code is Code.UNSUPPORTED_CONTENT_FORMAT
        assert info.value.accept_code is Code.NOT_ACCEPTABLE
        with pytest.raises(UnsupportedContentFormat):
            encode(fmt, P(3, 0, 6), [(P(3, 0, 6), {0: 1})], registry)


def test_opaque(registry):
    path = P(5, 0, 0)
    assert encode(OPAQUE, path, [(path, b"\x00firmware")], registry) == b"\x00firmware"
    assert decode(OPAQUE, path, b"\x00firmware", registry) == [(path, b"\x00firmware")]
    assert decode(1544, path, b"\xff", registry) == [(path, b"\xff")]
    with pytest.raises(UnsupportedContentFormat):
        decode(OPAQUE, P(3, 0, 0), b"x", registry)
    with pytest.raises(UnsupportedContentFormat, match="is String, not Opaque"):
        encode(OPAQUE, P(3, 0, 0), [(P(3, 0, 0), b"x")], registry)


def test_cbor(registry):
    cases = [
        (P(3, 0, 9), 100, 100),
        (P(6, 0, 0), 1.25, 1.25),
        (P(1, 0, 6), True, True),
        (P(3, 0, 0), "OMA", "OMA"),
        (P(5, 0, 0), b"\x01", b"\x01"),
        (P(1, 0, 10), ObjLnk(11, 2), "11:2"),
    ]
    for path, value, item in cases:
        payload = encode(CBOR, path, [(path, value)], registry)
        assert cbor2.loads(payload) == item
        assert decode(CBOR, path, payload, registry) == [(path, value)]
    # an integer for a Float resource and an epoch-time tag for a Time resource are accepted
    assert decode(CBOR, P(6, 0, 0), cbor2.dumps(3), registry) == [(P(6, 0, 0), 3.0)]
    assert decode(CBOR, P(3, 0, 13), bytes.fromhex("c11a514b67b0"), registry) == [(P(3, 0, 13), 1363896240)]
    for bad in (cbor2.dumps("x"), cbor2.dumps(1) + b"\x00", b"\x1b", cbor2.dumps([1])):
        with pytest.raises(CodecError):
            decode(CBOR, P(3, 0, 9), bad, registry)


def test_registry_knows_every_format():
    assert {0, 42, 60, 110, 112, 11542, 11543, 11544, 1541, 1542, 1543, 1544} == set(CONTENT_FORMATS)
    assert codec_for(1543) is codec_for(11543)
    for unknown in (40, 41, 50, 11545, -1, "110"):
        with pytest.raises(UnsupportedContentFormat):
            codec_for(unknown)
