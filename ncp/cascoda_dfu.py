"""Firmware update of a Cascoda Chili2 over its EVBME serial link (EVBME_DFU_CMD, 0xA3), sans-I/O.

Cascoda's ``evbme_messages.h`` (cascoda-sdk, ca821x-api) defines the DFU sub-commands carried in
EVBME_DFU_CMD: REBOOT (0: into the application, APROM, or into DFU mode), ERASE (1: whole pages from a
page-aligned address), WRITE (2: up to 244 bytes of whole words at a word-aligned address), CHECK (3: a
CRC-32 over whole pages) and STATUS (4: the device's answer to each of the others, a ``ca_error``
byte). Addresses and lengths are little-endian 32-bit. ``chilictl flash`` (posix/app/chilictl) checks
each 2 KiB page with zlib's CRC-32 of the page padded with 0xFF.

The update is staged: the image goes to the staging area (Cascoda's OTA layout puts it in external
flash; :data:`STAGING_BASE`) while the running firmware keeps running, every page is checked, and only
a REBOOT into the application lets the boot loader install a staged image that checked out whole. An
interrupted or failed staging leaves the old firmware in place. :func:`update_plan` lists the commands
for an image; :func:`check_image` refuses what is no Chili2 application before anything is erased.

Decoders raise :class:`DfuError` (a :class:`~ncp.cascoda.CascodaError`) and nothing else.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from .cascoda import CascodaError, CascodaMessage, Cmd

__all__ = [
    "MAX_IMAGE",
    "PAGE_SIZE",
    "STAGING_BASE",
    "WRITE_MAX",
    "CaError",
    "DfuCheck",
    "DfuCommand",
    "DfuErase",
    "DfuError",
    "DfuReboot",
    "DfuStatus",
    "DfuWrite",
    "ImageError",
    "RebootMode",
    "SubCmd",
    "check_image",
    "decode",
    "encode",
    "image_version",
    "page_checksum",
    "update_plan",
]

PAGE_SIZE = 0x800  # Chili2 (M2351) flash page: 2 KiB
WRITE_MAX = 244  # DFU_WRITE_MAX_LEN: what fits in one EVBME message after sub-command and address
MAX_IMAGE = 0x70000  # application space of a Chili2 with the OTA boot loader (448 KiB)
STAGING_BASE = 0xB0000000  # external flash as the EVBME DFU commands address it (OTA staging area)
SRAM = range(0x20000000, 0x20040000 + 1)  # where a Cortex-M image's initial stack pointer may point


class CaError(enum.IntEnum):
    """``ca_error`` values a DFU_STATUS carries (ca821x_error.h)."""

    SUCCESS = 0x00
    FAIL = 0x01
    INVALID_STATE = 0x05
    INVALID_ARGS = 0x07


class SubCmd(enum.IntEnum):
    """``evbme_dfu_cmdid``."""

    REBOOT = 0
    ERASE = 1
    WRITE = 2
    CHECK = 3
    STATUS = 4


class RebootMode(enum.IntEnum):
    """``evbme_dfu_rebootmode``."""

    APROM = 0
    DFU = 1


class DfuError(CascodaError):
    """An EVBME_DFU_CMD payload that is malformed."""


class ImageError(ValueError):
    """A firmware image this NCP cannot take; ``too_large`` tells a size problem from a wrong image."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True, slots=True)
class DfuReboot:
    mode: RebootMode


@dataclass(frozen=True, slots=True)
class DfuErase:
    start: int
    length: int


@dataclass(frozen=True, slots=True)
class DfuWrite:
    start: int
    data: bytes


@dataclass(frozen=True, slots=True)
class DfuCheck:
    start: int
    length: int
    checksum: int


@dataclass(frozen=True, slots=True)
class DfuStatus:
    status: int  # ca_error: 0 is success

    @property
    def ok(self) -> bool:
        return self.status == 0


DfuCommand = DfuReboot | DfuErase | DfuWrite | DfuCheck | DfuStatus


def encode(command: DfuCommand) -> CascodaMessage:
    """The EVBME_DFU_CMD message carrying ``command``."""
    if isinstance(command, DfuReboot):
        body = bytes((SubCmd.REBOOT, command.mode))
    elif isinstance(command, DfuErase):
        body = struct.pack("<BII", SubCmd.ERASE, command.start, command.length)
    elif isinstance(command, DfuWrite):
        if len(command.data) > WRITE_MAX or len(command.data) % 4:
            raise DfuError(f"DFU_WRITE of {len(command.data)} bytes (whole words, at most {WRITE_MAX})")
        body = struct.pack("<BI", SubCmd.WRITE, command.start) + command.data
    elif isinstance(command, DfuCheck):
        body = struct.pack("<BIII", SubCmd.CHECK, command.start, command.length, command.checksum)
    else:
        body = bytes((SubCmd.STATUS, command.status))
    return CascodaMessage(Cmd.EVBME_DFU_CMD, body)


def decode(payload: bytes) -> DfuCommand:
    """The sub-command in an EVBME_DFU_CMD payload."""
    if not payload:
        raise DfuError("EVBME_DFU_CMD without a sub-command")
    sub, body = payload[0], bytes(payload[1:])
    if sub == SubCmd.REBOOT:
        if len(body) != 1 or body[0] not in (RebootMode.APROM, RebootMode.DFU):
            raise DfuError("DFU_REBOOT needs one mode byte, 0 or 1")
        return DfuReboot(RebootMode(body[0]))
    if sub == SubCmd.ERASE:
        if len(body) != 8:
            raise DfuError(f"DFU_ERASE of {len(body)} bytes, not 8")
        return DfuErase(*struct.unpack("<II", body))
    if sub == SubCmd.WRITE:
        if len(body) < 4 or (len(body) - 4) % 4 or len(body) - 4 > WRITE_MAX:
            raise DfuError(f"DFU_WRITE of {len(body)} bytes is not an address and whole words")
        return DfuWrite(struct.unpack_from("<I", body)[0], body[4:])
    if sub == SubCmd.CHECK:
        if len(body) != 12:
            raise DfuError(f"DFU_CHECK of {len(body)} bytes, not 12")
        return DfuCheck(*struct.unpack("<III", body))
    if sub == SubCmd.STATUS:
        if len(body) != 1:
            raise DfuError("DFU_STATUS needs one status byte")
        return DfuStatus(body[0])
    raise DfuError(f"unknown DFU sub-command {sub}")


def page_checksum(data: bytes, page_size: int = PAGE_SIZE) -> int:
    """DFU_CHECK's checksum of one page: CRC-32 (zlib's) of its bytes padded with 0xFF (erased flash)."""
    return zlib.crc32(bytes(data).ljust(page_size, b"\xff")) & 0xFFFFFFFF


def check_image(image: bytes, max_size: int = MAX_IMAGE) -> None:
    """Refuse what cannot be a Chili2 application image: the Cortex-M vector table it starts with names an
    initial stack pointer in SRAM and a Thumb reset handler inside the image."""
    if not image:
        raise ImageError("empty image")
    if len(image) > max_size:
        raise ImageError(f"image of {len(image)} bytes exceeds the {max_size} bytes of application flash",
                         too_large=True)
    if len(image) < 8:
        raise ImageError("image too short for a vector table")
    sp, reset = struct.unpack_from("<II", image)
    if sp not in SRAM or sp % 4:
        raise ImageError(f"initial stack pointer 0x{sp:08x} is not in SRAM: not a Cortex-M application image")
    if not reset & 1 or (reset & ~1) >= max_size:
        raise ImageError(f"reset vector 0x{reset:08x} is not a Thumb address inside the application")


def image_version(image: bytes) -> str:
    """The OpenThread version string an NCP image reports (``OPENTHREAD/...``), "" if it holds none."""
    at = image.find(b"OPENTHREAD/")
    if at < 0:
        return ""
    end = image.find(b"\0", at)
    raw = image[at : end if end >= 0 else at + 128][:128]
    return raw.decode("ascii", "replace")


def update_plan(image: bytes, base: int = STAGING_BASE, page_size: int = PAGE_SIZE) -> list[DfuCommand]:
    """ERASE the pages the image needs, WRITE it in chunks, CHECK each page, then REBOOT into it."""
    padded = image + b"\xff" * (-len(image) % 4)
    pages = -(-len(padded) // page_size)
    plan: list[DfuCommand] = [DfuErase(base, pages * page_size)]
    plan += [DfuWrite(base + i, padded[i : i + WRITE_MAX]) for i in range(0, len(padded), WRITE_MAX)]
    plan += [DfuCheck(base + p * page_size, page_size, page_checksum(padded[p * page_size : (p + 1) * page_size],
                                                                      page_size))
             for p in range(pages)]
    plan.append(DfuReboot(RebootMode.APROM))
    return plan
