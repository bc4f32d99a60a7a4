"""Fuzz target: LwM2M plain text (0) decoder; only CodecError may escape."""

from gatewayd.lwm2m.codecs import ContentFormat
from tests.fuzz.lwm2m_roundtrip import SINGLE_RESOURCE_PATHS, roundtrip_target

TestOneInput = roundtrip_target(ContentFormat.TEXT, SINGLE_RESOURCE_PATHS)

if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
