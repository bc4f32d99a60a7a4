"""wpan0: the mesh as a host interface.

A TUN device whose packets go to the NCP as STREAM_NET and back. Its addresses mirror
the NCP's IPV6_ADDRESS_TABLE, on-mesh prefixes get routes through it, and the NCP's own
MLE chatter (which real NCPs forward to the host) is dropped and counted, never
written to the host stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from common.netlink import NetlinkError, Rtnl
from common.tun import open_tun, set_carrier
from ncp.ipv6 import is_rloc_or_aloc

log = logging.getLogger("gatewayd.thread")

MTU = 1280
MLE_PORT = 19788
IFA_F_NODAD = 0x02
IPPROTO_UDP = 17
ON_MESH_METRIC = 512  # ahead of RA-learnt routes (1024), apart from the kernel's own prefix routes (256)
IGMP6 = "/proc/net/igmp6"
# Groups every IPv6 interface has; the NCP subscribes to them by itself.
_IMPLICIT_GROUPS = {ipaddress.IPv6Address("ff02::1"), ipaddress.IPv6Address("ff01::1")}
# Solicited-node groups serve neighbour discovery, which the mesh does not carry.
_SOLICITED_NODE = ipaddress.IPv6Network("ff02::1:ff00:0/104")


def is_mle(packet: bytes) -> bool:
    """MLE: UDP to or from port 19788 (Thread's link-layer management, not host traffic)."""
    if len(packet) < 48 or packet[0] >> 4 != 6 or packet[6] != IPPROTO_UDP:
        return False
    src_port = int.from_bytes(packet[40:42], "big")
    dst_port = int.from_bytes(packet[42:44], "big")
    return MLE_PORT in (src_port, dst_port)


@dataclass
class DatapathCounters:
    to_mesh: int = 0
    from_mesh: int = 0
    mle_dropped: int = 0
    malformed_dropped: int = 0
    write_errors: int = 0
    down_dropped: int = 0


class WpanInterface:
    """The TUN side of the datapath; ``send`` is the NCP's packet sink, called once per packet."""

    def __init__(self, name: str, send: Callable[[bytes], None]):
        self.name = name
        self.send = send
        self.fd: int | None = None
        self.index = 0
        self.counters = DatapathCounters()
        self.attached = False
        self.addresses: set[ipaddress.IPv6Interface] = set()
        self.routes: set[ipaddress.IPv6Network] = set()
        self._netlink = asyncio.Lock()  # address/route changes apply in the order the NCP reported them

    # ---- device --------------------------------------------------------------------------------
    async def open(self) -> None:
        self.fd = open_tun(self.name)
        with Rtnl() as rt:  # rtnetlink answers inside the send: see common/netlink.py
            link = rt.link(name=self.name)
            if link is None:
                raise OSError(f"the TUN {self.name} has no interface")
            self.index = link.index
            rt.set_link(self.index, mtu=MTU)
            _sysctl(self.name, "keep_addr_on_down", "1")
            _sysctl(self.name, "accept_ra", "0")
            self.set_attached(False)
            rt.set_link(self.index, up=True)
        asyncio.get_running_loop().add_reader(self.fd, self._readable)
        log.info("%s is up (mtu %d)", self.name, MTU)

    def close(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)  # the kernel removes the device, its addresses and its routes
        self.fd = None
        self.addresses.clear()
        self.routes.clear()

    def set_attached(self, attached: bool) -> None:
        """Carrier follows attachment: routes and addresses stay, traffic waits for the mesh."""
        self.attached = attached
        if self.fd is not None and not set_carrier(self.fd, attached):
            log.debug("kernel has no TUNSETCARRIER; %s stays up", self.name)

    # ---- datapath ------------------------------------------------------------------------------
    def _readable(self) -> None:
        assert self.fd is not None
        for _ in range(64):  # bounded burst so one busy interface can't starve the loop
            try:
                packet = os.read(self.fd, 2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("reading %s failed: %s", self.name, exc)
                return
            if not self.attached:
                self.counters.down_dropped += 1
                continue
            if len(packet) < 40 or packet[0] >> 4 != 6:
                self.counters.malformed_dropped += 1
                continue
            self.counters.to_mesh += 1
            self.send(packet)

    def deliver(self, packet: bytes) -> None:
        """A packet from the mesh (STREAM_NET)."""
        if is_mle(packet):
            self.counters.mle_dropped += 1
            return
        if len(packet) < 40 or packet[0] >> 4 != 6:
            self.counters.malformed_dropped += 1
            return
        if self.fd is None:
            self.counters.down_dropped += 1
            return
        try:
            os.write(self.fd, packet)
        except OSError:
            self.counters.write_errors += 1
            return
        self.counters.from_mesh += 1

    # ---- addresses and routes -----------------------------------------------------------------
    async def sync_addresses(self, wanted: Iterable[ipaddress.IPv6Interface]) -> None:
        """Make the interface's addresses exactly the NCP's unicast address table."""
        target = set(wanted)
        async with self._netlink, Rtnl() as rt:  # rtnetlink answers inside the send: see common/netlink.py
            for iface in sorted(target - self.addresses):
                try:
                    rt.add_address(self.index, iface.ip, iface.network.prefixlen, flags=IFA_F_NODAD,
                                   **_lifetimes(iface.ip))
                except NetlinkError as exc:
                    if exc.code != 17:  # EEXIST
                        log.warning("cannot add %s to %s: %s", iface, self.name, exc)
                        continue
                log.info("%s: address %s added", self.name, iface)
            for iface in sorted(self.addresses - target):
                with contextlib.suppress(NetlinkError):
                    rt.delete_address(self.index, iface.ip, iface.network.prefixlen)
                log.info("%s: address %s removed", self.name, iface)
        self.addresses = target

    async def sync_routes(self, prefixes: Iterable[ipaddress.IPv6Network]) -> None:
        """Routes for on-mesh prefixes point at wpan0, ahead of the same prefix learnt from another border
        router's RA on the LAN (accept_ra=2 installs its RIO at metric 1024): the two would bounce the
        mesh's traffic between them on the LAN."""
        target = set(prefixes)
        async with self._netlink, Rtnl() as rt:
            for prefix in sorted(target - self.routes):
                try:
                    rt.replace_route(prefix, self.index, metric=ON_MESH_METRIC)
                except NetlinkError as exc:
                    log.warning("cannot route %s via %s: %s", prefix, self.name, exc)
                    continue
            for prefix in sorted(self.routes - target):
                with contextlib.suppress(NetlinkError):
                    rt.delete_route(prefix, self.index, metric=ON_MESH_METRIC)
        self.routes = target

    def multicast_groups(self) -> set[ipaddress.IPv6Address]:
        """Groups the host joined on this interface (from /proc/net/igmp6), minus the implicit ones."""
        groups: set[ipaddress.IPv6Address] = set()
        try:
            with open(IGMP6) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] == self.name:
                        groups.add(ipaddress.IPv6Address(bytes.fromhex(parts[2])))
        except OSError:
            return groups
        return {g for g in groups if g not in _IMPLICIT_GROUPS and g not in _SOLICITED_NODE}

    def status(self) -> dict[str, object]:
        return {
            "interface": self.name,
            "attached": self.attached,
            "addresses": sorted(str(a) for a in self.addresses),
            "routes": sorted(str(r) for r in self.routes),
            "datapath": asdict(self.counters),
        }


def _sysctl(interface: str, key: str, value: str) -> None:
    path = f"/proc/sys/net/ipv6/conf/{interface}/{key}"
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        log.debug("cannot set %s: %s", path, exc)


def _lifetimes(address: ipaddress.IPv6Address) -> dict[str, Any]:
    """The NCP's RLOC and ALOCs are kept deprecated so Linux never sends from them.

    Linux would otherwise pick the leader ALOC (the address it got last) as source for mesh-local
    destinations, and OpenThread's NCP of 2023 passes nothing sent to its RLOC/ALOCs to the host: the
    answers were lost (measured: host → node ML-EID/RLOC timed out, from the ML-EID they work).
    """
    if not is_rloc_or_aloc(address):
        return {}
    return {"preferred": 0, "valid": 0xFFFFFFFF}
