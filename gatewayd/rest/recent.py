"""The last warnings and errors from the log, for the status page: a small ring, fed by a handler attached to
gatewayd's logger trees only while the REST component runs.

What is kept is what the journal gets (the messages are written never to hold a secret); tracebacks are
left out. A message repeated back to back is kept once, with a count.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

from gatewayd.log import IDENTIFIER, LIBRARY_COMPONENTS, component_of

SIZE = 20


class RecentProblems(logging.Handler):
    def __init__(self, size: int = SIZE, level: int = logging.WARNING):
        super().__init__(level)
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self._roots: list[logging.Logger] = []

    def emit(self, record: logging.LogRecord) -> None:  # under the handler's lock (records come from threads)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: not worth losing the entry
            message = str(record.msg)
        last = self.records[-1] if self.records else None
        if last is not None and last["message"] == message and last["logger"] == record.name:
            last["count"] += 1
            last["time"] = record.created
            return
        self.records.append({"time": record.created, "level": record.levelname.lower(), "logger": record.name,
                             "component": component_of(record.name), "message": message, "count": 1})

    def rows(self) -> list[dict[str, Any]]:
        """Newest first, with the time as ISO 8601 local time."""
        with self.lock:  # type: ignore[union-attr]
            rows = [dict(r) for r in self.records]
        for row in rows:
            row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(row["time"]))
        return rows[::-1]

    def attach(self) -> None:
        if self._roots:
            return
        self._roots = [logging.getLogger(IDENTIFIER),
                       *(logging.getLogger(tree) for tree, _ in LIBRARY_COMPONENTS if "." not in tree)]
        for root in self._roots:
            root.addHandler(self)

    def detach(self) -> None:
        for root in self._roots:
            root.removeHandler(self)
        self._roots = []

