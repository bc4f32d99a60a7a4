"""Test helper: run ``python -m ncp.sim`` (or, with ``argv``, a real ot-ncp-ftd) on a pty and talk Spinel to it."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path

from ncp import hdlc
from ncp.spinel import Command, Prop, SpinelFrame, pack_prop, unpack_prop

REPO = Path(__file__).resolve().parents[3]


class SimProcess:
    def __init__(self, *args: str, log: Path, argv: list[str] | None = None, cwd: Path = REPO) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # as the daemon's forkpty link does, before the child starts
        self.master = master
        self.log = log
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "ncp.sim", "--log", str(log), *args],
            stdin=slave,
            stdout=slave,
            stderr=open(log, "ab"),  # noqa: SIM115 - handed to the child
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.decoder = hdlc.HdlcDecoder()
        self.frames: list[SpinelFrame] = []
        self.tid = 0

    # --- raw Spinel -------------------------------------------------------------------------------
    def send(self, frame: SpinelFrame) -> None:
        os.write(self.master, hdlc.encode(frame.encode()))

    def _pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        for raw in self.decoder.feed(data):
            self.frames.append(SpinelFrame.decode(raw))
        return True

    def wait_for(self, predicate, timeout: float = 10.0) -> SpinelFrame:
        """First received frame matching ``predicate``; frames before it stay queued for later."""
        deadline = time.monotonic() + timeout
        while True:
            for i, frame in enumerate(self.frames):
                if predicate(frame):
                    del self.frames[i]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame; have {self.frames}; log: {self.log.read_text()[-2000:]}")
            self._pump(min(left, 0.2))

    def request(self, command: int, prop: int | None = None, value: bytes = b"", timeout: float = 5.0):
        self.tid = self.tid % 15 + 1
        tid = self.tid
        self.send(SpinelFrame(0, tid, command, prop, value))
        return self.wait_for(lambda f: f.tid == tid, timeout)

    def get(self, prop: int):
        reply = self.request(Command.PROP_VALUE_GET, prop)
        assert reply.prop == prop, reply
        return unpack_prop(prop, reply.value)

    def set(self, prop: int, value) -> SpinelFrame:
        return self.request(Command.PROP_VALUE_SET, prop, pack_prop(prop, value))

    def drain(self, seconds: float) -> list[SpinelFrame]:
        """Every frame received within ``seconds`` (and those still queued)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(left)
        frames, self.frames = self.frames, []
        return frames

    def wait_pushed(self, prop: int, predicate=lambda v: True, timeout: float = 10.0):
        frame = self.wait_for(
            lambda f: (
                f.tid == 0
                and f.prop == prop
                and f.command == Command.PROP_VALUE_IS
                and predicate(unpack_prop(prop, f.value))
            ),
            timeout,
        )
        return unpack_prop(prop, frame.value)

    # --- lifecycle --------------------------------------------------------------------------------
    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        return self.proc.returncode


def control(path: str, command: dict, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"control socket {path} never appeared")
        time.sleep(0.02)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(command).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def is_status(status: int):
    """A ``wait_for`` predicate: a LAST_STATUS frame carrying ``status``."""
    return lambda f: f.prop == Prop.LAST_STATUS and unpack_prop(Prop.LAST_STATUS, f.value) == status
