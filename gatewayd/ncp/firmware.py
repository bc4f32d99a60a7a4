"""Writing a new firmware to the NCP: a Cascoda Chili2's EVBME DFU commands over the NCP's own serial link.

The installer the LwM2M Firmware Update object (:mod:`gatewayd.lwm2m.firmware`) hands packages to. It
stages the image (:func:`ncp.cascoda_dfu.update_plan`: erase, write, check every page) while the old
firmware keeps running, reboots the NCP into it, waits for the NCP to answer again and reads the version
it reports (NCP_VERSION), which must be the image's own: otherwise the boot loader kept the old firmware.
A page that does not check out is an integrity failure; a link lost on the way (a power cut) or a device
that stops answering leaves the old firmware, and the Update may be executed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ncp import cascoda_dfu as dfu
from ncp.client import NcpClient, NcpState
from ncp.links.base import LinkDown
from ncp.links.cascoda import DFU_TIMEOUT
from ncp.spinel.props import Prop

from ..lwm2m.firmware import UpdateFailed, UpdateResult

log = logging.getLogger("gatewayd.ncp")

RESTART_TIMEOUT = 60.0


class NcpFirmwareInstaller:
    """Installs images on the NCP ``client()`` is connected to (over a ``cascoda+uart`` link)."""

    def __init__(self, client: Callable[[], NcpClient | None], restart_timeout: float = RESTART_TIMEOUT,
                 dfu_timeout: float = DFU_TIMEOUT) -> None:
        self.client = client
        self.restart_timeout = restart_timeout
        self.dfu_timeout = dfu_timeout
        self.progress: dict[str, Any] = {}

    def _link(self) -> Any:
        client = self.client()
        link = getattr(client, "link", None)
        if client is None or not hasattr(link, "dfu"):
            raise UpdateFailed(UpdateResult.UPDATE_FAILED,
                               "the NCP is not a Cascoda Chili2 on a cascoda+uart link (no EVBME DFU)")
        return link

    def check(self, package: bytes) -> None:
        try:
            dfu.check_image(package)
        except dfu.ImageError as exc:
            result = UpdateResult.NOT_ENOUGH_FLASH if exc.too_large else UpdateResult.UNSUPPORTED_PACKAGE_TYPE
            raise UpdateFailed(result, str(exc)) from None

    async def install(self, package: bytes) -> str:
        self.check(package)
        link = self._link()
        plan = dfu.update_plan(package)
        expected = dfu.image_version(package)
        started = time.monotonic()
        for i, command in enumerate(plan):
            self.progress = {"step": i + 1, "of": len(plan), "command": type(command).__name__}
            try:
                status = await link.dfu(command, self.dfu_timeout)
            except (LinkDown, TimeoutError, OSError, dfu.DfuError) as exc:
                if isinstance(command, dfu.DfuReboot):
                    break  # the device may restart before its status makes it out
                raise UpdateFailed(UpdateResult.UPDATE_FAILED,
                                   f"NCP link lost at {type(command).__name__} {i + 1}/{len(plan)}: {exc}") from None
            if status.ok:
                continue
            if isinstance(command, dfu.DfuCheck):
                raise UpdateFailed(UpdateResult.INTEGRITY_CHECK_FAILURE,
                                   f"page at 0x{command.start:08x} does not check out (CRC-32 "
                                   f"0x{command.checksum:08x}, status {status.status})")
            raise UpdateFailed(UpdateResult.UPDATE_FAILED,
                               f"NCP refused {type(command).__name__} {i + 1}/{len(plan)} (ca_error {status.status})")
        log.info("NCP firmware staged and checked in %.1f s; restarting the NCP into it", time.monotonic() - started)
        version = await self._version_after_restart()
        if expected and version != expected:
            raise UpdateFailed(UpdateResult.UPDATE_FAILED,
                               f"the NCP still reports {version!r}, not the image's {expected!r}")
        return version

    async def _version_after_restart(self) -> str:
        """NCP_VERSION once the restarted NCP answers again (its client's info is brought up to date)."""
        deadline = time.monotonic() + self.restart_timeout
        await asyncio.sleep(0.2)  # the reboot takes the NCP away for a moment
        last: Exception | None = None
        while time.monotonic() < deadline:
            client = self.client()
            if client is not None and client.state in (NcpState.RUNNING, NcpState.RESETTING):
                try:
                    version = str(await client.get(Prop.NCP_VERSION))
                except Exception as exc:  # still restarting
                    last = exc
                else:
                    client.info["ncp_version"] = version
                    return version
            await asyncio.sleep(0.5)
        raise UpdateFailed(UpdateResult.UPDATE_FAILED, f"the NCP did not answer after its restart ({last})")
