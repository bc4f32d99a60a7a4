"""LwM2M JSON (application/vnd.oma.lwm2m+json, content format 11543; 1543 in the 1.0 drafts).

The LwM2M 1.0 format: ``{"bn": "/3/0/", "bt": t0, "e": [{"n": "0", "sv": "..."}, ...]}`` with value
fields ``v`` (numbers), ``sv`` (strings; opaque as base64), ``bv`` (booleans) and ``ov`` (object
links ``"o:i"``). Early 1.0 servers leave out ``bn``; names are then relative to the request path.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from ..definitions import ObjectRegistry
from ..numbers import ResourceType
from ..paths import LwM2MPath
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
from .senml import _json_loads, b64_any, objlnk_field, typed_number

VALUE_KEYS = ("v", "sv", "bv", "ov")


def _field(rtype: ResourceType, value: Any) -> tuple[str, Any]:
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME, ResourceType.FLOAT):
        return "v", value
    if rtype is ResourceType.BOOLEAN:
        return "bv", value
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return "sv", value
    if rtype is ResourceType.OPAQUE:
        return "sv", base64.b64encode(value).decode("ascii")
    if rtype is ResourceType.OBJLNK:
        return "ov", f"{value[0]}:{value[1]}"
    raise CodecError(f"{rtype.value} resources carry no value")


def _typed(key: str, raw: Any, rtype: ResourceType | None, path: LwM2MPath) -> Any:
    if key == "v":
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or (isinstance(raw, float) and not math.isfinite(raw))
        ):
            raise CodecError(f"{path}: v is not a finite number")
        number = typed_number(raw, rtype, path)
        if number is not None:
            return number
    elif key == "sv":
        if not isinstance(raw, str):
            raise CodecError(f"{path}: sv is not a string")
        if rtype in (None, ResourceType.STRING, ResourceType.CORELNK):
            return raw
        if rtype is ResourceType.OPAQUE:
            return b64_any(raw)
    elif key == "bv":
        if not isinstance(raw, bool):
            raise CodecError(f"{path}: bv is not a boolean")
        if rtype in (None, ResourceType.BOOLEAN):
            return raw
    elif key == "ov":
        link = objlnk_field(key, raw, path)
        if rtype in (None, ResourceType.OBJLNK):
            return link
    raise CodecError(f"{path}: {key} does not carry a {rtype.value if rtype else 'value'}")


class LwM2MJsonCodec(Codec):
    content_format = ContentFormat.LWM2M_JSON

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        flat = flatten(e for e in entries if not (e[0].is_instance and e[1] is None))
        base = str(base_path)
        only_base = all(p == base_path for p, _ in flat)
        doc: dict[str, Any] = {"bn": base if only_base or base.endswith("/") else base + "/"}
        elements = []
        for path, value in flat:
            if not base_path.is_prefix_of(path):
                raise CodecError(f"{path} is outside {base_path}")
            rtype = value_type(model, path, value)
            key, val = _field(rtype, checked(rtype, value, path))
            element: dict[str, Any] = {}
            if not only_base:
                element["n"] = "/".join(str(i) for i in path.relative_to(base_path))
            element[key] = val
            elements.append(element)
        doc["e"] = elements
        try:
            return json.dumps(doc, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
        except ValueError as exc:
            raise CodecError(str(exc)) from None

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        doc = _json_loads(payload)
        if not isinstance(doc, dict) or not isinstance(doc.get("e"), list):
            raise CodecError('LwM2M JSON needs an object with an "e" array')
        bn = doc.get("bn", "")
        if not isinstance(bn, str):
            raise CodecError("bn is not a string")
        if "bt" in doc and (isinstance(doc["bt"], bool) or not isinstance(doc["bt"], int | float)):
            raise CodecError("bt is not a number")
        flat: list[Entry] = []
        for element in doc["e"]:
            if not isinstance(element, dict):
                raise CodecError("element is not an object")
            n = element.get("n", "")
            if not isinstance(n, str):
                raise CodecError("n is not a string")
            path = parse_name(bn + n, base_path)
            present = [k for k in VALUE_KEYS if k in element]
            if len(present) != 1:
                raise CodecError(f"{path}: needs exactly one value")
            rdef = resource_def(model, path)
            flat.append((path, _typed(present[0], element[present[0]], rdef.type if rdef else None, path)))
        return group(flat, base_path)
