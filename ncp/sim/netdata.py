"""Thread network data as the simulated NCP holds it: on-mesh prefixes and external routes.

``encode_network_data`` produces the Thread network data TLVs the way OpenThread serves them: the
leader's (THREAD_LEADER_NETWORK_DATA) start with a Commissioning Data TLV and give each on-mesh prefix a
6LoWPAN context; the local copy (THREAD_NETWORK_DATA) has neither.  Prefix TLVs keep the order their
prefixes were first added in, as OpenThread appends them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "NET_FLAG_DEFAULT_ROUTE",
    "NET_FLAG_ON_MESH",
    "NET_FLAG_PREFERRED",
    "NET_FLAG_SLAAC",
    "ROUTE_FLAG_NAT64",
    "UNREGISTERED",
    "ExternalRoute",
    "OnMeshPrefix",
    "encode_network_data",
]

from ..spinel.props import (
    NET_FLAG_DEFAULT_ROUTE,
    NET_FLAG_ON_MESH,
    NET_FLAG_PREFERRED,
    NET_FLAG_SLAAC,
    ROUTE_FLAG_NAT64,
)

# OpenThread's local entries carry this RLOC16 until they are registered with the leader.
UNREGISTERED = 0xFFFE

_TLV_PREFIX = 1
_TLV_COMMISSIONING_DATA = 4
_SUB_HAS_ROUTE = 0
_SUB_BORDER_ROUTER = 2
_SUB_6LOWPAN_ID = 3
_MESHCOP_COMMISSIONER_SESSION_ID = 11


@dataclass(frozen=True, slots=True)
class OnMeshPrefix:
    prefix: ipaddress.IPv6Network
    stable: bool
    flags: int
    flags_ext: int = 0
    rloc16: int = UNREGISTERED

    @property
    def slaac(self) -> bool:
        return bool(self.flags & NET_FLAG_SLAAC) and self.prefix.prefixlen == 64


@dataclass(frozen=True, slots=True)
class ExternalRoute:
    prefix: ipaddress.IPv6Network
    stable: bool
    flags: int
    rloc16: int = UNREGISTERED


def _tlv(typ: int, stable: bool, value: bytes) -> bytes:
    return bytes(((typ << 1) | int(stable), len(value))) + value


def encode_network_data(
    entries: Iterable[OnMeshPrefix | ExternalRoute], *, leader_session_id: int | None = None
) -> bytes:
    """Network data TLVs for ``entries``; a leader's (``leader_session_id`` given) as described above."""
    subs: dict[ipaddress.IPv6Network, list[tuple[int, bytes]]] = {}
    stable_of: dict[ipaddress.IPv6Network, bool] = {}
    context_id = 1
    for e in entries:
        rloc = e.rloc16.to_bytes(2, "big")
        group = subs.setdefault(e.prefix, [])
        if isinstance(e, ExternalRoute):
            group.append((_SUB_HAS_ROUTE, _tlv(_SUB_HAS_ROUTE, e.stable, rloc + bytes((e.flags,)))))
        else:
            group.append((_SUB_BORDER_ROUTER, _tlv(_SUB_BORDER_ROUTER, e.stable, rloc + bytes((e.flags, e.flags_ext)))))
            if leader_session_id is not None:
                # compress flag + context id, context length
                context = bytes((0x10 | context_id, e.prefix.prefixlen))
                group.append((_SUB_6LOWPAN_ID, _tlv(_SUB_6LOWPAN_ID, e.stable, context)))
                context_id = min(context_id + 1, 15)
        stable_of[e.prefix] = stable_of.get(e.prefix, False) or e.stable
    out = bytearray()
    if leader_session_id is not None:
        session = bytes((_MESHCOP_COMMISSIONER_SESSION_ID, 2)) + leader_session_id.to_bytes(2, "big")
        out += _tlv(_TLV_COMMISSIONING_DATA, False, session)
    for prefix, group in subs.items():
        nbytes = (prefix.prefixlen + 7) // 8
        body = b"".join(tlv for _typ, tlv in sorted(group, key=lambda item: item[0]))
        value = bytes((0, prefix.prefixlen)) + prefix.network_address.packed[:nbytes] + body
        if len(value) <= 0xFF:
            out += _tlv(_TLV_PREFIX, stable_of[prefix], value)
    return bytes(out)
