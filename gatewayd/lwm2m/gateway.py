"""The gateway's own LwM2M objects: Device (3), Connectivity Monitoring (4), Server (1), Security (0).

Identity comes from the configuration or the NCP: serial number = NCP EUI-64, firmware = NCP version
string, software = gatewayd's version, manufacturer/model = the NCP version string's stack and platform
fields unless configured. Current time and memory are refreshed by :meth:`GatewayDevice.refresh`;
Reboot calls ``on_reboot`` after the Execute has been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from common.aio import cancel_and_wait
from gatewayd import __version__

from .definitions import ObjectRegistry
from .paths import LwM2MPath
from .store import ObjectStore

log = logging.getLogger("gatewayd.lwm2m")
BEARER_ETHERNET = 41
REBOOT_DELAY = 0.5
SIOCGIFADDR = 0x8915


def split_ncp_version(version: str) -> tuple[str, str]:
    """(stack, platform) from an NCP version such as ``OPENTHREAD/1.3.0; CASCODA; Jan 1 2024``."""
    fields = [f.strip() for f in version.split(";")]
    stack = fields[0].split("/")[0] if fields and fields[0] else ""
    platform = fields[1] if len(fields) > 1 else ""
    return stack, platform


def memory_kib() -> tuple[int, int]:
    """(available, total) memory in KiB from /proc/meminfo; (0, 0) where there is none."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, _, rest = line.partition(":")
                values[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return values.get("MemAvailable", values.get("MemFree", 0)), values.get("MemTotal", 0)


def host_addresses() -> list[str]:
    """Global and ULA addresses of this host (IPv4 and IPv6), loopback and link-local left out."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    with contextlib.suppress(OSError, ValueError), open("/proc/net/if_inet6") as f:
        for line in f:
            found.append(ipaddress.IPv6Address(bytes.fromhex(line.split()[0])))
    with contextlib.suppress(OSError):
        for name in os.listdir("/sys/class/net"):
            with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                req = struct.pack("256s", name.encode()[:15])
                found.append(ipaddress.IPv4Address(fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24]))
    return sorted({str(ip) for ip in found if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)})


class GatewayDevice:
    """The object store of the gateway's own client, kept current from the NCP and the host."""

    def __init__(
        self,
        registry: ObjectRegistry,
        *,
        manufacturer: str = "",
        model: str = "",
        ncp_info: Callable[[], dict[str, Any]] = dict,
        on_reboot: Callable[[], None] | None = None,
        addresses: Callable[[], list[str]] = host_addresses,
    ) -> None:
        self.store = ObjectStore(registry)
        self.manufacturer = manufacturer
        self.model = model
        self.ncp_info = ncp_info
        self.on_reboot = on_reboot
        self.addresses = addresses
        self._time_offset = 0.0
        self._task: asyncio.Task[None] | None = None
        self.store.add_object(0)
        self.store.add_object(1)
        free, total = memory_kib()
        self.store.add_instance(3, 0, {11: {0: 0}, 16: "U", 19: __version__, 10: free, 21: total,
                                       13: int(time.time()), 14: time.strftime("%z")})
        self.store.add_instance(4, 0, {0: BEARER_ETHERNET, 1: {0: BEARER_ETHERNET}, 2: 0, 4: {}})
        self.store.set_execute_handler(3, 4, self._reboot)
        self.store.on_change(self._written)
        self.refresh(full=True)

    @property
    def eui64(self) -> str:
        return str(self.ncp_info().get("hwaddr", "")).lower()

    def refresh(self, full: bool = False) -> None:
        """Update current time (every call) and identity, memory and addresses (``full``)."""
        self.store.set(LwM2MPath(3, 0, 13), int(time.time() + self._time_offset))
        if not full:
            return
        info = self.ncp_info()
        stack, platform = split_ncp_version(str(info.get("ncp_version", "")))
        identity = {0: self.manufacturer or stack, 1: self.model or platform, 2: self.eui64,
                    3: str(info.get("ncp_version", ""))}
        for rid, value in identity.items():
            if value:
                self.store.set(LwM2MPath(3, 0, rid), value)
        free, total = memory_kib()
        self.store.set(LwM2MPath(3, 0, 10), free)
        self.store.set(LwM2MPath(3, 0, 21), total)
        addrs = self.addresses()
        self.store.set(LwM2MPath(4, 0, 4), dict(enumerate(addrs)))

    def _written(self, paths: list[LwM2MPath], origin: Any) -> None:
        # a server setting Current Time shifts what we report, it does not set the host clock
        if origin.value == "server" and LwM2MPath(3, 0, 13) in paths:
            self._time_offset = float(self.store.get(LwM2MPath(3, 0, 13))) - time.time()

    def _reboot(self, path: LwM2MPath, args: bytes) -> None:
        log.warning("LwM2M server executed Reboot: restarting gatewayd",
                    extra={"fields": {"LWM2M_EVENT": "reboot"}})
        if self.on_reboot is not None:
            asyncio.get_running_loop().call_later(REBOOT_DELAY, self.on_reboot)

    async def run(self, interval: float = 1.0) -> None:
        """Refresh the time every ``interval`` seconds and everything else every 30 of them."""
        tick = 0
        while True:
            await asyncio.sleep(interval)
            tick += 1
            try:
                self.refresh(full=tick % 30 == 0)
            except Exception as exc:  # a failing probe must not end the refresh loop
                log.debug("gateway device refresh failed: %s", exc)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
