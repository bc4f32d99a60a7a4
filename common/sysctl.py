"""Kernel network settings the daemon changes (forwarding, accept_ra, ...), put back on stop."""

from __future__ import annotations

import contextlib
from pathlib import Path

PROC_SYS_NET = Path("/proc/sys/net")
IPV4_FORWARDING = PROC_SYS_NET / "ipv4" / "ip_forward"
IPV6_FORWARDING = PROC_SYS_NET / "ipv6" / "conf" / "all" / "forwarding"


def ipv6_conf(interface: str, key: str) -> Path:
    return PROC_SYS_NET / "ipv6" / "conf" / interface / key


class SysctlSaver:
    """Writes /proc/sys files and remembers what was there first, so restore() undoes every set()."""

    def __init__(self) -> None:
        self.saved: dict[Path, str] = {}

    def set(self, path: Path, value: str) -> None:
        old = path.read_text().strip()
        if old != value:
            self.saved.setdefault(path, old)
            path.write_text(value)

    def restore(self) -> None:
        for path, value in reversed(list(self.saved.items())):
            with contextlib.suppress(OSError):
                path.write_text(value)
        self.saved.clear()
