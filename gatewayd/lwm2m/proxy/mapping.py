"""Resource mapping of a proxied CoAP device, sans-I/O: which LwM2M resource is which CoAP resource,
and how its value is carried.

A mapping entry names the device's CoAP paths for Read (``get``), Write (``put``, else ``post``) and
Execute (``post``), the LwM2M type (default: the object model's type of the resource), the payload
format (``text``, ``json``, ``cbor``, or ``""``: by the response's Content-Format) and, for JSON and
CBOR, an RFC 6901 pointer to the value inside the document. ``observe = false`` says the device cannot
observe that resource, so the gateway polls it instead.

Decoding a device payload raises :class:`ValueDecodeError` (a ``ValueError``) and nothing else;
bad mapping entries raise :class:`MappingError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..definitions import ObjectRegistry
from ..numbers import INT64_MAX, INT64_MIN, UINT64_MAX, ResourceType
from ..paths import LwM2MPath, PathError

#: CoAP Content-Format numbers (RFC 7252 §12.3, RFC 8949)
CF_TEXT = 0
CF_JSON = 50
CF_CBOR = 60
FORMATS = ("", "text", "json", "cbor")
FORMAT_CONTENT = {"text": CF_TEXT, "json": CF_JSON, "cbor": CF_CBOR}
TYPE_NAMES: dict[str, ResourceType] = {
    "float": ResourceType.FLOAT,
    "integer": ResourceType.INTEGER,
    "unsigned": ResourceType.UNSIGNED,
    "boolean": ResourceType.BOOLEAN,
    "string": ResourceType.STRING,
    "opaque": ResourceType.OPAQUE,
    "time": ResourceType.TIME,
}
SPEC_FIELDS = ("get", "put", "post", "type", "format", "pointer", "observe")
#: device payloads larger than this are refused rather than parsed
MAX_PAYLOAD = 64 * 1024
_INT = re.compile(r"[+-]?[0-9]{1,40}")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")
_TRUE = frozenset({"1", "true", "on", "yes"})
_FALSE = frozenset({"0", "false", "off", "no"})


class MappingError(ValueError):
    """A mapping entry that cannot be used (bad path, unknown resource, bad field)."""


class ValueDecodeError(ValueError):
    """A device payload that does not hold a value of the mapped type."""


@dataclass(frozen=True, slots=True)
class ResourceMap:
    """One LwM2M resource backed by the device's CoAP resources."""

    path: LwM2MPath
    type: ResourceType
    get: str = ""
    put: str = ""
    post: str = ""
    format: str = ""
    pointer: str = ""
    observe: bool = True

    @property
    def readable(self) -> bool:
        return bool(self.get)

    @property
    def write_target(self) -> tuple[str, str] | None:
        """(method, CoAP path) a Write goes to, or None."""
        if self.put:
            return "PUT", self.put
        if self.post:
            return "POST", self.post
        return None

    @property
    def execute_target(self) -> str:
        return self.post or self.put


def _coap_path(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        raise MappingError(f'{field} must be a CoAP path such as "/sensors/temp", got {value!r}')
    return value


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901 reference tokens of a JSON pointer ("" is the whole document)."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise MappingError(f'a JSON pointer starts with "/", got {pointer!r}')
    tokens = []
    for raw in pointer[1:].split("/"):
        if re.search(r"~[^01]|~$", raw):
            raise MappingError(f"bad escape in JSON pointer {pointer!r}")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def parse_mapping(path_text: str, spec: Mapping[str, Any], registry: ObjectRegistry) -> ResourceMap:
    """One ``"/3303/0/5700" = { get = ..., type = ... }`` entry, checked against the object model."""
    try:
        path = LwM2MPath.parse(path_text)
    except PathError as exc:
        raise MappingError(str(exc)) from None
    if not path.is_resource:
        raise MappingError(f"{path_text} is not a resource path (/object/instance/resource)")
    rdef = registry.resource(path)
    if rdef is None:
        raise MappingError(f"{path} is not in the object model (add its DDF to [lwm2m] models_dir)")
    unknown = sorted(set(spec) - set(SPEC_FIELDS))
    if unknown:
        raise MappingError(f"{path}: unknown field {unknown[0]!r}; fields are {', '.join(SPEC_FIELDS)}")
    get = _coap_path(spec["get"], "get") if spec.get("get") else ""
    put = _coap_path(spec["put"], "put") if spec.get("put") else ""
    post = _coap_path(spec["post"], "post") if spec.get("post") else ""
    if not (get or put or post):
        raise MappingError(f"{path}: give at least one of get, put, post")
    if rdef.executable:
        rtype = ResourceType.NONE
        if get or not post:
            raise MappingError(f"{path} is executable: map it with post only")
    else:
        type_name = spec.get("type", "")
        if type_name:
            if type_name not in TYPE_NAMES:
                raise MappingError(f"{path}: type must be one of {', '.join(TYPE_NAMES)}, got {type_name!r}")
            rtype = TYPE_NAMES[type_name]
        else:
            rtype = rdef.type
        if rtype not in TYPE_NAMES.values():
            raise MappingError(f"{path} is of type {rdef.type.value}, which a device value cannot carry")
        if rdef.multiple:
            raise MappingError(f"{path} is a multiple-instance resource; map single resources only")
        if get and not rdef.readable:
            raise MappingError(f"{path} is not readable in the object model, so get is never used")
        if (put or post) and not rdef.writable:
            raise MappingError(f"{path} is not writable in the object model, so put/post is never used")
    fmt = spec.get("format", "")
    if fmt not in FORMATS:
        raise MappingError(f"{path}: format must be text, json or cbor, got {fmt!r}")
    pointer = spec.get("pointer", "")
    if not isinstance(pointer, str):
        raise MappingError(f"{path}: pointer must be a string")
    parse_pointer(pointer)
    if pointer and fmt == "text":
        raise MappingError(f"{path}: a pointer needs format json or cbor")
    observe = spec.get("observe", True)
    if not isinstance(observe, bool):
        raise MappingError(f"{path}: observe must be true or false")
    return ResourceMap(path, rtype, get, put, post, fmt, pointer, observe)


def parse_mappings(table: Mapping[str, Mapping[str, Any]], registry: ObjectRegistry) -> dict[LwM2MPath, ResourceMap]:
    """A device's ``resources`` table; MappingError names the first bad entry."""
    out: dict[LwM2MPath, ResourceMap] = {}
    for path_text, spec in table.items():
        if not isinstance(spec, Mapping):
            raise MappingError(f"{path_text}: expected an inline table such as {{ get = \"/sensors/temp\" }}")
        rmap = parse_mapping(path_text, spec, registry)
        if rmap.path in out:
            raise MappingError(f"{rmap.path} is mapped twice")
        out[rmap.path] = rmap
    return out


def mapped_under(maps: Iterable[ResourceMap], paths: Iterable[LwM2MPath]) -> list[ResourceMap]:
    """The mapped resources at or below any of ``paths`` (what a Read of them touches)."""
    wanted = list(paths)
    return [m for m in maps if any(p.is_prefix_of(m.path) for p in wanted)]


# --- values --------------------------------------------------------------------------------------


def _format_of(fmt: str, content_format: int | None) -> str:
    if fmt:
        return fmt
    if content_format == CF_JSON:
        return "json"
    if content_format == CF_CBOR:
        return "cbor"
    return "text"


def _follow(document: Any, tokens: tuple[str, ...]) -> Any:
    node = document
    for token in tokens:
        if isinstance(node, dict):
            if token in node:
                node = node[token]
                continue
            if _INT.fullmatch(token) and int(token) in node:  # CBOR maps may have integer keys
                node = node[int(token)]
                continue
            raise ValueDecodeError(f"no member {token!r} in the document")
        if isinstance(node, list):
            if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                raise ValueDecodeError(f"bad array index {token!r}")
            index = int(token)
            if index >= len(node):
                raise ValueDecodeError(f"array index {index} out of range")
            node = node[index]
            continue
        raise ValueDecodeError(f"cannot descend into a {type(node).__name__} with {token!r}")
    return node


def _from_text(rtype: ResourceType, text: str) -> Any:
    body = text.strip()
    if rtype is ResourceType.STRING:
        return text
    if rtype is ResourceType.BOOLEAN:
        low = body.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueDecodeError(f"not a boolean: {body[:40]!r}")
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if not _INT.fullmatch(body):
            raise ValueDecodeError(f"not an integer: {body[:40]!r}")
        return _coerce(rtype, int(body))
    if rtype is ResourceType.FLOAT:
        if len(body) > 400 or not _FLOAT.fullmatch(body):
            raise ValueDecodeError(f"not a number: {body[:40]!r}")
        return _coerce(rtype, float(body))
    if rtype is ResourceType.OPAQUE:
        return text.encode("utf-8")
    raise ValueDecodeError(f"{rtype.value} resources carry no value")


def _coerce(rtype: ResourceType, value: Any) -> Any:
    """A decoded JSON/CBOR/text scalar as a value of ``rtype``."""
    if rtype is ResourceType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            return _from_text(rtype, value)
        raise ValueDecodeError(f"not a boolean: {type(value).__name__}")
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if isinstance(value, str):
            return _from_text(rtype, value)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueDecodeError(f"not an integer: {type(value).__name__}")
        low, high = (0, UINT64_MAX) if rtype is ResourceType.UNSIGNED else (INT64_MIN, INT64_MAX)
        if not low <= value <= high:
            raise ValueDecodeError(f"{value} is out of range for {rtype.value}")
        return value
    if rtype is ResourceType.FLOAT:
        if isinstance(value, str):
            return _from_text(rtype, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueDecodeError(f"not a number: {type(value).__name__}")
        try:
            out = float(value)
        except OverflowError:
            raise ValueDecodeError("number out of range") from None
        if not math.isfinite(out):
            raise ValueDecodeError("number is not finite")
        return out
    if rtype is ResourceType.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise ValueDecodeError(f"not a string: {type(value).__name__}")
    if rtype is ResourceType.OPAQUE:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            return value.encode("utf-8")
        raise ValueDecodeError(f"not bytes: {type(value).__name__}")
    raise ValueDecodeError(f"{rtype.value} resources carry no value")


def decode_value(payload: bytes, rtype: ResourceType, fmt: str = "", pointer: str = "",
                 content_format: int | None = None) -> Any:
    """The LwM2M value in a device's response payload; ValueDecodeError if there is none."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueDecodeError(f"payload of {len(payload)} bytes is too large")
    try:
        tokens = parse_pointer(pointer)
    except MappingError as exc:
        raise ValueDecodeError(str(exc)) from None
    kind = _format_of(fmt, content_format)
    if kind == "text":
        if rtype is ResourceType.OPAQUE:
            return bytes(payload)
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueDecodeError("text payload is not UTF-8") from None
        return _from_text(rtype, text)
    if kind == "json":
        try:
            document = json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueDecodeError(f"not JSON: {type(exc).__name__}") from None
    else:
        import cbor2  # on first use: see gatewayd.lwm2m.codecs.cbor

        try:
            document = cbor2.loads(bytes(payload))
        except Exception as exc:  # cbor2 raises many types (decoder errors, tag hooks, recursion)
            raise ValueDecodeError(f"not CBOR: {type(exc).__name__}") from None
    return _coerce(rtype, _follow(document, tokens))


def _nest(tokens: tuple[str, ...], value: Any) -> Any:
    for token in reversed(tokens):
        value = {token: value}
    return value


def encode_value(value: Any, rtype: ResourceType, fmt: str = "", pointer: str = "") -> tuple[bytes, int]:
    """(payload, Content-Format) a device gets for a Write of ``value``; a pointer nests it in objects."""
    kind = fmt or "text"
    tokens = parse_pointer(pointer)
    if kind == "text":
        if rtype is ResourceType.OPAQUE:
            return bytes(value), CF_TEXT
        if rtype is ResourceType.BOOLEAN:
            return (b"true" if value else b"false"), CF_TEXT
        if rtype is ResourceType.FLOAT:
            return repr(float(value)).encode(), CF_TEXT
        return str(value).encode("utf-8"), CF_TEXT
    if kind == "json":
        plain = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return json.dumps(_nest(tokens, plain), separators=(",", ":")).encode(), CF_JSON
    import cbor2

    return cbor2.dumps(_nest(tokens, value)), CF_CBOR
