"""CBOR (content format 60): one resource value as a single CBOR data item (LwM2M 1.1).

cbor2 (and the decimal module it brings) is imported where a CBOR payload is first read or written, here
and in the other CBOR users (SenML CBOR, LwM2M CBOR, prefixed paths, proxied devices' CBOR): LwM2M 1.0
and devices speaking text or JSON never need it, and an idle daemon should not carry its ~1 MB.
"""

from __future__ import annotations

import datetime
import io
import math
from collections.abc import Iterable
from typing import Any

from ..definitions import ObjectRegistry, ObjLnk
from ..numbers import INT64_MIN, UINT64_MAX, ResourceType
from ..paths import LwM2MPath
from .base import Codec, CodecError, ContentFormat, Entry, checked, single_entry, single_target, value_type


def loads_one(payload: bytes) -> Any:
    """Exactly one CBOR item from ``payload``; anything else is a CodecError."""
    import cbor2

    fp = io.BytesIO(bytes(payload))
    try:
        item = cbor2.CBORDecoder(fp).decode()
    except RecursionError:
        raise CodecError("CBOR nested too deep") from None
    except Exception as exc:  # cbor2 raises many kinds for bad input (tags build arbitrary objects)
        raise CodecError(f"bad CBOR: {type(exc).__name__}: {exc}") from None
    if fp.tell() != len(payload):
        raise CodecError("trailing bytes after the CBOR item")
    return item


def to_cbor_item(rtype: ResourceType, value: Any) -> Any:
    if rtype in (ResourceType.OBJLNK,):
        return f"{value[0]}:{value[1]}"
    if rtype is ResourceType.OPAQUE:
        return bytes(value)
    return value


def from_cbor_item(rtype: ResourceType | None, item: Any, path: LwM2MPath) -> Any:
    """A typed scalar from a decoded CBOR item, accepting the encodings peers use for each type."""
    if rtype is None:
        if isinstance(item, int) and not isinstance(item, bool) and not INT64_MIN <= item <= UINT64_MAX:
            raise CodecError(f"{path}: {item} does not fit 64 bits")
        if isinstance(item, bool | int | float | str | bytes) and not (
            isinstance(item, float) and not math.isfinite(item)
        ):
            return item
        raise CodecError(f"{path}: unexpected CBOR {type(item).__name__}")
    if rtype is ResourceType.TIME and isinstance(item, datetime.datetime):
        try:
            return int(item.timestamp())
        except (OverflowError, ValueError, OSError) as exc:
            raise CodecError(f"{path}: bad time: {exc}") from None
    if rtype is ResourceType.FLOAT and isinstance(item, int) and not isinstance(item, bool):
        try:
            item = float(item)
        except OverflowError:
            raise CodecError(f"{path}: Float out of range") from None
    if rtype is ResourceType.OBJLNK and isinstance(item, str):
        try:
            return ObjLnk.parse(item)
        except ValueError as exc:
            raise CodecError(str(exc)) from None
    if rtype is ResourceType.OBJLNK:
        raise CodecError(f'{path}: Objlnk needs "o:i" text')
    return checked(rtype, item, path)


class CborCodec(Codec):
    content_format = ContentFormat.CBOR

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        value = single_entry(base_path, entries, "CBOR")
        rtype = value_type(model, base_path, value)
        import cbor2

        return cbor2.dumps(to_cbor_item(rtype, checked(rtype, value, base_path)))

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        rdef = single_target(base_path, model, "CBOR")
        item = loads_one(payload)
        return [(base_path, from_cbor_item(rdef.type if rdef else None, item, base_path))]
