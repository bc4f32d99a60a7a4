"""IPv6 between the host (STREAM_NET) and the mesh: what the NCP forwards, answers itself, or drops.

A border router's routing is only as right as its model of this: packets for the NCP's own addresses
reach the host unless the NCP consumes them (echo requests its ping offload mode answers, by default to
its RLOC/ALOC; UDP to ports its own stack uses: MLE, TMF and, with ``dnssd_server``, DNS, which it
answers itself); packets from a mesh-local source that are not for the NCP never leave the mesh.  Host
packets with an on-mesh source or a mesh-local destination are DROPPED unless the NCP owns their source
(Ip6::SendRaw).  The NCP's own MLE reaches the host as STREAM_NET_INSECURE.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ncp import ipv6
from ncp.spinel import Command, Prop, SpinelError, Status, pack_prop, unpack_prop

from . import dnssd
from .addresses import ALL_NODES, ALL_ROUTERS, LOCATOR_IID

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = [
    "PING_OFFLOAD_ALL",
    "PING_OFFLOAD_DISABLED",
    "PING_OFFLOAD_MULTICAST",
    "PING_OFFLOAD_RLOC_ALOC",
    "PING_OFFLOAD_UNICAST",
    "Datapath",
]

MLE_PORT = 19788
TMF_PORT = 61631
# SPINEL_IPV6_ICMP_PING_OFFLOAD_*
PING_OFFLOAD_DISABLED, PING_OFFLOAD_UNICAST, PING_OFFLOAD_MULTICAST, PING_OFFLOAD_ALL, PING_OFFLOAD_RLOC_ALOC = range(5)
# ICMPv6 types a kernel emits on its own (ND, MLD) that never cross a Thread border router.
_LOCAL_ICMP = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})


class Datapath:
    """Runtime state: the ping offload mode (2023 builds start with it off)."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        modern = ncp.generation.modern_roles
        self.ping_offload_mode = PING_OFFLOAD_RLOC_ALOC if modern else PING_OFFLOAD_DISABLED

    def set_ping_offload(self, enabled: bool) -> None:
        self.ping_offload_mode = PING_OFFLOAD_ALL if enabled else PING_OFFLOAD_DISABLED

    def set_ping_offload_mode(self, mode: int) -> None:
        """A mode this build does not know switches offload off."""
        last = PING_OFFLOAD_RLOC_ALOC if self.ncp.generation.modern_roles else PING_OFFLOAD_ALL
        self.ping_offload_mode = mode if mode <= last else PING_OFFLOAD_DISABLED

    def stream_to_host(self, packet: bytes, prop: int = Prop.STREAM_NET) -> None:
        self.ncp.out.send(0, Command.PROP_VALUE_IS, prop, pack_prop(prop, (packet, b"")))

    # --- from the host ---------------------------------------------------------------------------------------

    def from_host(self, tid: int, value: bytes) -> None:
        """SET STREAM_NET / STREAM_NET_INSECURE: a packet the host sends into the mesh."""
        ncp = self.ncp
        try:
            packet, _meta = unpack_prop(Prop.STREAM_NET, value)
        except SpinelError:
            ncp.out.status(tid, Status.PARSE_ERROR)
            return
        pkt = ipv6.parse(packet)
        if pkt is None:
            ncp.out.status(tid, Status.PARSE_ERROR)
            return
        addresses = ncp.addresses
        if (addresses.is_on_mesh(pkt.src) or addresses.in_mesh_local(pkt.dst)) and pkt.src not in addresses.own():
            # Ip6::SendRaw: from the host, an on-mesh source or a mesh-local destination needs a source the
            # NCP owns (its own addresses and those the host added)
            ncp.out.status(tid, Status.DROPPED)
            return
        ncp.out.status(tid, Status.OK)
        if not ncp.stack.if_up:
            return
        if pkt.dst in addresses.own():
            if pkt.icmp_type == ipv6.ICMPV6_ECHO_REQUEST:
                self.stream_to_host(ipv6.build_echo_reply(pkt))
            return
        if ncp.stack.attached:
            ncp.to_mesh.append(bytes(packet))

    # --- from the mesh ---------------------------------------------------------------------------------------

    def _handles_echo(self, dst: ipaddress.IPv6Address) -> bool:
        """Whether the ping offload mode has the NCP answer an echo request to ``dst`` itself."""
        mode = self.ping_offload_mode
        locator = not dst.is_multicast and dst.packed[8:14] == LOCATOR_IID  # OpenThread checks the IID only
        if locator and (mode == PING_OFFLOAD_RLOC_ALOC or not self.ncp.generation.modern_roles):
            return True  # 2023: an RLOC/ALOC is answered whatever the mode
        if mode == PING_OFFLOAD_ALL:
            return True
        if mode == PING_OFFLOAD_UNICAST:
            return not dst.is_multicast
        return mode == PING_OFFLOAD_MULTICAST and dst.is_multicast

    def _ports_in_use(self) -> set[int]:
        ports = {MLE_PORT, TMF_PORT}
        if self.ncp.config.dnssd_server:
            ports.add(dnssd.PORT)
        return ports

    def from_mesh(self, packet: bytes) -> None:
        """A packet a program in the mesh namespace sent: the NCP's to answer, the host's, or dropped."""
        ncp = self.ncp
        addresses = ncp.addresses
        pkt = ipv6.parse(packet)
        if pkt is None or not ncp.stack.attached:
            return
        if pkt.src.is_unspecified or pkt.icmp_type in _LOCAL_ICMP:
            return
        for_ncp = pkt.dst in addresses.own() or (
            pkt.dst.is_multicast and pkt.dst in addresses.multicast_groups()
        )
        if not for_ncp:
            if addresses.in_mesh_local(pkt.src):
                return  # a mesh-local source never leaves the mesh
            self.stream_to_host(bytes(packet[: 40 + len(pkt.payload)]))
            return
        if pkt.icmp_type == ipv6.ICMPV6_ECHO_REQUEST and self._handles_echo(pkt.dst):
            src = pkt.dst
            if pkt.dst.is_multicast:  # answered from a unicast address of the group's scope
                link_scope = pkt.dst.packed[1] & 0x0F <= 2
                src = addresses.link_local if link_scope else addresses.ml_eid or addresses.link_local
            ncp.to_mesh.append(ipv6.build_echo_reply(pkt, src))
            return
        ports = pkt.udp_ports
        if ports is not None and ports[1] in self._ports_in_use():
            if ports[1] == dnssd.PORT and not pkt.dst.is_multicast:
                response = dnssd.answer(pkt.payload[8:])
                if response is not None:
                    ncp.to_mesh.append(ipv6.build_udp(pkt.dst, pkt.src, dnssd.PORT, ports[0], response, hlim=64))
            return
        if addresses.is_locator(pkt.dst) and not ncp.generation.locators_to_host:
            return
        self.stream_to_host(bytes(packet[: 40 + len(pkt.payload)]))

    # --- the NCP's own MLE -----------------------------------------------------------------------------------

    def mle_advertisement(self, now: float) -> None:
        """Our own MLE (parent requests while detached, advertisements as leader), also handed to the host."""
        ncp = self.ncp
        if not ncp.stack.stack_up:
            return
        dst = ALL_NODES if ncp.stack.attached else ALL_ROUTERS
        # security suite 0, security control (key id mode 2, level 5), frame counter, key source and index,
        # then an opaque encrypted body and MIC
        header = b"\x00\x15" + ncp.rng.getrandbits(32).to_bytes(4, "little") + bytes(4) + b"\x01"
        payload = header + ncp.rng.randbytes(24)
        udp = ipv6.build_udp(ncp.addresses.link_local, dst, MLE_PORT, MLE_PORT, payload)
        self.stream_to_host(udp, Prop.STREAM_NET_INSECURE)
        if ncp.config.mle_interval > 0:
            ncp.timers.after(now, ncp.config.mle_interval, "mle", self.mle_advertisement)
