"""One retry policy for everything that reconnects, restarts or re-registers.

Exponential (initial · 2ⁿ, capped) with ±``jitter`` so that many retriers never align, and a way to
start afresh: :meth:`Backoff.reset` after a success, or :meth:`Backoff.started` + a failure after a
run of at least ``healthy`` seconds, so a crash after a day of service is retried at once and not
after the delay the last bad hour built up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    def __init__(self, initial: float = 1.0, maximum: float = 60.0, jitter: float = 0.2,
                 healthy: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self.healthy = healthy
        self.clock = clock
        self.attempts = 0  # failures since the last reset
        self._since: float | None = None

    def started(self) -> None:
        """A run began: a failure at least ``healthy`` seconds from now starts the sequence afresh."""
        self._since = self.clock()

    def reset(self) -> None:
        self.attempts = 0

    def delay(self) -> float:
        """The wait before the next try, counting this failure."""
        if self._since is not None and self.clock() - self._since >= self.healthy:
            self.attempts = 0
        self._since = None
        base = min(self.maximum, self.initial * 2.0 ** self.attempts)
        self.attempts += 1
        return base * random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
