"""The simulated Thread devices around the NCP, and the child, neighbor and router tables that list them.

A host learns who is in the mesh from these tables and from how changes to them are announced, so both
follow ot-ncp-ftd: children are announced with VALUE_INSERTED / VALUE_REMOVED of one bare child entry,
never with a whole-table VALUE_IS; router neighbors with VALUE_INSERTED / REMOVED of
THREAD_NEIGHBOR_TABLE, whose entry keeps its struct length (``EncodeNeighborInfo`` opens a struct;
``EncodeChildInfo`` does not).  FTD children (the kind ``ot-cli-ftd`` is by default) register no
addresses, so THREAD_CHILD_TABLE_ADDRESSES lists them with an empty list; after the router selection
jitter they become routers: out of the child table, into the router and neighbor tables, with a router
RLOC16.  Children are kept in the flash, as OpenThread keeps its child info settings.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ncp.spinel import Command, Prop, pack_prop
from ncp.spinel.tables import ChildAddressesEntry, ChildEntry, NeighborEntry, RouterEntry

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = ["CHILD_TIMEOUT", "NODE_KINDS", "Node", "Topology"]

NODE_KINDS = ("ftd", "mtd")
CHILD_TIMEOUT = 240
NEXT_HOP_NONE = 63  # router table: no next hop (ourselves, or a router we hear directly)
# SPINEL_THREAD_MODE_* as LinkFlagsToFlagByte sets them (never SECURE_DATA_REQUEST)
MODE_FULL_NETWORK_DATA = 0x01
MODE_FULL_THREAD_DEV = 0x02
MODE_RX_ON_WHEN_IDLE = 0x08


@dataclass
class Node:
    """A simulated Thread device: an rx-on child of the simulated leader, an FTD one later a router."""

    name: str
    eui64: bytes
    kind: str = "ftd"
    child_id: int = 0
    link_quality: int = 3
    rssi: int = -45
    attached: bool = False
    router_id: int | None = None
    since: float = 0.0  # when it attached or became a router

    def __post_init__(self) -> None:
        if self.kind not in NODE_KINDS:
            raise ValueError(f"node kind must be one of {NODE_KINDS}")

    @property
    def is_router(self) -> bool:
        return self.router_id is not None

    @property
    def mode(self) -> int:
        """Spinel mode flags: rx-on, full network data, and full Thread device for an FTD."""
        ftd = MODE_FULL_THREAD_DEV if self.kind == "ftd" else 0
        return MODE_RX_ON_WHEN_IDLE | MODE_FULL_NETWORK_DATA | ftd

    def iid(self, salt: bytes) -> bytes:
        """Opaque, stable interface identifier for ``salt`` (a prefix), like RFC 7217."""
        return hashlib.sha256(b"gatewayd-sim" + self.eui64 + salt).digest()[:8]


class Topology:
    """The nodes outlive a power-on (they are devices, not NCP state); only their attachment is lost."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        self.nodes: dict[str, Node] = {}
        self._next_child_id = 1

    # --- nodes coming and going ---------------------------------------------------------------------------

    def add(self, name: str, eui64: bytes | None, now: float, kind: str = "ftd") -> Node:
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        if eui64 is None:
            eui64 = self.default_eui64(name)
        if len(eui64) != 8:
            raise ValueError("EUI-64 must be 8 bytes")
        node = Node(name, eui64, kind, child_id=self.ncp.flash.children.get(eui64) or self._free_child_id())
        self.nodes[name] = node
        self.schedule_attach(node, now)
        return node

    @staticmethod
    def default_eui64(name: str) -> bytes:
        """The EUI-64 of a node added without one: the same for the same name."""
        return hashlib.sha256(b"node" + name.encode()).digest()[:8]

    def remove(self, name: str, now: float) -> None:
        node = self.nodes.pop(name)
        self.ncp.timers.cancel(f"attach:{name}")
        self.ncp.timers.cancel(f"upgrade:{name}")
        self._store_child(node, False)
        if not node.attached:
            return
        if node.is_router:
            entry = pack_prop(Prop.THREAD_NEIGHBOR_TABLE, self._neighbor_entry(node), element=True)
            self.ncp.out.announce(Command.PROP_VALUE_REMOVED, Prop.THREAD_NEIGHBOR_TABLE, entry)
        else:
            entry = pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True)
            self.ncp.out.announce(Command.PROP_VALUE_REMOVED, Prop.THREAD_CHILD_TABLE, entry)
        node.attached = False
        node.router_id = None

    def detach_all(self) -> None:
        for node in self.nodes.values():
            node.attached = False
            node.router_id = None

    def _free_child_id(self) -> int:
        used = {n.child_id for n in self.nodes.values()} | set(self.ncp.flash.children.values())
        for _ in range(511):
            child_id, self._next_child_id = self._next_child_id, self._next_child_id % 511 + 1
            if child_id not in used:
                return child_id
        raise ValueError("no child id left")

    def schedule_attach(self, node: Node, now: float) -> None:
        if not self.ncp.stack.attached:
            return

        def attach(now: float) -> None:
            if self.ncp.stack.attached and self.nodes.get(node.name) is node:
                self.list_child(node, now, since=now)

        self.ncp.timers.after(now, self.ncp.config.attach_delay, f"attach:{node.name}", attach)

    def list_child(self, node: Node, now: float, since: float) -> None:
        """The node is (again) our child: announced, kept in the settings, a router later if it is an FTD."""
        node.attached, node.router_id, node.since = True, None, since
        entry = pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True)
        self.ncp.out.announce(Command.PROP_VALUE_INSERTED, Prop.THREAD_CHILD_TABLE, entry)
        self._store_child(node, True)
        delay = self.ncp.config.router_upgrade_delay
        if node.kind == "ftd" and delay >= 0 and math.isfinite(delay):
            self.ncp.timers.after(now, delay, f"upgrade:{node.name}", lambda now: self._upgrade(node, now))

    def _store_child(self, node: Node, child: bool) -> None:
        """Keep the child table in the settings, as OpenThread does for each child that attaches or goes."""
        children = self.ncp.flash.children
        if child:
            if children.get(node.eui64) == node.child_id:
                return
            children[node.eui64] = node.child_id
        elif children.pop(node.eui64, None) is None:
            return
        self.ncp.save()

    def _upgrade(self, node: Node, now: float) -> None:
        """An FTD child becomes a router: a router neighbor appears, then the child entry goes."""
        if (not self.ncp.stack.attached or self.nodes.get(node.name) is not node or not node.attached
                or node.is_router):
            return
        child = pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True)
        used = {self.ncp.stack.router_id} | {n.router_id for n in self.routers()}
        node.router_id = self.ncp.rng.choice([rid for rid in range(63) if rid not in used])
        node.since = now
        self._store_child(node, False)
        neighbor = pack_prop(Prop.THREAD_NEIGHBOR_TABLE, self._neighbor_entry(node), element=True)
        self.ncp.out.announce(Command.PROP_VALUE_INSERTED, Prop.THREAD_NEIGHBOR_TABLE, neighbor)
        self.ncp.out.announce(Command.PROP_VALUE_REMOVED, Prop.THREAD_CHILD_TABLE, child)

    # --- who is where ---------------------------------------------------------------------------------------

    def attached_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.attached]

    def children(self) -> list[Node]:
        return [n for n in self.attached_nodes() if not n.is_router]

    def routers(self) -> list[Node]:
        return [n for n in self.attached_nodes() if n.is_router]

    def node_rloc16(self, node: Node) -> int:
        if node.router_id is not None:
            return node.router_id << 10
        return self.ncp.stack.rloc16 | node.child_id

    # --- the tables -----------------------------------------------------------------------------------------

    def _age(self, node: Node, period: int) -> int:
        """Seconds since the node was last heard; it refreshes its link every ``period`` seconds."""
        return int(max(0.0, self.ncp.now - node.since)) % period

    def _child_entry(self, n: Node) -> ChildEntry:
        return ChildEntry(
            ext_address=n.eui64,
            rloc16=self.node_rloc16(n),
            timeout=CHILD_TIMEOUT,
            age=self._age(n, CHILD_TIMEOUT),
            network_data_version=self.ncp.netdata.version & 0xFF,
            link_quality_in=n.link_quality,
            average_rssi=n.rssi,
            mode=n.mode,
            last_rssi=n.rssi,
        )

    def _neighbor_entry(self, n: Node) -> NeighborEntry:
        if n.is_router:
            age, link_frames, mle_frames = self._age(n, 32), 1, 2
        else:
            age, link_frames, mle_frames = self._age(n, CHILD_TIMEOUT), 0, 1
        return NeighborEntry(
            ext_address=n.eui64,
            rloc16=self.node_rloc16(n),
            age=age,
            link_quality_in=n.link_quality,
            average_rssi=n.rssi,
            mode=n.mode,
            is_child=not n.is_router,
            link_frame_counter=link_frames,
            mle_frame_counter=mle_frames,
            last_rssi=n.rssi,
        )

    def child_table(self) -> list[ChildEntry]:
        return [self._child_entry(n) for n in self.children()]

    def child_addresses(self) -> list[ChildAddressesEntry]:
        """Only MTD children register their addresses; an FTD child is listed with none."""
        return [
            ChildAddressesEntry(
                ext_address=n.eui64,
                rloc16=self.node_rloc16(n),
                addresses=self.ncp.addresses.node_addresses(n) if n.kind == "mtd" else [],
            )
            for n in self.children()
        ]

    def neighbor_table(self) -> list[NeighborEntry]:
        return [self._neighbor_entry(n) for n in self.children() + self.routers()]

    def router_table(self) -> list[RouterEntry]:
        """Allocated router ids in order, this leader included; routers we hear directly have no next hop."""
        stack = self.ncp.stack
        if not stack.attached:
            return []
        rows = [RouterEntry(ext_address=self.ncp.flash.ext_addr, rloc16=stack.rloc16, router_id=stack.router_id,
                            next_hop=NEXT_HOP_NONE, path_cost=0, link_quality_in=0, link_quality_out=0, age=0,
                            link_established=False)]
        for n in self.routers():
            lq = n.link_quality
            rows.append(RouterEntry(ext_address=n.eui64, rloc16=self.node_rloc16(n), router_id=n.router_id,
                                    next_hop=NEXT_HOP_NONE, path_cost=0, link_quality_in=lq, link_quality_out=lq,
                                    age=self._age(n, 32), link_established=True))
        for peer in self.ncp.radio.partition_peers() if self.ncp.radio is not None else ():
            rows.append(RouterEntry(ext_address=peer.ext_addr, rloc16=peer.rloc16, router_id=peer.rloc16 >> 10,
                                    next_hop=NEXT_HOP_NONE, path_cost=0, link_quality_in=3, link_quality_out=3,
                                    age=0, link_established=True))
        return sorted(rows, key=lambda r: r.router_id)
