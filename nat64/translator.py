"""The stateful NAT64 core: IPv6 packets in from the mesh, IPv4 packets in from the uplink, outputs out.

Sans-I/O: :meth:`Nat64.from_v6` and :meth:`Nat64.from_v4` take bytes and an explicit clock and return
the packets to write, each tagged with the side to write it to (a translated packet, or an ICMP error
back towards the sender). Anything that cannot be translated is a counted drop, never an exception.

Oversized IPv4 packets without DF are fragmented on the IPv6 side (RFC 7915 §4: the translator MUST
fragment them), those with DF get Fragmentation Needed with the IPv6 MTU less 20 back. IPv6 fragments
are translated one by one: the first one creates or finds the session and is remembered by its
fragment identification so that later fragments follow it; a later fragment arriving first is dropped
and counted ("fragment_without_first"), as are fragmented ICMP messages ("fragmented_icmp").

Packets of established UDP/TCP flows take :mod:`nat64.fastpath` (the same translation, precomputed per
flow); everything else, and the first packet of every flow, takes the full path here.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from common.checksum import checksum, ones_sum, pseudo_sum_v6
from nat64.fastpath import FastPath
from nat64.packets import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_DF,
    IPV4_MF,
    IPv4Header,
    IPv6Header,
    PacketError,
    build_ipv4,
    build_ipv6,
    parse_ipv4,
    parse_ipv6,
)
from nat64.rfc6052 import Nat64Prefix, Rfc6052Error
from nat64.state import Caps, Counters, Direction, Proto, Refused, Session, SessionTable, TcpState, Timeouts
from nat64.translate import (
    ICMP4_DEST_UNREACH,
    ICMP4_ERROR_MAX,
    ICMP4_FRAG_NEEDED,
    ICMP4_PORT_UNREACH,
    ICMP4_TIME_EXCEEDED,
    ICMP6_ADDR_UNREACH,
    ICMP6_ADMIN_PROHIBITED,
    ICMP6_DEST_UNREACH,
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    ICMP6_PACKET_TOO_BIG,
    ICMP6_TIME_EXCEEDED,
    IPV6_MIN_MTU,
    Untranslatable,
    build_icmp4,
    echo_rewrite,
    fragment_ipv6,
    icmp4_error_to_6,
    icmp6_error_packet,
    icmp6_error_to_4,
    l4_ports,
    port_rewrite_delta,
    rewrite_ports,
    rewrite_ports_delta,
    udp_fill_checksum,
    verify_icmp4,
    verify_icmp6,
)

__all__ = ["Nat64", "Output", "Side"]

log = logging.getLogger(__name__)

_PROTO = {IPPROTO_UDP: Proto.UDP, IPPROTO_TCP: Proto.TCP}
_NAME = {Proto.UDP: "udp", Proto.TCP: "tcp", Proto.ICMP: "icmp"}
_ICMP6_ERRORS = frozenset({1, 2, 3, 4})
_ICMP4_ERRORS = frozenset({3, 11, 12})
_MAX_FRAGMENT_FLOWS = 4096
_FAST_STATES = (None, TcpState.ESTABLISHED)  # sessions whose next packets the fast path may translate


class Side(enum.Enum):
    """Where an output packet goes: the IPv4 network or the IPv6 (mesh) network."""

    V4 = 4
    V6 = 6


@dataclass(frozen=True, slots=True)
class Output:
    side: Side
    packet: bytes


class _Drop(Exception):  # control flow for a counted drop
    def __init__(self, reason: str, outputs: list[Output] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outputs = outputs or []


@dataclass(slots=True)
class _FragFlow:
    session: Session
    expires: float


def _pool_addresses(pool) -> list[bytes]:
    if isinstance(pool, str | IPv4Address | IPv4Network):
        pool = [pool]
    out: list[bytes] = []
    for item in pool:
        if isinstance(item, IPv4Network) or (isinstance(item, str) and "/" in item):
            net = IPv4Network(item)
            hosts = list(net.hosts()) if net.prefixlen < 31 else list(net)
            out.extend(a.packed for a in hosts)
        else:
            out.append(IPv4Address(item).packed)
    if not out:
        raise ValueError("the IPv4 pool is empty")
    return out


class Nat64:
    """Stateful NAT64 (RFC 6146) translating with RFC 7915 rules and RFC 6052 addresses.

    ``pool`` is one or more IPv4 addresses or networks the translator owns on the IPv4 side.
    """

    def __init__(
        self,
        prefix: str,
        pool,
        timeouts: Timeouts | None = None,
        caps: Caps | None = None,
        *,
        ipv6_mtu: int = IPV6_MIN_MTU,
        ipv4_mtu: int = 1500,
        endpoint_independent_filtering: bool = False,
        ipv6_address: str | None = None,
        ipv4_address: str | None = None,
        rng=None,
        fast_path: bool = True,
        native_fast_path: bool = True,
    ) -> None:
        self.prefix = Nat64Prefix(prefix)
        self.pool = _pool_addresses(pool)
        self._pool_set = frozenset(self.pool)
        if ipv6_mtu < IPV6_MIN_MTU or ipv4_mtu < 68:
            raise ValueError("MTU below the protocol minimum")
        self.ipv6_mtu = ipv6_mtu
        self.ipv4_mtu = ipv4_mtu
        self.table = SessionTable(
            self.pool, timeouts, caps, endpoint_independent_filtering=endpoint_independent_filtering, rng=rng
        )
        self._counters = self.table.counters
        # Source addresses of the ICMP errors the translator itself originates.
        self.router6 = (
            IPv6Address(ipv6_address).packed if ipv6_address else self.prefix.embed_packed(self.pool[0], check=False)
        )
        self.router4 = IPv4Address(ipv4_address).packed if ipv4_address else self.pool[0]
        self._ident = 0
        self._frag6: dict[tuple, _FragFlow] = {}
        self._frag4: dict[tuple, _FragFlow] = {}
        # Templates of established flows; None translates every packet the full way. native_fast_path=False
        # keeps the Python reference even where nat64/_fastpath.c is built (for tests and comparisons).
        self.fast: FastPath | None = (
            FastPath(self, max_flows=2 * self.table.caps.max_sessions + 64, native=native_fast_path)
            if fast_path else None
        )

    @property
    def counters(self) -> Counters:
        """Translated/dropped counters, including the fast path's (folded in on each read)."""
        if self.fast is not None:
            self.fast.flush_counts()
        return self._counters

    # --- public API ----------------------------------------------------------------------------------

    def from_v6(self, packet: bytes, now: float) -> list[Output]:
        """Translate a packet received from the IPv6 side."""
        return self._guard(self._from_v6, packet, now)

    def from_v4(self, packet: bytes, now: float) -> list[Output]:
        """Translate a packet received from the IPv4 side."""
        return self._guard(self._from_v4, packet, now)

    def slow_from_v6(self, packet: bytes, now: float) -> list[Output]:
        """:meth:`from_v6` without trying the fast path first (for a caller that just tried it)."""
        return self._guard(self._slow_v6, packet, now)

    def slow_from_v4(self, packet: bytes, now: float) -> list[Output]:
        """:meth:`from_v4` without trying the fast path first."""
        return self._guard(self._slow_v4, packet, now)

    def expiring(self) -> bool:
        """Whether anything can expire: without sessions or fragments a runner need not wake up."""
        return bool(self.table.by6 or self._frag6 or self._frag4)

    def next_expiry(self) -> float | None:
        """When something expires next, as of the last :meth:`expire` (None: nothing to expire)."""
        frags = [f.expires for cache in (self._frag6, self._frag4) for f in cache.values()]
        times = [t for t in (self.table.earliest, min(frags, default=None)) if t is not None]
        return min(times) if times else None

    def expire(self, now: float) -> int:
        """Drop expired sessions (and BIB entries without sessions); returns how many sessions went."""
        for cache in (self._frag6, self._frag4):
            for key in [k for k, f in cache.items() if f.expires <= now]:
                del cache[key]
        gone = self.table.expire(now)
        if gone and self.fast is not None:
            self.fast.forget_removed()
        return gone

    def mappings(self, now: float) -> list[dict]:
        return self.table.mappings(now, lambda d4: self.prefix.embed_packed(d4, check=False))

    def status(self) -> dict:
        return {
            "prefix": str(self.prefix.network),
            "pool": [str(IPv4Address(a)) for a in self.pool],
            "sessions": len(self.table),
            "bib_entries": len(self.table.bib),
            "ipv6_mtu": self.ipv6_mtu,
            "ipv4_mtu": self.ipv4_mtu,
            "fast_path_flows": len(self.fast) if self.fast is not None else None,
            "fast_path_packets": self.fast.hits if self.fast is not None else 0,
            # "native" (nat64/_fastpath.c), "python" (the reference: the extension was not built) or "off"
            "fast_path": "off" if self.fast is None else "native" if self.fast.native else "python",
        }

    # --- plumbing ------------------------------------------------------------------------------------

    def _guard(self, fn, packet: bytes, now: float) -> list[Output]:
        try:
            return fn(packet if type(packet) is bytes else bytes(packet), now)
        except _Drop as d:
            self.counters.drop(d.reason)
            return d.outputs
        except PacketError:
            self.counters.drop("malformed")
        except Untranslatable as u:
            self.counters.drop(u.reason)
        except Exception:  # a bug must not take the datapath down; it is logged and counted
            log.exception("NAT64 internal error")
            self.counters.drop("internal_error")
        return []

    def _next_ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def _error6(self, h: IPv6Header, invoking: bytes, icmp_type: int, code: int, rest: bytes = b"\0\0\0\0",
                kind: str = "") -> Output:
        self.counters.icmp_errors_sent[kind or f"icmp6_{icmp_type}_{code}"] += 1
        return Output(Side.V6, icmp6_error_packet(self.router6, h.src, icmp_type, code, rest, invoking))

    def _error4(self, h: IPv4Header, invoking: bytes, icmp_type: int, code: int, rest: bytes = b"\0\0\0\0",
                kind: str = "") -> Output:
        self.counters.icmp_errors_sent[kind or f"icmp4_{icmp_type}_{code}"] += 1
        body = invoking[: ICMP4_ERROR_MAX - 28]
        msg = build_icmp4(icmp_type, code, rest, body)
        return Output(Side.V4, build_ipv4(self.router4, h.src, IPPROTO_ICMP, msg, identification=self._next_ident()))

    def _extract(self, v6: bytes, reason: str) -> bytes:
        try:
            return self.prefix.extract_packed(v6)
        except Rfc6052Error:
            raise _Drop(reason) from None

    def _embed(self, v4: bytes, reason: str) -> bytes:
        try:
            return self.prefix.embed_packed(v4)
        except Rfc6052Error:
            raise _Drop(reason) from None

    # --- IPv6 → IPv4 ---------------------------------------------------------------------------------

    def _from_v6(self, packet: bytes, now: float) -> list[Output]:
        if self.fast is not None:
            out = self.fast.from_v6(packet, now)
            if out is not None:
                return [Output(Side.V4, out)]
        return self._slow_v6(packet, now)

    def _slow_v6(self, packet: bytes, now: float) -> list[Output]:
        h, pl = parse_ipv6(packet)
        if not self.prefix.contains(h.dst):
            raise _Drop("not_nat64_prefix")
        if self.prefix.contains(h.src):
            raise _Drop("source_in_prefix")
        nh = h.next_header
        first = h.frag_offset == 0
        if nh == IPPROTO_ICMPV6 and first:
            if len(pl) < 8:
                raise PacketError("ICMPv6 header truncated")
            if pl[0] in _ICMP6_ERRORS:
                return self._icmp6_error(h, pl, now)
            if pl[0] not in (ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY):
                raise _Drop("icmp_untranslatable")
        elif nh not in (IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMPV6):
            raise _Drop("unsupported_protocol")
        if h.hop_limit <= 1:
            raise _Drop("hop_limit_exceeded", [self._error6(h, packet, ICMP6_TIME_EXCEEDED, 0)])
        try:
            dst4 = self.prefix.extract_packed(h.dst)
        except Rfc6052Error:
            out = self._error6(h, packet, ICMP6_DEST_UNREACH, ICMP6_ADMIN_PROHIBITED)
            raise _Drop("non_global_destination", [out]) from None

        if not first:
            flow = self._frag6.get((h.src, h.dst, h.frag_id, nh))
            if flow is None or flow.expires <= now or flow.session.bib.sessions <= 0:
                raise _Drop("fragment_without_first")
            s = flow.session
            fo = (h.frag_offset >> 3) | (IPV4_MF if h.more_fragments else 0)
            proto4 = IPPROTO_ICMP if nh == IPPROTO_ICMPV6 else nh
            out = build_ipv4(s.bib.v4_addr, dst4, proto4, pl, ttl=h.hop_limit - 1, tos=h.traffic_class,
                             identification=h.frag_id & 0xFFFF, flags_offset=fo)
            self.table.touch(s, Direction.V6_TO_V4, len(packet), now)
            self.counters.translated_6to4[_NAME[s.proto]] += 1
            return [Output(Side.V4, out)]

        if nh == IPPROTO_ICMPV6:
            return self._echo6(h, pl, packet, dst4, now)

        proto = _PROTO[nh]
        sport, dport = l4_ports(nh, pl)
        flags = _tcp_flags(proto, pl)
        if proto is Proto.UDP and pl[6:8] == b"\0\0":
            raise _Drop("udp_zero_checksum")
        s = self._outbound(h, packet, proto, sport, dst4, dport, now, flags)
        cached = s.delta_6to4
        if cached is not None and cached[0] == h.dst:
            delta = cached[1]
        else:
            delta = port_rewrite_delta(pl, ones_sum(h.src + h.dst), ones_sum(s.bib.v4_addr + dst4), s.bib.v4_port,
                                       dport)
            s.delta_6to4 = (h.dst, delta)
        new = rewrite_ports_delta(nh, pl, s.bib.v4_port, dport, delta)
        out = self._emit4(h, packet, s, nh, dst4, new, now)
        self.table.touch(s, Direction.V6_TO_V4, len(packet), now, flags)
        self.counters.translated_6to4[_NAME[proto]] += 1
        if self.fast is not None and not h.fragment and packet[6] == nh and s.state in _FAST_STATES:
            self.fast.learn6(packet, s, nh, dst4, delta)
        return out

    def _outbound(self, h: IPv6Header, packet: bytes, proto: Proto, sport: int, dst4: bytes, dport: int,
                  now: float, flags: int = 0) -> Session:
        r = self.table.outbound(proto, h.src, sport, dst4, dport, now, flags)
        if r is None:
            raise _Drop("tcp_no_session")
        if isinstance(r, Refused):
            code = ICMP6_ADDR_UNREACH if r is Refused.POOL_EXHAUSTED else ICMP6_ADMIN_PROHIBITED
            raise _Drop(r.value, [self._error6(h, packet, ICMP6_DEST_UNREACH, code, kind=r.value)])
        return r

    def _emit4(self, h: IPv6Header, packet: bytes, s: Session, proto4: int, dst4: bytes, payload: bytes,
               now: float) -> list[Output]:
        total = 20 + len(payload)
        if h.fragment:  # first fragment: later ones follow its session
            if len(self._frag6) < _MAX_FRAGMENT_FLOWS:
                key = (h.src, h.dst, h.frag_id, h.next_header)
                self._frag6[key] = _FragFlow(s, now + self.table.timeouts.fragment)
            ident = h.frag_id & 0xFFFF
            fo = IPV4_MF if h.more_fragments else 0
            if total > self.ipv4_mtu:
                raise _Drop("fragment_too_big")
        else:
            if total > self.ipv4_mtu:
                mtu = max(IPV6_MIN_MTU, self.ipv4_mtu + 20)
                out = self._error6(h, packet, ICMP6_PACKET_TOO_BIG, 0, mtu.to_bytes(4, "big"))
                raise _Drop("packet_too_big", [out])
            ident = self._next_ident()
            # RFC 7915 §5.1: DF only above 1260 bytes, so IPv4 routers may fragment what IPv6 hosts
            # sized for the 1280-byte minimum MTU.
            fo = IPV4_DF if total > IPV6_MIN_MTU - 20 else 0
        out = build_ipv4(s.bib.v4_addr, dst4, proto4, payload, ttl=h.hop_limit - 1, tos=h.traffic_class,
                         identification=ident, flags_offset=fo)
        return [Output(Side.V4, out)]

    def _echo6(self, h: IPv6Header, pl: bytes, packet: bytes, dst4: bytes, now: float) -> list[Output]:
        if h.fragment:
            raise _Drop("fragmented_icmp")
        if not verify_icmp6(h.src, h.dst, pl):
            raise _Drop("bad_checksum")
        ident = (pl[4] << 8) | pl[5]
        if pl[0] == ICMP6_ECHO_REQUEST:
            s = self._outbound(h, packet, Proto.ICMP, ident, dst4, 0, now)
            new_type = 8
        else:
            s = self.table.by6.get((Proto.ICMP, h.src, ident, dst4, 0))
            if s is None:
                raise _Drop("no_session")
            new_type = 0
        new = echo_rewrite(pl, new_type, s.bib.v4_port, pseudo_sum_v6(h.src, h.dst, IPPROTO_ICMPV6, len(pl)), 0)
        out = self._emit4(h, packet, s, IPPROTO_ICMP, dst4, new, now)
        self.table.touch(s, Direction.V6_TO_V4, len(packet), now)
        self.counters.translated_6to4["icmp"] += 1
        return out

    def _icmp6_error(self, h: IPv6Header, pl: bytes, now: float) -> list[Output]:
        if h.fragment:
            raise _Drop("fragmented_icmp")
        if not verify_icmp6(h.src, h.dst, pl):
            raise _Drop("bad_checksum")
        if h.hop_limit <= 1:
            raise _Drop("hop_limit_exceeded")  # never an error about an error (RFC 4443 §2.4)
        dst4 = self._extract(h.dst, "non_global_destination")
        icmp_type, code, rest = icmp6_error_to_4(pl[0], pl[1], pl[4:8], self.ipv6_mtu, self.ipv4_mtu)
        ih, ipl = parse_ipv6(pl[8:], truncated_ok=True)
        if ih.frag_offset:
            raise _Drop("icmp_inner_fragment")
        src4 = self._extract(ih.src, "icmp_inner_not_ours")
        nh = ih.next_header
        if nh in _PROTO:
            sport, dport = l4_ports(nh, ipl)
            bib = self.table.bib.lookup6(_PROTO[nh], ih.dst, dport)
            if bib is None:
                raise _Drop("no_bib_entry")
            new = rewrite_ports(nh, ipl, ones_sum(ih.src + ih.dst), ones_sum(src4 + bib.v4_addr), sport, bib.v4_port)
            proto4 = nh
        elif nh == IPPROTO_ICMPV6 and len(ipl) >= 8 and ipl[0] in (ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY):
            bib = self.table.bib.lookup6(Proto.ICMP, ih.dst, (ipl[4] << 8) | ipl[5])
            if bib is None:
                raise _Drop("no_bib_entry")
            new_type = 8 if ipl[0] == ICMP6_ECHO_REQUEST else 0
            old = pseudo_sum_v6(ih.src, ih.dst, IPPROTO_ICMPV6, ih.upper_length)
            new = echo_rewrite(ipl, new_type, bib.v4_port, old, 0)
            proto4 = IPPROTO_ICMP
        else:
            raise _Drop("icmp_inner_protocol")
        inner = build_ipv4(src4, bib.v4_addr, proto4, new, ttl=ih.hop_limit, tos=ih.traffic_class,
                           total_length=min(0xFFFF, 20 + ih.upper_length))
        msg = build_icmp4(icmp_type, code, rest, inner[: ICMP4_ERROR_MAX - 28])
        out = build_ipv4(bib.v4_addr, dst4, IPPROTO_ICMP, msg, ttl=h.hop_limit - 1, tos=h.traffic_class,
                         identification=self._next_ident())
        self.counters.translated_6to4["icmp"] += 1
        return [Output(Side.V4, out)]

    # --- IPv4 → IPv6 ---------------------------------------------------------------------------------

    def _from_v4(self, packet: bytes, now: float) -> list[Output]:
        if self.fast is not None:
            out = self.fast.from_v4(packet, now)
            if out is not None:
                return [Output(Side.V6, out)]
        return self._slow_v4(packet, now)

    def _slow_v4(self, packet: bytes, now: float) -> list[Output]:
        h, pl = parse_ipv4(packet)
        if checksum(packet[: h.header_length]) != 0:
            raise _Drop("bad_checksum")
        if h.dst not in self._pool_set:
            raise _Drop("not_pool_address")
        proto = h.protocol
        first = h.frag_offset == 0
        if proto == IPPROTO_ICMP and first:
            if len(pl) < 8:
                raise PacketError("ICMP header truncated")
            if pl[0] in _ICMP4_ERRORS:
                if h.is_fragment:
                    raise _Drop("fragmented_icmp")
                return self._icmp4_error(h, pl, now)
            if pl[0] not in (0, 8):
                raise _Drop("icmp_untranslatable")
        elif proto not in (IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP):
            raise _Drop("unsupported_protocol")
        if h.ttl <= 1:
            raise _Drop("ttl_exceeded", [self._error4(h, packet, ICMP4_TIME_EXCEEDED, 0)])
        src6 = self._embed(h.src, "non_global_source")

        if not first:
            flow = self._frag4.get((h.src, h.dst, h.identification, proto))
            if flow is None or flow.expires <= now or flow.session.bib.sessions <= 0:
                raise _Drop("fragment_without_first")
            s = flow.session
            nh = IPPROTO_ICMPV6 if proto == IPPROTO_ICMP else proto
            frags = fragment_ipv6(src6, s.bib.v6_addr, nh, pl, mtu=self.ipv6_mtu, ident=h.identification,
                                  offset=h.frag_offset, more=h.mf, hop_limit=h.ttl - 1, traffic_class=h.tos)
            self.table.touch(s, Direction.V4_TO_V6, len(packet), now)
            self.counters.translated_4to6[_NAME[s.proto]] += 1
            return [Output(Side.V6, f) for f in frags]

        if proto == IPPROTO_ICMP:
            return self._echo4(h, pl, packet, src6, now)

        p = _PROTO[proto]
        sport, dport = l4_ports(proto, pl)
        flags = _tcp_flags(p, pl)
        r = self.table.inbound(p, h.dst, dport, h.src, sport, now, flags)
        if isinstance(r, str):
            if r == "no_bib_entry" and p is Proto.UDP and not h.is_fragment:
                raise _Drop(r, [self._error4(h, packet, ICMP4_DEST_UNREACH, ICMP4_PORT_UNREACH)])
            raise _Drop(r)
        s = r
        dst6 = s.bib.v6_addr
        delta = None
        if p is Proto.UDP and pl[6:8] == b"\0\0":
            if h.is_fragment:
                raise _Drop("udp_zero_checksum_fragment")
            new = _set_ports(pl, sport, s.bib.v6_port)
            new = udp_fill_checksum(new, pseudo_sum_v6(src6, dst6, IPPROTO_UDP, len(new)))
        else:
            delta = s.delta_4to6
            if delta is None:
                delta = port_rewrite_delta(pl, ones_sum(h.src + h.dst), ones_sum(src6 + dst6), sport, s.bib.v6_port)
                s.delta_4to6 = delta
            new = rewrite_ports_delta(proto, pl, sport, s.bib.v6_port, delta)
        out = self._emit6(h, packet, s, src6, proto, new, now)
        self.table.touch(s, Direction.V4_TO_V6, len(packet), now, flags)
        self.counters.translated_4to6[_NAME[p]] += 1
        if (self.fast is not None and delta is not None and h.header_length == 20 and not h.is_fragment
                and s.state in _FAST_STATES):
            self.fast.learn4(packet, s, proto, src6, delta)
        return out

    def _emit6(self, h: IPv4Header, packet: bytes, s: Session, src6: bytes, nh: int, payload: bytes,
               now: float) -> list[Output]:
        dst6 = s.bib.v6_addr
        if h.is_fragment:  # first fragment
            if len(self._frag4) < _MAX_FRAGMENT_FLOWS:
                key = (h.src, h.dst, h.identification, h.protocol)
                self._frag4[key] = _FragFlow(s, now + self.table.timeouts.fragment)
            frags = fragment_ipv6(src6, dst6, nh, payload, mtu=self.ipv6_mtu, ident=h.identification,
                                  more=True, hop_limit=h.ttl - 1, traffic_class=h.tos)
            return [Output(Side.V6, f) for f in frags]
        if 40 + len(payload) <= self.ipv6_mtu:
            return [Output(Side.V6, build_ipv6(src6, dst6, nh, payload, hop_limit=h.ttl - 1, traffic_class=h.tos))]
        if h.df:
            mtu = (self.ipv6_mtu - 20).to_bytes(4, "big")
            out = self._error4(h, packet, ICMP4_DEST_UNREACH, ICMP4_FRAG_NEEDED, mtu)
            raise _Drop("packet_too_big", [out])
        frags = fragment_ipv6(src6, dst6, nh, payload, mtu=self.ipv6_mtu, ident=h.identification,
                              hop_limit=h.ttl - 1, traffic_class=h.tos)
        return [Output(Side.V6, f) for f in frags]

    def _echo4(self, h: IPv4Header, pl: bytes, packet: bytes, src6: bytes, now: float) -> list[Output]:
        if h.is_fragment:
            raise _Drop("fragmented_icmp")
        if not verify_icmp4(pl):
            raise _Drop("bad_checksum")
        ident = (pl[4] << 8) | pl[5]
        if pl[0] == 0:
            s = self.table.by4.get((Proto.ICMP, h.dst, ident, h.src, 0))
            if s is None:
                raise _Drop("no_session")
            new_type = ICMP6_ECHO_REPLY
        else:
            r = self.table.inbound(Proto.ICMP, h.dst, ident, h.src, 0, now)
            if isinstance(r, str):
                raise _Drop(r)
            s = r
            new_type = ICMP6_ECHO_REQUEST
        new = echo_rewrite(pl, new_type, s.bib.v6_port, 0,
                           pseudo_sum_v6(src6, s.bib.v6_addr, IPPROTO_ICMPV6, len(pl)))
        out = self._emit6(h, packet, s, src6, IPPROTO_ICMPV6, new, now)
        self.table.touch(s, Direction.V4_TO_V6, len(packet), now)
        self.counters.translated_4to6["icmp"] += 1
        return out

    def _icmp4_error(self, h: IPv4Header, pl: bytes, now: float) -> list[Output]:
        if not verify_icmp4(pl):
            raise _Drop("bad_checksum")
        if h.ttl <= 1:
            raise _Drop("ttl_exceeded")  # never an error about an error
        ih, ipl = parse_ipv4(pl[8:], truncated_ok=True)
        if ih.src not in self._pool_set:
            raise _Drop("icmp_inner_not_ours")
        if ih.frag_offset:
            raise _Drop("icmp_inner_fragment")
        src6 = self._embed(h.src, "non_global_source")
        dst6 = self._embed(ih.dst, "non_global_destination")
        icmp_type, code, rest = icmp4_error_to_6(pl[0], pl[1], pl[4:8], ih.total_length, self.ipv6_mtu,
                                                 self.ipv4_mtu)
        proto = ih.protocol
        inner_len = ih.total_length - ih.header_length
        if proto in _PROTO:
            sport, dport = l4_ports(proto, ipl)
            bib = self.table.bib.lookup4(_PROTO[proto], ih.src, sport)
            if bib is None:
                raise _Drop("no_bib_entry")
            new = rewrite_ports(proto, ipl, ones_sum(ih.src + ih.dst), ones_sum(bib.v6_addr + dst6), bib.v6_port,
                                dport)
            nh = proto
        elif proto == IPPROTO_ICMP and len(ipl) >= 8 and ipl[0] in (0, 8):
            bib = self.table.bib.lookup4(Proto.ICMP, ih.src, (ipl[4] << 8) | ipl[5])
            if bib is None:
                raise _Drop("no_bib_entry")
            new_type = ICMP6_ECHO_REQUEST if ipl[0] == 8 else ICMP6_ECHO_REPLY
            new = echo_rewrite(ipl, new_type, bib.v6_port, 0,
                               pseudo_sum_v6(bib.v6_addr, dst6, IPPROTO_ICMPV6, inner_len))
            nh = IPPROTO_ICMPV6
        else:
            raise _Drop("icmp_inner_protocol")
        inner = build_ipv6(bib.v6_addr, dst6, nh, new, hop_limit=ih.ttl, traffic_class=ih.tos,
                           payload_length=inner_len)
        out = icmp6_error_packet(src6, bib.v6_addr, icmp_type, code, rest, inner, hop_limit=h.ttl - 1)
        self.counters.translated_4to6["icmp"] += 1
        return [Output(Side.V6, out)]


def _set_ports(payload: bytes, sport: int, dport: int) -> bytes:
    return sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + payload[4:]


def _tcp_flags(proto: Proto, l4: bytes) -> int:
    """TCP flags (0 for UDP), after checking the transport header is all there."""
    if proto is Proto.TCP:
        if len(l4) < 20:
            raise PacketError("TCP header truncated")
        return l4[13]
    if len(l4) < 8:
        raise PacketError("UDP header truncated")
    return 0
