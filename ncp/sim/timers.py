"""Named one-shot timers on the caller's clock, so the sans-I/O core never reads a clock itself.

Everything the NCP does later (becoming leader, a child attaching, an FTD child becoming a router, its own
MLE) is a timer with a name; scheduling a name again replaces the old one, and cancelling ``attach``
also cancels every ``attach:<node>``.  The I/O glue asks :meth:`Timers.next_deadline` when to poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Timers"]


@dataclass
class _Timer:
    when: float
    action: Callable[[float], None]
    name: str


class Timers:
    def __init__(self) -> None:
        self._timers: list[_Timer] = []

    def after(self, now: float, delay: float, name: str, action: Callable[[float], None]) -> None:
        """Run ``action(now)`` ``delay`` seconds after ``now``, replacing a timer of the same name."""
        self._timers = [t for t in self._timers if t.name != name]
        self._timers.append(_Timer(now + delay, action, name))

    def cancel(self, name: str) -> None:
        """Drop the timer ``name`` and every ``name:<anything>``."""
        self._timers = [t for t in self._timers if t.name != name and not t.name.startswith(name + ":")]

    def pending(self, name: str) -> bool:
        return any(t.name == name for t in self._timers)

    def clear(self) -> None:
        self._timers = []

    def next_deadline(self) -> float | None:
        return min((t.when for t in self._timers), default=None)

    def run_due(self, now: float) -> None:
        """Run whatever timers are due, earliest first, including those the actions schedule for now."""
        while True:
            due = [t for t in self._timers if t.when <= now]
            if not due:
                return
            timer = min(due, key=lambda t: t.when)
            self._timers.remove(timer)
            timer.action(now)
