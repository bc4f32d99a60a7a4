"""Fuzz target: LwM2M TLV (11542) decoder; only CodecError may escape.

The first byte picks the request path, the rest is the payload. What decodes must re-encode and decode
to the same entries.
"""

from gatewayd.lwm2m.codecs import CodecError, ContentFormat, decode, encode
from gatewayd.lwm2m.ddf import load_registry
from gatewayd.lwm2m.paths import LwM2MPath

FORMAT = ContentFormat.TLV
REGISTRY = load_registry()
PATHS = [
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


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    path = PATHS[data[0] % len(PATHS)]
    try:
        entries = decode(FORMAT, path, data[1:], REGISTRY, default_instance=0)
    except CodecError:
        return
    again = decode(FORMAT, path, encode(FORMAT, path, entries, REGISTRY), REGISTRY, default_instance=0)
    if again != entries:
        raise AssertionError(f"{entries!r} changed across a re-encode: {again!r}")


if __name__ == "__main__":
    import sys

    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
