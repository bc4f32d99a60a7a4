"""Fuzz target: LwM2M CBOR (11544) decoder, values and composite-request paths; only CodecError may escape."""

from gatewayd.lwm2m.codecs import CodecError, ContentFormat
from gatewayd.lwm2m.codecs.lwm2m_cbor import LwM2MCborCodec
from tests.fuzz.lwm2m_roundtrip import CONTAINER_PATHS, roundtrip_target

_values = roundtrip_target(ContentFormat.LWM2M_CBOR, CONTAINER_PATHS)
_codec = LwM2MCborCodec()


def TestOneInput(data: bytes) -> None:
    _values(data)
    try:
        paths = _codec.decode_paths(data)
    except CodecError:
        return
    try:
        again = _codec.decode_paths(_codec.encode_paths(paths))
    except CodecError:
        return  # paths that overlap (/3/0 and /3/0/1) cannot be one request map
    if sorted(again) != sorted(paths):
        raise AssertionError(f"{paths!r} changed across a re-encode: {again!r}")


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
