"""Queue mode (LwM2M 1.1 Transport §6.5 "Queue Mode Operation"): notifications held while the client is
offline and delivered when it is back.

A client registered with queue mode is reachable only for ``awake_time`` seconds after it last spoke to
the server (Register or Update; MAX_TRANSMIT_WAIT, 93 s, by default); the server keeps its requests for
that window. Outside it the client is offline: a notification that falls due is stored, up to ``limit``
of them, the oldest dropped and counted beyond that, and the stored ones go out, oldest first and with
the values they had when they fell due, right after the next Update succeeds. Notifications of an
observation the server cancels meanwhile are forgotten.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import aiocoap


class NotificationQueue:
    """The notifications one queue-mode client holds while offline."""

    def __init__(self, limit: int, awake_time: float) -> None:
        self.limit = max(1, limit)
        self.awake_time = awake_time
        self.awake_until = 0.0
        self.items: collections.deque[tuple[Any, aiocoap.Message]] = collections.deque()
        self.counters = {"stored": 0, "dropped": 0, "delivered": 0}

    @property
    def offline(self) -> bool:
        return time.monotonic() >= self.awake_until

    def hold(self, pipe: Any, message: aiocoap.Message) -> bool:
        """Store ``message`` (a notification for ``pipe``) if the client is offline; True if stored."""
        if not self.offline:
            return False
        if len(self.items) >= self.limit:
            self.items.popleft()
            self.counters["dropped"] += 1
        self.items.append((pipe, message))
        self.counters["stored"] += 1
        return True

    def forget(self, pipe: Any) -> None:
        """The observation ended: its stored notifications go nowhere."""
        if any(p is pipe for p, _ in self.items):
            self.items = collections.deque((p, m) for p, m in self.items if p is not pipe)

    def wake(self) -> int:
        """The server heard from us (Register, Update): online for ``awake_time``; the stored
        notifications go out now, oldest first. Returns how many."""
        self.awake_until = time.monotonic() + self.awake_time
        items, self.items = self.items, collections.deque()
        for pipe, message in items:
            pipe.add_response(message, is_last=False)
        self.counters["delivered"] += len(items)
        return len(items)

    def info(self) -> dict[str, Any]:
        return {"queued": len(self.items), "queue_dropped": self.counters["dropped"],
                "queue_delivered": self.counters["delivered"], "offline": self.offline}
