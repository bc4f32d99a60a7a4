"""The control socket under load: a cap on connections, idle ones dropped, gatewayctl still answered."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from gatewayd.component import Command
from gatewayd.config import parse
from gatewayd.control import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ROOT_RESERVE, ControlServer, Request
from gatewayd.ctl import CtlError, request
from tests.conftest import PYTHON, ROOT

#: The places a client of this test's uid gets: root has ROOT_RESERVE more.
PLACES = DEFAULT_MAX_CONNECTIONS + (ROOT_RESERVE if os.geteuid() == 0 else 0)
BUSY = (f"gatewayd is busy: {DEFAULT_MAX_CONNECTIONS} control connections are open, the most it serves at once; "
        "try again shortly")


async def status(_request: Request) -> dict[str, Any]:
    return {"state": "running"}


async def started(tmp_path: Path, **options: Any) -> ControlServer:
    server = ControlServer(str(tmp_path / "control.sock"), **options)
    server.register(Command("status", status, "status"))
    await server.start()
    return server


async def until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, words: list[str]) -> dict[str, Any]:
    writer.write(json.dumps({"command": words}).encode() + b"\n")
    await writer.drain()
    return json.loads(await reader.readline())


def test_defaults_come_from_the_schema_and_the_config_sets_them():
    assert (DEFAULT_MAX_CONNECTIONS, DEFAULT_IDLE_TIMEOUT) == (64, 10.0)
    server = ControlServer("/nonexistent/control.sock")
    assert (server.max_connections, server.idle_timeout) == (64, 10.0)
    config = parse('[control]\nsocket = "/tmp/x.sock"\nmax_connections = 3\nidle_timeout = 0.5\n')
    server = ControlServer.from_config(config.control)
    assert (server.path, server.mode, server.max_connections, server.idle_timeout) == ("/tmp/x.sock", 0o660, 3, 0.5)


async def test_over_the_cap_is_refused_and_gatewayctl_is_answered_once_idle_ones_time_out(tmp_path: Path):
    server = await started(tmp_path, idle_timeout=2.0)
    path = server.path
    try:
        # Fill every place. The holders stay in (a request every 0.2 s, well inside idle_timeout) until told
        # to fall silent, so the refusals below do not race the idle timeout.
        held = [await asyncio.open_unix_connection(path) for _ in range(PLACES)]
        await until(lambda: server.connections == PLACES, what="all connections served")
        silent = asyncio.Event()

        async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while not silent.is_set():
                assert (await ask(reader, writer, ["status"]))["ok"]
                await asyncio.sleep(0.2)

        keepers = [asyncio.create_task(keep_alive(r, w)) for r, w in held]

        # One more: a one-line JSON refusal, then the connection is closed.
        reader, writer = await asyncio.open_unix_connection(path)
        line = await asyncio.wait_for(reader.readline(), 5)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert json.loads(line) == {"ok": False, "busy": True, "error": BUSY}
        assert await asyncio.wait_for(reader.read(), 5) == b"", "the refused connection is closed"
        writer.close()
        assert server.connections == PLACES

        # gatewayctl while the cap holds: refused with the daemon's words once its --timeout is spent.
        with pytest.raises(CtlError, match=r"^gatewayd is busy: 64 control connections are open"):
            await asyncio.to_thread(request, path, ["status"], 0.3)

        # gatewayctl started while the cap holds is refused, keeps trying, and is answered once the
        # holders fall silent and are dropped after idle_timeout.
        refused = server.refused
        ctl = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "gatewayd.ctl", "-s", path, "--timeout", "30", "--json", "status", cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await until(lambda: server.refused > refused, what="gatewayctl refused while the cap holds")
        silent.set()
        await asyncio.gather(*keepers)
        dropped = time.monotonic()
        out, err = await asyncio.wait_for(ctl.communicate(), 30)
        assert ctl.returncode == 0, err.decode()
        assert json.loads(out) == {"state": "running"}
        assert time.monotonic() - dropped < 5, "answered soon after the idle connections were dropped"
        for reader, writer in held:
            assert await asyncio.wait_for(reader.read(), 5) == b"", "idle connections are closed"
            writer.close()
        await until(lambda: server.connections == 0, what="every connection closed")
    finally:
        await server.stop()


HOLDER = """
import json, socket, sys
path, places = sys.argv[1], int(sys.argv[2])
held = []
for _ in range(places):
    s = socket.socket(socket.AF_UNIX); s.connect(path); held.append(s)
    s.sendall(b'{"command": ["status"]}\\n'); assert json.loads(s.makefile().readline())["ok"]
one_more = socket.socket(socket.AF_UNIX); one_more.connect(path)
print(one_more.makefile().readline().strip(), flush=True)
sys.stdin.read()
"""


@pytest.mark.root
async def test_root_is_answered_while_the_group_holds_every_place(tmp_path: Path):
    """Members of the socket's group (here: nobody, the socket opened to all) hold every place: they are
    refused one more, and root's gatewayctl still gets its answer, up to ROOT_RESERVE connections."""
    if os.geteuid() != 0:
        pytest.skip("needs root: holds the places as another user")
    here = Path(tempfile.mkdtemp(prefix="gatewayd-control-"))  # a directory nobody can reach (not tmp_path's)
    here.chmod(0o755)
    server = await started(here, mode=0o666, max_connections=8, idle_timeout=30.0)
    holder = await asyncio.create_subprocess_exec(
        "/usr/bin/python3", "-c", HOLDER, server.path, "8", user=65534, group=65534,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 10)
        assert json.loads(line)["busy"], "the group's one more is refused"
        assert server.connections == 8 and server.refused == 1

        assert await asyncio.to_thread(request, server.path, ["status"], 2.0) == {"state": "running"}
        mine = [await asyncio.open_unix_connection(server.path) for _ in range(ROOT_RESERVE)]
        for reader, writer in mine:
            assert (await ask(reader, writer, ["status"]))["ok"]
        reader, writer = await asyncio.open_unix_connection(server.path)
        assert json.loads(await asyncio.wait_for(reader.readline(), 5))["busy"], "root's reserve is bounded too"
        writer.close()
        for _reader, writer in mine:
            writer.close()
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()
        await server.stop()
        shutil.rmtree(here, ignore_errors=True)


async def test_an_idle_connection_is_closed_after_idle_timeout(tmp_path: Path):
    server = await started(tmp_path, idle_timeout=0.2)
    try:
        reader, writer = await asyncio.open_unix_connection(server.path)
        assert (await ask(reader, writer, ["status"]))["ok"], "a connection serves several requests"
        start = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert 0.15 < time.monotonic() - start < 3
        writer.close()
        await until(lambda: server.connections == 0, what="the connection released")
    finally:
        await server.stop()


async def test_a_client_that_reads_no_answers_is_dropped(tmp_path: Path):
    server = await started(tmp_path, idle_timeout=0.3)

    async def big(_request: Request) -> str:
        return "x" * 65536

    server.register(Command("big", big, "a large answer"))
    try:
        _reader, writer = await asyncio.open_unix_connection(server.path)
        writer.write(b'{"command": ["big"]}\n' * 200)  # ~13 MB of answers nobody reads
        await writer.drain()
        await until(lambda: server.connections == 1, what="the connection served")
        await until(lambda: server.connections == 0, timeout=10, what="the non-reading client dropped")
        writer.close()
    finally:
        await server.stop()


async def test_stop_closes_connections_still_open(tmp_path: Path):
    server = await started(tmp_path, idle_timeout=60)
    reader, writer = await asyncio.open_unix_connection(server.path)
    await until(lambda: server.connections == 1, what="the connection served")
    start = time.monotonic()
    await server.stop()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert time.monotonic() - start < 1.5
    writer.close()
