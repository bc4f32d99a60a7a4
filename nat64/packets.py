"""Minimal sans-I/O IPv4/IPv6/UDP/TCP/ICMP/ICMPv6 parsing and building.

Only what a translator needs: fixed headers, the IPv6 extension headers RFC 7915 lets a translator skip,
the IPv6 Fragment header, and Internet checksums (full and incremental, RFC 1071 / RFC 1624). Addresses
stay as raw 4/16-byte ``bytes`` because translation copies them far more often than it prints them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from common.checksum import checksum

__all__ = [
    "IPPROTO_FRAGMENT",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPv4Header",
    "IPv6Header",
    "PacketError",
    "build_ipv4",
    "build_ipv6",
    "parse_ipv4",
    "parse_ipv6",
]

IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60

# Extension headers a translator skips over (RFC 7915 §5.1: they are not translated).
_SKIPPED_EXT = frozenset({IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS})

IPV4_DF = 0x4000
IPV4_MF = 0x2000


class PacketError(ValueError):
    """A packet is truncated, inconsistent or uses something this minimal parser refuses."""


# --- IPv4 --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class IPv4Header:
    tos: int
    total_length: int
    identification: int
    flags_offset: int  # flags (DF/MF) and fragment offset in 8-byte units, as on the wire
    ttl: int
    protocol: int
    src: bytes
    dst: bytes
    header_length: int = 20

    @property
    def df(self) -> bool:
        return bool(self.flags_offset & IPV4_DF)

    @property
    def mf(self) -> bool:
        return bool(self.flags_offset & IPV4_MF)

    @property
    def frag_offset(self) -> int:
        """Fragment offset in bytes."""
        return (self.flags_offset & 0x1FFF) * 8

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags_offset & (IPV4_MF | 0x1FFF))


def parse_ipv4(data: bytes, *, truncated_ok: bool = False) -> tuple[IPv4Header, bytes]:
    """Parse an IPv4 header; returns the header and the payload (trimmed to Total Length).

    ``truncated_ok`` accepts a payload shorter than Total Length claims, as inside ICMP errors.
    """
    if len(data) < 20:
        raise PacketError("IPv4 header truncated")
    vihl, tos, total, ident, fo, ttl, proto, _ck = struct.unpack_from("!BBHHHBBH", data)
    if vihl >> 4 != 4:
        raise PacketError("not IPv4")
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or len(data) < ihl:
        raise PacketError("bad IPv4 header length")
    if total < ihl:
        raise PacketError("bad IPv4 total length")
    if len(data) < total and not truncated_ok:
        raise PacketError("IPv4 packet truncated")
    hdr = IPv4Header(tos, total, ident, fo, ttl, proto, bytes(data[12:16]), bytes(data[16:20]), ihl)
    return hdr, bytes(data[ihl:total])


def build_ipv4(
    src: bytes,
    dst: bytes,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    flags_offset: int = 0,
    total_length: int | None = None,
) -> bytes:
    """Build an IPv4 packet (no options) with a correct header checksum.

    ``total_length`` overrides the length field for inner packets of ICMP errors, which keep the
    original datagram's length although their payload is truncated.
    """
    length = 20 + len(payload) if total_length is None else total_length
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, length, identification, flags_offset, ttl, protocol, 0, src, dst
    )
    ck = checksum(hdr)
    return hdr[:10] + ck.to_bytes(2, "big") + hdr[12:] + payload


# --- IPv6 --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class IPv6Header:
    traffic_class: int
    flow_label: int
    payload_length: int
    next_header: int  # upper-layer protocol after skipping extension headers
    hop_limit: int
    src: bytes
    dst: bytes
    # Fragment header fields, when present:
    fragment: bool = False
    frag_offset: int = 0  # bytes
    more_fragments: bool = False
    frag_id: int = 0
    # Length of the upper-layer payload this packet claims (payload length minus extension headers).
    upper_length: int = 0

    @property
    def is_fragment(self) -> bool:
        return self.fragment and (self.more_fragments or self.frag_offset != 0)


def parse_ipv6(data: bytes, *, truncated_ok: bool = False) -> tuple[IPv6Header, bytes]:
    """Parse an IPv6 header and skip Hop-by-Hop, Routing, Destination Options and Fragment headers.

    Returns the header (``next_header`` is the upper-layer protocol) and the upper-layer payload.
    """
    if len(data) < 40:
        raise PacketError("IPv6 header truncated")
    vtf, plen, nh, hlim = struct.unpack_from("!IHBB", data)
    if vtf >> 28 != 6:
        raise PacketError("not IPv6")
    end = 40 + plen
    if len(data) < end:
        if not truncated_ok:
            raise PacketError("IPv6 packet truncated")
        end = len(data)
    if plen == 0 and nh == IPPROTO_HOPOPTS:
        raise PacketError("jumbograms are not supported")
    hdr = IPv6Header((vtf >> 20) & 0xFF, vtf & 0xFFFFF, plen, nh, hlim, bytes(data[8:24]), bytes(data[24:40]))
    off = 40
    for _ in range(8):
        if nh in _SKIPPED_EXT:
            if off + 8 > end:
                raise PacketError("IPv6 extension header truncated")
            if nh == IPPROTO_ROUTING and data[off + 3] != 0:
                raise PacketError("routing header with segments left")
            nxt = data[off]
            off += (data[off + 1] + 1) * 8
            nh = nxt
        elif nh == IPPROTO_FRAGMENT:
            if hdr.fragment:
                raise PacketError("two IPv6 fragment headers")
            if off + 8 > end:
                raise PacketError("IPv6 fragment header truncated")
            nxt, _r, offm, ident = struct.unpack_from("!BBHI", data, off)
            hdr.fragment = True
            hdr.frag_offset = offm & 0xFFF8
            hdr.more_fragments = bool(offm & 1)
            hdr.frag_id = ident
            off += 8
            nh = nxt
        else:
            break
    else:
        raise PacketError("too many IPv6 extension headers")
    if off > end:
        raise PacketError("IPv6 extension header truncated")
    hdr.next_header = nh
    hdr.upper_length = 40 + plen - off
    return hdr, bytes(data[off:end])


def build_ipv6(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload: bytes,
    *,
    hop_limit: int = 64,
    traffic_class: int = 0,
    flow_label: int = 0,
    fragment: tuple[int, bool, int] | None = None,
    payload_length: int | None = None,
) -> bytes:
    """Build an IPv6 packet; ``fragment`` = (offset in bytes, more fragments, identification) adds a
    Fragment header. ``payload_length`` overrides the length field (inner packets of ICMP errors)."""
    ext = b""
    nh = next_header
    if fragment is not None:
        foff, more, ident = fragment
        ext = struct.pack("!BBHI", next_header, 0, (foff & 0xFFF8) | int(more), ident)
        nh = IPPROTO_FRAGMENT
    plen = len(ext) + len(payload) if payload_length is None else payload_length
    vtf = (6 << 28) | ((traffic_class & 0xFF) << 20) | (flow_label & 0xFFFFF)
    return struct.pack("!IHBB", vtf, plen, nh, hop_limit) + src + dst + ext + payload
