"""An NCP program spawned on a pseudo-terminal (``spinel+hdlc+forkpty://``), e.g. a simulated NCP.

The child talks HDLC-lite on its stdin/stdout, which are the pty slave in raw mode.  When it exits the
master reads EIO and the link reports loss; the child is reaped, and the next ``open()`` starts a new
one, so a client that reconnects after link loss restarts the program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tty

from common.aio import cancel_all

from .base import FdLink, LinkDown

__all__ = ["ForkptyLink"]

log = logging.getLogger(__name__)


class ForkptyLink(FdLink):
    def __init__(self, program: str, args: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.program = program
        self.args = tuple(args)
        self.process: asyncio.subprocess.Process | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.spawn_count = 0

    def describe(self) -> str:
        return " ".join([self.program, *self.args])

    async def open(self) -> None:
        self._reset_rx()
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            self.process = await asyncio.create_subprocess_exec(
                self.program,
                *self.args,
                stdin=slave,
                stdout=slave,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(master)
            raise LinkDown(f"cannot start {self.program}: {exc}") from exc
        finally:
            os.close(slave)
        self.spawn_count += 1
        self._attach(master)
        self._reaper = asyncio.create_task(self._reap(self.process))
        self.info = {"link": "spinel+hdlc+forkpty", "program": self.program, "pid": self.process.pid}
        log.info("started NCP program %s (pid %d)", self.describe(), self.process.pid)

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if process is self.process and self.is_open:
            log.warning("NCP program %s exited with status %s", self.program, code)
            # Output already in the pty is still readable; the EIO that follows reports the loss,
            # but not every platform raises it, so report here too once the buffer drained.
            await asyncio.sleep(0.05)
            self._fail(f"NCP program exited with status {code}")

    async def close(self) -> None:
        await self.drain(0.5)
        fd = self._detach()
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await cancel_all(self._reaper)
        self._reaper = None
        if fd is not None:
            os.close(fd)
        self._set_lost("closed", quiet=True)

    def write(self, data: bytes) -> None:
        self._write_raw(data)
