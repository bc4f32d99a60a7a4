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

:meth:`FastPath.from_v6` and :meth:`FastPath.from_v4` below are the reference. Where the package was
built with a C compiler, ``nat64/_fastpath.c`` does the same steps on the same objects natively; the tests
run every case through both and compare them byte for byte. ``FastPath.native`` says which one runs.
Its :meth:`FastPath.pump` runs without the GIL and counts in C the packets of the flows it has met in
one call, writing the same counts, lifetimes and identification back when it returns: that is what puts
the builtin backend under Tayga's CPU per packet (see docs/nat64.md).
"""

from __future__ import annotations

import logging
import os
import select
import struct
import time
from typing import TYPE_CHECKING, NamedTuple

from nat64.packets import IPPROTO_UDP, IPV4_DF
from nat64.state import Session, TcpState

if TYPE_CHECKING:
    from nat64.translator import Nat64

try:
    from nat64._fastpath import Translator as _NativeTranslator
except ImportError:  # built without a C compiler: the Python methods below run
    _NativeTranslator = None

__all__ = ["MAX_PACKET", "FastPath"]

log = logging.getLogger(__name__)

MAX_PACKET = 40 + 0xFFFF  # an IPv6 header and the largest payload length: no TUN read is longer

_ESTABLISHED = TcpState.ESTABLISHED
_TCP_SYN_FIN_RST = 0x07
_DF_ABOVE = 1260  # RFC 7915 §5.1: DF only on IPv4 packets above 1260 bytes, as in the slow path
_DF_WORD = IPV4_DF << 16  # DF in the flags/offset << 16 | TTL << 8 | protocol word

# Incoming headers. IPv6: version/traffic class/flow label, payload length, and for UDP (at 44) length,
# checksum. IPv4: version/IHL, TOS, total length, identification, flags/offset, TTL, (protocol),
# header checksum, and for UDP (at 24) length, checksum.
_V6_IN = struct.Struct("!IH")
_V6_UDP_IN = struct.Struct("!IH38xHH")
_V4_IN = struct.Struct("!BBHHHBxH")
_V4_UDP_IN = struct.Struct("!BBHHHBxH12xHH")
# Outgoing headers up to the transport checksum. IPv4: version/IHL/TOS, total length, identification,
# flags/offset + TTL + protocol, header checksum, addresses + ports (+ UDP length, checksum).
_V4_UDP_OUT = struct.Struct("!HHHIH12sHH")
_V4_TCP_OUT = struct.Struct("!HHHIH12s")
# IPv6: version/traffic class/flow label, payload length, next header + hop limit, addresses + ports
# (+ UDP length, checksum).
_V6_UDP_OUT = struct.Struct("!IHH36sHH")
_V6_TCP_OUT = struct.Struct("!IHH36s")
_H16 = struct.Struct("!H")


def _wait_readable(fd: int, wake: int, deadline: float) -> bool:
    """Sleep until ``fd`` is readable (True), or ``wake`` is (emptied) or ``deadline`` passes (False)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(wake, select.POLLIN)
    while True:
        timeout = None
        if deadline >= 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            timeout = min(3600_000, int(left * 1000) + 1)
        events = dict(poller.poll(timeout))
        if events.get(wake):
            while True:
                try:
                    if not os.read(wake, 256):
                        break
                except BlockingIOError:
                    break
            return False
        if events.get(fd):
            return True


class Flow6(NamedTuple):
    """What the slow path worked out for one IPv6 → IPv4 flow (one hop limit, one IPv6 destination)."""

    session: Session
    udp: bool
    ttl_proto: int  # TTL << 8 | protocol
    head_sum: int  # sum of the IPv4 header words that never change (version/IHL, TTL/protocol, addresses) - 1
    addrs_ports: bytes  # pool address, remote address, pool port, remote port
    delta: int  # transport checksum delta for the address and port changes (RFC 1624)


class Flow4(NamedTuple):
    """What the slow path worked out for one IPv4 → IPv6 flow."""

    session: Session
    udp: bool
    proto: int
    head_sum: int  # sum of the IPv4 header words a valid packet of the flow always has (protocol, addresses)
    addrs_ports: bytes  # remote address in the prefix, IPv6 host, remote port, host port
    delta: int


class FastPath:
    """Per-flow templates for the packets of established sessions, both directions."""

    def __init__(self, nat: Nat64, max_flows: int = 65536, *, native: bool = True) -> None:
        self.nat = nat
        self.max_flows = max_flows
        # Keyed by packet[6:44] (next header, hop limit, addresses, ports) of IPv6 packets and by
        # packet[12:24] (addresses, ports) of IPv4 packets, exactly as they arrive.
        self.v6: dict[bytes, Flow6] = {}
        self.v4: dict[bytes, Flow4] = {}
        self._counters = nat.table.counters
        # Packets translated here and not yet added to the counters: UDP 6to4, TCP 6to4, UDP 4to6, TCP
        # 4to6 (a list item is cheaper to bump than a Counter entry); see flush_counts.
        self.pending = [0, 0, 0, 0]
        self.flushed = 0
        # The native twin works on these same dicts and list, so they are never replaced, only emptied.
        self.native = native and _NativeTranslator is not None
        if self.native:
            twin = _NativeTranslator(self.v6, self.v4, nat, self.pending, _ESTABLISHED)
            self.from_v6 = twin.from_v6  # type: ignore[method-assign]
            self.from_v4 = twin.from_v4  # type: ignore[method-assign]
            self.pump = twin.pump  # type: ignore[method-assign]

    def __len__(self) -> int:
        return len(self.v6) + len(self.v4)

    @property
    def hits(self) -> int:
        """Packets this fast path has translated."""
        return self.flushed + sum(self.pending)

    def flush_counts(self) -> None:
        """Add the pending per-packet counts to the translator's counters (``Nat64.counters`` does)."""
        p = self.pending
        if any(p):
            c = self._counters
            u6, t6, u4, t4 = p
            for counter, name, n in ((c.translated_6to4, "udp", u6), (c.translated_6to4, "tcp", t6),
                                     (c.translated_4to6, "udp", u4), (c.translated_4to6, "tcp", t4)):
                if n:
                    counter[name] += n
            self.flushed += u6 + t6 + u4 + t4
            p[:] = [0, 0, 0, 0]

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
        # less one: the per-packet checksum takes (x - 1) % 0xFFFF
        head_sum = 0x4500 + ttl_proto + sum(_H16.unpack_from(addrs_ports, i)[0] for i in range(0, 8, 2)) - 1
        self.v6[packet[6:44]] = Flow6(s, proto == IPPROTO_UDP, ttl_proto, head_sum, addrs_ports, delta)

    def learn4(self, packet: bytes, s: Session, proto: int, src6: bytes, delta: int) -> None:
        """Remember the translation of ``packet`` (IPv4 without options, not a fragment)."""
        if len(self.v4) >= self.max_flows:
            self.v4.clear()
        b = s.bib
        addrs_ports = src6 + b.v6_addr + packet[20:22] + _H16.pack(b.v6_port)
        head_sum = 0x4500 + proto + sum(_H16.unpack_from(packet, i)[0] for i in range(12, 20, 2))
        self.v4[packet[12:24]] = Flow4(s, proto == IPPROTO_UDP, proto, head_sum, addrs_ports, delta)

    # --- translating --------------------------------------------------------------------------------
    # Straight-line code on purpose: this is the per-packet cost of the translator.
    #
    # Checksums: for 0 < x < 2**32, the end-around-carry fold of x is (x - 1) % 0xFFFF + 1, so
    # ~fold(x) & 0xFFFF == 0xFFFE - (x - 1) % 0xFFFF. That is common.checksum.checksum_apply and the
    # IPv4 header checksum of build_ipv4 in one modulo; x > 0 always holds because the delta and the
    # header sums are positive (non-zero addresses).

    def from_v6(self, packet: bytes, now: float) -> bytes | None:
        """The IPv4 packet for ``packet``, or ``None`` when the slow path must handle it."""
        f = self.v6.get(packet[6:44])
        if f is None:
            return None
        s, udp, ttl_proto, head_sum, addrs_ports, delta = f
        n = len(packet)
        nat = self.nat
        total = n - 20
        if udp:
            if n < 48:
                return None
            vtf, plen, ulen, old = _V6_UDP_IN.unpack_from(packet)
            if vtf >> 28 != 6 or plen != n - 40 or not old or total > nat.ipv4_mtu or s.removed:
                return None
            ck = 0xFFFE - (0xFFFE - old + delta) % 0xFFFF
        else:
            if n < 60:
                return None
            vtf, plen = _V6_IN.unpack_from(packet)
            if (vtf >> 28 != 6 or plen != n - 40 or packet[53] & _TCP_SYN_FIN_RST or total > nat.ipv4_mtu
                    or s.state is not _ESTABLISHED or s.removed):
                return None
            ck = 0xFFFE - (0xFFFE - ((packet[56] << 8) | packet[57]) + delta) % 0xFFFF
        ident = nat._ident = (nat._ident + 1) & 0xFFFF
        tos = (vtf >> 20) & 0xFF
        if total > _DF_ABOVE:
            hck = 0xFFFE - (head_sum + tos + total + ident + IPV4_DF) % 0xFFFF
            ttl_proto |= _DF_WORD
        else:
            hck = 0xFFFE - (head_sum + tos + total + ident) % 0xFFFF
        s.packets_6to4 += 1
        s.bytes_6to4 += n
        if udp:
            s.expires = now + nat.table.timeouts.udp
            self.pending[0] += 1
            return _V4_UDP_OUT.pack(0x4500 | tos, total, ident, ttl_proto, hck, addrs_ports, ulen,
                                    ck or 0xFFFF) + packet[48:]
        s.expires = now + nat.table.timeouts.tcp_established
        self.pending[1] += 1
        return (_V4_TCP_OUT.pack(0x4500 | tos, total, ident, ttl_proto, hck, addrs_ports) + packet[44:56]
                + _H16.pack(ck) + packet[58:])

    def from_v4(self, packet: bytes, now: float) -> bytes | None:
        """The IPv6 packet for ``packet``, or ``None`` when the slow path must handle it."""
        f = self.v4.get(packet[12:24])
        if f is None:
            return None
        s, udp, proto, head_sum, addrs_ports, delta = f
        n = len(packet)
        nat = self.nat
        plen = n - 20
        if udp:
            if n < 28:
                return None
            vihl, tos, total, ident, fo, ttl, hck, ulen, old = _V4_UDP_IN.unpack_from(packet)
            if (vihl != 0x45 or total != n or fo & 0x3FFF or ttl <= 1 or not old or plen + 40 > nat.ipv6_mtu
                    or packet[9] != proto or s.removed):
                return None
            ck = 0xFFFE - (0xFFFE - old + delta) % 0xFFFF
        else:
            if n < 40:
                return None
            vihl, tos, total, ident, fo, ttl, hck = _V4_IN.unpack_from(packet)
            if (vihl != 0x45 or total != n or fo & 0x3FFF or ttl <= 1 or plen + 40 > nat.ipv6_mtu
                    or packet[9] != proto or packet[33] & _TCP_SYN_FIN_RST or s.state is not _ESTABLISHED
                    or s.removed):
                return None
            ck = 0xFFFE - (0xFFFE - ((packet[36] << 8) | packet[37]) + delta) % 0xFFFF
        # A right header checksum makes the header's words sum to a multiple of 0xFFFF.
        if (head_sum + tos + total + ident + fo + (ttl << 8) + hck) % 0xFFFF:
            return None
        s.packets_4to6 += 1
        s.bytes_4to6 += n
        if udp:
            s.expires = now + nat.table.timeouts.udp
            self.pending[2] += 1
            return _V6_UDP_OUT.pack(0x60000000 | (tos << 20), plen, (proto << 8) | (ttl - 1), addrs_ports, ulen,
                                    ck or 0xFFFF) + packet[28:]
        s.expires = now + nat.table.timeouts.tcp_established
        self.pending[3] += 1
        return (_V6_TCP_OUT.pack(0x60000000 | (tos << 20), plen, (proto << 8) | (ttl - 1), addrs_ports)
                + packet[24:36] + _H16.pack(ck) + packet[38:])

    # --- the datapath loop --------------------------------------------------------------------------

    def pump(self, fd: int, now: float, budget: int, wake: int = -1,
             deadline: float = -1.0) -> tuple[int, int, bytes | None, bool]:
        """Read packets from the non-blocking TUN ``fd`` and write back their translations, up to ``budget``.

        Why it is here rather than in the backend: the native twin runs this loop without creating a
        Python object per packet, which is most of what is left to save once the translation itself is
        native. It stops at the first packet this fast path does not take and returns it for the full
        path (``slow_packet``), or when ``fd`` would block (``drained``). A write that fails counts in
        ``write_errors`` (the packet is dropped, as a full TUN queue would). Returns ``(translated,
        write_errors, slow_packet, drained)``.

        With a ``wake`` fd (a pipe's read end) an empty ``fd`` is waited on here instead, until it has a
        packet, ``wake`` is readable (it is then emptied) or ``deadline`` (``time.monotonic()`` seconds,
        negative for none) passes; only the last two return ``drained``. Packets read after a wait are
        translated at ``time.monotonic()`` of their wake-up, and ``budget`` counts the packets read since
        the last wait (it bounds a run that never waits; requests come by ``wake``). Why: returning to
        the caller's loop for every wake-up costs more interpreter time per packet than the translation,
        at low rates where every packet is a wake-up (the added latency of the datapath); the native
        twin runs without the GIL and only takes it when it returns.
        """
        translated = errors = since_wait = 0
        while since_wait < budget:
            try:
                pkt = os.read(fd, MAX_PACKET + 1)
            except BlockingIOError:
                if wake >= 0 and _wait_readable(fd, wake, deadline):
                    now = time.monotonic()
                    since_wait = 0
                    continue
                return translated, errors, None, True
            except OSError:
                if translated:
                    return translated, errors, None, False  # report what was done; the next call raises
                raise
            if not pkt:
                return translated, errors, None, True
            version = pkt[0] >> 4
            try:
                out = self.from_v6(pkt, now) if version == 6 else self.from_v4(pkt, now) if version == 4 else None
            except Exception:  # a bug must not lose the packet: the full path takes it
                log.exception("NAT64 fast path error")
                out = None
            if out is None:
                return translated, errors, pkt, False
            translated += 1
            since_wait += 1
            try:
                if os.write(fd, out) != len(out):
                    errors += 1
            except OSError:
                errors += 1
        return translated, errors, None, False
