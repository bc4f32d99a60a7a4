"""Just enough IPv6/UDP/ICMPv6 (sans-I/O) to classify mesh packets and build the few the NCP simulator
and the Thread component originate (echo requests and replies, UDP)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from common.checksum import checksum as internet_checksum
from common.checksum import pseudo_sum_v6

__all__ = [
    "ICMPV6",
    "UDP",
    "Ipv6Packet",
    "build_echo_reply",
    "build_echo_request",
    "build_udp",
    "checksum",
    "parse",
]

ICMPV6 = 58
UDP = 17
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
_HDR = struct.Struct("!IHBB16s16s")


@dataclass(frozen=True, slots=True)
class Ipv6Packet:
    src: ipaddress.IPv6Address
    dst: ipaddress.IPv6Address
    next_header: int
    hop_limit: int
    payload: bytes

    @property
    def icmp_type(self) -> int | None:
        if self.next_header == ICMPV6 and self.payload:
            return self.payload[0]
        return None

    @property
    def udp_ports(self) -> tuple[int, int] | None:
        if self.next_header == UDP and len(self.payload) >= 8:
            return struct.unpack_from("!HH", self.payload)
        return None


def parse(packet: bytes) -> Ipv6Packet | None:
    """The fixed header fields, or None for anything that is not a whole IPv6 packet."""
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    _vtf, plen, nh, hlim, src, dst = _HDR.unpack_from(packet)
    if 40 + plen > len(packet):
        return None
    return Ipv6Packet(ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst), nh, hlim, bytes(packet[40 : 40 + plen]))


def checksum(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, nh: int, upper: bytes) -> int:
    """RFC 8200 section 8.1 upper-layer checksum over the pseudo-header."""
    return internet_checksum(upper, pseudo_sum_v6(src.packed, dst.packed, nh, len(upper)))


def _header(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, nh: int, plen: int, hlim: int) -> bytes:
    return _HDR.pack(6 << 28, plen, nh, hlim, src.packed, dst.packed)


def build_udp(
    src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, sport: int, dport: int, data: bytes, hlim: int = 255
) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    csum = checksum(src, dst, UDP, udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return _header(src, dst, UDP, len(udp), hlim) + udp


def build_echo_reply(request: Ipv6Packet, src: ipaddress.IPv6Address | None = None) -> bytes:
    """Echo Reply to an Echo Request, same identifier, sequence and data."""
    src = src or request.dst
    body = bytes((ICMPV6_ECHO_REPLY, 0, 0, 0)) + request.payload[4:]
    csum = checksum(src, request.src, ICMPV6, body)
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    return _header(src, request.src, ICMPV6, len(body), 64) + body


def build_echo_request(
    src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, ident: int, seq: int, data: bytes = b""
) -> bytes:
    body = struct.pack("!BBHHH", ICMPV6_ECHO_REQUEST, 0, 0, ident, seq) + data
    csum = checksum(src, dst, ICMPV6, body)
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    return _header(src, dst, ICMPV6, len(body), 64) + body


# Thread's RLOC and ALOC interface identifiers: 0000:00ff:fe00:xxxx (Thread 1.1 §5.2).
RLOC_IID_PREFIX = bytes.fromhex("000000fffe00")


def rloc_address(mesh_local: ipaddress.IPv6Network, rloc16: int) -> ipaddress.IPv6Address:
    """The RLOC address of the node with ``rloc16``: every Thread node answers on it."""
    return ipaddress.IPv6Address(mesh_local.network_address.packed[:8] + RLOC_IID_PREFIX + rloc16.to_bytes(2, "big"))


def is_rloc_or_aloc(address: ipaddress.IPv6Address) -> bool:
    return address.packed[8:14] == RLOC_IID_PREFIX
