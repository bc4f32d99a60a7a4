"""SenML JSON (content format 110) and SenML CBOR (112), RFC 8428 as profiled by LwM2M 1.1.

Names are ``bn`` + ``n`` and must resolve to LwM2M paths; times are ``bt`` + ``t``. Values use ``v``
(numbers), ``vs`` (strings), ``vb`` (booleans), ``vd`` (opaque) and LwM2M's ``vlo`` (object links
as ``"o:i"``). SenML CBOR uses the numeric labels of RFC 8428 §6 and the text label ``vlo``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..definitions import ObjectRegistry, ObjLnk
from ..numbers import INT64_MIN, UINT64_MAX, ResourceType
from ..paths import ROOT, LwM2MPath
from .base import (
    Codec,
    CodecError,
    ContentFormat,
    Entry,
    checked,
    flatten,
    group,
    parse_name,
    resource_def,
    value_type,
)
from .cbor import loads_one

CBOR_LABELS = {
    -1: "bver",
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
}
CBOR_KEYS = {name: label for label, name in CBOR_LABELS.items()}
VALUE_KEYS = ("v", "vs", "vb", "vd", "vlo")


@dataclass(frozen=True, slots=True)
class SenMLRecord:
    """One resolved SenML record: full path, value (None for a name-only record) and time."""

    path: LwM2MPath
    value: Any = None
    time: float | None = None


def _number(x: Any, what: str) -> float | int:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise CodecError(f"{what} is not a number")
    if isinstance(x, float) and not math.isfinite(x):
        raise CodecError(f"{what} is not finite")
    return x


def untyped_number(num: float | int, path: LwM2MPath) -> float | int:
    """A number for a resource without a definition: it must fit an Integer or Unsigned Integer."""
    if isinstance(num, int) and not INT64_MIN <= num <= UINT64_MAX:
        raise CodecError(f"{path}: {num} does not fit 64 bits")
    return num


def typed_number(num: float | int, rtype: ResourceType | None, path: LwM2MPath) -> float | int | None:
    """A JSON/CBOR number as the resource's numeric type (None when the type is not numeric)."""
    if rtype is None:
        return untyped_number(num, path)
    if rtype is ResourceType.FLOAT:
        return checked(rtype, float(num), path)
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if isinstance(num, float):
            if not num.is_integer():
                raise CodecError(f"{path}: {rtype.value} value {num} is not whole")
            num = int(num)
        return checked(rtype, num, path)
    return None


def objlnk_field(key: str, raw: Any, path: LwM2MPath) -> ObjLnk:
    """An object link written as "oid:iid" in a JSON/CBOR value field."""
    if not isinstance(raw, str):
        raise CodecError(f"{path}: {key} is not a string")
    try:
        return ObjLnk.parse(raw)
    except ValueError as exc:
        raise CodecError(f"{path}: {exc}") from None


def b64_any(text: Any) -> bytes:
    """Bytes from base64 in either alphabet, padded or not."""
    if not isinstance(text, str) or not text.isascii():
        raise CodecError("base64 value is not ASCII text")
    body = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"bad base64: {exc}") from None


def typed_value(key: str, raw: Any, rtype: ResourceType | None, path: LwM2MPath, binary: bool) -> Any:
    """A typed scalar from a record's value field ``key`` (``binary``: SenML CBOR, vd is bytes)."""
    if key == "v":
        number = typed_number(_number(raw, f"{path} v"), rtype, path)
        if number is not None:
            return number
    elif key == "vs":
        if not isinstance(raw, str):
            raise CodecError(f"{path}: vs is not a string")
        if rtype in (None, ResourceType.STRING, ResourceType.CORELNK):
            return raw
    elif key == "vb":
        if not isinstance(raw, bool):
            raise CodecError(f"{path}: vb is not a boolean")
        if rtype in (None, ResourceType.BOOLEAN):
            return raw
    elif key == "vd":
        if binary:
            if not isinstance(raw, bytes):
                raise CodecError(f"{path}: vd is not a byte string")
            data = raw
        else:
            data = b64_any(raw)
        if rtype in (None, ResourceType.OPAQUE):
            return data
    elif key == "vlo":
        link = objlnk_field(key, raw, path)
        if rtype in (None, ResourceType.OBJLNK):
            return link
    raise CodecError(f"{path}: {key} does not carry a {rtype.value if rtype else 'value'}")


def value_field(rtype: ResourceType, value: Any, binary: bool) -> tuple[str, Any]:
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME, ResourceType.FLOAT):
        return "v", value
    if rtype is ResourceType.BOOLEAN:
        return "vb", value
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return "vs", value
    if rtype is ResourceType.OPAQUE:
        return "vd", bytes(value) if binary else base64.urlsafe_b64encode(value).decode("ascii").rstrip("=")
    if rtype is ResourceType.OBJLNK:
        return "vlo", f"{value[0]}:{value[1]}"
    raise CodecError(f"{rtype.value} resources carry no value")


def resolve(raw_records: Any, base_path: LwM2MPath, model: ObjectRegistry | None, binary: bool) -> list[SenMLRecord]:
    """Resolve base fields and type each value; ``raw_records`` uses the text labels."""
    if not isinstance(raw_records, list):
        raise CodecError("SenML pack is not an array")
    out: list[SenMLRecord] = []
    bn, bt, bv, have_bt = "", 0.0, 0.0, False
    for rec in raw_records:
        if not isinstance(rec, dict):
            raise CodecError("SenML record is not a map")
        for key in rec:
            if isinstance(key, str) and key.endswith("_"):
                raise CodecError(f"unsupported must-understand label {key!r}")
        if "bn" in rec:
            if not isinstance(rec["bn"], str):
                raise CodecError("bn is not a string")
            bn = rec["bn"]
        if "bt" in rec:
            bt, have_bt = _number(rec["bt"], "bt"), True
        if "bv" in rec:
            bv = _number(rec["bv"], "bv")
        n = rec.get("n", "")
        if not isinstance(n, str):
            raise CodecError("n is not a string")
        path = parse_name(bn + n, base_path)
        time = None
        if "t" in rec or have_bt:
            time = bt + _number(rec.get("t", 0), "t")
        present = [k for k in VALUE_KEYS if k in rec]
        if len(present) > 1:
            raise CodecError(f"{path}: more than one value")
        value = None
        if present:
            key = present[0]
            raw = rec[key]
            if key == "v" and bv:
                raw = _number(raw, f"{path} v") + bv
            rdef = resource_def(model, path)
            value = typed_value(key, raw, rdef.type if rdef else None, path, binary)
        out.append(SenMLRecord(path, value, time))
    return out


def build(
    records: Iterable[SenMLRecord], base_path: LwM2MPath, model: ObjectRegistry | None, binary: bool
) -> list[dict[str, Any]]:
    """Raw records (text labels) for ``records``, names relative to a base name on the first."""
    records = list(records)
    base = str(base_path)
    only_base = all(rec.path == base_path for rec in records)
    out: list[dict[str, Any]] = []
    for rec in records:
        if not base_path.is_prefix_of(rec.path):
            raise CodecError(f"{rec.path} is outside {base_path}")
        raw: dict[str, Any] = {}
        if only_base:
            if not out:
                raw["bn"] = base
        else:
            if not out:
                raw["bn"] = base if base.endswith("/") else base + "/"
            raw["n"] = "/".join(str(i) for i in rec.path.relative_to(base_path))
        if rec.time is not None:
            raw["t"] = rec.time
        if rec.value is not None:
            rtype = value_type(model, rec.path, rec.value)
            key, val = value_field(rtype, checked(rtype, rec.value, rec.path), binary)
            raw[key] = val
        out.append(raw)
    return out


def _records_from_entries(base_path: LwM2MPath, entries: Iterable[Entry]) -> list[SenMLRecord]:
    flat = flatten(e for e in entries if not (e[0].is_instance and e[1] is None))
    return [SenMLRecord(path, value) for path, value in flat]


def _entries_from_records(records: list[SenMLRecord], base_path: LwM2MPath) -> list[Entry]:
    flat = []
    for rec in records:
        if rec.value is None:
            raise CodecError(f"{rec.path}: record without a value")
        flat.append((rec.path, rec.value))
    return group(flat, base_path)


def _json_loads(payload: bytes) -> Any:
    def no_constants(name: str) -> Any:
        raise CodecError(f"JSON constant {name} is not allowed")

    try:
        return json.loads(bytes(payload).decode("utf-8"), parse_constant=no_constants)
    except CodecError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"bad JSON: {exc}") from None


def _from_cbor_labels(pack: Any) -> Any:
    if not isinstance(pack, list):
        raise CodecError("SenML pack is not an array")
    out = []
    for rec in pack:
        if not isinstance(rec, dict):
            raise CodecError("SenML record is not a map")
        named: dict[str, Any] = {}
        for key, val in rec.items():
            if isinstance(key, int) and not isinstance(key, bool) and key in CBOR_LABELS:
                name = CBOR_LABELS[key]
            elif isinstance(key, str):
                name = key
            else:
                continue  # unknown numeric labels are not must-understand
            if name in named:
                raise CodecError(f"label {name} given twice")
            named[name] = val
        out.append(named)
    return out


class SenMLJsonCodec(Codec):
    content_format = ContentFormat.SENML_JSON
    binary = False

    def dumps(self, raw: list[dict[str, Any]]) -> bytes:
        try:
            return json.dumps(raw, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
        except ValueError as exc:
            raise CodecError(str(exc)) from None

    def loads(self, payload: bytes) -> Any:
        return _json_loads(payload)

    def encode_records(
        self, base_path: LwM2MPath, records: Iterable[SenMLRecord], model: ObjectRegistry | None = None
    ) -> bytes:
        """Encode records that may carry times (Send, timestamped notifications) or no value."""
        return self.dumps(build(records, base_path, model, self.binary))

    def decode_records(
        self, base_path: LwM2MPath, payload: bytes, model: ObjectRegistry | None = None
    ) -> list[SenMLRecord]:
        """All records with full paths and times; name-only records (Read-Composite) keep value None."""
        return resolve(self.loads(payload), base_path, model, self.binary)

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        return self.encode_records(base_path, _records_from_entries(base_path, entries), model)

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        return _entries_from_records(self.decode_records(base_path, payload, model), base_path)

    def encode_paths(self, paths: Iterable[LwM2MPath]) -> bytes:
        """A name-only pack, as Read-Composite and Observe-Composite requests carry."""
        return self.encode_records(ROOT, [SenMLRecord(p) for p in paths])

    def decode_paths(self, payload: bytes) -> list[LwM2MPath]:
        """The paths a Read-/Observe-Composite request names (values, if any, are ignored)."""
        return [r.path for r in resolve(self.loads(payload), ROOT, None, self.binary)]


class SenMLCborCodec(SenMLJsonCodec):
    content_format = ContentFormat.SENML_CBOR
    binary = True

    def dumps(self, raw: list[dict[str, Any]]) -> bytes:
        import cbor2  # on first use: see .cbor

        labelled = [{CBOR_KEYS.get(k, k): v for k, v in rec.items()} for rec in raw]
        return cbor2.dumps(labelled)

    def loads(self, payload: bytes) -> Any:
        return _from_cbor_labels(loads_one(payload))
