"""Thread network data entries: one model for the host that publishes them (gatewayd/thread/netdata.py)
and the simulated NCP that holds them (ncp/sim/netdata.py).

An on-mesh prefix (a Border Router sub-TLV) and an external route (a Has Route sub-TLV) with their flags
as Spinel carries them (``NET_FLAG_*``, ``ROUTE_FLAG_*`` in :mod:`ncp.spinel.props`). ``rloc16`` is the
publishing device's; OpenThread keeps ``UNREGISTERED`` on local entries until the leader has them.
Equality and order cover every field, so sets of wanted entries diff cleanly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .spinel.props import NET_FLAG_SLAAC

UNREGISTERED = 0xFFFE
THREAD_ENTERPRISE_NUMBER = 44970  # a Service TLV with the T bit set leaves it out

__all__ = ["THREAD_ENTERPRISE_NUMBER", "UNREGISTERED", "Context", "ExternalRoute", "NetworkData",
           "NetworkDataError", "OnMeshPrefix", "Server", "Service", "parse_network_data"]


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


# ---- the leader's network data as Thread TLVs (THREAD_LEADER_NETWORK_DATA, Thread 1.3 section 5.18) ------------

_TLV_HAS_ROUTE, _TLV_PREFIX, _TLV_BORDER_ROUTER, _TLV_6LOWPAN_ID = 0, 1, 2, 3
_TLV_COMMISSIONING_DATA, _TLV_SERVICE, _TLV_SERVER = 4, 5, 6


class NetworkDataError(ValueError):
    """Network data TLVs that do not parse (a length past the end, a prefix longer than 128 bits...)."""


@dataclass(frozen=True, slots=True)
class Context:
    """A 6LoWPAN ID sub-TLV: the context a prefix is compressed with."""

    prefix: ipaddress.IPv6Network
    context_id: int
    compress: bool
    stable: bool = True


@dataclass(frozen=True, slots=True)
class Server:
    rloc16: int
    data: bytes = b""
    stable: bool = True


@dataclass(frozen=True, slots=True)
class Service:
    """A Service TLV (SRP server, DNS, backbone router...) and the servers offering it."""

    service_id: int
    enterprise_number: int
    data: bytes
    servers: tuple[Server, ...] = ()
    stable: bool = True


@dataclass(frozen=True, slots=True)
class NetworkData:
    """Everything one network data blob holds; unknown TLVs are skipped, as Thread requires."""

    prefixes: tuple[OnMeshPrefix, ...] = ()
    routes: tuple[ExternalRoute, ...] = ()
    contexts: tuple[Context, ...] = ()
    services: tuple[Service, ...] = ()
    commissioning: bytes | None = field(default=None)


def _tlvs(data: bytes, what: str) -> list[tuple[int, bool, bytes]]:
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise NetworkDataError(f"{what}: TLV header cut off at byte {i}")
        typ, length = data[i] >> 1, data[i + 1]
        if i + 2 + length > len(data):
            raise NetworkDataError(f"{what}: TLV type {typ} of {length} bytes runs past the end")
        out.append((typ, bool(data[i] & 1), data[i + 2:i + 2 + length]))
        i += 2 + length
    return out


def _entries(value: bytes, size: int, what: str) -> list[bytes]:
    if len(value) % size:
        raise NetworkDataError(f"{what} sub-TLV of {len(value)} bytes is not a whole number of {size}-byte entries")
    return [value[i:i + size] for i in range(0, len(value), size)]


def parse_network_data(data: bytes) -> NetworkData:
    """Decode Thread network data TLVs (what THREAD_LEADER_NETWORK_DATA and THREAD_NETWORK_DATA carry)."""
    prefixes: list[OnMeshPrefix] = []
    routes: list[ExternalRoute] = []
    contexts: list[Context] = []
    services: list[Service] = []
    commissioning = None
    for typ, stable, value in _tlvs(bytes(data), "network data"):
        if typ == _TLV_PREFIX:
            if len(value) < 2 or value[1] > 128:
                raise NetworkDataError("Prefix TLV without a valid prefix length")
            plen = value[1]
            nbytes = (plen + 7) // 8
            if len(value) < 2 + nbytes:
                raise NetworkDataError("Prefix TLV shorter than its prefix")
            raw = value[2:2 + nbytes] + bytes(16 - nbytes)
            prefix = ipaddress.IPv6Network((raw, plen), strict=False)
            for sub, sub_stable, sub_value in _tlvs(value[2 + nbytes:], f"prefix {prefix}"):
                if sub == _TLV_HAS_ROUTE:
                    routes += [ExternalRoute(prefix, e[2], sub_stable, int.from_bytes(e[:2], "big"))
                               for e in _entries(sub_value, 3, "Has Route")]
                elif sub == _TLV_BORDER_ROUTER:
                    prefixes += [OnMeshPrefix(prefix, e[2], sub_stable, e[3], int.from_bytes(e[:2], "big"))
                                 for e in _entries(sub_value, 4, "Border Router")]
                elif sub == _TLV_6LOWPAN_ID:
                    if len(sub_value) < 2:
                        raise NetworkDataError("6LoWPAN ID sub-TLV shorter than 2 bytes")
                    contexts.append(Context(prefix, sub_value[0] & 0x0F, bool(sub_value[0] & 0x10), sub_stable))
        elif typ == _TLV_SERVICE:
            services.append(_service(value, stable))
        elif typ == _TLV_COMMISSIONING_DATA:
            commissioning = value
    return NetworkData(tuple(prefixes), tuple(routes), tuple(contexts), tuple(services), commissioning)


def _service(value: bytes, stable: bool) -> Service:
    if not value:
        raise NetworkDataError("empty Service TLV")
    thread_enterprise, service_id, i = bool(value[0] & 0x80), value[0] & 0x0F, 1
    enterprise = THREAD_ENTERPRISE_NUMBER
    if not thread_enterprise:
        if len(value) < 5:
            raise NetworkDataError("Service TLV shorter than its enterprise number")
        enterprise, i = int.from_bytes(value[1:5], "big"), 5
    if i >= len(value) or i + 1 + value[i] > len(value):
        raise NetworkDataError("Service TLV shorter than its service data")
    data, i = value[i + 1:i + 1 + value[i]], i + 1 + value[i]
    servers = []
    for sub, sub_stable, sub_value in _tlvs(value[i:], f"service {service_id}"):
        if sub == _TLV_SERVER:
            if len(sub_value) < 2:
                raise NetworkDataError("Server sub-TLV shorter than its RLOC16")
            servers.append(Server(int.from_bytes(sub_value[:2], "big"), sub_value[2:], sub_stable))
    return Service(service_id, enterprise, data, tuple(servers), stable)
