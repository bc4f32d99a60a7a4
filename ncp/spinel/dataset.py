"""The operational dataset as Spinel properties (``THREAD_ACTIVE_DATASET``, ``THREAD_PENDING_DATASET``,
format ``A(t(iD))``).

OpenThread NCPs older than the ``THREAD_ACTIVE_DATASET_TLVS`` property (added in 2024; absent from
OpenThread of 2023 and from Cascoda's Chili2 firmware lineage) take the dataset only this way: an array of
(property key, value in that property's own format) pairs.  The MeshCoP TLVs (``ncp.meshcop.Dataset``)
stay the one model; this module only translates.  Timestamps travel as seconds only: ticks and the
authoritative bit are not carried by this form.  A pending dataset adds its pending timestamp and delay
timer (``DATASET_PENDING_TIMESTAMP``, ``DATASET_DELAY_TIMER``, ms).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from ncp.meshcop import (
    Dataset,
    MeshCoPError,
    SecurityPolicy,
    Timestamp,
    channel_mask_from_channels,
    channels_from_channel_mask,
)

from .errors import SpinelError
from .format import pack, unpack_value
from .props import Prop

__all__ = ["DATASET_ACTIVE_TIMESTAMP", "DATASET_DELAY_TIMER", "DATASET_PENDING_TIMESTAMP",
           "DATASET_SECURITY_POLICY", "dataset_from_props", "dataset_to_props"]

# SPINEL_PROP_DATASET_* (THREAD_EXT__BEGIN + 28..31): keys that exist only inside a dataset.
DATASET_ACTIVE_TIMESTAMP = 0x151C
DATASET_PENDING_TIMESTAMP = 0x151D
DATASET_DELAY_TIMER = 0x151E
DATASET_SECURITY_POLICY = 0x151F
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def dataset_to_props(dataset: Dataset) -> list[tuple[int, bytes]]:
    """``dataset`` as the (key, value) entries of a SET THREAD_ACTIVE_DATASET (or _PENDING_, in
    OpenThread's order)."""
    entries: list[tuple[int, bytes]] = []
    if dataset.active_timestamp is not None:
        entries.append((DATASET_ACTIVE_TIMESTAMP, pack("X", dataset.active_timestamp.seconds)))
    if dataset.pending_timestamp is not None:
        entries.append((DATASET_PENDING_TIMESTAMP, pack("X", dataset.pending_timestamp.seconds)))
    if dataset.network_key is not None:
        entries.append((Prop.NET_NETWORK_KEY, dataset.network_key))
    if dataset.network_name is not None:
        entries.append((Prop.NET_NETWORK_NAME, pack("U", dataset.network_name)))
    if dataset.extended_pan_id is not None:
        entries.append((Prop.NET_XPANID, dataset.extended_pan_id))
    if dataset.mesh_local_prefix is not None:
        prefix = dataset.mesh_local_prefix
        entries.append((Prop.IPV6_ML_PREFIX, pack("6C", prefix.network_address, prefix.prefixlen)))
    if dataset.delay_timer is not None:
        entries.append((DATASET_DELAY_TIMER, _U32.pack(dataset.delay_timer)))
    if dataset.pan_id is not None:
        entries.append((Prop.MAC_15_4_PANID, pack("S", dataset.pan_id)))
    if dataset.channel is not None:
        entries.append((Prop.PHY_CHAN, pack("C", dataset.channel)))
    if dataset.pskc is not None:
        entries.append((Prop.NET_PSKC, dataset.pskc))
    if dataset.security_policy is not None:
        policy = dataset.security_policy
        entries.append((DATASET_SECURITY_POLICY, _U16.pack(policy.rotation_time) + policy.flags))
    if dataset.channel_mask is not None and 0 in dataset.channel_mask:
        entries.append((Prop.PHY_CHAN_SUPPORTED, bytes(channels_from_channel_mask(dataset.channel_mask[0]))))
    return [(int(key), value) for key, value in entries]


def dataset_from_props(entries: list[tuple[int, bytes]]) -> Dataset:
    """THREAD_ACTIVE_DATASET entries as a Dataset; unknown keys are ignored as OpenThread does.

    Raises SpinelError for a malformed value.
    """
    fields: dict[str, Any] = {}
    for key, data in entries:
        try:
            _decode_entry(key, data, fields)
        except (MeshCoPError, ValueError, struct.error) as exc:
            raise SpinelError(f"dataset property {key:#x}: {exc}") from exc
    return Dataset(**fields)


def _decode_entry(key: int, data: bytes, fields: dict[str, Any]) -> None:
    if key == DATASET_ACTIVE_TIMESTAMP:
        fields["active_timestamp"] = Timestamp(unpack_value("X", data) & (1 << 48) - 1)
    elif key == DATASET_PENDING_TIMESTAMP:
        fields["pending_timestamp"] = Timestamp(unpack_value("X", data) & (1 << 48) - 1)
    elif key == DATASET_DELAY_TIMER:
        if len(data) < 4:
            raise SpinelError("delay timer needs 4 bytes")
        fields["delay_timer"] = _U32.unpack_from(data)[0]
    elif key == Prop.NET_NETWORK_KEY:
        fields["network_key"] = _exact(data, 16, "network key")
    elif key == Prop.NET_NETWORK_NAME:
        fields["network_name"] = unpack_value("U", data)
    elif key == Prop.NET_XPANID:
        fields["extended_pan_id"] = _exact(data, 8, "extended PAN ID")
    elif key == Prop.IPV6_ML_PREFIX:
        address, length = unpack_value("6C", data)
        fields["mesh_local_prefix"] = ipaddress.IPv6Network(f"{address}/{length}")
    elif key == Prop.MAC_15_4_PANID:
        fields["pan_id"] = unpack_value("S", data)
    elif key == Prop.PHY_CHAN:
        fields["channel"] = unpack_value("C", data)
    elif key == Prop.NET_PSKC:
        fields["pskc"] = _exact(data, 16, "PSKc")
    elif key == DATASET_SECURITY_POLICY:
        if len(data) < 3:
            raise SpinelError("security policy needs a rotation time and a flags byte")
        fields["security_policy"] = SecurityPolicy(_U16.unpack_from(data)[0], bytes(data[2:]))
    elif key == Prop.PHY_CHAN_SUPPORTED:
        fields["channel_mask"] = {0: channel_mask_from_channels(list(data))}


def _exact(data: bytes, size: int, what: str) -> bytes:
    if len(data) != size:
        raise SpinelError(f"{what} must be {size} bytes, got {len(data)}")
    return bytes(data)
