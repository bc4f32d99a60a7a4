"""The NCP client and commissioning: the NCP-as-joiner's pushed LAST_STATUS outcome reaches event handlers,
and a PSKd in the NCP's own log lines (OpenThread's commissioner logs it) never reaches the host's log."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ncp import hdlc
from ncp.client import NcpClient, PropertyChanged
from ncp.commissioning import joiner_commissioning
from ncp.sim import SimConfig
from ncp.spinel import Command, Prop, SpinelFrame, Status, pack

from .conftest import SimPeer
from .test_client import next_change


@pytest.fixture
async def joinable():
    p = SimPeer(SimConfig(mle_interval=0, joinable_pskd="J01NME", joiner_delay=0.05))
    c = NcpClient(f"spinel+hdlc+uart://{p.path}?baudrate=115200", request_timeout=0.5)
    await c.start()
    yield p, c
    await c.stop()
    p.close()


@pytest.mark.parametrize("pskd, outcome", [("J01NME", Status.JOIN_SUCCESS), ("WR0NG1", Status.JOIN_SECURITY)])
async def test_the_join_outcome_is_an_event(joinable, pskd, outcome):
    _peer, client = joinable
    events = client.subscribe()
    await client.set(Prop.NET_IF_UP, True)
    assert await client.set(Prop.MESHCOP_JOINER_COMMISSIONING, joiner_commissioning(True, pskd)) is None  # OK
    event = await next_change(events, Prop.LAST_STATUS, outcome)
    assert isinstance(event, PropertyChanged)


async def test_a_pskd_in_an_ncp_log_line_is_masked(joinable, caplog):
    peer, _client = joinable
    caplog.set_level(logging.DEBUG, logger="ncp.client")
    line = "Commissioner----: Added Joiner (any, J01NME)"
    frame = SpinelFrame(0, 0, Command.PROP_VALUE_IS, Prop.STREAM_LOG, pack("UD", line, b""))
    peer.write_raw(hdlc.encode(frame.encode()))
    async with asyncio.timeout(3):
        while "Added Joiner" not in caplog.text:
            await asyncio.sleep(0.02)
    assert "J01NME" not in caplog.text and "Added Joiner (any, ********)" in caplog.text
