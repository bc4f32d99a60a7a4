"""systemd service notifications (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1).

Speaks the $NOTIFY_SOCKET datagram protocol itself (sd_notify(3): one AF_UNIX datagram, a path or an
abstract ``@`` name). Not systemd-python: its sd_notify is the same datagram, but importing it maps
libsystemd with libgcrypt, lz4, zstd, lzma and libcap, 0.8 MB of an idle daemon's memory. Nothing is
sent when not started by systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("gatewayd.daemon")


def _send_socket(address: str, message: str) -> None:
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), target)


class Notifier:
    def __init__(self, env: Mapping[str, str] = os.environ):
        self.address = env.get("NOTIFY_SOCKET") or None
        self.last_status = ""
        self.watchdog_interval = self._watchdog_interval(env)

    @staticmethod
    def _watchdog_interval(env: Mapping[str, str]) -> float | None:
        """Half the watchdog timeout, when the watchdog is meant for this process."""
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2e6
        except ValueError:
            return None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        if not self.address:
            return
        message = "\n".join(lines)
        try:
            _send_socket(self.address, message)
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self.last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        if status != self.last_status:
            self.last_status = status
            self.send(f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                  "STATUS=reloading configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")
