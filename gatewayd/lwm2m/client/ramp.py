"""Registration ramp: how many clients of one process may be registering at the same time.

Ten thousand Registers sent at once time out at the server (and in this process, which must open ten
thousand sockets and build ten thousand payloads in the same instant); each timed-out client then sits
out its backoff. A cap on the Register/Bootstrap-Request exchanges in flight turns that burst into a
steady stream the server keeps up with, and a random delay before each client's first attempt keeps a
daemon restart from hitting the server in one step even below the cap.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

DEFAULT_CONCURRENCY = 64
DEFAULT_FIRST_JITTER = 1.0


class RegisterRamp:
    """Shared by the clients of an engine; ``concurrency`` <= 0 means no cap."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY, first_jitter: float = DEFAULT_FIRST_JITTER) -> None:
        self.concurrency = concurrency
        self.first_jitter = max(0.0, first_jitter)
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        self.in_flight = 0
        self.waiting = 0
        #: the most exchanges ever in flight at once (what the cap held down)
        self.peak = 0

    async def first_attempt(self) -> None:
        """Wait a random part of ``first_jitter`` before a client's first Register."""
        if self.first_jitter > 0:
            await asyncio.sleep(random.uniform(0, self.first_jitter))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` slots for one Register (or Bootstrap-Request) exchange."""
        self.waiting += 1
        try:
            if self._slots is not None:
                await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            if self._slots is not None:
                self._slots.release()
