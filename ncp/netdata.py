"""Thread network data entries: one model for the host that publishes them (gatewayd/thread/netdata.py)
and the simulated NCP that holds them (ncp/sim/netdata.py).

An on-mesh prefix (a Border Router sub-TLV) and an external route (a Has Route sub-TLV) with their flags
as Spinel carries them (``NET_FLAG_*``, ``ROUTE_FLAG_*`` in :mod:`ncp.spinel.props`). ``rloc16`` is the
publishing device's; OpenThread keeps ``UNREGISTERED`` on local entries until the leader has them.
Equality and order cover every field, so sets of wanted entries diff cleanly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from .spinel.props import NET_FLAG_SLAAC

UNREGISTERED = 0xFFFE

__all__ = ["UNREGISTERED", "ExternalRoute", "OnMeshPrefix"]


@dataclass(frozen=True, order=True, slots=True)
class OnMeshPrefix:
    prefix: ipaddress.IPv6Network
    flags: int
    stable: bool = True
    flags_ext: int = 0
    rloc16: int = UNREGISTERED

    @property
    def slaac(self) -> bool:
        return bool(self.flags & NET_FLAG_SLAAC) and self.prefix.prefixlen == 64

    def element(self) -> tuple[Any, ...]:
        """The THREAD_ON_MESH_NETS element a host INSERTs or REMOVEs: prefix, length, stable, flags,
        is_local, rloc16 (the NCP fills it in), flags_ext."""
        return (self.prefix.network_address, self.prefix.prefixlen, self.stable, self.flags, True, 0,
                self.flags_ext)


@dataclass(frozen=True, order=True, slots=True)
class ExternalRoute:
    prefix: ipaddress.IPv6Network
    flags: int = 0
    stable: bool = True
    rloc16: int = UNREGISTERED

    def element(self) -> tuple[Any, ...]:
        """The THREAD_OFF_MESH_ROUTES element: prefix, length, stable, flags, is_local,
        next_hop_is_this_device, rloc16 (the NCP fills it in)."""
        return (self.prefix.network_address, self.prefix.prefixlen, self.stable, self.flags, True, True, 0)
