"""Shared body of the LwM2M value-codec fuzz targets: decode, and what decodes must
re-encode and decode to the same entries. Only CodecError may escape."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gatewayd.lwm2m.codecs import CodecError, ContentFormat, decode, encode
from gatewayd.lwm2m.ddf import load_registry
from gatewayd.lwm2m.paths import LwM2MPath

REGISTRY = load_registry()
# Request paths the first input byte picks from: single resources (text, opaque, CBOR) and the
# containers the multi-value formats also encode (TLV, SenML, LwM2M JSON).
SINGLE_RESOURCE_PATHS = [
    LwM2MPath(3, 0, 9),
    LwM2MPath(3, 0, 0),
    LwM2MPath(3, 0, 13),
    LwM2MPath(6, 0, 0),
    LwM2MPath(1, 0, 6),
    LwM2MPath(1, 0, 10),
    LwM2MPath(1, 0, 11),
    LwM2MPath(5, 0, 0),
    LwM2MPath(3, 0, 6, 1),
    LwM2MPath(9999, 0, 1),
]
CONTAINER_PATHS = [
    LwM2MPath(3),
    LwM2MPath(3, 0),
    LwM2MPath(3, 0, 9),
    LwM2MPath(3, 0, 6),
    LwM2MPath(3, 0, 6, 1),
    LwM2MPath(1, 0),
    LwM2MPath(5, 0, 0),
    LwM2MPath(3303, 0),
    LwM2MPath(9999, 0),
]


def roundtrip_target(fmt: ContentFormat, paths: Sequence[LwM2MPath]) -> Callable[[bytes], None]:
    """A TestOneInput whose first byte picks the request path and the rest is the payload."""

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        path = paths[data[0] % len(paths)]
        try:
            entries = decode(fmt, path, data[1:], REGISTRY, default_instance=0)
        except CodecError:
            return
        again = decode(fmt, path, encode(fmt, path, entries, REGISTRY), REGISTRY, default_instance=0)
        if again != entries:
            raise AssertionError(f"{entries!r} changed across a re-encode: {again!r}")

    return test_one_input

