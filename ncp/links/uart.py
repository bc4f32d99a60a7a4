"""Raw HDLC-lite Spinel over a serial port (``spinel+hdlc+uart://``)."""

from __future__ import annotations

import serial

from .base import FdLink, LinkDown

__all__ = ["UartLink", "open_serial"]


def open_serial(path: str, baudrate: int, rtscts: bool = False) -> serial.Serial:
    """Open a serial port (or pty) 8N1, non-blocking; raises LinkDown when it cannot be opened."""
    try:
        return serial.Serial(path, baudrate=baudrate, rtscts=rtscts, timeout=0, write_timeout=0)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkDown(f"cannot open {path}: {exc}") from exc


class UartLink(FdLink):
    def __init__(self, path: str, baudrate: int = 115200, rtscts: bool = False) -> None:
        super().__init__()
        self.path = path
        self.baudrate = baudrate
        self.rtscts = rtscts
        self._serial: serial.Serial | None = None

    def describe(self) -> str:
        flow = "rtscts" if self.rtscts else "none"
        return f"{self.path} {self.baudrate} baud, flow control {flow}"

    async def open(self) -> None:
        self._reset_rx()
        self._serial = open_serial(self.path, self.baudrate, self.rtscts)
        self._serial.reset_input_buffer()
        self._attach(self._serial.fileno())
        self.info = {"link": "spinel+hdlc+uart", "path": self.path, "baudrate": self.baudrate}

    async def close(self) -> None:
        await self.drain(0.5)
        self._detach()
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
            self._serial = None
        self._set_lost("closed", quiet=True)

    def write(self, data: bytes) -> None:
        self._write_raw(data)
