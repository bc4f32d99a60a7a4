"""rtnetlink (RFC 3549; linux/netlink.h, linux/rtnetlink.h): the few requests the daemon makes.

The daemon asks the kernel for little: an interface's index or name, MTU and up, addresses on wpan0,
routes to a TUN, and the default routes. pyroute2 did it, but loading even its rtnetlink part alone
(traffic-control message classes, a mock kernel that imports unittest, multiprocessing …) cost 5–6 MB
of the idle daemon's resident memory (``benchmarks/idle.py``). This is the codec for those messages
(pure functions on bytes, one error class) and :class:`Rtnl`, a blocking socket around it.

Blocking is fine from asyncio: the kernel runs an rtnetlink request inside the ``send`` that carries it
(``netlink_unicast`` → ``rtnetlink_rcv``, under the RTNL lock) and has queued the answer when ``send``
returns, so the ``recv`` after it does not wait (pyroute2's asyncio API blocked in the same ``send``).
Names are the kernel's (``RTM_NEWROUTE``, ``IFA_CACHEINFO``, ``RTA_OIF`` …).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Link", "Message", "NetlinkDecodeError", "NetlinkError", "Route", "Rtnl", "decode", "decode_attrs"]

NETLINK_ROUTE = 0
# nlmsghdr types and flags
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x01, 0x02, 0x04
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
# rtnetlink message types
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
# attributes
IFLA_IFNAME, IFLA_MTU = 3, 4
IFA_ADDRESS, IFA_LOCAL, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 6, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 6, 9, 15
# values
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4  # what pyroute2 gave the daemon's routes ("proto static")
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
RTATTR = struct.Struct("=HH")  # length, type
IFINFOMSG = struct.Struct("=BxHiII")  # family, device type, index, flags, change mask
IFADDRMSG = struct.Struct("=BBBBi")  # family, prefix length, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst len, src len, tos, table, protocol, scope, type, flags
RTNEXTHOP = struct.Struct("=HBBi")  # length, flags, hops, interface index
IFA_CACHEINFO_S = struct.Struct("=IIII")  # preferred, valid, created, updated
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")


class NetlinkDecodeError(ValueError):
    """Bytes that are not the netlink message or attribute they should be."""


class NetlinkError(OSError):
    """The kernel refused a request; ``code`` is the errno (17 = EEXIST …), as pyroute2 named it."""

    @property
    def code(self) -> int:
        return self.errno or 0


@dataclass(frozen=True, slots=True)
class Message:
    """One netlink message: its header fields and the bytes after the header."""

    type: int
    flags: int
    seq: int
    payload: bytes


def _align(n: int) -> int:
    return (n + 3) & ~3


def encode_attrs(attrs: Iterable[tuple[int, bytes]]) -> bytes:
    """Attributes (type, value) as rtattrs, each padded to 4 bytes."""
    out = bytearray()
    for kind, value in attrs:
        out += RTATTR.pack(RTATTR.size + len(value), kind) + value
        out += bytes(_align(len(out)) - len(out))
    return bytes(out)


def decode_attrs(data: bytes) -> dict[int, bytes]:
    """rtattrs to {type: value}; the first of a repeated type wins. Raises NetlinkDecodeError."""
    attrs: dict[int, bytes] = {}
    pos = 0
    while pos + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, pos)
        if length < RTATTR.size or pos + length > len(data):
            raise NetlinkDecodeError(f"attribute of length {length} at {pos} overruns {len(data)} bytes")
        attrs.setdefault(kind & 0x3FFF, data[pos + RTATTR.size : pos + length])  # without NLA_F_NESTED/BYTEORDER
        pos += _align(length)
    return attrs


def encode(kind: int, flags: int, seq: int, header: bytes, attrs: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """One netlink message: nlmsghdr, the family header, attributes."""
    body = header + encode_attrs(attrs)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def decode(data: bytes) -> list[Message]:
    """The messages of one netlink datagram. Raises NetlinkDecodeError."""
    out = []
    pos = 0
    while pos + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _ = NLMSGHDR.unpack_from(data, pos)
        if length < NLMSGHDR.size or pos + length > len(data):
            raise NetlinkDecodeError(f"message of length {length} at {pos} overruns {len(data)} bytes")
        out.append(Message(kind, flags, seq, data[pos + NLMSGHDR.size : pos + length]))
        pos += _align(length)
    return out


def error_of(msg: Message) -> int:
    """The (positive) errno of an NLMSG_ERROR; 0 is an acknowledgement."""
    if len(msg.payload) < I32.size:
        raise NetlinkDecodeError("NLMSG_ERROR without its error code")
    return -I32.unpack_from(msg.payload)[0]


@dataclass(frozen=True, slots=True)
class Link:
    """RTM_NEWLINK, as far as the daemon reads it."""

    index: int
    flags: int
    name: str | None
    mtu: int | None


def decode_link(msg: Message) -> Link:
    if len(msg.payload) < IFINFOMSG.size:
        raise NetlinkDecodeError("link message shorter than ifinfomsg")
    _, _, index, flags, _ = IFINFOMSG.unpack_from(msg.payload)
    attrs = decode_attrs(msg.payload[IFINFOMSG.size :])
    name = attrs.get(IFLA_IFNAME)
    mtu = attrs.get(IFLA_MTU)
    return Link(index, flags, name.split(b"\0", 1)[0].decode("utf-8", "replace") if name is not None else None,
                U32.unpack(mtu)[0] if mtu is not None and len(mtu) == U32.size else None)


@dataclass(frozen=True, slots=True)
class Route:
    """RTM_NEWROUTE, as far as the daemon reads it; ``nexthops`` are a multipath route's interfaces."""

    family: int
    dst_len: int
    table: int
    type: int
    dst: bytes | None
    oif: int | None
    gateway: bytes | None
    nexthops: tuple[int, ...] = ()

    @property
    def interface(self) -> int | None:
        """Where it leads: its output interface, or a multipath route's first."""
        return self.oif if self.oif is not None else (self.nexthops[0] if self.nexthops else None)


def decode_route(msg: Message) -> Route:
    if len(msg.payload) < RTMSG.size:
        raise NetlinkDecodeError("route message shorter than rtmsg")
    family, dst_len, _, _, table, _, _, kind, _ = RTMSG.unpack_from(msg.payload)
    attrs = decode_attrs(msg.payload[RTMSG.size :])
    table_attr, oif = attrs.get(RTA_TABLE), attrs.get(RTA_OIF)
    if table_attr is not None and len(table_attr) == U32.size:
        table = U32.unpack(table_attr)[0]
    nexthops = []
    hops = attrs.get(RTA_MULTIPATH, b"")
    pos = 0
    while pos + RTNEXTHOP.size <= len(hops):
        length, _, _, ifindex = RTNEXTHOP.unpack_from(hops, pos)
        if length < RTNEXTHOP.size:
            raise NetlinkDecodeError(f"nexthop of length {length}")
        nexthops.append(ifindex)
        pos += _align(length)
    return Route(family, dst_len, table, kind, attrs.get(RTA_DST),
                 U32.unpack(oif)[0] if oif is not None and len(oif) == U32.size else None,
                 attrs.get(RTA_GATEWAY), tuple(nexthops))


# ---- requests (message type, flags, family header, attributes) --------------------------------------

def _ip(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, bytes]:
    ip = ipaddress.ip_address(address)
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), ip.packed


def link_request(*, index: int = 0, name: str | None = None, mtu: int | None = None, up: bool | None = None,
                 kind: int = RTM_GETLINK) -> tuple[int, int, bytes, list[tuple[int, bytes]]]:
    """RTM_GETLINK by index or name; RTM_NEWLINK changing MTU and/or up; RTM_DELLINK."""
    flags = IFF_UP if up else 0
    header = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, IFF_UP if up is not None else 0)
    attrs = []
    if name is not None:
        attrs.append((IFLA_IFNAME, name.encode() + b"\0"))
    if mtu is not None:
        attrs.append((IFLA_MTU, U32.pack(mtu)))
    return kind, NLM_F_ACK if kind != RTM_GETLINK else 0, header, attrs


def address_request(add: bool, index: int, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
                    prefixlen: int, flags: int = 0, preferred: int | None = None,
                    valid: int | None = None) -> tuple[int, int, bytes, list[tuple[int, bytes]]]:
    """RTM_NEWADDR (fails with EEXIST for an address already there) or RTM_DELADDR; ``preferred`` and
    ``valid`` are lifetimes in seconds (0xFFFFFFFF: forever) for IFA_CACHEINFO."""
    family, packed = _ip(address)
    attrs = [(IFA_LOCAL, packed), (IFA_ADDRESS, packed)]
    if add:
        attrs.append((IFA_FLAGS, U32.pack(flags)))
        if preferred is not None or valid is not None:
            attrs.append((IFA_CACHEINFO, IFA_CACHEINFO_S.pack(
                0xFFFFFFFF if preferred is None else preferred, 0xFFFFFFFF if valid is None else valid, 0, 0)))
    return ((RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL) if add else (RTM_DELADDR, NLM_F_ACK)) + (
        IFADDRMSG.pack(family, prefixlen, flags & 0xFF, RT_SCOPE_UNIVERSE, index), attrs)


def route_request(replace: bool, dst: str | ipaddress.IPv4Network | ipaddress.IPv6Network, oif: int,
                  metric: int | None = None) -> tuple[int, int, bytes, list[tuple[int, bytes]]]:
    """RTM_NEWROUTE replacing (or adding) ``dst`` through interface ``oif`` in the main table, or
    RTM_DELROUTE of it; ``metric`` is the route's priority (the kernel's default when None)."""
    net = ipaddress.ip_network(dst)
    family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
    header = RTMSG.pack(family, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC if replace else 0,
                        RT_SCOPE_UNIVERSE, RTN_UNICAST if replace else 0, 0)
    attrs = [(RTA_DST, net.network_address.packed), (RTA_OIF, U32.pack(oif))]
    if metric is not None:
        attrs.append((RTA_PRIORITY, U32.pack(metric)))
    flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE if replace else NLM_F_ACK
    return (RTM_NEWROUTE if replace else RTM_DELROUTE), flags, header, attrs


class Rtnl:
    """A NETLINK_ROUTE socket answering one request at a time (blocking; see the module docstring)."""

    TIMEOUT = 5.0

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self.sock.bind((0, 0))
            self.sock.settimeout(self.TIMEOUT)
        except BaseException:
            self.sock.close()
            raise
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Rtnl:  # usable beside asyncio locks in one ``async with``
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def ask(self, kind: int, flags: int, header: bytes, attrs: Iterable[tuple[int, bytes]] = ()) -> list[Message]:
        """Send one request; its answers (a dump's messages, or none for an acknowledged change).
        Raises NetlinkError with the kernel's errno."""
        self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
        self.sock.send(encode(kind, flags | NLM_F_REQUEST, seq, header, attrs))
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        answers: list[Message] = []
        while True:
            for msg in decode(self.sock.recv(1 << 16)):
                if msg.seq != seq:
                    continue  # left over from an earlier request that failed half way
                if msg.type == NLMSG_ERROR:
                    code = error_of(msg)
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return answers
                if msg.type == NLMSG_DONE:
                    return answers
                answers.append(msg)
                if not dump and not flags & NLM_F_ACK:
                    return answers  # a single answer (GET by index or name)

    def _do(self, request: tuple[int, int, bytes, list[tuple[int, bytes]]]) -> list[Message]:
        return self.ask(*request)

    # ---- what the daemon asks ----------------------------------------------------------------------
    def link(self, *, index: int = 0, name: str | None = None) -> Link | None:
        """The interface with this index or name; None when there is none."""
        try:
            answers = self._do(link_request(index=index, name=name))
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        return decode_link(answers[0]) if answers else None

    def set_link(self, index: int, *, mtu: int | None = None, up: bool | None = None) -> None:
        self._do(link_request(index=index, mtu=mtu, up=up, kind=RTM_NEWLINK))

    def delete_link(self, index: int) -> None:
        self._do(link_request(index=index, kind=RTM_DELLINK))

    def add_address(self, index: int, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, prefixlen: int,
                    *, flags: int = 0, preferred: int | None = None, valid: int | None = None) -> None:
        self._do(address_request(True, index, address, prefixlen, flags, preferred, valid))

    def delete_address(self, index: int, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
                       prefixlen: int) -> None:
        self._do(address_request(False, index, address, prefixlen))

    def replace_route(self, dst: str | ipaddress.IPv4Network | ipaddress.IPv6Network, oif: int,
                      metric: int | None = None) -> None:
        self._do(route_request(True, dst, oif, metric))

    def delete_route(self, dst: str | ipaddress.IPv4Network | ipaddress.IPv6Network, oif: int,
                     metric: int | None = None) -> None:
        self._do(route_request(False, dst, oif, metric))

    def default_routes(self, family: int) -> list[Route]:
        """Unicast default routes of the main table (``ip route show default``)."""
        answers = self.ask(RTM_GETROUTE, NLM_F_DUMP, RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))
        routes = [decode_route(m) for m in answers if m.type == RTM_NEWROUTE]
        return [r for r in routes if r.dst_len == 0 and r.table == RT_TABLE_MAIN and r.type == RTN_UNICAST]
