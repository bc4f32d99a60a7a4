"""The simulated mesh as seen by Linux: a TUN device inside a network namespace.

Every simulated Thread node is a set of addresses on that TUN, so programs started with
``ip netns exec NAME ...`` send and receive as Thread devices: what they send off-node is read from the
TUN and reaches the host as STREAM_NET; what the host sends is written to the TUN and delivered to them.
A node's RLOC is not an address of its own: an nftables DNAT in the namespace hands what is sent there to
the node's ML-EID (and conntrack answers from the RLOC), so a program bound to a node's ML-EID answers on
its RLOC too, as every socket of a Thread node does.

Several simulated NCPs sharing a radio (``--radio``) each keep a TUN of their own in one namespace
(``shared``): their routes then carry a metric of their own (1024 + the TUN's ifindex), so the same
on-mesh prefix on two TUNs are two routes rather than one replacing the other, and their RLOC tables are
named after the TUN.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import subprocess

from pyroute2.netns import popns, pushns

from common.tun import open_tun

from .addresses import MeshConfig

__all__ = ["MeshError", "MeshTun"]

log = logging.getLogger(__name__)

MTU = 1280
_NFT_TABLE = "ncp_sim_rloc"


class MeshError(RuntimeError):
    """Setting up the namespace or the TUN failed."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise MeshError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/var/run/netns/{name}")


class MeshTun:
    """Owns the TUN (and, with ``own_netns``, the namespace it created)."""

    def __init__(self, netns: str, tun: str = "mesh0", own_netns: bool = False, shared: bool = False) -> None:
        self.netns = netns
        self.tun = tun
        self.own_netns = own_netns
        self.shared = shared
        self.metric: int | None = None  # set when opened, if shared
        self.table = f"{_NFT_TABLE}_{tun.replace('-', '_').replace('.', '_')}" if shared else _NFT_TABLE
        self.created_netns = False
        self.fd: int | None = None
        self._addresses: set[ipaddress.IPv6Address] = set()
        self._routes: dict[ipaddress.IPv6Network, ipaddress.IPv6Address | None] = {}
        self._aliases: frozenset[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]] = frozenset()

    def open(self) -> int:
        if not netns_exists(self.netns):
            _ip("netns", "add", self.netns)
            self.created_netns = True
        # The TUN is created by whoever opens /dev/net/tun, in that thread's namespace.
        pushns(self.netns)
        try:
            fd = open_tun(self.tun)
        finally:
            popns()
        self.fd = fd
        ns = ("-n", self.netns)
        _ip(*ns, "link", "set", "lo", "up")
        # No kernel link-local, router solicitations or DAD chatter: the nodes' addresses are all there is.
        _ip(*ns, "link", "set", "dev", self.tun, "addrgenmode", "none", check=False)
        _ip(*ns, "link", "set", "dev", self.tun, "mtu", str(MTU), "up")
        if self.shared:
            link = json.loads(_ip(*ns, "-j", "link", "show", "dev", self.tun).stdout)
            self.metric = 1024 + int(link[0]["ifindex"])
        log.info("mesh TUN %s up in namespace %s", self.tun, self.netns)
        return fd

    def apply(self, config: MeshConfig) -> None:
        """Bring addresses and routes in the namespace in line with ``config``."""
        ns = ("-n", self.netns)
        for addr in sorted(self._addresses - config.addresses):
            _ip(*ns, "-6", "addr", "del", f"{addr}/128", "dev", self.tun, check=False)
        for addr in sorted(config.addresses - self._addresses):
            _ip(*ns, "-6", "addr", "add", f"{addr}/128", "dev", self.tun, "nodad")
        # Off-mesh routes name the source an unbound program uses: never a mesh-local one, which the NCP
        # would drop (the kernel's tie-break between two ULAs could pick it).
        wanted = {net: None for net in config.on_link}
        wanted.update({net: config.off_mesh_source for net in config.routes})
        metric = ("metric", str(self.metric)) if self.metric is not None else ()
        for net in sorted(self._routes.keys() - wanted.keys()):
            _ip(*ns, "-6", "route", "del", str(net), "dev", self.tun, *metric, check=False)
        for net, src in sorted(wanted.items(), key=lambda item: item[0]):
            if self._routes.get(net, False) != src:
                _ip(*ns, "-6", "route", "replace", str(net), "dev", self.tun, *metric,
                    *(("src", str(src)) if src else ()))
        self._addresses = set(config.addresses)
        self._routes = wanted
        if config.aliases != self._aliases:
            self._nft(self._alias_rules(config.aliases))
            self._aliases = config.aliases

    def _alias_rules(self, aliases: frozenset[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]]) -> str:
        """An nft script replacing the table with one DNAT rule per (RLOC, ML-EID)."""
        rules = [f'iifname "{self.tun}" ip6 daddr {rloc} dnat to {eid}' for rloc, eid in sorted(aliases)]
        chain = ["type nat hook prerouting priority dstnat; policy accept;", *rules]
        table = f"table ip6 {self.table}"
        # creating the table first makes the delete succeed when it does not exist yet
        return "\n".join([table, f"delete {table}", f"{table} {{", "  chain prerouting {",
                          *(f"    {line}" for line in chain), "  }", "}", ""])

    def _nft(self, script: str) -> None:
        proc = subprocess.run(["ip", "netns", "exec", self.netns, "nft", "-f", "-"], input=script,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MeshError(f"nft in {self.netns}: {proc.stderr.strip()}")

    def write(self, packet: bytes) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, packet)
        except OSError as exc:  # a full queue or a packet the kernel refuses: drop it like a radio
            log.debug("TUN write dropped: %s", exc)

    def read(self) -> bytes | None:
        if self.fd is None:
            return None
        try:
            return os.read(self.fd, 65535)
        except (BlockingIOError, InterruptedError):
            return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # a non-persistent TUN disappears with its last descriptor
            self.fd = None
        if self.own_netns and netns_exists(self.netns):
            _ip("netns", "del", self.netns, check=False)
        elif netns_exists(self.netns):
            _ip("-n", self.netns, "link", "del", self.tun, check=False)
            if self._aliases:
                subprocess.run(["ip", "netns", "exec", self.netns, "nft", "delete", "table", "ip6", self.table],
                               capture_output=True, check=False)
