"""The NCP client against the simulator over a real pty, through both framings the
daemon uses: HDLC-lite on a forkpty link, and HDLC-lite inside Cascoda messages on a
serial port (here the slave side of a pty, the simulator playing the Chili2)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from ncp.client import Connected, LinkLost, NcpClient, NcpTimeout, PropertyChanged, Reset
from ncp.meshcop import Dataset
from ncp.spinel import NetRole, Prop
from tests.conftest import ROOT


def forkpty_url(tmp: Path) -> str:
    args = ["-m", "ncp.sim", "--control", str(tmp / "sim.sock"), "--log", str(tmp / "sim.log"),
            "--leader-delay", "0.2", "--attach-delay", "0.1", "--mle-interval", "0",
            "--node", "a:0011223344556601", "--node", "b:0011223344556602", "--node", "c:0011223344556603"]
    return f"spinel+hdlc+forkpty://{sys.executable}?" + "&".join(f"args={a}" for a in args)


async def sim_control(tmp: Path, cmd: str, **args: object) -> dict:
    reader, writer = await asyncio.open_unix_connection(str(tmp / "sim.sock"))
    writer.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
    line = await reader.readline()
    writer.close()
    return json.loads(line)


async def next_event(queue: asyncio.Queue, kind: type, timeout: float = 10.0):
    async def find():
        while True:
            event = await queue.get()
            if isinstance(event, kind):
                return event

    return await asyncio.wait_for(find(), timeout)


async def form(client: NcpClient) -> None:
    await client.set(Prop.THREAD_ACTIVE_DATASET_TLVS, Dataset.generate(channel=15).to_tlvs())
    await client.set(Prop.NET_IF_UP, True)
    await client.set(Prop.NET_STACK_UP, True)


async def test_requests_match_under_interleaved_pushes(tmp_path: Path):
    client = NcpClient(forkpty_url(tmp_path), request_timeout=2.0)
    await client.start()
    events = client.subscribe()
    try:
        assert client.info["protocol_version"] == "4.3"
        await form(client)
        # While the network forms and children attach the NCP pushes role, address and child tables:
        # fire many GETs at once so replies interleave with those pushes, and check each got its own.
        props = [Prop.PROTOCOL_VERSION, Prop.INTERFACE_TYPE, Prop.HWADDR, Prop.PHY_CHAN] * 8
        values = await asyncio.gather(*(client.get(p) for p in props))
        for prop, value in zip(props, values, strict=True):
            expected = {Prop.PROTOCOL_VERSION: (4, 3), Prop.INTERFACE_TYPE: 3, Prop.PHY_CHAN: 15}.get(prop)
            if expected is not None:
                assert tuple(value) == expected if isinstance(expected, tuple) else value == expected
            else:
                assert len(value) == 8
        role = await next_event(events, PropertyChanged)
        while not (role.prop == Prop.NET_ROLE and role.value == NetRole.LEADER):
            role = await next_event(events, PropertyChanged)
        children = await client.get(Prop.THREAD_CHILD_TABLE)
        assert 0 <= len(children) <= 3
        assert client.counters.timeouts == 0
    finally:
        await client.stop()


async def test_dropped_frame_is_retried_and_stall_times_out(tmp_path: Path):
    client = NcpClient(forkpty_url(tmp_path), request_timeout=0.5, get_retries=2)
    await client.start()
    try:
        await sim_control(tmp_path, "drop", count=1)
        assert await client.get(Prop.PHY_CHAN) is not None
        assert client.counters.retries >= 1
        await sim_control(tmp_path, "stall", seconds=2.5)
        with pytest.raises(NcpTimeout):
            await client.get(Prop.PHY_CHAN)
        assert client.counters.timeouts >= 3
        await asyncio.sleep(1.5)
        assert await client.get(Prop.INTERFACE_TYPE) == 3, "the client keeps working after the stall"
    finally:
        await client.stop()


async def test_reset_detected_and_link_loss_reconnects(tmp_path: Path):
    client = NcpClient(forkpty_url(tmp_path), backoff_initial=0.1)
    await client.start()
    events = client.subscribe()
    try:
        await sim_control(tmp_path, "reset")
        assert (await next_event(events, Reset)).status == 112
        assert client.counters.resets >= 1
        with contextlib.suppress(ConnectionError, json.JSONDecodeError):
            await sim_control(tmp_path, "die")
        await next_event(events, LinkLost)
        await next_event(events, Connected)
        assert client.counters.reconnects == 1
        assert await client.get(Prop.INTERFACE_TYPE) == 3
    finally:
        await client.stop()


async def test_cascoda_link_end_to_end(tmp_path: Path):
    master, slave = pty.openpty()
    tty.setraw(master)
    sim = subprocess.Popen([sys.executable, "-m", "ncp.sim", "--link", "cascoda", "--log", str(tmp_path / "s.log"),
                            "--leader-delay", "0.2", "--mle-interval", "0"],
                           stdin=master, stdout=master, cwd=ROOT, start_new_session=True)
    os.close(master)
    client = NcpClient(f"cascoda+uart://{os.ttyname(slave)}?baudrate=1000000")
    try:
        await client.start()
        await form(client)
        for _ in range(50):
            if await client.get(Prop.NET_ROLE) == NetRole.LEADER:
                break
            await asyncio.sleep(0.1)
        assert await client.get(Prop.NET_ROLE) == NetRole.LEADER
        # a large value crosses several 254-byte Cascoda chunks intact
        tlvs = await client.get(Prop.THREAD_ACTIVE_DATASET_TLVS)
        assert Dataset.from_tlvs(tlvs).channel == 15
        cascoda = client.status()["cascoda"]
        assert cascoda["tx_messages"] > 5 and cascoda["rx_messages"] > 5
        assert cascoda["malformed"] == 0 and cascoda["resends"] == 0
    finally:
        await client.stop()
        sim.terminate()
        sim.wait(5)
        os.close(slave)
