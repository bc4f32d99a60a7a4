"""Real OpenThread and Wakaama programs as test peers, found through ``GATEWAYD_INTEROP_DIR``.

The directory holds binaries built outside this repository (docs/development.md says how):
``ot-ncp-ftd``, ``ot-cli-ftd``, ``lwm2mserver``, ``bootstrap_server``, ``lwm2mclient`` of current
OpenThread and Wakaama, and ``ot-2023/ot-ncp-ftd``, ``ot-2023/ot-cli-ftd`` of OpenThread 2023-10.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

ENV = "GATEWAYD_INTEROP_DIR"
# The two OpenThread generations every Thread scenario runs on: the current one, and one of 2023 (no
# THREAD_ACTIVE_DATASET_TLVS), as field firmware often is.
OT_VERSIONS = {"ot-current": "", "ot-2023": "ot-2023"}


def interop_dir() -> Path | None:
    value = os.environ.get(ENV, "")
    return Path(value) if value else None


def peer(name: str) -> Path:
    """The path of a peer binary, or a skip that says how to provide it."""
    base = interop_dir()
    if base is None:
        pytest.skip(f"real peers not available: set {ENV} to a directory with {name} (docs/development.md)")
    path = base / name
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} missing: {ENV} must hold {name} (docs/development.md)")
    return path


def ncp_url(binary: Path, node_id: int, cwd: Path, record: Path | None = None) -> str:
    """The [ncp] url that spawns a simulation NCP on a pty, as gatewayd drives a Chili2 over a UART.

    ``env -C`` gives it a working directory of its own: it keeps its settings in ./tmp there.
    """
    args = ["-C", str(cwd), str(binary), str(node_id)]
    url = "spinel+hdlc+forkpty:///usr/bin/env?" + "&".join(f"args={a}" for a in args)
    return url + (f"&record={record}" if record else "")


class OtCli:
    """One ``ot-cli-ftd`` node: a Thread device of the simulated radio, driven through its CLI."""

    def __init__(self, binary: Path, node_id: int, cwd: Path, netns: str | None = None) -> None:
        self.node_id = node_id
        cwd.mkdir(parents=True, exist_ok=True)
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = subprocess.Popen([*prefix, str(binary), str(node_id)], cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.transcript: list[str] = []
        self._buf = b""

    def _lines(self, timeout: float) -> list[str]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            raise AssertionError(f"ot-cli-ftd {self.node_id} exited:\n" + "\n".join(self.transcript[-30:]))
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out = [line.decode(errors="replace").replace("\r", "").removeprefix("> ").strip() for line in lines]
        self.transcript += out
        return out

    def cmd(self, line: str, timeout: float = 10.0) -> list[str]:
        """Run one CLI command; its output lines.  AssertionError on ``Error ...`` or no ``Done``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self._lines(min(0.5, max(deadline - time.monotonic(), 0.01))):
                if text == line or not text:
                    continue
                if text == "Done":
                    return out
                if text.startswith("Error"):
                    raise AssertionError(f"ot-cli-ftd {self.node_id}: {line!r} → {text}")
                out.append(text)
        raise AssertionError(f"ot-cli-ftd {self.node_id}: {line!r} gave no Done in {timeout} s: {out}")

    def wait_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait for an asynchronous output line (a UDP datagram, a CoAP response...)."""
        regex = re.compile(pattern)
        for text in self.transcript:
            if m := regex.search(text):
                self.transcript.remove(text)
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self._lines(0.2):
                if m := regex.search(text):
                    return m
        raise AssertionError(f"ot-cli-ftd {self.node_id}: no {pattern!r} within {timeout} s")

    def value(self, line: str) -> str:
        out = self.cmd(line)
        return out[0] if out else ""

    def join(self, dataset_hex: str, *, mtd: bool = False) -> None:
        self.cmd(f"dataset set active {dataset_hex}")
        if mtd:
            self.cmd("mode rn")  # rx-on MTD: registers its addresses with its parent
        self.cmd("ifconfig up")
        self.cmd("thread start")

    def wait_state(self, *states: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.value("state")
            if state in states:
                return state
            time.sleep(0.5)
        raise AssertionError(f"ot-cli-ftd {self.node_id} stayed {state!r}, wanted {states}")

    def addresses(self) -> list[str]:
        return self.cmd("ipaddr")

    def ping(self, address: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Echo requests from the node; True if any reply came back."""
        out = self.cmd(f"ping {address} 16 {count} 0.3 64 {max(int(timeout / 2), 1)}", timeout=timeout + 5)
        received = [line for line in out if re.search(r"(\d+) packets received", line)]
        return bool(received) and not received[-1].startswith(f"{count} packets transmitted, 0 packets")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
