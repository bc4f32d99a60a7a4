"""Host → mesh unicast held back while a restarted NCP restores its children.

Measured on OpenThread's NCP (benchmarks/thread_recovery.py --ncp real): after an NCP reset, traffic
from the host to a child came back after ~19 s, although the NCP listed the child again within about
2 s. A packet sent before the child is restored makes the NCP query the destination's address
(ADDR_QRY); nobody answers yet, and OpenThread then refuses that destination for its address-query
retry delay (15 s, doubling). Holding the host's unicast packets until every child the NCP had before
the reset is listed again (or ``HOLD_MAX_S`` passed) lets the first query succeed. Nothing is lost
within the bound (``HOLD_PACKETS``; beyond it the oldest are dropped and counted); multicast is never
held, as it needs no address query.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

HOLD_MAX_S = 5.0
HOLD_PACKETS = 256


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
