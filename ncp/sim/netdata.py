"""Thread network data as the simulated leader holds it: on-mesh prefixes and external routes.

``encode_leader_network_data`` produces the Thread network data TLVs (Prefix TLV with Has Route,
Border Router and 6LoWPAN ID sub-TLVs) the way a leader serves them in THREAD_LEADER_NETWORK_DATA.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = [
    "NET_FLAG_DEFAULT_ROUTE",
    "NET_FLAG_ON_MESH",
    "NET_FLAG_PREFERRED",
    "NET_FLAG_SLAAC",
    "ROUTE_FLAG_NAT64",
    "ExternalRoute",
    "OnMeshPrefix",
    "encode_leader_network_data",
]

from ..spinel.props import (
    NET_FLAG_DEFAULT_ROUTE,
    NET_FLAG_ON_MESH,
    NET_FLAG_PREFERRED,
    NET_FLAG_SLAAC,
    ROUTE_FLAG_NAT64,
)

_TLV_PREFIX = 1
_SUB_HAS_ROUTE = 0
_SUB_BORDER_ROUTER = 2
_SUB_6LOWPAN_ID = 3


@dataclass(frozen=True, slots=True)
class OnMeshPrefix:
    prefix: ipaddress.IPv6Network
    stable: bool
    flags: int
    flags_ext: int = 0

    @property
    def slaac(self) -> bool:
        return bool(self.flags & NET_FLAG_SLAAC) and self.prefix.prefixlen == 64


@dataclass(frozen=True, slots=True)
class ExternalRoute:
    prefix: ipaddress.IPv6Network
    stable: bool
    flags: int


def _tlv(typ: int, stable: bool, value: bytes) -> bytes:
    return bytes(((typ << 1) | int(stable), len(value))) + value


def encode_leader_network_data(prefixes: list[OnMeshPrefix], routes: list[ExternalRoute], rloc16: int) -> bytes:
    """Network data TLVs for the given entries, all registered by ``rloc16``."""
    by_prefix: dict[ipaddress.IPv6Network, list[bytes]] = {}
    stable_of: dict[ipaddress.IPv6Network, bool] = {}
    context_id = 1
    for r in routes:
        sub = _tlv(_SUB_HAS_ROUTE, r.stable, rloc16.to_bytes(2, "big") + bytes((r.flags,)))
        by_prefix.setdefault(r.prefix, []).append(sub)
        stable_of[r.prefix] = stable_of.get(r.prefix, False) or r.stable
    for p in prefixes:
        subs = by_prefix.setdefault(p.prefix, [])
        br = rloc16.to_bytes(2, "big") + bytes((p.flags, p.flags_ext))
        subs.append(_tlv(_SUB_BORDER_ROUTER, p.stable, br))
        # Context for header compression: compress flag + context id, context length.
        subs.append(_tlv(_SUB_6LOWPAN_ID, p.stable, bytes((0x10 | context_id, p.prefix.prefixlen))))
        context_id = min(context_id + 1, 15)
        stable_of[p.prefix] = stable_of.get(p.prefix, False) or p.stable
    out = bytearray()
    for prefix, subs in by_prefix.items():
        nbytes = (prefix.prefixlen + 7) // 8
        value = bytes((0, prefix.prefixlen)) + prefix.network_address.packed[:nbytes] + b"".join(subs)
        if len(value) <= 0xFF:
            out += _tlv(_TLV_PREFIX, stable_of[prefix], value)
    return bytes(out)
