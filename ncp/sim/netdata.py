"""Thread network data as the simulated NCP holds it: on-mesh prefixes and external routes.

A border router publishes its prefixes and routes here, and every host and node routes by what the
leader makes of them, so both copies are kept: the local one the host edits (INSERT/REMOVE of
THREAD_ON_MESH_NETS / THREAD_OFF_MESH_ROUTES while ALLOW_LOCAL_NET_DATA_CHANGE is true) and the
leader's, registered when the host sets it false again or when the NCP becomes leader.

``encode_network_data`` produces the Thread network data TLVs the way OpenThread serves them: the
leader's (THREAD_LEADER_NETWORK_DATA) start with a Commissioning Data TLV and give each on-mesh prefix a
6LoWPAN context; the local copy (THREAD_NETWORK_DATA) has neither.  Prefix TLVs keep the order their
prefixes were first added in, as OpenThread appends them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..netdata import UNREGISTERED, ExternalRoute, OnMeshPrefix
from ..spinel import Prop, Status, unpack
from ..spinel.props import (
    NET_FLAG_DEFAULT_ROUTE,
    NET_FLAG_ON_MESH,
    NET_FLAG_PREFERRED,
    NET_FLAG_SLAAC,
    ROUTE_FLAG_NAT64,
)
from ..spinel.tables import OffMeshRoute, OnMeshNet

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = [
    "NET_FLAG_DEFAULT_ROUTE",
    "NET_FLAG_ON_MESH",
    "NET_FLAG_PREFERRED",
    "NET_FLAG_SLAAC",
    "ROUTE_FLAG_NAT64",
    "UNREGISTERED",
    "ExternalRoute",
    "NetworkData",
    "OnMeshPrefix",
    "encode_network_data",
]


_TLV_PREFIX = 1
_TLV_COMMISSIONING_DATA = 4
_SUB_HAS_ROUTE = 0
_SUB_BORDER_ROUTER = 2
_SUB_6LOWPAN_ID = 3
_MESHCOP_COMMISSIONER_SESSION_ID = 11


def _tlv(typ: int, stable: bool, value: bytes) -> bytes:
    return bytes(((typ << 1) | int(stable), len(value))) + value


def encode_network_data(
    entries: Iterable[OnMeshPrefix | ExternalRoute], *, leader_session_id: int | None = None
) -> bytes:
    """Network data TLVs for ``entries``; a leader's (``leader_session_id`` given) as described above."""
    subs: dict[ipaddress.IPv6Network, list[tuple[int, bytes]]] = {}
    stable_of: dict[ipaddress.IPv6Network, bool] = {}
    context_id = 1
    contexts: set[ipaddress.IPv6Network] = set()
    for e in entries:
        rloc = e.rloc16.to_bytes(2, "big")
        group = subs.setdefault(e.prefix, [])
        if isinstance(e, ExternalRoute):
            group.append((_SUB_HAS_ROUTE, _tlv(_SUB_HAS_ROUTE, e.stable, rloc + bytes((e.flags,)))))
        else:
            group.append((_SUB_BORDER_ROUTER, _tlv(_SUB_BORDER_ROUTER, e.stable, rloc + bytes((e.flags, e.flags_ext)))))
            if leader_session_id is not None and e.prefix not in contexts:
                contexts.add(e.prefix)
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


class NetworkData:
    """Runtime state: the host's local prefixes and routes, the leader's copy and its version."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        self.allow_local_change = False
        self._publish_pending = False
        self.local_prefixes: dict[ipaddress.IPv6Network, OnMeshPrefix] = {}
        self.local_routes: dict[ipaddress.IPv6Network, ExternalRoute] = {}
        self.net_prefixes: dict[ipaddress.IPv6Network, OnMeshPrefix] = {}
        self.net_routes: dict[ipaddress.IPv6Network, ExternalRoute] = {}
        self._prefix_order: dict[ipaddress.IPv6Network, None] = {}  # first insertion order of local prefixes
        # Other border routers' entries in the leader's data, by their RLOC16: the other NCPs of a shared radio
        # (radio.py), or what the ``border_router`` control command says
        self.peers: dict[int, tuple[tuple[OnMeshPrefix, ...], tuple[ExternalRoute, ...]]] = {}
        self.version = 0

    # --- the host editing its local network data -----------------------------------------------------------

    def set_allow_local_change(self, allow: bool) -> None:
        was, self.allow_local_change = self.allow_local_change, allow
        if was and not allow:
            self._publish_pending = True

    def after_allow_local_change(self, now: float) -> None:
        """After the reply to ALLOW_LOCAL_NET_DATA_CHANGE = false: publish what the host changed."""
        if self._publish_pending:
            self._publish_pending = False
            self._publish(now)

    def change(self, prop: int, value: bytes, insert: bool) -> Status:
        """INSERT (``6CbC`` + extended flags) or REMOVE (``6C``) of a local on-mesh prefix or route."""
        if not self.allow_local_change:
            return Status.INVALID_STATE
        if insert:
            addr, plen, stable, flags = unpack("6CbC", value)
        else:
            addr, plen = unpack("6C", value)
        if plen > 128:
            return Status.PARSE_ERROR
        prefix = ipaddress.IPv6Network((addr, plen), strict=False)
        on_mesh = prop == Prop.THREAD_ON_MESH_NETS
        table: dict = self.local_prefixes if on_mesh else self.local_routes
        if not insert:
            table.pop(prefix, None)  # an unknown prefix is no error
            if prefix not in self.local_prefixes and prefix not in self.local_routes:
                self._prefix_order.pop(prefix, None)
            return Status.OK
        if on_mesh:
            if flags >> 6 == 2:  # reserved preference: otBorderRouterAddOnMeshPrefix refuses it
                return Status.INVALID_ARGUMENT
            ext = value[22] if len(value) >= 23 else 0  # after is-local and RLOC16: extended flags
            table[prefix] = OnMeshPrefix(prefix, flags, stable, ext)
        else:
            table[prefix] = ExternalRoute(prefix, flags, stable)
        self._prefix_order.setdefault(prefix)
        return Status.OK

    # --- registering with the leader (ourselves) -----------------------------------------------------------

    def register(self) -> None:
        """Register the local network data with the leader (ourselves), stamping it with our RLOC16."""
        rloc = self.ncp.stack.rloc16
        self.local_prefixes = {k: OnMeshPrefix(p.prefix, p.flags, p.stable, p.flags_ext, rloc)
                               for k, p in self.local_prefixes.items()}
        self.local_routes = {k: ExternalRoute(r.prefix, r.flags, r.stable, rloc) for k, r in self.local_routes.items()}
        changed = (self.net_prefixes, self.net_routes) != (self.local_prefixes, self.local_routes)
        self.net_prefixes, self.net_routes = dict(self.local_prefixes), dict(self.local_routes)
        if changed:
            self.version = (self.version + 1) & 0xFF
        self.ncp.addresses.update_slaac()

    def _publish(self, now: float) -> None:
        """ALLOW_LOCAL_NET_DATA_CHANGE went back to false: register, and report what changed."""
        if not self.ncp.stack.attached:
            return  # registered when we become leader
        before = (self.net_prefixes, self.net_routes)
        self.register()
        if (self.net_prefixes, self.net_routes) == before:
            return
        out = self.ncp.out
        out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        out.push(Prop.THREAD_LEADER_NETWORK_DATA)
        out.push(Prop.THREAD_ON_MESH_NETS)
        out.push(Prop.THREAD_OFF_MESH_ROUTES)

    def set_peer(self, rloc16: int, prefixes: Iterable[OnMeshPrefix], routes: Iterable[ExternalRoute]) -> None:
        """Another border router (``rloc16``) publishes exactly these entries; none: it left the mesh."""
        prefixes = tuple(OnMeshPrefix(p.prefix, p.flags, p.stable, p.flags_ext, rloc16) for p in prefixes)
        routes = tuple(ExternalRoute(r.prefix, r.flags, r.stable, rloc16) for r in routes)
        if (prefixes, routes) == self.peers.get(rloc16, ((), ())):
            return
        if prefixes or routes:
            self.peers[rloc16] = (prefixes, routes)
        else:
            self.peers.pop(rloc16, None)
        if not self.ncp.stack.attached:
            return
        self.version = (self.version + 1) & 0xFF
        self.ncp.addresses.update_slaac()
        out = self.ncp.out
        out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        out.push(Prop.THREAD_LEADER_NETWORK_DATA)
        out.push(Prop.THREAD_ON_MESH_NETS)
        out.push(Prop.THREAD_OFF_MESH_ROUTES)

    def leader_prefixes(self) -> list[OnMeshPrefix]:
        """The on-mesh prefixes of the leader's network data: ours, then other border routers'."""
        if not self.ncp.stack.attached:
            return list(self.net_prefixes.values())
        return [*self.net_prefixes.values(), *(p for prefixes, _ in self.peers.values() for p in prefixes)]

    def leader_routes(self) -> list[ExternalRoute]:
        if not self.ncp.stack.attached:
            return list(self.net_routes.values())
        return [*self.net_routes.values(), *(r for _, routes in self.peers.values() for r in routes)]

    def clear_leader_data(self) -> None:
        """Detached: no leader, no network data from it."""
        self.net_prefixes.clear()
        self.net_routes.clear()

    # --- the properties -------------------------------------------------------------------------------------

    def on_mesh_nets(self) -> list[OnMeshNet]:
        """The leader's entries, then this NCP's local ones (0xFFFE until registered)."""
        return [
            OnMeshNet(prefix=p.prefix.network_address, prefix_length=p.prefix.prefixlen, stable=p.stable,
                      flags=p.flags, is_local=local, rloc16=p.rloc16, flags_ext=p.flags_ext)
            for local, table in ((False, self.leader_prefixes()), (True, list(self.local_prefixes.values())))
            for p in table
        ]

    def off_mesh_routes(self) -> list[OffMeshRoute]:
        stack = self.ncp.stack
        routes = []
        for local, table in ((False, self.leader_routes()), (True, list(self.local_routes.values()))):
            for r in table:
                ours = r.rloc16 == stack.rloc16 and stack.attached
                routes.append(OffMeshRoute(prefix=r.prefix.network_address, prefix_length=r.prefix.prefixlen,
                                           stable=r.stable, flags=r.flags, is_local=local,
                                           next_hop_is_this_device=ours, rloc16=r.rloc16))
        return routes

    def _ordered(self, prefixes: Iterable[OnMeshPrefix], routes: Iterable[ExternalRoute]
                 ) -> list[OnMeshPrefix | ExternalRoute]:
        order = list(self._prefix_order)
        entries: list[OnMeshPrefix | ExternalRoute] = [*prefixes, *routes]
        return sorted(entries, key=lambda e: order.index(e.prefix) if e.prefix in order else len(order))

    def leader_tlvs(self) -> bytes:
        """THREAD_LEADER_NETWORK_DATA: empty while detached."""
        if not self.ncp.stack.attached:
            return b""
        entries = self._ordered(self.leader_prefixes(), self.leader_routes())
        return encode_network_data(entries, leader_session_id=self.ncp.stack.session_id)

    def local_tlvs(self) -> bytes:
        """THREAD_NETWORK_DATA: what this NCP would register."""
        return encode_network_data(self._ordered(self.local_prefixes.values(), self.local_routes.values()))
