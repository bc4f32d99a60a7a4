"""A radio shared by several simulated NCPs: one Thread mesh with several border routers on it.

Thread routers learn who leads the partition from MLE advertisements and see the other border routers'
entries in the leader's network data.  Simulated NCPs sharing a radio (``python -m ncp.sim --radio PORT``)
exchange that knowledge in one small datagram each, an :class:`Announcement`: who the sender is (extended
address, RLOC16, role, partition), which network it belongs to (extended PAN ID and a hash of the network
key, never the key: only NCPs with the same active dataset merge) and the network data entries it
registered.  Each NCP merges the entries of the routers of its partition into its leader's network data
(:meth:`NetworkData.set_peer <ncp.sim.netdata.NetworkData.set_peer>`, the path the ``border_router``
control command takes), so every NCP on the radio serves the host the same leader's data.

Roles as Thread settles them: an NCP whose stack comes up while a leader of its network is heard attaches
to that leader's partition as a router instead of forming its own; of two leaders of one network the one
with the lower partition ID (then extended address) gives way and joins the other (Thread merges
partitions towards the higher partition ID too).  A router that hears nothing from its leader for
``radio_timeout`` forms a partition of its own; Thread waits the Network ID Timeout (120 s) and an attach
attempt for that, so the simulator's few seconds are the same event, only sooner.  A peer silent for that
long also leaves the merged network data, as a router that dies leaves it in Thread once the leader
notices (the leader ages out routers after the same kind of timeout).

All routers of the simulated mesh are one hop apart, so path costs tie; an off-mesh route published by
several routers is carried by the one with the highest preference, then the leader, then the lowest
RLOC16 (:meth:`SharedRadio.carries`): the mesh namespace routes that prefix to that NCP's TUN.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..netdata import ExternalRoute, NetworkDataError, OnMeshPrefix, parse_network_data
from ..spinel import NetRole
from .netdata import encode_network_data

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = ["HEADER_LEN", "MAGIC", "VERSION", "Announcement", "RadioError", "SharedRadio", "decode_announcement",
           "encode_announcement", "key_hash"]

MAGIC = b"GWSR"
VERSION = 1
# magic, version, extended address, RLOC16, role, partition ID, extended PAN ID, network key hash
HEADER_LEN = 4 + 1 + 8 + 2 + 1 + 4 + 8 + 8


class RadioError(ValueError):
    """A datagram that is not an announcement of this version."""


@dataclass(frozen=True)
class Announcement:
    """What one NCP on the shared radio tells the others; entries carry the sender's RLOC16."""

    ext_addr: bytes
    rloc16: int
    role: NetRole
    partition_id: int
    xpanid: bytes
    key_hash: bytes
    prefixes: tuple[OnMeshPrefix, ...] = ()
    routes: tuple[ExternalRoute, ...] = ()

    @property
    def network(self) -> tuple[bytes, bytes]:
        return self.xpanid, self.key_hash

    @property
    def attached(self) -> bool:
        return self.role in (NetRole.ROUTER, NetRole.LEADER)


def key_hash(network_key: bytes) -> bytes:
    """Eight bytes that tell whether two NCPs hold the same network key, without revealing it."""
    return hashlib.sha256(b"gatewayd-sim-radio" + network_key).digest()[:8]


def encode_announcement(a: Announcement) -> bytes:
    """Header, then the entries as Thread network data TLVs (stamped with ``a.rloc16``)."""
    if len(a.ext_addr) != 8 or len(a.xpanid) != 8 or len(a.key_hash) != 8:
        raise RadioError("extended address, extended PAN ID and key hash are 8 bytes each")
    entries = [*(OnMeshPrefix(p.prefix, p.flags, p.stable, p.flags_ext, a.rloc16) for p in a.prefixes),
               *(ExternalRoute(r.prefix, r.flags, r.stable, a.rloc16) for r in a.routes)]
    header = (MAGIC + bytes((VERSION,)) + a.ext_addr + a.rloc16.to_bytes(2, "big") + bytes((int(a.role),))
              + a.partition_id.to_bytes(4, "big") + a.xpanid + a.key_hash)
    return header + encode_network_data(entries)


def decode_announcement(data: bytes) -> Announcement:
    """The inverse of :func:`encode_announcement`; entries sorted, so equal contents compare equal."""
    data = bytes(data)
    if len(data) < HEADER_LEN or data[:4] != MAGIC:
        raise RadioError("not a shared-radio announcement")
    if data[4] != VERSION:
        raise RadioError(f"announcement version {data[4]}, expected {VERSION}")
    ext_addr, rloc16, role = data[5:13], int.from_bytes(data[13:15], "big"), data[15]
    try:
        net_role = NetRole(role)
    except ValueError:
        raise RadioError(f"unknown role {role}") from None
    try:
        netdata = parse_network_data(data[HEADER_LEN:])
    except NetworkDataError as exc:
        raise RadioError(f"bad network data: {exc}") from None
    return Announcement(
        ext_addr=ext_addr,
        rloc16=rloc16,
        role=net_role,
        partition_id=int.from_bytes(data[16:20], "big"),
        xpanid=data[20:28],
        key_hash=data[28:36],
        prefixes=tuple(sorted(OnMeshPrefix(p.prefix, p.flags, p.stable, p.flags_ext, rloc16)
                              for p in netdata.prefixes)),
        routes=tuple(sorted(ExternalRoute(r.prefix, r.flags, r.stable, rloc16) for r in netdata.routes)),
    )


def route_preference(flags: int) -> int:
    """The 2-bit preference of a route's flags (RFC 4191): high 1, medium 0, low -1 (reserved: medium)."""
    return {1: 1, 3: -1}.get((flags >> 6) & 0x03, 0)


@dataclass
class Peer:
    announcement: Announcement
    heard: float


@dataclass
class SharedRadio:
    """Runtime state: the NCPs heard lately and whose entries went into our leader's network data."""

    ncp: SimNcp
    peers: dict[bytes, Peer] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: {"rx": 0, "tx": 0, "rx_bad": 0, "rx_other_network": 0})
    _merged: set[int] = field(default_factory=set)
    _last: Announcement | None = None
    _due: bool = True

    # --- time ---------------------------------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        return self.ncp.config.radio_timeout

    def start(self, now: float) -> None:
        self._due = True
        self.ncp.timers.after(now, self.timeout / 3, "radio", self._tick)

    def _tick(self, now: float) -> None:
        """Announce again (so peers keep us), and forget peers silent for ``radio_timeout``."""
        self._due = True
        gone = [ext for ext, peer in self.peers.items() if now - peer.heard > self.timeout]
        for ext in gone:
            del self.peers[ext]
        if gone:
            self.reconcile(now)
        self.ncp.timers.after(now, self.timeout / 3, "radio", self._tick)

    # --- what we say ----------------------------------------------------------------------------------------

    def network(self) -> tuple[bytes, bytes] | None:
        dataset = self.ncp.dataset
        if not self.ncp.flash.committed or dataset.extended_pan_id is None or dataset.network_key is None:
            return None
        return dataset.extended_pan_id, key_hash(dataset.network_key)

    def announcement(self) -> Announcement | None:
        """None while our radio is off (stack down or no network)."""
        stack, netdata = self.ncp.stack, self.ncp.netdata
        network = self.network()
        if not stack.stack_up or network is None:
            return None
        prefixes = tuple(sorted(netdata.net_prefixes.values())) if stack.attached else ()
        routes = tuple(sorted(netdata.net_routes.values())) if stack.attached else ()
        return Announcement(self.ncp.flash.ext_addr, stack.rloc16, stack.role,
                            stack.partition_id if stack.attached else 0, *network, prefixes, routes)

    def take(self) -> list[bytes]:
        """The datagram to send now: when ours changed, the period came round, or a newcomer needs it."""
        ann = self.announcement()
        if ann is None or not (self._due or ann != self._last):
            return []
        self._due, self._last = False, ann
        self.counters["tx"] += 1
        return [encode_announcement(ann)]

    # --- what we hear -----------------------------------------------------------------------------------------

    def heard(self, data: bytes, now: float) -> None:
        try:
            ann = decode_announcement(data)
        except RadioError:
            self.counters["rx_bad"] += 1
            return
        if not self.ncp.stack.stack_up or ann.ext_addr == self.ncp.flash.ext_addr:
            return  # our radio is off
        if ann.network != self.network():
            self.counters["rx_other_network"] += 1
            return
        self.counters["rx"] += 1
        known = self.peers.get(ann.ext_addr)
        if known is None or ann.role == NetRole.DETACHED:
            self._due = True  # answer a newcomer (or one looking for a parent) at once
        self.peers[ann.ext_addr] = Peer(ann, now)
        if known is None or known.announcement != ann:
            self.reconcile(now)

    def live(self) -> list[Announcement]:
        network = self.network()
        return [p.announcement for p in self.peers.values() if p.announcement.network == network]

    def best_leader(self) -> Announcement | None:
        """The leader of our network with the highest (partition ID, extended address), if one is heard."""
        leaders = [a for a in self.live() if a.role == NetRole.LEADER]
        return max(leaders, key=lambda a: (a.partition_id, a.ext_addr), default=None)

    def partition_peers(self) -> list[Announcement]:
        stack = self.ncp.stack
        if not stack.attached:
            return []
        return [a for a in self.live() if a.attached and a.partition_id == stack.partition_id]

    def router_ids(self) -> set[int]:
        return {a.rloc16 >> 10 for a in self.live() if a.attached}

    def leader_rloc16(self) -> int | None:
        stack = self.ncp.stack
        if stack.role == NetRole.LEADER:
            return stack.rloc16
        return next((a.rloc16 for a in self.partition_peers() if a.role == NetRole.LEADER), None)

    # --- what follows -----------------------------------------------------------------------------------------

    def reconcile(self, now: float) -> None:
        """Settle our role against the leaders heard, then merge our partition's entries."""
        stack = self.ncp.stack
        leader = self.best_leader()
        if stack.role == NetRole.LEADER:
            if leader is not None and (leader.partition_id, leader.ext_addr) > (stack.partition_id,
                                                                                self.ncp.flash.ext_addr):
                stack.become_router(leader, now)
        elif stack.role == NetRole.ROUTER and self.leader_rloc16() is None:
            if leader is not None:
                stack.become_router(leader, now)  # our leader joined another partition: so do we
            else:
                stack.become_leader(now)  # our leader is gone
        self.merge()

    def merge(self) -> None:
        """The entries of the other routers of our partition, in the leader's network data."""
        netdata, stack = self.ncp.netdata, self.ncp.stack
        wanted = {a.rloc16: a for a in self.partition_peers() if a.rloc16 != stack.rloc16}
        for rloc16 in self._merged - wanted.keys():
            netdata.set_peer(rloc16, (), ())
        for rloc16, a in wanted.items():
            netdata.set_peer(rloc16, a.prefixes, a.routes)
        self._merged = set(wanted)

    def carries(self, prefix: ipaddress.IPv6Network) -> bool:
        """Whether the mesh reaches ``prefix`` through this NCP (see the module docstring)."""
        stack = self.ncp.stack
        if not stack.attached:
            return False
        entries = [r for r in self.ncp.netdata.leader_routes() if r.prefix == prefix]
        leader = self.leader_rloc16()
        if not entries:
            return stack.role == NetRole.LEADER  # nobody publishes it (the default route): the leader
        best = min(entries, key=lambda r: (-route_preference(r.flags), r.rloc16 != leader, r.rloc16))
        return best.rloc16 == stack.rloc16

    def state(self) -> dict[str, object]:
        return {
            "peers": [{"ext_address": a.ext_addr.hex(), "rloc16": a.rloc16, "role": a.role.name.lower(),
                       "partition_id": a.partition_id} for a in self.live()],
            "counters": dict(self.counters),
        }
