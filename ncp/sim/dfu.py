"""The simulated Chili2's firmware update (EVBME_DFU_CMD, see :mod:`ncp.cascoda_dfu`).

It models what a host can observe: a staging area that ERASE, WRITE and CHECK act on while the running
firmware keeps running; REBOOT into the application installs the staged image only if every page of it
was checked since it was erased, and the NCP then restarts reporting the image's OpenThread version
(its ``OPENTHREAD/...`` string) in NCP_VERSION. A WRITE to flash that is not erased, an address outside
the staging area or a CHECK that does not match fail with a DFU_STATUS error, as the device's BSP calls
do; a failed CHECK also spoils the staged image. The installed version lives in the ``--firmware`` file,
so a power cut (the process killed) mid-write finds the old firmware on the next start.

Not modelled: the DFU-mode application (REBOOT into DFU only answers), the OTA metadata page, flash
timing (erasing and writing take no time), and a boot loader that fails while copying.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ncp.cascoda_dfu import (
    MAX_IMAGE,
    PAGE_SIZE,
    STAGING_BASE,
    CaError,
    DfuCheck,
    DfuCommand,
    DfuErase,
    DfuReboot,
    DfuStatus,
    DfuWrite,
    RebootMode,
    image_version,
    page_checksum,
)

log = logging.getLogger(__name__)


class SimFirmware:
    """The running firmware's version and the staging area, kept in ``path`` (JSON) when given."""

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self.version = ""  # "" runs the generation's own build
        self.staging = bytearray(b"\xff" * MAX_IMAGE)
        self.erased = 0  # bytes from the start of the staging area erased since the last install
        self.checked: set[int] = set()  # pages whose CHECK matched since they were erased
        self.spoiled = False
        self.counters = {"erase": 0, "write": 0, "check": 0, "check_failed": 0, "installs": 0}
        if self.path is not None and self.path.exists():
            try:
                self.version = str(json.loads(self.path.read_text()).get("version", ""))
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("ignoring unreadable firmware file %s: %s", self.path, exc)

    def handle(self, command: DfuCommand) -> tuple[DfuStatus, bool]:
        """The DFU_STATUS answer, and whether the NCP now restarts into a newly installed image."""
        if isinstance(command, DfuErase):
            return self._erase(command), False
        if isinstance(command, DfuWrite):
            return self._write(command), False
        if isinstance(command, DfuCheck):
            return self._check(command), False
        if isinstance(command, DfuReboot):
            return DfuStatus(CaError.SUCCESS), command.mode == RebootMode.APROM and self._install()
        return DfuStatus(CaError.INVALID_STATE), False

    def _offset(self, start: int, length: int) -> int | None:
        offset = start - STAGING_BASE
        return offset if offset >= 0 and offset + length <= MAX_IMAGE else None

    def _erase(self, cmd: DfuErase) -> DfuStatus:
        offset = self._offset(cmd.start, cmd.length)
        if offset is None or offset % PAGE_SIZE or cmd.length % PAGE_SIZE or offset != 0:
            return DfuStatus(CaError.INVALID_ARGS)
        self.counters["erase"] += 1
        self.staging[: cmd.length] = b"\xff" * cmd.length
        self.erased, self.checked, self.spoiled = cmd.length, set(), False
        return DfuStatus(CaError.SUCCESS)

    def _write(self, cmd: DfuWrite) -> DfuStatus:
        offset = self._offset(cmd.start, len(cmd.data))
        if offset is None or offset % 4 or offset + len(cmd.data) > self.erased:
            return DfuStatus(CaError.INVALID_ARGS)
        target = self.staging[offset : offset + len(cmd.data)]
        if any(b != 0xFF for b in target):  # BSP_FlashWriteInitial: only erased flash can be written
            return DfuStatus(CaError.FAIL)
        self.counters["write"] += 1
        self.staging[offset : offset + len(cmd.data)] = cmd.data
        return DfuStatus(CaError.SUCCESS)

    def _check(self, cmd: DfuCheck) -> DfuStatus:
        offset = self._offset(cmd.start, cmd.length)
        if offset is None or offset % PAGE_SIZE or cmd.length != PAGE_SIZE:
            return DfuStatus(CaError.INVALID_ARGS)
        self.counters["check"] += 1
        if page_checksum(self.staging[offset : offset + PAGE_SIZE]) != cmd.checksum:
            self.counters["check_failed"] += 1
            self.spoiled = True
            return DfuStatus(CaError.FAIL)
        self.checked.add(offset // PAGE_SIZE)
        return DfuStatus(CaError.SUCCESS)

    def _install(self) -> bool:
        pages = self.erased // PAGE_SIZE
        if not pages or self.spoiled or any(p not in self.checked for p in range(pages)):
            return False  # the boot loader finds no whole, checked image: the old firmware boots again
        image = bytes(self.staging[: self.erased])
        self.version = image_version(image) or f"OPENTHREAD/unknown; CASCODA; image of {self.erased} bytes"
        self.erased, self.checked = 0, set()
        self.counters["installs"] += 1
        self._save()
        log.info("firmware installed: %s", self.version)
        return True

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": self.version}))
        os.replace(tmp, self.path)
