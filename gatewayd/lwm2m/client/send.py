"""Send (LwM2M 1.1 §5.5.4): the client pushes current values to its server, ``POST /dp`` in SenML."""

from __future__ import annotations

import time

from ..codecs import codec_for
from ..codecs.senml import SenMLJsonCodec, SenMLRecord
from ..paths import LwM2MPath
from ..store import ObjectStore


def send_payload(store: ObjectStore, paths: list[LwM2MPath], content_format: int) -> bytes:
    """The current values of ``paths`` as SenML records stamped with the time now (JSON or CBOR)."""
    codec = codec_for(content_format)
    assert isinstance(codec, SenMLJsonCodec)
    now = time.time()
    records = []
    for p in paths:
        for q, v in store.read(p):
            if isinstance(v, dict):
                records.extend(SenMLRecord(q.child(ri), rv, now) for ri, rv in sorted(v.items()))
            elif v is not None:
                records.append(SenMLRecord(q, v, now))
    return codec.encode_records(LwM2MPath(), records, store.registry)
