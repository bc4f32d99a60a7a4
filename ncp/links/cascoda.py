"""Spinel over a Cascoda Chili2 UART (``cascoda+uart://``): a thin asyncio driver of ncp.cascoda.

The NCP stream is carried in OT_SERIAL_DOWNLINK/UPLINK messages; the acknowledge/resend rules live in
:class:`ncp.cascoda.CascodaSession`.  At open the host announces itself (EVBME_HOST_CONNECTED) and
reads the device's identity strings for status output; a hard reset pulses the radio (RESETRF).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import serial

from .. import cascoda, cascoda_dfu
from ..cascoda import Attribute, CascodaMessage, CascodaSession, Cmd
from .base import FdLink, LinkDown
from .uart import open_serial

__all__ = ["CascodaLink"]

log = logging.getLogger(__name__)

_INFO_ATTRIBUTES = {
    Attribute.VERSION: "version",
    Attribute.PLATFORM: "platform",
    Attribute.APPLICATION: "application",
    Attribute.SERIALNO: "serial_number",
    Attribute.OT_EUI64: "eui64",
}
RESETRF_PULSE_MS = 5
DFU_TIMEOUT = 10.0  # erasing the whole application area of a Chili2 takes seconds


class CascodaLink(FdLink):
    supports_hard_reset = True

    def __init__(self, path: str, baudrate: int = 1_000_000, evbme_timeout: float = 1.0) -> None:
        super().__init__()
        self.path = path
        self.baudrate = baudrate
        self.evbme_timeout = evbme_timeout
        self.session = CascodaSession()
        self._serial: serial.Serial | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._confirm: asyncio.Future[CascodaMessage] | None = None
        self._confirm_cmd: int | None = None
        self._sync_lock = asyncio.Lock()

    def describe(self) -> str:
        return f"{self.path} {self.baudrate} baud (Cascoda)"

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        self._reset_rx()
        self.session.reset()
        self._serial = open_serial(self.path, self.baudrate)
        with contextlib.suppress(serial.SerialException, OSError):
            self._serial.reset_input_buffer()
        self._attach(self._serial.fileno())
        self.info = {"link": "cascoda+uart", "path": self.path, "baudrate": self.baudrate}
        self._send(CascodaMessage(Cmd.EVBME_HOST_CONNECTED))
        for attribute, key in _INFO_ATTRIBUTES.items():
            value = await self._get_attribute(attribute)
            if value is None:
                continue
            if attribute in (Attribute.SERIALNO, Attribute.OT_EUI64):
                self.info[key] = value.hex()
            else:
                self.info[key] = value.split(b"\0", 1)[0].decode("utf-8", "replace")
        log.info(
            "Cascoda device on %s: %s",
            self.path,
            ", ".join(f"{k}={v}" for k, v in self.info.items() if k in _INFO_ATTRIBUTES.values()) or "no identity",
        )

    async def close(self) -> None:
        if self._fd is not None and not self.lost:
            # Best effort: tell the device we are going, without waiting for its RXRDY.
            with contextlib.suppress(OSError):
                os.write(self._fd, CascodaMessage(Cmd.EVBME_HOST_DISCONNECTED).encode())
        await self.drain(0.5)
        self._cancel_timer()
        self._detach()
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None
        if self._confirm is not None and not self._confirm.done():
            self._confirm.set_exception(LinkDown("closed"))
        self._set_lost("closed", quiet=True)

    async def hard_reset(self) -> bool:
        status = await self._set_attribute(Attribute.RESETRF, bytes((RESETRF_PULSE_MS,)))
        if status != 0:
            log.warning("Cascoda RESETRF failed (status %s)", status)
            return False
        return True

    # -- stream ---------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._fd is None or self.lost:
            raise LinkDown(self._lost_reason or "link is not open")
        self.session.send_stream(data, self._now())
        self._flush()

    def _send(self, message: CascodaMessage) -> None:
        self.session.send(message, self._now())
        self._flush()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _flush(self) -> None:
        out = self.session.data_to_send()
        if out and self._fd is not None and not self.lost:
            with contextlib.suppress(LinkDown):
                self._write_raw(out)
        self._arm_timer()

    def _on_bytes(self, data: bytes) -> None:
        for message in self.session.feed(data, self._now()):
            self._dispatch(message)
        self._flush()

    def _dispatch(self, message: CascodaMessage) -> None:
        if message.cmd == Cmd.OT_SERIAL_UPLINK:
            self._deliver(message.payload)
        elif message.cmd == Cmd.EVBME_MESSAGE_INDICATION:
            log.info("Cascoda device: %s", cascoda.message_text(message.payload))
        elif self._confirm is not None and message.cmd == self._confirm_cmd and not self._confirm.done():
            self._confirm.set_result(message)
        else:
            log.debug("ignoring Cascoda message 0x%02x (%d bytes)", message.cmd, len(message.payload))

    # -- timers ---------------------------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm_timer(self) -> None:
        self._cancel_timer()
        deadline = self.session.next_deadline()
        if deadline is not None and self._loop is not None and self._fd is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._fd is None:
            return
        was_down = self.session.link_down
        self.session.tick(self._now())
        if self.session.link_down and not was_down:
            log.warning(
                "Cascoda device stopped acknowledging (%d RXRDYs missed); sending without waiting",
                self.session.missed_acks,
            )
        self._flush()

    # -- EVBME synchronous requests ---------------------------------------------------------------
    async def _request(self, message: CascodaMessage, confirm: int,
                       timeout: float | None = None) -> CascodaMessage | None:
        async with self._sync_lock:
            assert self._loop is not None
            self._confirm = self._loop.create_future()
            self._confirm_cmd = confirm
            try:
                self._send(message)
                return await asyncio.wait_for(self._confirm, timeout or self.evbme_timeout)
            except (TimeoutError, LinkDown):
                if self.lost:
                    raise LinkDown(self._lost_reason or "link lost") from None
                return None
            finally:
                self._confirm = None
                self._confirm_cmd = None

    async def dfu(self, command: cascoda_dfu.DfuCommand, timeout: float = DFU_TIMEOUT) -> cascoda_dfu.DfuStatus:
        """Send one DFU sub-command (EVBME_DFU_CMD) and wait for the device's DFU_STATUS.

        LinkDown when the link is lost (a power cut), TimeoutError when the device does not answer, DfuError
        when it answers something else than a status."""
        if self._fd is None or self.lost:
            raise LinkDown(self._lost_reason or "link is not open")
        reply = await self._request(cascoda_dfu.encode(command), Cmd.EVBME_DFU_CMD, timeout)
        if reply is None:
            raise TimeoutError(f"no DFU_STATUS to {type(command).__name__} in {timeout:.0f} s")
        status = cascoda_dfu.decode(reply.payload)
        if not isinstance(status, cascoda_dfu.DfuStatus):
            raise cascoda_dfu.DfuError(f"the device answered {type(status).__name__}, not DFU_STATUS")
        return status

    async def _get_attribute(self, attribute: int) -> bytes | None:
        reply = await self._request(cascoda.get_request(attribute), Cmd.EVBME_GET_CONFIRM)
        if reply is None:
            log.warning("Cascoda device did not answer GET of attribute 0x%02x", attribute)
            return None
        try:
            confirm = cascoda.parse_get_confirm(reply.payload)
        except cascoda.CascodaError as exc:
            log.warning("bad EVBME_GET_CONFIRM: %s", exc)
            return None
        if confirm.status != 0 or confirm.attribute != attribute:
            log.info("Cascoda attribute 0x%02x not available (status %d)", attribute, confirm.status)
            return None
        return confirm.value

    async def _set_attribute(self, attribute: int, value: bytes) -> int | None:
        reply = await self._request(cascoda.set_request(attribute, value), Cmd.EVBME_SET_CONFIRM)
        if reply is None:
            return None
        try:
            return cascoda.parse_set_confirm(reply.payload)
        except cascoda.CascodaError:
            return None
