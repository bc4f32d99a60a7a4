"""Operational datasets as otbr-agent's REST API writes them in JSON, and partial datasets read from it.

otbr-agent (ot-br-posix ``src/rest/json.cpp``) names the keys in PascalCase (``NetworkKey``,
``ActiveTimestamp``); since ot-br-posix #2514 (2025) it writes camelCase, and python-otbr-api tells the two
apart by whether ``/api/actions`` exists. This API has no ``/api/actions``, so it speaks the PascalCase
generation, and reads either spelling. Hex is upper case, as otbr-agent's ``Bytes2Hex``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from ncp.meshcop import Dataset, MeshCoPError, SecurityPolicy, Timestamp

# SecurityPolicy flag bits (Thread 1.2+, OpenThread's meshcop SecurityPolicy): (byte, mask, inverted).
# An inverted bit set means the feature is disabled.
_POLICY_FLAGS: dict[str, tuple[int, int, bool]] = {
    "ObtainNetworkKey": (0, 0x80, False),
    "NativeCommissioning": (0, 0x40, False),
    "Routers": (0, 0x20, False),
    "ExternalCommissioning": (0, 0x10, False),
    "CommercialCommissioning": (0, 0x04, True),
    "AutonomousEnrollment": (0, 0x02, True),
    "NetworkKeyProvisioning": (0, 0x01, True),
    "TobleLink": (1, 0x80, False),
    "NonCcmRouters": (1, 0x40, True),
}
_ACTIVE_KEYS = ("ActiveTimestamp", "NetworkKey", "NetworkName", "ExtPanId", "MeshLocalPrefix", "PanId", "Channel",
                "PSKc", "SecurityPolicy", "ChannelMask")
_TIMESTAMP_KEYS = ("Seconds", "Ticks", "Authoritative")
_PASCAL = {k[0].lower() + k[1:]: k for k in (*_ACTIVE_KEYS, *_POLICY_FLAGS, *_TIMESTAMP_KEYS, "RotationTime",
                                             "ActiveDataset", "PendingTimestamp", "Delay")}
_PASCAL["pskc"] = "PSKc"


def pascal(data: Any) -> Any:
    """A request body with camelCase keys (python-otbr-api toward a newer otbr-agent) in PascalCase."""
    if not isinstance(data, dict):
        return data
    return {_PASCAL.get(k, k): pascal(v) for k, v in data.items()}


def _hex(value: bytes) -> str:
    return value.hex().upper()


def timestamp_json(ts: Timestamp) -> dict[str, Any]:
    return {"Seconds": ts.seconds, "Ticks": ts.ticks, "Authoritative": ts.authoritative}


def security_policy_json(policy: SecurityPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {"RotationTime": policy.rotation_time}
    flags = policy.flags + bytes(max(0, 2 - len(policy.flags)))
    for name, (index, mask, inverted) in _POLICY_FLAGS.items():
        out[name] = bool(flags[index] & mask) != inverted
    return out


def dataset_json(d: Dataset) -> dict[str, Any]:
    """An active dataset as otbr-agent's ``ActiveDataset2Json`` writes it (absent fields left out)."""
    out: dict[str, Any] = {}
    if d.active_timestamp is not None:
        out["ActiveTimestamp"] = timestamp_json(d.active_timestamp)
    if d.network_key is not None:
        out["NetworkKey"] = _hex(d.network_key)
    if d.network_name is not None:
        out["NetworkName"] = d.network_name
    if d.extended_pan_id is not None:
        out["ExtPanId"] = _hex(d.extended_pan_id)
    if d.mesh_local_prefix is not None:
        out["MeshLocalPrefix"] = str(d.mesh_local_prefix)
    if d.pan_id is not None:
        out["PanId"] = d.pan_id
    if d.channel is not None:
        out["Channel"] = d.channel
    if d.pskc is not None:
        out["PSKc"] = _hex(d.pskc)
    if d.security_policy is not None:
        out["SecurityPolicy"] = security_policy_json(d.security_policy)
    if d.channel_mask is not None:
        out["ChannelMask"] = d.channel_mask.get(0, 0)
    return out


def pending_dataset_json(d: Dataset) -> dict[str, Any]:
    """A pending dataset as otbr-agent's ``PendingDataset2Json`` writes it: the dataset it makes active, its
    pending timestamp and the delay (ms) that remains."""
    out: dict[str, Any] = {"ActiveDataset": dataset_json(d.as_active)}
    if d.pending_timestamp is not None:
        out["PendingTimestamp"] = timestamp_json(d.pending_timestamp)
    if d.delay_timer is not None:
        out["Delay"] = d.delay_timer
    return out


class BadDataset(ValueError):
    """The request's dataset cannot be used (400)."""


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadDataset(f"{key}: wrong type")
    return value


def _bytes(data: dict[str, Any], key: str, size: int) -> bytes | None:
    text = _get(data, key, str)
    if text is None:
        return None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise BadDataset(f"{key}: not hex") from None
    if len(value) != size:
        raise BadDataset(f"{key}: {size} bytes expected")
    return value


def _timestamp(data: dict[str, Any], key: str) -> Timestamp | None:
    value = _get(data, key, dict)
    if value is None:
        return None
    seconds = _get(value, "Seconds", int)
    ticks = _get(value, "Ticks", int)
    return Timestamp(seconds if seconds is not None else 0, ticks or 0, bool(value.get("Authoritative")))


def dataset_from_json(body: Any, base: Dataset | None = None) -> Dataset:
    """The fields a JSON active dataset sets (PascalCase or camelCase); the rest are None.

    ``base`` (the dataset being updated) supplies the security policy flags a partial SecurityPolicy
    leaves alone."""
    data = pascal(body)
    if not isinstance(data, dict):
        raise BadDataset("expected a JSON object")
    fields: dict[str, Any] = {
        "active_timestamp": _timestamp(data, "ActiveTimestamp"),
        "network_key": _bytes(data, "NetworkKey", 16),
        "network_name": _get(data, "NetworkName", str),
        "extended_pan_id": _bytes(data, "ExtPanId", 8),
        "pan_id": _get(data, "PanId", int),
        "channel": _get(data, "Channel", int),
        "pskc": _bytes(data, "PSKc", 16),
    }
    if fields["network_name"] is not None and not 1 <= len(fields["network_name"].encode()) <= 16:
        raise BadDataset("NetworkName: 1 to 16 bytes")
    if fields["pan_id"] is not None and not 0 <= fields["pan_id"] <= 0xFFFE:
        raise BadDataset("PanId out of range")
    if fields["channel"] is not None and not 11 <= fields["channel"] <= 26:
        raise BadDataset("Channel: 11..26")
    prefix = _get(data, "MeshLocalPrefix", str)
    if prefix is not None:
        try:
            network = ipaddress.IPv6Network(prefix if "/" in prefix else f"{prefix}/64", strict=False)
        except ValueError:
            raise BadDataset("MeshLocalPrefix: not an IPv6 /64") from None
        if network.prefixlen != 64:
            raise BadDataset("MeshLocalPrefix: not an IPv6 /64")
        fields["mesh_local_prefix"] = network
    mask = _get(data, "ChannelMask", int)
    if mask is not None:
        if not 0 <= mask < 1 << 32:
            raise BadDataset("ChannelMask out of range")
        fields["channel_mask"] = {0: mask}
    policy = _get(data, "SecurityPolicy", dict)
    if policy is not None:
        old = base.security_policy if base is not None and base.security_policy else SecurityPolicy()
        rotation = _get(policy, "RotationTime", int)
        flags = bytearray(old.flags + bytes(max(0, 2 - len(old.flags))))
        for name, (index, bit, inverted) in _POLICY_FLAGS.items():
            value = policy.get(name)
            if value is None:
                continue
            if not isinstance(value, bool):
                raise BadDataset(f"SecurityPolicy.{name}: not a boolean")
            if value != inverted:
                flags[index] |= bit
            else:
                flags[index] &= ~bit & 0xFF
        fields["security_policy"] = SecurityPolicy(rotation if rotation is not None else old.rotation_time,
                                                   bytes(flags))
    return Dataset(**{k: v for k, v in fields.items() if v is not None})


def merge(base: Dataset, update: Dataset) -> Dataset:
    """``base`` with every field ``update`` sets replaced (otDatasetUpdateTlvs)."""
    changes = {f.name: getattr(update, f.name) for f in dataclasses.fields(Dataset)
               if f.name not in ("channel_page", "unknown") and getattr(update, f.name) is not None}
    if update.channel is not None:
        changes["channel_page"] = update.channel_page
    if update.unknown:
        kept = {typ: value for typ, value in base.unknown}
        kept.update(dict(update.unknown))
        changes["unknown"] = tuple(kept.items())
    merged = base.with_(**changes)
    try:
        merged.to_tlvs()
    except MeshCoPError as exc:
        raise BadDataset(str(exc)) from None
    return merged


def pending_from_json(body: Any, base: Dataset | None = None) -> Dataset:
    """The fields a JSON pending dataset sets (otbr-agent's ``JsonPendingDatasetString2Dataset``): its
    ``ActiveDataset`` (an object, or hex TLVs), ``PendingTimestamp`` and ``Delay``, which is required."""
    data = pascal(body)
    if not isinstance(data, dict):
        raise BadDataset("expected a JSON object")
    active = data.get("ActiveDataset")
    if isinstance(active, str):
        try:
            update = Dataset.from_hex(active)
        except MeshCoPError as exc:
            raise BadDataset(f"ActiveDataset: {exc}") from None
        if update.pending_timestamp is not None or update.delay_timer is not None:
            raise BadDataset("ActiveDataset: an active dataset has no pending timestamp or delay timer")
    elif isinstance(active, dict):
        update = dataset_from_json(active, base)
    else:
        raise BadDataset("ActiveDataset: expected an object or hex TLVs")
    delay = _get(data, "Delay", int)
    if delay is None:
        raise BadDataset("Delay: the milliseconds until the pending dataset becomes active are required")
    return update.with_(pending_timestamp=_timestamp(data, "PendingTimestamp"), delay_timer=delay)
