"""The NCP's IPv6 addresses and groups, the nodes' addresses, and what the mesh namespace should hold.

A border router host mirrors these tables onto its interface and routes by them, so they are kept as
OpenThread lists them: IPV6_ADDRESS_TABLE newest first (link-local, host-added, ML-EID, RLOC/ALOC,
SLAAC), the multicast table in OpenThread's order, SLAAC addresses that outlive the stack going down,
and none in a prefix where the host added its own.  :class:`MeshConfig` is the same knowledge turned
around for the I/O glue: the addresses and routes of the simulated nodes' side.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ncp.spinel import NetRole, Prop, Status, unpack
from ncp.spinel.tables import AddressEntry

from .netdata import NET_FLAG_ON_MESH

if TYPE_CHECKING:
    from .core import SimNcp
    from .topology import Node

__all__ = ["ALL_NODES", "ALL_ROUTERS", "INFINITE", "LOCATOR_IID", "Addresses", "MeshConfig"]

ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_ROUTERS = ipaddress.IPv6Address("ff02::2")
INFINITE = 0xFFFFFFFF
ALOC16_LEADER = 0xFC00
LOCATOR_IID = b"\x00\x00\x00\xff\xfe\x00"  # RLOC and ALOC: mesh-local prefix, IID 0:ff:fe00:xxxx


@dataclass(frozen=True)
class MeshConfig:
    """What the mesh side (the TUN in the namespace) should hold right now."""

    addresses: frozenset[ipaddress.IPv6Address] = frozenset()
    on_link: frozenset[ipaddress.IPv6Network] = frozenset()
    routes: frozenset[ipaddress.IPv6Network] = frozenset()
    # (RLOC, ML-EID): what is sent to a node's RLOC reaches the programs bound to its ML-EID, as every
    # socket of a Thread node answers on its RLOC too
    aliases: frozenset[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]] = frozenset()
    # the source for off-mesh destinations: a node's OMR address, never a mesh-local one (as OpenThread
    # picks it; the NCP drops off-mesh packets from a mesh-local source)
    off_mesh_source: ipaddress.IPv6Address | None = None


class Addresses:
    """Runtime state: what the host added, SLAAC addresses, and when each address was first listed."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        self.host_groups: dict[ipaddress.IPv6Address, None] = {}  # multicast groups the host subscribed
        self.host_addresses: dict[ipaddress.IPv6Address, AddressEntry] = {}  # unicast ones it added
        self._address_seq: dict[ipaddress.IPv6Address, int] = {}
        self._seq = 0
        self._slaac: dict[ipaddress.IPv6Network, ipaddress.IPv6Address] = {}  # kept when the stack goes down

    # --- the NCP's own addresses ---------------------------------------------------------------------------

    @property
    def link_local(self) -> ipaddress.IPv6Address:
        ext_addr = self.ncp.flash.ext_addr
        iid = bytes((ext_addr[0] ^ 0x02,)) + ext_addr[1:]
        return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid)

    def _ml_prefix_bytes(self) -> bytes | None:
        prefix = self.ncp.dataset.mesh_local_prefix
        return prefix.network_address.packed[:8] if prefix is not None else None

    @property
    def ml_eid(self) -> ipaddress.IPv6Address | None:
        ml = self._ml_prefix_bytes()
        if ml is None:
            return None
        iid = hashlib.sha256(b"ml-eid" + self.ncp.flash.ext_addr + ml).digest()[:8]
        return ipaddress.IPv6Address(ml + iid)

    def rloc_addr(self, rloc16: int) -> ipaddress.IPv6Address | None:
        ml = self._ml_prefix_bytes()
        if ml is None:
            return None
        return ipaddress.IPv6Address(ml + LOCATOR_IID + rloc16.to_bytes(2, "big"))

    def is_locator(self, addr: ipaddress.IPv6Address) -> bool:
        """An RLOC or ALOC (mesh-local prefix, IID 0:ff:fe00:xxxx)."""
        ml = self._ml_prefix_bytes()
        return ml is not None and addr.packed[:14] == ml + LOCATOR_IID

    def in_mesh_local(self, addr: ipaddress.IPv6Address) -> bool:
        ml = self._ml_prefix_bytes()
        return ml is not None and addr.packed[:8] == ml

    def is_on_mesh(self, addr: ipaddress.IPv6Address) -> bool:
        """In the mesh-local prefix or an on-mesh prefix of the leader's network data."""
        return self.in_mesh_local(addr) or any(
            p.flags & NET_FLAG_ON_MESH and addr in p.prefix for p in self.ncp.netdata.leader_prefixes()
        )

    def slaac_prefixes(self) -> list[ipaddress.IPv6Network]:
        if not self.ncp.stack.attached:
            return []
        return list(dict.fromkeys(p.prefix for p in self.ncp.netdata.leader_prefixes() if p.slaac))

    def update_slaac(self) -> None:
        """SLAAC follows the network data while attached; going down keeps the addresses, as in OpenThread."""
        if not self.ncp.stack.attached:
            return
        salt = self.ncp.flash.ext_addr
        self._slaac = {
            p: ipaddress.IPv6Address(
                p.network_address.packed[:8] + hashlib.sha256(salt + p.network_address.packed).digest()[:8]
            )
            for p in self.slaac_prefixes()
        }

    def own_slaac(self) -> list[ipaddress.IPv6Address]:
        """SLAAC addresses, except in prefixes where the host added an address (OpenThread skips those)."""
        return [a for p, a in self._slaac.items() if not any(h in p for h in self.host_addresses)]

    def entries(self) -> list[AddressEntry]:
        """IPV6_ADDRESS_TABLE: newest address first, as OpenThread pushes each onto its list."""
        stack = self.ncp.stack
        ml_preferred = INFINITE if self.ncp.generation.ml_preferred else 0
        found: list[AddressEntry] = []
        if stack.if_up:
            found.append(AddressEntry(self.link_local, prefix_length=64, preferred_lifetime=INFINITE,
                                      valid_lifetime=INFINITE))
        found += self.host_addresses.values()
        if stack.if_up and stack.stack_up and self.ml_eid is not None:
            found.append(AddressEntry(self.ml_eid, prefix_length=64, preferred_lifetime=ml_preferred,
                                      valid_lifetime=INFINITE))
        locators: tuple[int, ...] = ()
        if stack.attached:
            locators = (stack.rloc16, ALOC16_LEADER) if stack.role == NetRole.LEADER else (stack.rloc16,)
        elif stack.restored_rloc16 is not None:
            locators = (stack.restored_rloc16,)  # no ALOC: it is no leader yet
        if stack.if_up and stack.stack_up:
            for rloc16 in locators:
                locator = self.rloc_addr(rloc16)
                if locator is not None:
                    found.append(AddressEntry(locator, prefix_length=64, preferred_lifetime=ml_preferred,
                                              valid_lifetime=INFINITE))
        found += [AddressEntry(a, prefix_length=64, preferred_lifetime=INFINITE, valid_lifetime=INFINITE)
                  for a in self.own_slaac()]
        seq = {}
        for entry in found:
            if entry.address not in self._address_seq:
                self._seq += 1
                self._address_seq[entry.address] = self._seq
            seq[entry.address] = self._address_seq[entry.address]
        self._address_seq = seq
        return sorted(found, key=lambda e: -seq[e.address])

    def own(self) -> list[ipaddress.IPv6Address]:
        return [e.address for e in self.entries()]

    def multicast_groups(self) -> list[ipaddress.IPv6Address]:
        """IPV6_MULTICAST_ADDRESS_TABLE in the order OpenThread lists it."""
        stack = self.ncp.stack
        if not stack.if_up:
            return []
        groups = []
        ml = self._ml_prefix_bytes()
        if stack.stack_up and ml is not None:
            # realm-local all-Thread-nodes groups: ff33/ff32:40:<mesh-local prefix>::1
            groups += [ipaddress.IPv6Address(b"\xff" + scope + b"\x00\x40" + ml + b"\x00\x00\x00\x01")
                       for scope in (b"\x33", b"\x32")]
        groups += reversed(self.host_groups)
        if stack.attached:
            groups += [ALL_ROUTERS, ipaddress.IPv6Address("ff03::2")]
        groups += [ALL_NODES, ipaddress.IPv6Address("ff03::1"), ipaddress.IPv6Address("ff03::fc")]
        return groups

    # --- INSERT / REMOVE by the host ------------------------------------------------------------------------

    def change_group(self, prop: int, value: bytes, insert: bool) -> Status:
        """The host subscribing the interface to a group or leaving it; twice, or unknown, is no error."""
        (group,) = unpack("6", value)
        if not group.is_multicast:
            return Status.INVALID_ARGUMENT
        if insert:
            self.host_groups[group] = None
        else:
            self.host_groups.pop(group, None)
        self.ncp.out.push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        return Status.OK

    def change_address(self, prop: int, value: bytes, insert: bool) -> Status:
        """An address the host adds (``6CLL``) or removes (``6``); removing one it never added is no error."""
        if insert:
            address, plen, preferred, valid = unpack("6CLL", value)
            if address.is_multicast or plen > 128:
                return Status.INVALID_ARGUMENT
            self.host_addresses[address] = AddressEntry(address, prefix_length=plen,
                                                        preferred_lifetime=INFINITE if preferred else 0,
                                                        valid_lifetime=INFINITE if valid else 0)
        else:
            (address,) = unpack("6", value)
            self.host_addresses.pop(address, None)
        self.ncp.out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        return Status.OK

    # --- the nodes' side ------------------------------------------------------------------------------------

    def node_addresses(self, node: Node) -> list[ipaddress.IPv6Address]:
        """The node's endpoint addresses (ML-EID, SLAAC), those an MTD child registers with its parent."""
        if not node.attached:
            return []
        addrs = []
        ml = self._ml_prefix_bytes()
        if ml is not None:
            addrs.append(ipaddress.IPv6Address(ml + node.iid(ml)))
        for prefix in self.slaac_prefixes():
            raw = prefix.network_address.packed[:8]
            addrs.append(ipaddress.IPv6Address(raw + node.iid(raw)))
        return addrs

    def node_rloc(self, node: Node) -> ipaddress.IPv6Address | None:
        """The node's RLOC address, which every Thread node answers on."""
        return self.rloc_addr(self.ncp.topology.node_rloc16(node)) if node.attached else None

    def mesh_config(self) -> MeshConfig:
        """Addresses of the attached nodes, their RLOCs, and the routes that lead to the border router."""
        netdata = self.ncp.netdata
        attached = self.ncp.topology.attached_nodes()
        addrs = frozenset(a for n in attached for a in self.node_addresses(n))
        aliases = frozenset(
            (rloc, eids[0]) for n in attached if (rloc := self.node_rloc(n)) and (eids := self.node_addresses(n))
        )
        ml = self.ncp.dataset.mesh_local_prefix
        if not self.ncp.stack.attached or ml is None:
            return MeshConfig(addrs, aliases=aliases)
        on_link = {ml, *(p.prefix for p in netdata.leader_prefixes())}
        routes = {ipaddress.IPv6Network("::/0"), *(r.prefix for r in netdata.leader_routes())}
        if self.ncp.radio is not None:  # several NCPs on the mesh: each route leads to the one that carries it
            routes = {net for net in routes if self.ncp.radio.carries(net)}
        source = next((a for n in attached for a in self.node_addresses(n) if not self.in_mesh_local(a)), None)
        return MeshConfig(addrs, frozenset(on_link), frozenset(routes - on_link), aliases, source)
