"""OMA TLV (application/vnd.oma.lwm2m+tlv, content format 11542; 1542 in the 1.0 drafts).

Type byte: bits 7-6 identifier kind, bit 5 16-bit identifier, bits 4-3 size of the length field
(0 = length in bits 2-0), then the identifier, the length and the value.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..definitions import ObjectRegistry, ObjLnk
from ..numbers import ResourceType
from ..paths import LwM2MPath
from .base import (
    Codec,
    CodecError,
    ContentFormat,
    Entry,
    UnsupportedContentFormat,
    checked,
    group,
    resource_def,
    value_type,
)

MAX_LENGTH = 0xFFFFFF


class TlvKind(enum.IntEnum):
    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE_VALUE = 3


@dataclass(frozen=True, slots=True)
class Tlv:
    kind: TlvKind
    id: int
    value: bytes


def parse_tlvs(data: bytes) -> list[Tlv]:
    """Split a buffer into TLVs of one level; nested TLVs stay raw in ``value``."""
    out: list[Tlv] = []
    pos, end = 0, len(data)
    while pos < end:
        t = data[pos]
        pos += 1
        kind = TlvKind(t >> 6)
        id_len = 2 if t & 0x20 else 1
        len_len = (t >> 3) & 0x03
        if pos + id_len + len_len > end:
            raise CodecError("truncated TLV header")
        ident = int.from_bytes(data[pos : pos + id_len], "big")
        pos += id_len
        if len_len:
            length = int.from_bytes(data[pos : pos + len_len], "big")
            pos += len_len
        else:
            length = t & 0x07
        if pos + length > end:
            raise CodecError(f"TLV {ident} length {length} past the end")
        out.append(Tlv(kind, ident, bytes(data[pos : pos + length])))
        pos += length
    return out


def tlv_header(kind: TlvKind, ident: int, length: int) -> bytes:
    if not 0 <= ident <= 0xFFFF:
        raise CodecError(f"TLV id {ident} out of range")
    if length > MAX_LENGTH:
        raise CodecError(f"TLV value of {length} bytes is too long")
    t = kind << 6
    id_bytes = ident.to_bytes(2 if ident > 0xFF else 1, "big")
    if ident > 0xFF:
        t |= 0x20
    if length < 8:
        return bytes([t | length]) + id_bytes
    len_len = 1 if length <= 0xFF else 2 if length <= 0xFFFF else 3
    return bytes([t | (len_len << 3)]) + id_bytes + length.to_bytes(len_len, "big")


def tlv(kind: TlvKind, ident: int, value: bytes) -> bytes:
    return tlv_header(kind, ident, len(value)) + value


# --- values -----------------------------------------------------------------------------------------


def _int_bytes(value: int, signed: bool) -> bytes:
    for width in (1, 2, 4, 8):
        try:
            return value.to_bytes(width, "big", signed=signed)
        except OverflowError:
            continue
    raise CodecError(f"integer {value} does not fit 8 bytes")


def encode_value(rtype: ResourceType, value: Any) -> bytes:
    """The TLV value bytes of one scalar (integers in the fewest of 1/2/4/8 bytes)."""
    if rtype in (ResourceType.INTEGER, ResourceType.TIME):
        return _int_bytes(value, signed=True)
    if rtype is ResourceType.UNSIGNED:
        return _int_bytes(value, signed=False)
    if rtype is ResourceType.FLOAT:
        single = struct.pack(">f", value) if abs(value) <= 3.4028234663852886e38 else b""
        if single and struct.unpack(">f", single)[0] == value:
            return single
        return struct.pack(">d", value)
    if rtype is ResourceType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return value.encode("utf-8")
    if rtype is ResourceType.OPAQUE:
        return bytes(value)
    if rtype is ResourceType.OBJLNK:
        return struct.pack(">HH", value[0], value[1])
    raise CodecError(f"{rtype.value} resources carry no value")


def decode_value(rtype: ResourceType | None, raw: bytes) -> Any:
    """A typed scalar from TLV value bytes; with no known type the bytes stay opaque."""
    n = len(raw)
    if rtype is None:
        return raw
    if rtype in (ResourceType.INTEGER, ResourceType.TIME, ResourceType.UNSIGNED):
        if n not in (1, 2, 4, 8):
            raise CodecError(f"{rtype.value} of {n} bytes")
        return int.from_bytes(raw, "big", signed=rtype is not ResourceType.UNSIGNED)
    if rtype is ResourceType.FLOAT:
        if n == 4:
            return struct.unpack(">f", raw)[0]
        if n == 8:
            return struct.unpack(">d", raw)[0]
        raise CodecError(f"Float of {n} bytes")
    if rtype is ResourceType.BOOLEAN:
        if raw not in (b"\x00", b"\x01"):
            raise CodecError(f"bad Boolean {raw.hex()}")
        return raw == b"\x01"
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"string is not UTF-8: {exc}") from None
    if rtype is ResourceType.OPAQUE:
        return raw
    if rtype is ResourceType.OBJLNK:
        if n != 4:
            raise CodecError(f"Objlnk of {n} bytes")
        return ObjLnk(*struct.unpack(">HH", raw))
    raise CodecError(f"{rtype.value} resources carry no value")


# --- codec ------------------------------------------------------------------------------------------


def _repeated_id(items: list[Tlv]) -> int | None:
    """The first id given twice among TLVs of one level, or None."""
    seen: set[int] = set()
    for item in items:
        if item.id in seen:
            return item.id
        seen.add(item.id)
    return None


def _typed(model: ObjectRegistry | None, path: LwM2MPath, raw: bytes) -> Any:
    rdef = resource_def(model, path)
    value = decode_value(rdef.type if rdef else None, raw)
    if rdef is not None:
        value = checked(rdef.type, value, path)
    return value


class TlvCodec(Codec):
    content_format = ContentFormat.TLV

    # encode ------------------------------------------------------------------------------------
    def _scalar(self, kind: TlvKind, ident: int, path: LwM2MPath, value: Any, model: ObjectRegistry | None) -> bytes:
        rtype = value_type(model, path, value)
        return tlv(kind, ident, encode_value(rtype, checked(rtype, value, path)))

    def _resource(self, path: LwM2MPath, value: Any, model: ObjectRegistry | None) -> bytes:
        assert path.resource is not None
        if isinstance(value, dict):
            inner = b"".join(
                self._scalar(TlvKind.RESOURCE_INSTANCE, ri, path.child(ri), v, model) for ri, v in sorted(value.items())
            )
            return tlv(TlvKind.MULTIPLE_RESOURCE, path.resource, inner)
        return self._scalar(TlvKind.RESOURCE_VALUE, path.resource, path, value, model)

    def _resources(self, entries: list[Entry], model: ObjectRegistry | None) -> bytes:
        out = []
        for path, value in entries:
            if not path.is_resource:
                raise CodecError(f"{path} is not a resource")
            out.append(self._resource(path, value, model))
        return b"".join(out)

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        items = group(entries, base_path)
        depth = base_path.depth
        if depth == 0:
            raise UnsupportedContentFormat("TLV cannot address the root")
        if depth == 1:
            by_instance: dict[int, list[Entry]] = {}
            for path, value in items:
                if path.instance is None:
                    raise CodecError(f"{path} names no instance")
                if path.is_instance:
                    by_instance.setdefault(path.instance, [])
                    continue
                by_instance.setdefault(path.instance, []).append((path, value))
            return b"".join(
                tlv(TlvKind.OBJECT_INSTANCE, iid, self._resources(res, model)) for iid, res in by_instance.items()
            )
        if depth == 2:
            return self._resources([(p, v) for p, v in items if not p.is_instance], model)
        if len(items) != 1 or items[0][0] != base_path:
            raise CodecError(f"TLV for {base_path} carries exactly its value")
        value = items[0][1]
        if depth == 3:
            return self._resource(base_path, value, model)
        assert base_path.resource_instance is not None
        return self._scalar(TlvKind.RESOURCE_INSTANCE, base_path.resource_instance, base_path, value, model)

    # decode ------------------------------------------------------------------------------------
    def _decode_resource(self, path: LwM2MPath, item: Tlv, model: ObjectRegistry | None) -> Any:
        if item.kind is TlvKind.RESOURCE_VALUE:
            return _typed(model, path, item.value)
        if item.kind is TlvKind.MULTIPLE_RESOURCE:
            values: dict[int, Any] = {}
            for inner in parse_tlvs(item.value):
                if inner.kind is not TlvKind.RESOURCE_INSTANCE:
                    raise CodecError(f"{path}: multiple resource holds a {inner.kind.name}")
                if inner.id in values:
                    raise CodecError(f"{path}/{inner.id} given twice")
                values[inner.id] = _typed(model, path.child(inner.id), inner.value)
            return values
        raise CodecError(f"{path}: a {item.kind.name} where a resource belongs")

    def _decode_resources(self, ipath: LwM2MPath, items: list[Tlv], model: ObjectRegistry | None) -> list[Entry]:
        if (twice := _repeated_id(items)) is not None:
            raise CodecError(f"{ipath}/{twice} given twice")
        out: list[Entry] = []
        for item in items:
            rpath = ipath.child(item.id)
            out.append((rpath, self._decode_resource(rpath, item, model)))
        return out

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        items = parse_tlvs(payload)
        depth = base_path.depth
        kinds = {i.kind for i in items}
        if depth == 0:
            raise UnsupportedContentFormat("TLV cannot address the root")
        if depth == 1:
            if kinds <= {TlvKind.OBJECT_INSTANCE}:
                if (twice := _repeated_id(items)) is not None:
                    raise CodecError(f"instance {twice} given twice")
                out: list[Entry] = []
                for item in items:
                    ipath = base_path.child(item.id)
                    out.extend(self._decode_resources(ipath, parse_tlvs(item.value), model))
                    if not item.value:
                        out.append((ipath, None))
                return out
            if TlvKind.OBJECT_INSTANCE in kinds or default_instance is None:
                raise CodecError(f"TLV for {base_path} needs object instances")
            return self._decode_resources(base_path.child(default_instance), items, model)
        if depth == 2:
            if kinds == {TlvKind.OBJECT_INSTANCE}:
                if len(items) != 1 or items[0].id != base_path.instance:
                    raise CodecError(f"TLV holds another instance than {base_path}")
                items = parse_tlvs(items[0].value)
            return self._decode_resources(base_path, items, model)
        if depth == 3:
            if len(items) == 1 and items[0].kind is not TlvKind.RESOURCE_INSTANCE:
                if items[0].id != base_path.resource:
                    raise CodecError(f"TLV holds resource {items[0].id}, not {base_path}")
                return [(base_path, self._decode_resource(base_path, items[0], model))]
            if kinds == {TlvKind.RESOURCE_INSTANCE}:
                wrapped = Tlv(TlvKind.MULTIPLE_RESOURCE, base_path.resource or 0, payload)
                return [(base_path, self._decode_resource(base_path, wrapped, model))]
            raise CodecError(f"TLV for {base_path} holds no single resource")
        if len(items) != 1 or items[0].kind is not TlvKind.RESOURCE_INSTANCE:
            raise CodecError(f"TLV for {base_path} needs one resource instance")
        if items[0].id != base_path.resource_instance:
            raise CodecError(f"TLV holds resource instance {items[0].id}, not {base_path}")
        return [(base_path, _typed(model, base_path, items[0].value))]
