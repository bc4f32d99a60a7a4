"""Fuzz target: the proxy's device value decoder; only ValueDecodeError may escape."""

from gatewayd.lwm2m.numbers import ResourceType
from gatewayd.lwm2m.proxy.mapping import ValueDecodeError, decode_value

TYPES = [ResourceType.FLOAT, ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.BOOLEAN,
         ResourceType.STRING, ResourceType.OPAQUE, ResourceType.TIME, ResourceType.NONE]
FORMATS = ["", "text", "json", "cbor"]
POINTERS = ["", "/temp", "/0", "/a/1/b", "/~1x", "/"]
CONTENT_FORMATS = [None, 0, 50, 60]


def TestOneInput(data: bytes) -> None:
    if len(data) < 2:
        return
    sel, extra, payload = data[0], data[1], data[2:]
    try:
        decode_value(payload, TYPES[sel % len(TYPES)], FORMATS[(sel >> 3) % len(FORMATS)],
                     POINTERS[extra % len(POINTERS)], CONTENT_FORMATS[(extra >> 4) % len(CONTENT_FORMATS)])
    except ValueDecodeError:
        pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
