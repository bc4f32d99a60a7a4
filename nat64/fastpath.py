"""Established-flow fast path of the NAT64 translator.

Why it exists: the full RFC 7915 path (:mod:`nat64.translator`) parses every header into objects, checks
the prefix, looks the session up by a tuple and rebuilds the packet, which costs over ten microseconds
per packet in CPython. Yet every packet of a UDP flow or of an established TCP connection is translated
exactly like the one before it: same addresses, same ports, same checksum delta (RFC 1624). Only the
length, traffic class/TOS, TTL/hop limit, IPv4 identification and the transport checksum change. So the
slow path, after translating such a packet, hands this module what it computed (:meth:`FastPath.learn6`,
:meth:`FastPath.learn4`); later packets of the flow are found by one dictionary lookup on their raw
address and port bytes and rebuilt with one ``struct`` call.

How it stays consistent with the slow path (the tests compare both byte for byte):

- It only learns from a packet the slow path has just translated, with the session the slow path chose,
  and only for the plain case: no extension headers or IPv4 options, not a fragment, nothing trailing
  the datagram, UDP with a checksum, TCP in ESTABLISHED.
- It answers only packets the slow path would translate the same way and returns ``None`` (take the slow
  path) for everything else: another version, length mismatch, a fragment, IPv4 options, a bad IPv4
  header checksum, TTL/hop limit <= 1 (ICMP Time Exceeded), a packet past the MTU (ICMP errors,
  fragmentation), UDP without a checksum, TCP with SYN, FIN or RST (state transitions), a session no
  longer ESTABLISHED or removed.
- It does the slow path's bookkeeping the same way: the session's packet/byte counts and lifetime
  (read from the table's current timeouts, so a reload applies), the translated counters, and the IPv4
  identification counter it shares with the slow path.
- Entries die with their session: :meth:`forget_removed` runs from ``Nat64.expire``; a removed session
  is also refused per packet.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from nat64.packets import IPPROTO_UDP, IPV4_DF
from nat64.state import Session, TcpState

if TYPE_CHECKING:
    from nat64.translator import Nat64

__all__ = ["FastPath"]

_IPV6_MIN_MTU = 1280
_ESTABLISHED = TcpState.ESTABLISHED
_TCP_SYN_FIN_RST = 0x07

# IPv4 header + UDP ports, length, checksum: (version/IHL/TOS, total length, identification,
# flags/offset << 16 | TTL << 8 | protocol, header checksum, addresses + ports, UDP length + checksum).
_V4_UDP = struct.Struct("!HHHIH12sI")
_V4_TCP = struct.Struct("!HHHIH12s")  # the same up to the ports
# IPv6 header + ports: (version/traffic class/flow label, payload length, next header + hop limit,
# addresses + ports) and, for UDP, length + checksum.
_V6_UDP = struct.Struct("!IHH36sI")
_V6_TCP = struct.Struct("!IHH36s")
_U32 = struct.Struct("!I")
_H16 = struct.Struct("!H")
_V6_HEAD = struct.Struct("!IH")  # version/traffic class/flow label, payload length
_V4_HEAD = struct.Struct("!BBHHHB")  # version/IHL, TOS, total length, identification, flags/offset, TTL


class _Flow6:
    """What the slow path worked out for one IPv6 → IPv4 flow (one hop limit, one IPv6 destination)."""

    __slots__ = ("addrs_ports", "delta", "head_sum", "session", "ttl_proto", "udp")

    def __init__(self, session: Session, udp: bool, ttl_proto: int, head_sum: int, addrs_ports: bytes,
                 delta: int) -> None:
        self.session = session
        self.udp = udp
        self.ttl_proto = ttl_proto  # TTL << 8 | protocol
        self.head_sum = head_sum  # one's-complement sum of the header words that never change
        self.addrs_ports = addrs_ports  # pool address, remote address, pool port, remote port
        self.delta = delta  # transport checksum delta (addresses and ports)


class _Flow4:
    """What the slow path worked out for one IPv4 → IPv6 flow."""

    __slots__ = ("addrs_ports", "delta", "nh", "proto", "session", "udp")

    def __init__(self, session: Session, udp: bool, proto: int, addrs_ports: bytes, delta: int) -> None:
        self.session = session
        self.udp = udp
        self.proto = proto
        self.nh = proto << 8  # next header in the high byte of the next header/hop limit word
        self.addrs_ports = addrs_ports  # remote address in the prefix, IPv6 host, remote port, host port
        self.delta = delta


def _fix(old: int, delta: int) -> int:
    """RFC 1624 eqn. 3 with a precomputed delta, folded like :func:`nat64.packets.checksum_apply`."""
    x = (~old & 0xFFFF) + delta
    x = (x & 0xFFFF) + (x >> 16)
    x = (x & 0xFFFF) + (x >> 16)
    return ~x & 0xFFFF


class FastPath:
    """Per-flow templates for the packets of established sessions, both directions."""

    def __init__(self, nat: Nat64, max_flows: int = 65536) -> None:
        self.nat = nat
        self.max_flows = max_flows
        # Keyed by packet[6:44] (next header, hop limit, addresses, ports) of IPv6 packets and by
        # packet[12:24] (addresses, ports) of IPv4 packets, exactly as they arrive.
        self.v6: dict[bytes, _Flow6] = {}
        self.v4: dict[bytes, _Flow4] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self.v6) + len(self.v4)

    def clear(self) -> None:
        self.v6.clear()
        self.v4.clear()

    def forget_removed(self) -> None:
        """Drop the templates of sessions the table has removed."""
        for table in (self.v6, self.v4):
            dead = [k for k, f in table.items() if f.session.removed]
            for k in dead:
                del table[k]

    # --- learning (called by the slow path after translating a packet) -------------------------------

    def learn6(self, packet: bytes, s: Session, proto: int, dst4: bytes, delta: int) -> None:
        """Remember the translation of ``packet`` (IPv6, no extension headers, not a fragment)."""
        if len(self.v6) >= self.max_flows:
            self.v6.clear()
        b = s.bib
        addrs_ports = b.v4_addr + dst4 + _H16.pack(b.v4_port) + packet[42:44]
        ttl_proto = ((packet[7] - 1) << 8) | proto
        head_sum = ttl_proto + sum(_H16.unpack_from(addrs_ports, i)[0] for i in range(0, 8, 2))
        self.v6[packet[6:44]] = _Flow6(s, proto == IPPROTO_UDP, ttl_proto, head_sum, addrs_ports, delta)

    def learn4(self, packet: bytes, s: Session, proto: int, src6: bytes, delta: int) -> None:
        """Remember the translation of ``packet`` (IPv4 without options, not a fragment)."""
        if len(self.v4) >= self.max_flows:
            self.v4.clear()
        b = s.bib
        addrs_ports = src6 + b.v6_addr + packet[20:22] + _H16.pack(b.v6_port)
        self.v4[packet[12:24]] = _Flow4(s, proto == IPPROTO_UDP, proto, addrs_ports, delta)

    # --- translating --------------------------------------------------------------------------------

    def from_v6(self, packet: bytes, now: float) -> bytes | None:
        """The IPv4 packet for ``packet``, or ``None`` when the slow path must handle it."""
        f = self.v6.get(packet[6:44])
        if f is None:
            return None
        s = f.session
        n = len(packet)
        vtf, plen = _V6_HEAD.unpack_from(packet)
        if vtf >> 28 != 6 or plen != n - 40 or s.removed:
            return None
        nat = self.nat
        total = n - 20
        if total > nat.ipv4_mtu:
            return None
        if f.udp:
            if plen < 8:
                return None
            ulen_ck = _U32.unpack_from(packet, 44)[0]
            old = ulen_ck & 0xFFFF
            if old == 0:
                return None
            ck = _fix(old, f.delta) or 0xFFFF
        else:
            if plen < 20 or packet[53] & _TCP_SYN_FIN_RST or s.state is not _ESTABLISHED:
                return None
            ck = _fix(_H16.unpack_from(packet, 56)[0], f.delta)
        ident = nat._ident = (nat._ident + 1) & 0xFFFF
        w0 = 0x4500 | ((vtf >> 20) & 0xFF)
        df = IPV4_DF if total > _IPV6_MIN_MTU - 20 else 0  # RFC 7915 §5.1, as in the slow path
        x = f.head_sum + w0 + total + ident + df
        x = (x & 0xFFFF) + (x >> 16)
        x = (x & 0xFFFF) + (x >> 16)
        hck = ~x & 0xFFFF
        if f.udp:
            out = _V4_UDP.pack(w0, total, ident, (df << 16) | f.ttl_proto, hck, f.addrs_ports,
                               (ulen_ck & 0xFFFF0000) | ck) + packet[48:]
        else:
            out = (_V4_TCP.pack(w0, total, ident, (df << 16) | f.ttl_proto, hck, f.addrs_ports) + packet[44:56]
                   + _H16.pack(ck) + packet[58:])
        s.packets_6to4 += 1
        s.bytes_6to4 += n
        t = nat.table.timeouts
        if f.udp:
            s.expires = now + t.udp
            nat.counters.translated_6to4["udp"] += 1
        else:
            s.expires = now + t.tcp_established
            nat.counters.translated_6to4["tcp"] += 1
        self.hits += 1
        return out

    def from_v4(self, packet: bytes, now: float) -> bytes | None:
        """The IPv6 packet for ``packet``, or ``None`` when the slow path must handle it."""
        f = self.v4.get(packet[12:24])
        if f is None:
            return None
        s = f.session
        n = len(packet)
        vihl, tos, total, _ident, fo, ttl = _V4_HEAD.unpack_from(packet)
        if (vihl != 0x45 or total != n or fo & 0x3FFF or ttl <= 1 or packet[9] != f.proto or s.removed
                or int.from_bytes(packet[:20], "big") % 0xFFFF):  # bad header checksum
            return None
        nat = self.nat
        plen = n - 20
        if plen + 40 > nat.ipv6_mtu:
            return None
        vtf = 0x60000000 | (tos << 20)
        nh_hl = f.nh | (ttl - 1)
        if f.udp:
            if plen < 8:
                return None
            ulen_ck = _U32.unpack_from(packet, 24)[0]
            old = ulen_ck & 0xFFFF
            if old == 0:
                return None
            ck = _fix(old, f.delta) or 0xFFFF
            out = _V6_UDP.pack(vtf, plen, nh_hl, f.addrs_ports, (ulen_ck & 0xFFFF0000) | ck) + packet[28:]
        else:
            if plen < 20 or packet[33] & _TCP_SYN_FIN_RST or s.state is not _ESTABLISHED:
                return None
            ck = _fix(_H16.unpack_from(packet, 36)[0], f.delta)
            out = _V6_TCP.pack(vtf, plen, nh_hl, f.addrs_ports) + packet[24:36] + _H16.pack(ck) + packet[38:]
        s.packets_4to6 += 1
        s.bytes_4to6 += n
        t = nat.table.timeouts
        if f.udp:
            s.expires = now + t.udp
            nat.counters.translated_4to6["udp"] += 1
        else:
            s.expires = now + t.tcp_established
            nat.counters.translated_4to6["tcp"] += 1
        self.hits += 1
        return out

