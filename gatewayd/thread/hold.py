"""Host → mesh unicast held back while a restarted NCP restores its children.

Measured on OpenThread's NCP (benchmarks/thread_recovery.py --ncp real): after an NCP reset, traffic
from the host to a child came back after ~19 s, although the NCP listed the child again within about
2 s. A packet sent before the child is restored makes the NCP query the destination's address
(ADDR_QRY); nobody answers yet, and OpenThread then refuses that destination for its address-query
retry delay (15 s, doubling). Holding the host's unicast packets until every child the NCP had before
the reset is listed again (or ``HOLD_MAX_S`` passed) lets the first query succeed. Nothing is lost
within the bound (``HOLD_PACKETS``; beyond it the oldest are dropped and counted); multicast is never
held, as it needs no address query.

That was half the cause: measured again, rounds still alternated ~2 s / ~19 s. The child *did* hear the
first query, and dropped it as an MPL duplicate. OpenThread sends ADDR_QRY to ff03::2 with an MPL option
whose sequence number comes from a counter that every NCP start sets to 0 (``Mpl::mSequence``,
src/core/net/ip6_mpl.cpp), under the same seed (its RLOC16, restored from settings); every node keeps each
(seed, sequence) it received for 5 s after it last heard it (``OPENTHREAD_CONFIG_MPL_SEED_SET_ENTRY_LIFETIME``)
and drops a message that repeats one. An NCP restarted within ~5 s of its previous life's query reuses that
query's sequence number and nobody hears it. :class:`MplSequences` tracks which sequence numbers the NCP's
recent lives may have put on the air, and how many the new life must skip before its first query: the
Thread component makes the NCP spend them on realm-local multicasts with hop limit 0, which take a sequence
number in ``Ip6::SendRaw`` and are dropped before the radio (``Ip6::HandleDatagram``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

HOLD_MAX_S = 5.0
HOLD_PACKETS = 256
MPL_MEMORY_S = 6.0  # how long a node remembers an MPL sequence number: 5 s after it last heard it, + retransmissions
MPL_ALLOWANCE = 8  # MPL sequence numbers an NCP life may use on its own (address queries for the mesh's traffic)
MPL_SPACE = 256  # MPL sequence numbers are 8 bits
DESTINATIONS_COUNTED = MPL_SPACE  # distinct unicast destinations remembered per NCP life


class RecoveryHold:
    def __init__(self, limit: int = HOLD_PACKETS) -> None:
        self.waiting_for: frozenset[bytes] = frozenset()  # extended addresses of the children to come back
        self.queue: deque[bytes] = deque()
        self.limit = limit
        self.held = 0
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self.waiting_for)

    def start(self, children: Iterable[bytes]) -> None:
        self.waiting_for = frozenset(children)

    def offer(self, packet: bytes) -> bool:
        """True when the packet is kept for later (the caller must not send it now)."""
        if not self.waiting_for or len(packet) < 40 or packet[24] == 0xFF:
            return False
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(packet)
        self.held += 1
        return True

    def ready(self, listed: Iterable[bytes]) -> bool:
        """Every awaited child is listed again."""
        return self.active and self.waiting_for <= set(listed)

    def release(self) -> list[bytes]:
        """Stop holding; the packets held so far, oldest first, to send now."""
        self.waiting_for = frozenset()
        out = list(self.queue)
        self.queue.clear()
        return out


def is_mpl_multicast(packet: bytes) -> bool:
    """Multicast of realm-local or wider scope: the NCP gives it an MPL sequence number."""
    return len(packet) >= 40 and packet[24] == 0xFF and packet[25] & 0x0F >= 3


def unicast_destination(packet: bytes) -> bytes | None:
    return bytes(packet[24:40]) if len(packet) >= 40 and packet[24] != 0xFF else None


class MplSequences:
    """Which MPL sequence numbers a restarted NCP must skip so the mesh hears its first address queries.

    Per NCP life it counts what the host sent that may take a sequence number on the air: realm-local or
    wider multicast, and each distinct unicast destination (one address query at most; OpenThread
    retries one every 15 s or more). A life that ended less than :data:`MPL_MEMORY_S` ago leaves the
    range it may have used: ``[0, before)`` for the multicasts sent before the skip, ``[start, start +
    after + MPL_ALLOWANCE)`` after it. :meth:`plan` picks the lowest start, at or above what the new life
    used already, whose window is clear of every such range.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.recent: list[tuple[float, int, int]] = []  # (forgotten at, first, end) of earlier lives' ranges
        self.planned = True  # the first life follows no other: nothing to skip
        self.start = 0
        self.before = 0  # MPL multicasts the host sent in this life before the skip
        self.after = 0  # ... and after it
        self.destinations: set[bytes] = set()
        self.skipped = 0  # sequence numbers spent, all lives

    def sent(self, packet: bytes) -> None:
        """The host handed this packet to the NCP."""
        if is_mpl_multicast(packet):
            if self.planned:
                self.after += 1
            else:
                self.before += 1
        elif len(self.destinations) < DESTINATIONS_COUNTED and (dst := unicast_destination(packet)) is not None:
            self.destinations.add(dst)  # bounded, and nothing sliced per packet once it is full

    def restarted(self) -> None:
        """The NCP restarted: what this life may have sent stays in the mesh's memory a while."""
        until = self.clock() + MPL_MEMORY_S
        if self.before:
            self.recent.append((until, 0, self.before))
        end = (
            self.start + self.after + len(self.destinations) + MPL_ALLOWANCE
            if self.planned
            else self.before + len(self.destinations) + MPL_ALLOWANCE
        )
        self.recent.append((until, self.start if self.planned else 0, end))
        self.planned = False
        self.start = self.before = self.after = 0
        self.destinations = set()

    def plan(self, upcoming: int = 0) -> int:
        """How many sequence numbers to spend now, before ``upcoming`` destinations are queried."""
        if self.planned:
            return 0
        now = self.clock()
        self.recent = [r for r in self.recent if r[0] > now]
        need = upcoming + MPL_ALLOWANCE
        first = self.before  # the NCP's counter now, as far as the host knows
        for start in sorted({first} | {end for _, _, end in self.recent if end > first}):
            if start + need > MPL_SPACE:
                start = first  # no room: our estimate of the earlier lives says nothing useful
                break
            if all(start + need <= lo or hi <= start for _, lo, hi in self.recent):
                break
        else:
            start = first
        self.planned = True
        self.start = start
        self.skipped += start - first
        return start - first
