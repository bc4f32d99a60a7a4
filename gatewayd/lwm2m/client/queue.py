"""Queue mode (LwM2M 1.1 Transport §6.5 "Queue Mode Operation"): notifications held while the client is
offline and delivered when it is back.

A client registered with queue mode is reachable only for ``awake_time`` seconds after it last spoke to
the server (Register or Update; MAX_TRANSMIT_WAIT, 93 s, by default); the server keeps its requests for
that window. Outside it the client is offline: a notification that falls due is stored, up to ``limit``
of them, the oldest dropped and counted beyond that, and the stored ones go out, oldest first and with
the values they had when they fell due, right after the next Update succeeds. Notifications of an
observation the server cancels meanwhile are forgotten.

The server's "Notification Storing When Disabled or Offline" (/1/x/6, LwM2M 1.1 Appendix E.2, true when
absent) says whether any are stored: while it is false a notification that falls due offline is
discarded and counted, what is held when it turns false is discarded at the next wake-up, and the
server hears the current value at the next change or pmax after the Update. (A Disable deregisters,
which ends every observation, so nothing falls due while disabled.)
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import aiocoap


class NotificationQueue:
    """The notifications one queue-mode client holds while offline."""

    def __init__(self, limit: int, awake_time: float) -> None:
        self.limit = max(1, limit)
        self.awake_time = awake_time
        self.awake_until = 0.0
        self.items: collections.deque[tuple[Any, aiocoap.Message]] = collections.deque()
        self.counters = {"stored": 0, "dropped": 0, "delivered": 0, "discarded": 0}
        #: /1/x/6 of the current server: store notifications while offline (False: discard them)
        self.storing: Callable[[], bool] = lambda: True

    @property
    def offline(self) -> bool:
        return time.monotonic() >= self.awake_until

    def hold(self, pipe: Any, message: aiocoap.Message) -> bool:
        """Store ``message`` (a notification for ``pipe``) if the client is offline; True if stored."""
        if not self.offline:
            return False
        if not self.storing():
            self.counters["discarded"] += 1
            return True
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
        notifications go out now, oldest first (none if /1/x/6 turned false meanwhile). Returns how many."""
        self.awake_until = time.monotonic() + self.awake_time
        items, self.items = self.items, collections.deque()
        if items and not self.storing():
            self.counters["discarded"] += len(items)
            return 0
        for pipe, message in items:
            pipe.add_response(message, is_last=False)
        self.counters["delivered"] += len(items)
        return len(items)

    def info(self) -> dict[str, Any]:
        return {"queued": len(self.items), "queue_dropped": self.counters["dropped"],
                "queue_delivered": self.counters["delivered"], "queue_discarded": self.counters["discarded"],
                "offline": self.offline}
