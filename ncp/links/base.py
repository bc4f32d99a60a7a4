"""What every NCP link offers the client: open/close, write bytes, read byte chunks, link loss."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import Any

__all__ = ["FdLink", "Link", "LinkDown"]

log = logging.getLogger(__name__)


class LinkDown(ConnectionError):
    """The link to the NCP is gone (EOF, serial error, child exited); reopen it to continue."""


class Link:
    """Base class: a byte pipe to the NCP carrying the HDLC-lite stream.

    Subclasses call ``_deliver(chunk)`` for received stream bytes and ``_set_lost(reason)`` once when the
    link dies; ``read()`` then raises :class:`LinkDown` after the buffered chunks are consumed.
    """

    supports_hard_reset = False

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self._rx: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._lost_reason: str | None = None
        self.is_open = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        return ""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def hard_reset(self) -> bool:
        """Reset the NCP by out-of-band means; False when this link cannot."""
        return False

    async def read(self) -> bytes:
        """Next chunk of received stream bytes; raises LinkDown once the link is gone."""
        chunk = await self._rx.get()
        if chunk is None:
            self._rx.put_nowait(None)  # keep raising for later readers
            raise LinkDown(self._lost_reason or "link closed")
        return chunk

    @property
    def lost(self) -> bool:
        return self._lost_reason is not None

    def _reset_rx(self) -> None:
        self._rx = asyncio.Queue()
        self._lost_reason = None

    def _deliver(self, chunk: bytes) -> None:
        if chunk and self._lost_reason is None:
            self._rx.put_nowait(chunk)

    def _set_lost(self, reason: str, *, quiet: bool = False) -> None:
        if self._lost_reason is None:
            self._lost_reason = reason
            if not quiet:
                log.warning("NCP link lost: %s", reason)
            self._rx.put_nowait(None)


class FdLink(Link):
    """A link over one non-blocking file descriptor (serial port or pty master) on the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self._fd: int | None = None
        self._wbuf = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _attach(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._wbuf.clear()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._on_readable)
        self.is_open = True

    def _detach(self) -> int | None:
        fd, self._fd = self._fd, None
        if fd is not None and self._loop is not None:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        self._wbuf.clear()
        self.is_open = False
        return fd

    def _on_readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO on a pty master means the other side closed (the child exited).
            self._fail("end of file" if exc.errno == errno.EIO else f"read error: {exc}")
            return
        if not data:
            self._fail("end of file")
            return
        self._on_bytes(data)

    def _on_bytes(self, data: bytes) -> None:
        self._deliver(data)

    def _fail(self, reason: str) -> None:
        self._detach_io()
        self._set_lost(reason)

    def _detach_io(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)

    def _write_raw(self, data: bytes) -> None:
        if self._fd is None or self.lost:
            raise LinkDown(self._lost_reason or "link is not open")
        if self._wbuf:
            self._wbuf += data
            return
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._fail(f"write error: {exc}")
            raise LinkDown(f"write error: {exc}") from exc
        if n < len(data):
            self._wbuf += data[n:]
            assert self._loop is not None
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        if self._fd is None:
            return
        try:
            n = os.write(self._fd, self._wbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(f"write error: {exc}")
            return
        del self._wbuf[:n]
        if not self._wbuf and self._loop is not None:
            self._loop.remove_writer(self._fd)

    async def drain(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until buffered output reached the kernel."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self._wbuf and self._fd is not None and loop.time() < end:
            await asyncio.sleep(0.005)
