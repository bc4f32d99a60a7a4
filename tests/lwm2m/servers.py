"""Test peers for the LwM2M client: the npm lwm2m-node-lib server driven over its own CLI, helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
from pathlib import Path

from gatewayd.lwm2m import load_registry
from gatewayd.lwm2m.bootstrap import factory_bootstrap
from gatewayd.lwm2m.model import ObjectStore

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "peers"
NODE_SERVER = PEERS / "lwm2m-node-server.js"
NODE_LIB = PEERS / "node_modules" / "lwm2m-node-lib"
REGISTRY = load_registry()


def node_server_available() -> str | None:
    """None if the node server can run here, else why not."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs it)"
    if not NODE_LIB.is_dir():
        return "npm lwm2m-node-lib is not installed under tests/peers (scripts/setup.sh)"
    return None


def free_udp_port() -> int:
    """A UDP port free on loopback now (and, for DTLS peers, the one above it too)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
                try:
                    s2.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free UDP port pair")


def device_store(uri: str | None = None, *, identity: bytes = b"", key: bytes = b"", lifetime: int = 300,
                 bootstrap: bool = False) -> ObjectStore:
    """A store with a Device object (and, given a URI, the account to register with)."""
    store = ObjectStore(REGISTRY)
    store.add_instance(3, 0, {0: "gatewayd tests", 1: "model-1", 2: "0011223344556677", 3: "fw-1.0",
                              11: {0: 0}, 13: 1_700_000_000, 14: "+01", 16: "U"})
    if uri is not None:
        factory_bootstrap(store, uri, identity=identity, key=key, lifetime=lifetime, bootstrap=bootstrap)
    return store


class NodeServer:
    """The lwm2m-node-lib interactive server on a loopback UDP port, driven through stdin/stdout."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.output = ""
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        env = dict(os.environ, LWM2M_PORT=str(self.port), NODE_PATH=str(PEERS / "node_modules"))
        self.proc = await asyncio.create_subprocess_exec(
            "node", str(NODE_SERVER), cwd=str(PEERS), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.command("start", r"Lightweight M2M Server started")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            chunk = await self.proc.stdout.read(4096)
            if not chunk:
                self._changed.set()
                return
            self.output += chunk.decode("utf-8", "replace")
            self._changed.set()

    async def wait_for(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """Wait until ``pattern`` shows in the output after offset ``start``."""
        rx = re.compile(pattern)

        async def look() -> re.Match[str]:
            while True:
                m = rx.search(self.output, start)
                if m:
                    return m
                if self.proc is not None and self.proc.returncode is not None:
                    raise RuntimeError(f"node server exited; output:\n{self.output[-2000:]}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(look(), timeout)
        except TimeoutError:
            raise AssertionError(f"{pattern!r} did not appear; output tail:\n{self.output[-1500:]}") from None

    async def command(self, line: str, expect: str | None = None, timeout: float = 10.0) -> re.Match[str] | None:
        """Type one CLI command; with ``expect``, wait for that pattern in what follows."""
        assert self.proc is not None and self.proc.stdin is not None
        mark = len(self.output)
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        if expect is None:
            return None
        return await self.wait_for(expect, timeout, mark)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
