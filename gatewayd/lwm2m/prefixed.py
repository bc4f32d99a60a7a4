"""Prefixed paths of the LwM2M Gateway enabler (OMA-TS-LWM2M_Gateway-V1_1_1 §8.3, §9), sans-I/O.

A server reaches the objects of an IoT device behind a gateway by putting the device's Prefix (``/25/x/1``)
before the object path, as an alternate path: ``GET /dev1/3303/0/5700``. A first path segment that is not
a decimal number is such a prefix; a path without one addresses the gateway's own objects. In payloads
that name paths the prefix is part of every name (§9): SenML JSON/CBOR names (``"bn":"/dev1/3303/0/"``)
and LwM2M CBOR keys (``{["dev1", 3303, 0]: {...}}``); TLV, plain text, opaque and CBOR carry no names.
Discover answers without the prefix (§8.3.1), so link payloads pass unchanged.

:func:`add_prefix` puts the prefix into what the device's objects answered; :func:`strip_prefix` takes it
out of what the server wrote (names without it are taken as they are). Both raise :class:`PrefixError`
(a ``ValueError``) for payloads they cannot read, and nothing else.
"""

from __future__ import annotations

import json
import re
from typing import Any

SENML_JSON = 110
SENML_CBOR = 112
LWM2M_CBOR = 11544
#: content formats whose payloads name paths, so the prefix goes into them
NAMING_FORMATS = frozenset({SENML_JSON, SENML_CBOR, LWM2M_CBOR})
_BN = {SENML_JSON: "bn", SENML_CBOR: -2}
_N = {SENML_JSON: "n", SENML_CBOR: 0}
_PREFIX = re.compile(r"[A-Za-z0-9._~-]{1,64}")
MAX_PAYLOAD = 1 << 20


class PrefixError(ValueError):
    """A payload whose names cannot be read, or that names another device's prefix."""


def valid_prefix(prefix: str) -> bool:
    """Usable as one path segment (RFC 3986 unreserved characters) and never taken for an object id."""
    return bool(_PREFIX.fullmatch(prefix)) and not prefix.isdigit()


def split_prefix(uri_path: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """``("dev1", "3303", "0")`` → ``("dev1", ("3303", "0"))``; no prefix → ``("", uri_path)``."""
    parts = tuple(p for p in uri_path if p != "")
    if parts and not parts[0].isdigit():
        return parts[0], parts[1:]
    return "", parts


def add_prefix(content_format: int | None, payload: bytes, prefix: str) -> bytes:
    """``payload`` (as the device's objects answered it) with ``prefix`` in every name it carries."""
    if content_format not in NAMING_FORMATS or not payload:
        return payload
    if content_format == LWM2M_CBOR:
        return _rekey(payload, lambda key: _prefixed_key(key, prefix))
    return _rename(content_format, payload, lambda name: f"/{prefix}{name}" if name.startswith("/") else name)


def strip_prefix(content_format: int | None, payload: bytes, prefix: str) -> bytes:
    """``payload`` (as the server wrote it under ``prefix``) with the prefix taken out of its names."""
    if content_format not in NAMING_FORMATS or not payload:
        return payload
    if content_format == LWM2M_CBOR:
        return _rekey(payload, lambda key: _unprefixed_key(key, prefix))
    head = f"/{prefix}"

    def strip(name: str) -> str:
        if name == head or name.startswith(head + "/"):
            return name[len(head):] or "/"
        first = name.lstrip("/").split("/", 1)[0]
        if name.startswith("/") and first and not first.isdigit():
            raise PrefixError(f"name {name!r} is not under prefix {prefix!r}")
        return name

    return _rename(content_format, payload, strip)


def _rename(content_format: int, payload: bytes, rename: Any) -> bytes:
    """Apply ``rename`` to each absolute name: ``bn`` where given, else ``n`` of records before any ``bn``."""
    records = _load_senml(content_format, payload)
    bn, n = _BN[content_format], _N[content_format]
    based = False
    for rec in records:
        if bn in rec:
            if not isinstance(rec[bn], str):
                raise PrefixError("SenML base name is not a string")
            rec[bn] = rename(rec[bn])
            based = True
        elif not based and n in rec:
            if not isinstance(rec[n], str):
                raise PrefixError("SenML name is not a string")
            rec[n] = rename(rec[n])
    if content_format == SENML_JSON:
        return json.dumps(records, separators=(",", ":")).encode()
    import cbor2  # imported on first use: see gatewayd.lwm2m.codecs.cbor

    return cbor2.dumps(records)


def _load_senml(content_format: int, payload: bytes) -> list[dict[Any, Any]]:
    if len(payload) > MAX_PAYLOAD:
        raise PrefixError("payload too large")
    if content_format == SENML_JSON:
        try:
            records = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise PrefixError(f"not SenML JSON: {exc}") from None
    else:
        records = _load_cbor(payload)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise PrefixError("SenML payload is not an array of records")
    return records


def _load_cbor(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD:
        raise PrefixError("payload too large")
    import cbor2

    try:
        return cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise PrefixError(f"not CBOR: {type(exc).__name__}") from None


def _rekey(payload: bytes, rekey: Any) -> bytes:
    """An LwM2M CBOR map with ``rekey`` applied to its top-level keys (the paths)."""
    body = _load_cbor(payload)
    if not isinstance(body, dict):
        raise PrefixError("LwM2M CBOR payload is not a map")
    import cbor2

    return cbor2.dumps({rekey(k): v for k, v in body.items()})


def _prefixed_key(key: Any, prefix: str) -> tuple[Any, ...]:
    # {3303: {0: ...}} and {[3303, 0]: ...} both become arrays led by the prefix (Gateway TS §9)
    if isinstance(key, int) and not isinstance(key, bool):
        return (prefix, key)
    if isinstance(key, tuple) and key and all(isinstance(k, int) and not isinstance(k, bool) for k in key):
        return (prefix, *key)
    raise PrefixError(f"LwM2M CBOR key {key!r} is not a path")


def _unprefixed_key(key: Any, prefix: str) -> Any:
    if isinstance(key, tuple) and key and isinstance(key[0], str):
        if key[0] != prefix:
            raise PrefixError(f"LwM2M CBOR key names prefix {key[0]!r}, not {prefix!r}")
        rest = key[1:]
        if not rest:
            raise PrefixError("LwM2M CBOR key names a prefix and no object")
        return rest[0] if len(rest) == 1 else rest
    return key
