"""An upstream LwM2M server that is not ours: npm's lwm2m-node-lib, driven through its interactive CLI.

scripts/setup.sh installs the npm package under :data:`NPM_PEERS` (its package.json lists it);
``lwm2m-node-server.js`` next to this file starts the library's CLI server on ``LWM2M_PORT``. The
server listens on IPv4 0.0.0.0, so in the testbed it lives in the IPv4-only Internet namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from pathlib import Path

from common.aio import cancel_and_wait
from devtools import ROOT, die_with_parent

NPM_PEERS = ROOT / "tests" / "peers"  # package.json, node_modules/
NODE_SERVER = Path(__file__).with_name("lwm2m-node-server.js")
NODE_LIB = NPM_PEERS / "node_modules" / "lwm2m-node-lib"


def node_server_available() -> str | None:
    """None if the node server can run here, else why not."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs it)"
    if not NODE_LIB.is_dir():
        return f"npm lwm2m-node-lib is not installed under {NPM_PEERS} (scripts/setup.sh)"
    return None


class NodeServer:
    """The lwm2m-node-lib interactive server on a UDP port (in ``netns`` if given), driven through
    stdin/stdout."""

    def __init__(self, port: int, netns: str | None = None) -> None:
        self.port = port
        self.netns = netns
        self.proc: asyncio.subprocess.Process | None = None
        self.output = ""
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        env = dict(os.environ, LWM2M_PORT=str(self.port), NODE_PATH=str(NPM_PEERS / "node_modules"))
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = await asyncio.create_subprocess_exec(
            *prefix, "node", str(NODE_SERVER), cwd=str(NPM_PEERS), env=env, start_new_session=True,
            preexec_fn=die_with_parent(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.command("start", r"Lightweight M2M Server started")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout  # stop() clears self.proc while this may still read what is left
        while True:
            chunk = await stdout.read(4096)
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

    async def device_ids(self) -> dict[str, str]:
        """Endpoint name → the server's device id, from `list` (the clients it has registered now)."""
        await self.command("list", r"Device list")
        await asyncio.sleep(0.3)
        chunk = self.output[self.output.rfind("Device list"):]
        out = {}
        for part in chunk.split('-> Device Id "')[1:]:
            ident = part.split('"', 1)[0]
            data = json.loads(part[part.index("{"):part.index("\n}") + 2])
            out[data["name"]] = ident
        return out

    async def read(self, endpoint: str, path: str, timeout: float = 15.0) -> str:
        """Read one resource of a registered client; the value as the server printed it."""
        ident = (await self.device_ids())[endpoint]
        m = await self.command(f"read {ident} {path}", r"Value: (.*)", timeout=timeout)
        assert m is not None
        return m.group(1).strip()

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        if self._reader is not None:
            await cancel_and_wait(self._reader)
