"""A _meshcop._udp browser in a LAN namespace (devtools.testbed.mdns_browser), for the border agent's tests."""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import Any

from devtools.testbed import Testbed
from ncp.border_agent import StateBitmap


class Browser:
    """devtools.testbed.mdns_browser in a namespace: the changes it reports, one JSON object each."""

    def __init__(self, bed: Testbed, ns: str):
        self.proc = bed.spawn(ns, sys.executable, "-m", "devtools.testbed.mdns_browser", "_meshcop._udp.local.")
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != b"ready":
            raise AssertionError(f"the browser did not start: {line!r} {self.proc.stderr.read().decode()[-800:]}")
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait(self, *changes: str, timeout: float = 20, where: Any = None) -> dict[str, Any]:
        """The next reported change of one of those kinds (for which ``where(event)`` holds, if given)."""
        while True:
            try:
                event = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"the browser reported no {'/'.join(changes)} within {timeout} s") from None
            if event["change"] in changes and (where is None or where(event)):
                return event


def bitmap(event: dict[str, Any]) -> StateBitmap:
    return StateBitmap.from_int(int.from_bytes(txt(event)["sb"], "big"))


def txt(event: dict[str, Any]) -> dict[str, bytes | None]:
    return {k: bytes.fromhex(v) if v is not None else None for k, v in event["txt"]}
