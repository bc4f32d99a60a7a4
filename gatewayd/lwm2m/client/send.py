"""Send (LwM2M 1.1 §5.5.4): the client pushes current values to its server, ``POST /dp``.

SenML JSON or CBOR records carry the time now; LwM2M CBOR (1.2 §7.4.6), which has no timestamps, carries
the values under their paths.
"""

from __future__ import annotations

import time

from ..codecs import ContentFormat, UnsupportedContentFormat, codec_for
from ..codecs.senml import SenMLJsonCodec, SenMLRecord
from ..paths import LwM2MPath
from ..store import ObjectStore


def send_payload(store: ObjectStore, paths: list[LwM2MPath], content_format: int) -> bytes:
    """The current values of ``paths`` as SenML records stamped with the time now, or as LwM2M CBOR."""
    codec = codec_for(content_format)
    now = time.time()
    records = []
    for p in paths:
        for q, v in store.read(p):
            if isinstance(v, dict):
                records.extend(SenMLRecord(q.child(ri), rv, now) for ri, rv in sorted(v.items()))
            elif v is not None:
                records.append(SenMLRecord(q, v, now))
    if content_format == ContentFormat.LWM2M_CBOR:
        return codec.encode(LwM2MPath(), [(r.path, r.value) for r in records], store.registry)
    if not isinstance(codec, SenMLJsonCodec):
        raise UnsupportedContentFormat(f"Send carries SenML or LwM2M CBOR, not content format {content_format}")
    return codec.encode_records(LwM2MPath(), records, store.registry)
