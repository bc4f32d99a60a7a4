"""RFC 7915 header translation building blocks (the stateless part of the translator).

These functions rewrite one header at a time and never look at the BIB; :mod:`nat64.translator` decides
which addresses and ports to put in. Transport checksums are fixed incrementally (RFC 1624) so they stay
right for non-first fragments and for truncated packets inside ICMP errors.
"""

from __future__ import annotations

import struct

from common.checksum import checksum, checksum_adjust, checksum_apply, checksum_delta, ones_sum, pseudo_sum_v6
from nat64.packets import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PacketError, build_ipv6

IPV6_MIN_MTU = 1280
ICMP4_ERROR_MAX = 576  # RFC 1812 §4.3.2.3
ICMP6_ERROR_MAX = IPV6_MIN_MTU  # RFC 4443 §2.4(c)

# ICMPv4 types
ICMP4_ECHO_REPLY = 0
ICMP4_DEST_UNREACH = 3
ICMP4_ECHO_REQUEST = 8
ICMP4_TIME_EXCEEDED = 11
ICMP4_PARAM_PROBLEM = 12
ICMP4_ERRORS = frozenset({ICMP4_DEST_UNREACH, ICMP4_TIME_EXCEEDED, ICMP4_PARAM_PROBLEM, 4, 5})
ICMP4_FRAG_NEEDED = 4  # code under DEST_UNREACH
ICMP4_PORT_UNREACH = 3

# ICMPv6 types
ICMP6_DEST_UNREACH = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_PARAM_PROBLEM = 4
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ICMP6_ADMIN_PROHIBITED = 1  # code under DEST_UNREACH
ICMP6_ADDR_UNREACH = 3
ICMP6_PORT_UNREACH = 4

# RFC 1191 plateau table, for Fragmentation Needed messages from old routers with a zero MTU field.
_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)

# RFC 7915 §4.2 Figure 3 (IPv4 pointer → IPv6 pointer) and §5.2 Figure 6 (IPv6 → IPv4).
_PTR_4TO6 = {0: 0, 1: 1, 2: 4, 3: 4, 8: 7, 9: 6, **{i: 8 for i in range(12, 16)}, **{i: 24 for i in range(16, 20)}}
_PTR_6TO4 = {0: 0, 1: 1, 4: 2, 5: 2, 6: 9, 7: 8, **{i: 12 for i in range(8, 24)}, **{i: 16 for i in range(24, 40)}}

# RFC 7915 §4.2: ICMPv4 Destination Unreachable code → ICMPv6 (type, code); missing codes are dropped.
_UNREACH_4TO6 = {
    0: (1, 0), 1: (1, 0), 3: (1, 4), 5: (1, 0), 6: (1, 0), 7: (1, 0), 8: (1, 0),
    9: (1, 1), 10: (1, 1), 11: (1, 0), 12: (1, 0), 13: (1, 1), 15: (1, 1),
}
# RFC 7915 §5.2: ICMPv6 Destination Unreachable code → ICMPv4 (type, code).
_UNREACH_6TO4 = {0: (3, 1), 1: (3, 10), 2: (3, 1), 3: (3, 1), 4: (3, 3)}


class Untranslatable(Exception):  # a drop reason, not a failure
    """An ICMP message RFC 7915 says to silently drop; ``reason`` is the counter name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def l4_ports(proto: int, payload: bytes) -> tuple[int, int]:
    if len(payload) < 4:
        raise PacketError("transport header truncated")
    return struct.unpack_from("!HH", payload)


def rewrite_ports(
    proto: int, payload: bytes, old_addr_sum: int, new_addr_sum: int, sport: int, dport: int
) -> bytes:
    """Replace UDP/TCP ports and fix the checksum for both the port and pseudo-header changes.

    Only the addresses need to enter the sums: protocol and length are equal in both pseudo-headers.
    A payload too short to hold the checksum (truncated inner packet) just gets its ports.
    """
    delta = port_rewrite_delta(payload, old_addr_sum, new_addr_sum, sport, dport)
    return rewrite_ports_delta(proto, payload, sport, dport, delta)


def port_rewrite_delta(payload: bytes, old_addr_sum: int, new_addr_sum: int, sport: int, dport: int) -> int:
    """Checksum delta for rewriting addresses and ports; the same for every packet of a session."""
    return checksum_delta(old_addr_sum + ((payload[0] << 8) | payload[1]) + ((payload[2] << 8) | payload[3]),
                          new_addr_sum + sport + dport)


def rewrite_ports_delta(proto: int, payload: bytes, sport: int, dport: int, delta: int) -> bytes:
    """:func:`rewrite_ports` with a precomputed :func:`port_rewrite_delta`."""
    new_ports = struct.pack("!HH", sport, dport)
    off = 16 if proto == IPPROTO_TCP else 6
    if len(payload) < off + 2:
        return new_ports + payload[4:]
    old_ck = (payload[off] << 8) | payload[off + 1]
    if proto == IPPROTO_UDP and old_ck == 0:
        # No checksum (IPv4 only): the caller decides whether to compute one; leave it untouched here.
        return new_ports + payload[4:]
    ck = checksum_apply(old_ck, delta)
    if proto == IPPROTO_UDP and ck == 0:
        ck = 0xFFFF
    return new_ports + payload[4:off] + ck.to_bytes(2, "big") + payload[off + 2 :]


def udp_fill_checksum(payload: bytes, pseudo_sum: int) -> bytes:
    """Compute the UDP checksum an IPv4 sender left zero; IPv6 requires one (RFC 7915 §4.5)."""
    if len(payload) < 8:
        raise PacketError("UDP header truncated")
    body = payload[:6] + b"\x00\x00" + payload[8:]
    ck = checksum(body, pseudo_sum) or 0xFFFF
    return payload[:6] + ck.to_bytes(2, "big") + payload[8:]


def echo_rewrite(payload: bytes, new_type: int, ident: int, old_sum: int, new_sum: int) -> bytes:
    """Echo Request/Reply between ICMPv4 and ICMPv6: new type and identifier, checksum adjusted.

    ``old_sum``/``new_sum`` carry the pseudo-header of whichever side is ICMPv6 (ICMPv4 has none).
    """
    if len(payload) < 8:
        raise PacketError("ICMP echo truncated")
    old_ck = (payload[2] << 8) | payload[3]
    head_old = payload[0:2] + payload[4:6]
    head_new = bytes((new_type, 0)) + ident.to_bytes(2, "big")
    ck = checksum_adjust(old_ck, old_sum + ones_sum(head_old), new_sum + ones_sum(head_new))
    return head_new[:2] + ck.to_bytes(2, "big") + head_new[2:] + payload[6:]


# --- ICMP type/code mapping ------------------------------------------------------------------------


def icmp4_error_to_6(icmp_type: int, code: int, rest: bytes, inner_len: int, ipv6_mtu: int,
                     ipv4_mtu: int) -> tuple[int, int, bytes]:
    """(type, code, 4-byte rest) of an ICMPv4 error → ICMPv6 (RFC 7915 §4.2)."""
    if icmp_type == ICMP4_DEST_UNREACH:
        if code == ICMP4_FRAG_NEEDED:
            mtu4 = (rest[2] << 8) | rest[3]
            if mtu4 == 0:  # RFC 1191 §5: pick the plateau below the failing datagram's length
                mtu4 = next((p for p in _PLATEAUS if p < inner_len), 68)
            mtu6 = max(IPV6_MIN_MTU, min(mtu4 + 20, ipv6_mtu, ipv4_mtu + 20))
            return ICMP6_PACKET_TOO_BIG, 0, mtu6.to_bytes(4, "big")
        if code == 2:  # protocol unreachable → parameter problem pointing at Next Header
            return ICMP6_PARAM_PROBLEM, 1, (6).to_bytes(4, "big")
        mapped = _UNREACH_4TO6.get(code)
        if mapped is None:
            raise Untranslatable("icmp_untranslatable")
        return mapped[0], mapped[1], b"\x00\x00\x00\x00"
    if icmp_type == ICMP4_TIME_EXCEEDED:
        if code > 1:
            raise Untranslatable("icmp_untranslatable")
        return ICMP6_TIME_EXCEEDED, code, b"\x00\x00\x00\x00"
    if icmp_type == ICMP4_PARAM_PROBLEM:
        if code not in (0, 2):
            raise Untranslatable("icmp_untranslatable")
        ptr = _PTR_4TO6.get(rest[0])
        if ptr is None:
            raise Untranslatable("icmp_untranslatable")
        return ICMP6_PARAM_PROBLEM, 0, ptr.to_bytes(4, "big")
    raise Untranslatable("icmp_untranslatable")


def icmp6_error_to_4(icmp_type: int, code: int, rest: bytes, ipv6_mtu: int,
                     ipv4_mtu: int) -> tuple[int, int, bytes]:
    """(type, code, 4-byte rest) of an ICMPv6 error → ICMPv4 (RFC 7915 §5.2)."""
    if icmp_type == ICMP6_DEST_UNREACH:
        mapped = _UNREACH_6TO4.get(code)
        if mapped is None:
            raise Untranslatable("icmp_untranslatable")
        return mapped[0], mapped[1], b"\x00\x00\x00\x00"
    if icmp_type == ICMP6_PACKET_TOO_BIG:
        mtu6 = int.from_bytes(rest, "big")
        mtu4 = max(68, min(mtu6 - 20, ipv4_mtu, ipv6_mtu - 20, 0xFFFF))
        return ICMP4_DEST_UNREACH, ICMP4_FRAG_NEEDED, mtu4.to_bytes(4, "big")
    if icmp_type == ICMP6_TIME_EXCEEDED:
        if code > 1:
            raise Untranslatable("icmp_untranslatable")
        return ICMP4_TIME_EXCEEDED, code, b"\x00\x00\x00\x00"
    if icmp_type == ICMP6_PARAM_PROBLEM:
        if code == 1:
            return ICMP4_DEST_UNREACH, 2, b"\x00\x00\x00\x00"
        if code != 0:
            raise Untranslatable("icmp_untranslatable")
        ptr = _PTR_6TO4.get(int.from_bytes(rest, "big"))
        if ptr is None:
            raise Untranslatable("icmp_untranslatable")
        return ICMP4_PARAM_PROBLEM, 0, bytes((ptr, 0, 0, 0))
    raise Untranslatable("icmp_untranslatable")


# --- building ICMP messages ------------------------------------------------------------------------


def build_icmp4(icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    """ICMPv4 message (no IP header) with checksum."""
    msg = bytes((icmp_type, code, 0, 0)) + rest + body
    ck = checksum(msg)
    return msg[:2] + ck.to_bytes(2, "big") + msg[4:]


def build_icmp6(src: bytes, dst: bytes, icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    """ICMPv6 message (no IP header) with checksum over the pseudo-header."""
    msg = bytes((icmp_type, code, 0, 0)) + rest + body
    ck = checksum(msg, pseudo_sum_v6(src, dst, IPPROTO_ICMPV6, len(msg)))
    return msg[:2] + ck.to_bytes(2, "big") + msg[4:]


def icmp6_error_packet(src: bytes, dst: bytes, icmp_type: int, code: int, rest: bytes, invoking: bytes,
                       hop_limit: int = 64) -> bytes:
    """Complete IPv6 packet carrying an ICMPv6 error about ``invoking``, truncated to 1280 bytes."""
    body = invoking[: ICMP6_ERROR_MAX - 48]
    return build_ipv6(src, dst, IPPROTO_ICMPV6, build_icmp6(src, dst, icmp_type, code, rest, body),
                      hop_limit=hop_limit)


def verify_icmp4(msg: bytes) -> bool:
    return len(msg) >= 8 and checksum(msg) == 0


def verify_icmp6(src: bytes, dst: bytes, msg: bytes) -> bool:
    return len(msg) >= 8 and checksum(msg, pseudo_sum_v6(src, dst, IPPROTO_ICMPV6, len(msg))) == 0


# --- fragmentation ---------------------------------------------------------------------------------


def fragment_ipv6(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload: bytes,
    *,
    mtu: int,
    ident: int,
    offset: int = 0,
    more: bool = False,
    hop_limit: int = 64,
    traffic_class: int = 0,
) -> list[bytes]:
    """Split ``payload`` (which starts at byte ``offset`` of the original datagram) into IPv6 fragments
    of at most ``mtu`` bytes; the last piece keeps the caller's More Fragments flag."""
    chunk = (mtu - 48) & ~7
    if chunk <= 0:
        raise PacketError("MTU too small to fragment")
    out = []
    pos = 0
    n = len(payload)
    while True:
        piece = payload[pos : pos + chunk]
        last = pos + chunk >= n
        out.append(
            build_ipv6(src, dst, next_header, piece, hop_limit=hop_limit, traffic_class=traffic_class,
                       fragment=(offset + pos, more if last else True, ident))
        )
        if last:
            return out
        pos += chunk


PROTO_NAMES = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp", IPPROTO_ICMP: "icmp", IPPROTO_ICMPV6: "icmp"}
