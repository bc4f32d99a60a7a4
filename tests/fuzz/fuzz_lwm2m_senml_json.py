"""Fuzz target: LwM2M SenML JSON (110) decoder; only CodecError may escape."""

from gatewayd.lwm2m.codecs import ContentFormat
from tests.fuzz.lwm2m_roundtrip import CONTAINER_PATHS, roundtrip_target

TestOneInput = roundtrip_target(ContentFormat.SENML_JSON, CONTAINER_PATHS)

if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
