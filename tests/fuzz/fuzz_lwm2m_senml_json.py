"""Fuzz target: LwM2M SenML JSON (110) decoder; only CodecError may escape."""

from gatewayd.lwm2m.codecs import ContentFormat
from gatewayd.lwm2m.paths import LwM2MPath
from tests.fuzz.lwm2m_roundtrip import fuzz, roundtrip_target

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

TestOneInput = roundtrip_target(ContentFormat.SENML_JSON, PATHS)

if __name__ == "__main__":
    fuzz(TestOneInput)
