"""Opaque (content format 42; 1544 in the 1.0 drafts): the raw bytes of one Opaque resource."""

from __future__ import annotations

from collections.abc import Iterable

from ..definitions import ObjectRegistry
from ..numbers import ResourceType
from ..paths import LwM2MPath
from .base import Codec, CodecError, ContentFormat, Entry, single_entry, single_target


class OpaqueCodec(Codec):
    content_format = ContentFormat.OPAQUE

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        value = single_entry(base_path, entries, "opaque")
        single_target(base_path, model, "opaque", only=ResourceType.OPAQUE)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise CodecError(f"{base_path}: opaque needs bytes, not {type(value).__name__}")
        return bytes(value)

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        single_target(base_path, model, "opaque", only=ResourceType.OPAQUE)
        return [(base_path, bytes(payload))]
