"""Spinel table rows as named records, one class per table property.

Every consumer reads ``entry.rloc16`` instead of re-learning positions.  Spinel structs (``t(...)``) are
length-prefixed so they can grow: a newer NCP's extra fields are ignored, and an older NCP's missing
trailing fields read as None as long as the fields every version sends (``REQUIRED``) are there.  The
IPv6 address table is why: spinel.h documents ``A(t(6CLLC))`` but OpenThread sends 25-byte entries
without the trailing flags byte.
"""

from __future__ import annotations

import ipaddress
from typing import Any, NamedTuple

from .errors import SpinelError

__all__ = [
    "AddressEntry",
    "ChildAddressesEntry",
    "ChildEntry",
    "NeighborEntry",
    "OffMeshRoute",
    "OnMeshNet",
    "RouterEntry",
    "record",
]


class AddressEntry(NamedTuple):
    """IPV6_ADDRESS_TABLE ``A(t(6CLLC))``; OpenThread sends lifetimes as 0 or 0xFFFFFFFF and no flags."""

    address: ipaddress.IPv6Address
    prefix_length: int
    preferred_lifetime: int | None = None
    valid_lifetime: int | None = None
    flags: int | None = None

    REQUIRED = 2

    @property
    def interface(self) -> ipaddress.IPv6Interface:
        return ipaddress.IPv6Interface(f"{self.address}/{self.prefix_length}")


class ChildEntry(NamedTuple):
    """THREAD_CHILD_TABLE ``A(t(ESLLCCcCc))``."""

    ext_address: bytes
    rloc16: int
    timeout: int | None = None
    age: int | None = None
    network_data_version: int | None = None
    link_quality_in: int | None = None
    average_rssi: int | None = None
    mode: int | None = None
    last_rssi: int | None = None

    REQUIRED = 2


class NeighborEntry(NamedTuple):
    """THREAD_NEIGHBOR_TABLE ``A(t(ESLCcCbLLc))``; routers are pushed as INSERTED/REMOVED, struct length kept."""

    ext_address: bytes
    rloc16: int
    age: int | None = None
    link_quality_in: int | None = None
    average_rssi: int | None = None
    mode: int | None = None
    is_child: bool | None = None
    link_frame_counter: int | None = None
    mle_frame_counter: int | None = None
    last_rssi: int | None = None

    REQUIRED = 2


class RouterEntry(NamedTuple):
    """THREAD_ROUTER_TABLE ``A(t(ESCCCCCCb))``; polled, never pushed."""

    ext_address: bytes
    rloc16: int
    router_id: int | None = None
    next_hop: int | None = None
    path_cost: int | None = None
    link_quality_in: int | None = None
    link_quality_out: int | None = None
    age: int | None = None
    link_established: bool | None = None

    REQUIRED = 2


class ChildAddressesEntry(NamedTuple):
    """THREAD_CHILD_TABLE_ADDRESSES ``A(t(ESA(6)))``: only addresses a child registered (MTD children)."""

    ext_address: bytes
    rloc16: int
    addresses: list[ipaddress.IPv6Address] | tuple[()] = ()

    REQUIRED = 2


class OnMeshNet(NamedTuple):
    """THREAD_ON_MESH_NETS ``A(t(6CbCbSC))``: leader's entries first, then this NCP's local ones."""

    prefix: ipaddress.IPv6Address
    prefix_length: int
    stable: bool
    flags: int
    is_local: bool | None = None
    rloc16: int | None = None
    flags_ext: int | None = None

    REQUIRED = 4

    @property
    def network(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(f"{self.prefix}/{self.prefix_length}", strict=False)


class OffMeshRoute(NamedTuple):
    """THREAD_OFF_MESH_ROUTES ``A(t(6CbCbbS))``."""

    prefix: ipaddress.IPv6Address
    prefix_length: int
    stable: bool
    flags: int
    is_local: bool | None = None
    next_hop_is_this_device: bool | None = None
    rloc16: int | None = None

    REQUIRED = 4

    @property
    def network(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(f"{self.prefix}/{self.prefix_length}", strict=False)


def record(cls: Any, fields: tuple[Any, ...], what: str) -> Any:
    """``fields`` (possibly shortened by an older NCP) as a ``cls`` record; SpinelError if too short."""
    if len(fields) < cls.REQUIRED:
        needed = ", ".join(cls._fields[: cls.REQUIRED])
        raise SpinelError(f"{what} entry has {len(fields)} fields, needs at least {cls.REQUIRED} ({needed})")
    return cls(*fields)
