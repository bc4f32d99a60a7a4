"""The daemon's own forkpty link spawns the simulator from a link URL, exactly as it would hardware."""

import asyncio
import sys

from ncp import hdlc
from ncp.links.url import create_link
from ncp.spinel import Command, Prop, SpinelFrame, Status, unpack_prop


async def next_frame(link, decoder, pending):
    while not pending:
        pending.extend(SpinelFrame.decode(raw) for raw in decoder.feed(await link.read()))
    return pending.pop(0)


async def test_forkpty_url_spawns_simulator(tmp_path):
    url = (
        f"spinel+hdlc+forkpty://{sys.executable}?args=-m&args=ncp.sim&args=--mle-interval&args=0"
        f"&args=--log&args={tmp_path / 'sim.log'}"
    )
    link = create_link(url)
    await link.open()
    try:
        decoder, pending = hdlc.HdlcDecoder(), []
        boot = await asyncio.wait_for(next_frame(link, decoder, pending), 10)
        assert unpack_prop(Prop.LAST_STATUS, boot.value) == Status.RESET_POWER_ON
        link.write(hdlc.encode(SpinelFrame(0, 1, Command.PROP_VALUE_GET, Prop.PROTOCOL_VERSION).encode()))
        reply = await asyncio.wait_for(next_frame(link, decoder, pending), 5)
        assert (reply.tid, unpack_prop(Prop.PROTOCOL_VERSION, reply.value)) == (1, (4, 3))
    finally:
        await link.close()
