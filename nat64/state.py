"""Stateful NAT64 tables (RFC 6146): BIB, sessions, IPv4 pool allocation, TCP state, counters.

Sans-I/O: every call takes ``now`` (seconds, any monotonic origin) so expiry is deterministic in tests.
Addresses are packed ``bytes`` (4 or 16). ICMP query sessions use the Identifier in place of ports
(RFC 6146 §3.5.3), with the remote "port" fixed to 0.
"""

from __future__ import annotations

import enum
import random
import zlib
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

__all__ = [
    "Bib",
    "BibEntry",
    "Caps",
    "Counters",
    "Direction",
    "Proto",
    "Refused",
    "Session",
    "SessionTable",
    "TcpState",
    "Timeouts",
]


class Proto(enum.IntEnum):
    """Session protocol, named by its IPv4 protocol number (ICMPv6 queries map to ICMP)."""

    ICMP = 1
    TCP = 6
    UDP = 17


class Direction(enum.Enum):
    V6_TO_V4 = "6to4"
    V4_TO_V6 = "4to6"


class TcpState(enum.Enum):
    """RFC 6146 §3.5.2.2 states."""

    CLOSED = "CLOSED"
    V6_INIT = "V6 SYN RCV"
    V4_INIT = "V4 SYN RCV"
    ESTABLISHED = "ESTABLISHED"
    V4_FIN_RCV = "V4 FIN RCV"
    V6_FIN_RCV = "V6 FIN RCV"
    V4_FIN_V6_FIN_RCV = "V4 FIN + V6 FIN RCV"
    TRANS = "TRANS"


TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Session lifetimes in seconds (RFC 6146 §4 defaults)."""

    udp: float = 300.0
    tcp_established: float = 7440.0
    tcp_transitory: float = 240.0
    tcp_incoming_syn: float = 6.0
    icmp: float = 60.0
    fragment: float = 30.0


@dataclass(frozen=True, slots=True)
class Caps:
    """Resource limits so one mesh node cannot exhaust the translator."""

    max_sessions: int = 16384
    max_sessions_per_source: int = 2048
    port_min: int = 1024
    port_max: int = 65535


class Refused(enum.Enum):
    """Why a new outbound flow got no session (each is a drop reason in :class:`Counters`)."""

    SESSION_CAP = "session_cap"
    SOURCE_CAP = "source_cap"
    POOL_EXHAUSTED = "pool_exhausted"


@dataclass(slots=True, eq=False)
class BibEntry:
    proto: Proto
    v6_addr: bytes
    v6_port: int
    v4_addr: bytes
    v4_port: int
    sessions: int = 0


@dataclass(slots=True, eq=False)
class Session:
    bib: BibEntry
    dst4: bytes  # remote IPv4 address (Y); the IPv6 side sees it embedded in the prefix
    dst_port: int  # remote port (0 for ICMP)
    created: float
    expires: float
    state: TcpState | None = None
    packets_6to4: int = 0
    bytes_6to4: int = 0
    packets_4to6: int = 0
    bytes_4to6: int = 0
    # Per-session checksum deltas (RFC 1624), cached by the translator: (IPv6 dst seen, delta), delta.
    delta_6to4: tuple[bytes, int] | None = None
    delta_4to6: int | None = None
    # Set once the table has dropped the session, so caches holding it (the fast path) let go.
    removed: bool = False

    @property
    def proto(self) -> Proto:
        return self.bib.proto

    def key6(self) -> tuple:
        b = self.bib
        return (b.proto, b.v6_addr, b.v6_port, self.dst4, self.dst_port)

    def key4(self) -> tuple:
        b = self.bib
        return (b.proto, b.v4_addr, b.v4_port, self.dst4, self.dst_port)


@dataclass(slots=True)
class Counters:
    """Translated packets per direction and protocol, drops per reason, ICMP errors we originated."""

    translated_6to4: Counter = field(default_factory=Counter)
    translated_4to6: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    icmp_errors_sent: Counter = field(default_factory=Counter)
    sessions_created: int = 0
    sessions_expired: int = 0

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def as_dict(self) -> dict:
        return {
            "translated": {"6to4": dict(self.translated_6to4), "4to6": dict(self.translated_4to6)},
            "dropped": dict(self.dropped),
            "icmp_errors_sent": dict(self.icmp_errors_sent),
            "sessions_created": self.sessions_created,
            "sessions_expired": self.sessions_expired,
        }


class Bib:
    """Binding Information Base: (proto, IPv6 addr, port) ↔ (proto, pool addr, port), endpoint-independent."""

    def __init__(self, pool: list[bytes], caps: Caps, rng: random.Random | None = None) -> None:
        if not pool:
            raise ValueError("the IPv4 pool needs at least one address")
        self.pool = pool
        self.caps = caps
        self.by6: dict[tuple, BibEntry] = {}
        self.by4: dict[tuple, BibEntry] = {}
        self._rng = rng or random.Random()
        self._cursor: dict[tuple, int] = {}
        self._used: Counter = Counter()  # (proto, pool addr) -> entries

    def lookup6(self, proto: Proto, addr: bytes, port: int) -> BibEntry | None:
        return self.by6.get((proto, addr, port))

    def lookup4(self, proto: Proto, addr: bytes, port: int) -> BibEntry | None:
        return self.by4.get((proto, addr, port))

    def create(self, proto: Proto, v6_addr: bytes, v6_port: int) -> BibEntry | None:
        """Allocate a pool address and port, keeping one pool address per IPv6 host where possible
        (RFC 4787 "paired" pooling) and the original port when it is free and in range."""
        pool = self.pool
        start = zlib.crc32(v6_addr) % len(pool)
        lo, hi = self.caps.port_min, self.caps.port_max
        span = hi - lo + 1
        for k in range(len(pool)):
            addr = pool[(start + k) % len(pool)]
            if self._used[(proto, addr)] >= span:
                continue
            port = None
            if lo <= v6_port <= hi and (proto, addr, v6_port) not in self.by4:
                port = v6_port
            else:
                ck = (proto, addr)
                cur = self._cursor.get(ck)
                if cur is None:
                    cur = self._rng.randrange(span)
                for i in range(span):
                    cand = lo + (cur + i) % span
                    if (proto, addr, cand) not in self.by4:
                        port = cand
                        self._cursor[ck] = (cur + i + 1) % span
                        break
            if port is not None:
                entry = BibEntry(proto, v6_addr, v6_port, addr, port)
                self.by6[(proto, v6_addr, v6_port)] = entry
                self.by4[(proto, addr, port)] = entry
                self._used[(proto, addr)] += 1
                return entry
        return None

    def remove(self, entry: BibEntry) -> None:
        self.by6.pop((entry.proto, entry.v6_addr, entry.v6_port), None)
        if self.by4.pop((entry.proto, entry.v4_addr, entry.v4_port), None) is not None:
            self._used[(entry.proto, entry.v4_addr)] -= 1

    def __len__(self) -> int:
        return len(self.by6)


class SessionTable:
    """Sessions keyed from both sides, with caps, TCP state tracking and explicit-clock expiry."""

    def __init__(
        self,
        pool: list[bytes],
        timeouts: Timeouts | None = None,
        caps: Caps | None = None,
        *,
        endpoint_independent_filtering: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        self.bib = Bib(pool, caps or Caps(), rng)
        self.by6: dict[tuple, Session] = {}
        self.by4: dict[tuple, Session] = {}
        self.earliest: float | None = None  # the first session expiry, as of the last expire()
        self.per_source: Counter = Counter()
        self.counters = Counters()
        self.endpoint_independent_filtering = endpoint_independent_filtering

    @property
    def caps(self) -> Caps:
        return self.bib.caps

    @caps.setter
    def caps(self, caps: Caps) -> None:
        """New caps (a reload) apply to sessions and to the BIB's port range alike: one copy, the BIB's."""
        self.bib.caps = caps

    def __len__(self) -> int:
        return len(self.by6)

    # --- lookups and creation --------------------------------------------------------------------

    def outbound(
        self, proto: Proto, src6: bytes, sport: int, dst4: bytes, dport: int, now: float, tcp_flags: int = 0
    ) -> Session | Refused | None:
        """Session for a packet from the IPv6 side, creating BIB entry and session when allowed.

        Returns ``None`` for a TCP non-SYN packet that may not open a session (RFC 6146 §3.5.2.2).
        """
        s = self.by6.get((proto, src6, sport, dst4, dport))
        if s is not None:
            return s
        if proto is Proto.TCP and not tcp_flags & TCP_SYN:
            return None
        if len(self.by6) >= self.caps.max_sessions:
            return Refused.SESSION_CAP
        if self.per_source[src6] >= self.caps.max_sessions_per_source:
            return Refused.SOURCE_CAP
        bib = self.bib.lookup6(proto, src6, sport)
        if bib is None:
            bib = self.bib.create(proto, src6, sport)
            if bib is None:
                return Refused.POOL_EXHAUSTED
        return self._add(bib, dst4, dport, now, TcpState.V6_INIT if proto is Proto.TCP else None)

    def inbound(
        self, proto: Proto, pool_addr: bytes, pool_port: int, src4: bytes, sport: int, now: float,
        tcp_flags: int = 0,
    ) -> Session | str:
        """Session for a packet from the IPv4 side; a ``str`` is the drop reason."""
        s = self.by4.get((proto, pool_addr, pool_port, src4, sport))
        if s is not None:
            return s
        bib = self.bib.lookup4(proto, pool_addr, pool_port)
        if bib is None:
            return "no_bib_entry"
        if not self.endpoint_independent_filtering:
            return "filtered"
        if proto is Proto.TCP and not tcp_flags & TCP_SYN:
            return "tcp_no_session"
        if len(self.by6) >= self.caps.max_sessions:
            return "session_cap"
        if self.per_source[bib.v6_addr] >= self.caps.max_sessions_per_source:
            return "source_cap"
        return self._add(bib, src4, sport, now, TcpState.V4_INIT if proto is Proto.TCP else None)

    def _add(self, bib: BibEntry, dst4: bytes, dport: int, now: float, state: TcpState | None) -> Session:
        s = Session(bib, dst4, dport, now, now + self._initial_lifetime(bib.proto, state), state)
        self.by6[s.key6()] = s
        self.by4[s.key4()] = s
        self._may_expire_at(s.expires)
        bib.sessions += 1
        self.per_source[bib.v6_addr] += 1
        self.counters.sessions_created += 1
        return s

    def _initial_lifetime(self, proto: Proto, state: TcpState | None) -> float:
        t = self.timeouts
        if proto is Proto.UDP:
            return t.udp
        if proto is Proto.ICMP:
            return t.icmp
        return t.tcp_incoming_syn if state is TcpState.V4_INIT else t.tcp_transitory

    # --- per-packet update ---------------------------------------------------------------------------

    def touch(self, s: Session, direction: Direction, length: int, now: float, tcp_flags: int = 0) -> None:
        """Account a translated packet and refresh the lifetime / advance TCP state."""
        if direction is Direction.V6_TO_V4:
            s.packets_6to4 += 1
            s.bytes_6to4 += length
        else:
            s.packets_4to6 += 1
            s.bytes_4to6 += length
        t = self.timeouts
        if s.state is None:
            s.expires = now + (t.udp if s.bib.proto is Proto.UDP else t.icmp)
            return
        self._tcp(s, direction, tcp_flags, now)
        self._may_expire_at(s.expires)  # a FIN or RST can shorten it

    def _may_expire_at(self, when: float) -> None:
        """Keep ``earliest`` a lower bound of every session's expiry, so sleeping until it is safe."""
        if self.earliest is None or when < self.earliest:
            self.earliest = when

    def _tcp(self, s: Session, d: Direction, flags: int, now: float) -> None:
        t = self.timeouts
        v6 = d is Direction.V6_TO_V4
        st = s.state
        if flags & TCP_RST:
            if st in (TcpState.ESTABLISHED, TcpState.V4_FIN_RCV, TcpState.V6_FIN_RCV):
                s.state = TcpState.TRANS
                s.expires = now + t.tcp_transitory
            return
        if st is TcpState.V6_INIT:
            if not v6 and flags & TCP_SYN:
                s.state = TcpState.ESTABLISHED
                s.expires = now + t.tcp_established
            elif v6 and flags & TCP_SYN:
                s.expires = now + t.tcp_transitory
        elif st is TcpState.V4_INIT:
            if v6 and flags & TCP_SYN:
                s.state = TcpState.ESTABLISHED
                s.expires = now + t.tcp_established
        elif st is TcpState.ESTABLISHED:
            if flags & TCP_FIN:
                s.state = TcpState.V6_FIN_RCV if v6 else TcpState.V4_FIN_RCV
            s.expires = now + t.tcp_established
        elif st is TcpState.V4_FIN_RCV:
            if v6 and flags & TCP_FIN:
                s.state = TcpState.V4_FIN_V6_FIN_RCV
                s.expires = now + t.tcp_transitory
            else:
                s.expires = now + t.tcp_established
        elif st is TcpState.V6_FIN_RCV:
            if not v6 and flags & TCP_FIN:
                s.state = TcpState.V4_FIN_V6_FIN_RCV
                s.expires = now + t.tcp_transitory
            else:
                s.expires = now + t.tcp_established
        elif st is TcpState.TRANS:
            s.state = TcpState.ESTABLISHED
            s.expires = now + t.tcp_established
        # V4_FIN_V6_FIN_RCV: no refresh; the session runs out after the transitory timeout.

    # --- expiry and listing --------------------------------------------------------------------------

    def expire(self, now: float) -> int:
        """Remove sessions whose lifetime ran out, and BIB entries left without sessions."""
        dead = [s for s in self.by6.values() if s.expires <= now]
        for s in dead:
            self.remove(s)
        self.earliest = min((s.expires for s in self.by6.values()), default=None)
        self.counters.sessions_expired += len(dead)
        return len(dead)

    def remove(self, s: Session) -> None:
        if self.by6.pop(s.key6(), None) is None:
            return
        s.removed = True
        self.by4.pop(s.key4(), None)
        bib = s.bib
        bib.sessions -= 1
        self.per_source[bib.v6_addr] -= 1
        if self.per_source[bib.v6_addr] <= 0:
            del self.per_source[bib.v6_addr]
        if bib.sessions <= 0:
            self.bib.remove(bib)

    def mappings(self, now: float, prefix_embed=None) -> list[dict]:
        """One row per session, like ``ot-ctl nat64 mappings``; ``prefix_embed`` renders the IPv6
        destination (IPv4 destination embedded in the NAT64 prefix)."""
        rows = []
        for s in self.by6.values():
            b = s.bib
            rows.append(
                {
                    "protocol": b.proto.name,
                    "v6_src": str(IPv6Address(b.v6_addr)),
                    "v6_src_port": b.v6_port,
                    "v4_pool": str(IPv4Address(b.v4_addr)),
                    "v4_pool_port": b.v4_port,
                    "v6_dst": str(IPv6Address(prefix_embed(s.dst4))) if prefix_embed else None,
                    "dst": str(IPv4Address(s.dst4)),
                    "dst_port": s.dst_port,
                    "age": round(now - s.created, 3),
                    "expires_in": round(s.expires - now, 3),
                    "state": s.state.value if s.state else "ACTIVE",
                    "packets_6to4": s.packets_6to4,
                    "bytes_6to4": s.bytes_6to4,
                    "packets_4to6": s.packets_4to6,
                    "bytes_4to6": s.bytes_4to6,
                }
            )
        return rows
