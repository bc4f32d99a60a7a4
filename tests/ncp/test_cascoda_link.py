"""The Cascoda link against a pty peer playing the Chili2: identity, acks, RXFAIL, split/joined reads.

The Chili2 is a small model of the Cascoda UART framing with the faults a real one shows (withheld
RXRDY, RXFAIL, split reads, bytes out of step); the NCP inside it is the simulator (``ncp.sim``).
"""

from __future__ import annotations

import asyncio
import os
import random
import tty

import pytest

from ncp.cascoda import RXFAIL, RXRDY, CascodaMessage, CascodaParser, Cmd
from ncp.client import NcpClient, PropertyChanged
from ncp.links import create_link
from ncp.meshcop import Dataset
from ncp.spinel import Prop, Status

from .conftest import EUI64, SimWire

IDENTITY = {
    0x80: b"v0.24-fake\0",
    0x81: b"Chili2D\0",
    0x82: b"ot-ncp\0",
    0x83: bytes.fromhex("0011223344556677"),
    0x84: bytes.fromhex("ca5c0d0000000001"),
}


class FakeChili:
    """Device side of a Cascoda UART link, on the master of a pty."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self.parser = CascodaParser()
        self.ncp = SimWire(self.uplink_stream)
        self.received: list[CascodaMessage] = []
        self.uplink_batches: list[int] = []  # how many messages each uplink write carried
        self.withhold_rxrdy = 0  # do not acknowledge this many messages
        self.rxfail_next = 0  # answer this many messages with RXFAIL
        self.split_uplink = False  # write uplink messages a few bytes at a time
        self.garbage_before_uplink = b""
        self.reset_pushes_boot = True
        self._outq: asyncio.Queue[bytes] = asyncio.Queue()
        self._trickler: asyncio.Task | None = None
        asyncio.get_running_loop().add_reader(self.master, self._on_read)

    def write(self, data: bytes) -> None:
        os.set_blocking(self.master, True)
        os.write(self.master, data)
        os.set_blocking(self.master, False)

    def _on_read(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        for event in self.parser.feed(data, asyncio.get_running_loop().time()):
            if not isinstance(event, CascodaMessage):
                continue
            self.received.append(event)
            if event.cmd in (Cmd.EVBME_RXRDY, Cmd.EVBME_RXFAIL):
                continue
            if self.rxfail_next:
                self.rxfail_next -= 1
                self._out(RXFAIL.encode())
                continue
            if self.withhold_rxrdy:
                self.withhold_rxrdy -= 1
            else:
                self._out(RXRDY.encode())
            self._handle(event)

    def _handle(self, m: CascodaMessage) -> None:
        if m.cmd == Cmd.EVBME_GET_REQUEST:
            attr = m.payload[0]
            value = IDENTITY.get(attr)
            status = 0 if value is not None else 3
            value = value or b""
            self.uplink_raw(CascodaMessage(Cmd.EVBME_GET_CONFIRM, bytes((status, attr, len(value))) + value))
        elif m.cmd == Cmd.EVBME_SET_REQUEST:
            self.uplink_raw(CascodaMessage(Cmd.EVBME_SET_CONFIRM, b"\x00"))
            if m.payload[0] == 0x00 and self.reset_pushes_boot:
                self.ncp.event(self.ncp.core.boot)  # RESETRF: the NCP powers on again
        elif m.cmd == Cmd.EVBME_HOST_CONNECTED:
            self.uplink_raw(CascodaMessage(Cmd.EVBME_MESSAGE_INDICATION, b"Hello from the fake Chili2\n"))
        elif m.cmd == Cmd.OT_SERIAL_DOWNLINK:
            self.ncp.feed(m.payload)

    def uplink_stream(self, data: bytes) -> None:
        msgs = [CascodaMessage(Cmd.OT_SERIAL_UPLINK, data[i : i + 254]) for i in range(0, len(data), 254)]
        if msgs:
            self.uplink_raw(*msgs)

    def uplink_raw(self, *messages: CascodaMessage) -> None:
        self.uplink_batches.append(len(messages))
        self._out(self.garbage_before_uplink + b"".join(m.encode() for m in messages))

    def _out(self, data: bytes) -> None:
        if not self.split_uplink:
            self.write(data)
            return
        # One trickling writer, so messages stay in order while arriving a few bytes per read.
        self._outq.put_nowait(data)
        if self._trickler is None:
            self._trickler = asyncio.create_task(self._trickle())

    async def _trickle(self) -> None:
        while True:
            data = await self._outq.get()
            for i in range(0, len(data), 3):
                self.write(data[i : i + 3])
                await asyncio.sleep(0.002)

    def close(self) -> None:
        self.ncp.close()
        asyncio.get_running_loop().remove_reader(self.master)
        if self._trickler is not None:
            self._trickler.cancel()
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
async def chili():
    c = FakeChili()
    yield c
    c.close()


async def test_open_announces_host_reads_identity_and_closes_politely(chili, caplog):
    caplog.set_level("INFO", logger="ncp")
    link = create_link(f"cascoda+uart://{chili.path}?baudrate=1000000")
    await link.open()
    try:
        assert chili.received[0].cmd == Cmd.EVBME_HOST_CONNECTED
        assert link.info["version"] == "v0.24-fake"
        assert link.info["platform"] == "Chili2D"
        assert link.info["application"] == "ot-ncp"
        assert link.info["serial_number"] == "0011223344556677"
        assert link.info["eui64"] == "ca5c0d0000000001"
        await asyncio.sleep(0.05)
        assert any("Hello from the fake Chili2" in r.getMessage() for r in caplog.records)
    finally:
        await link.close()
    await asyncio.sleep(0.05)
    assert chili.received[-1].cmd == Cmd.EVBME_HOST_DISCONNECTED


async def test_client_over_cascoda_with_split_reads_and_bad_som(chili):
    chili.split_uplink = True
    chili.garbage_before_uplink = b"\x55\x00"  # out of step: the link must resynchronise
    client = NcpClient(f"cascoda+uart://{chili.path}", request_timeout=1.0)
    await client.start()
    try:
        assert client.info["protocol_version"] == "4.3"
        assert await client.get(Prop.PHY_CHAN) == 11
        status = client.status()
        assert status["link_info"]["platform"] == "Chili2D"
        assert status["cascoda"]["resync_bytes"] > 0
        assert status["cascoda"]["rxfail_sent"] == 0
    finally:
        await client.stop()


async def test_joined_uplink_messages_in_one_read(chili):
    client = NcpClient(f"cascoda+uart://{chili.path}", request_timeout=1.0)
    await client.start()
    try:
        events = client.subscribe()
        # A dataset write: the reply and the pushes it causes (each changed dataset property, the Border
        # Agent state) leave in one write of several uplink messages, cut at odd places in Spinel frames.
        dataset = Dataset.generate(channel=15, rng=random.Random(2))
        batches = len(chili.uplink_batches)
        assert await client.set(Prop.THREAD_ACTIVE_DATASET_TLVS, dataset.to_tlvs()) == dataset.to_tlvs()
        assert max(chili.uplink_batches[batches:]) >= 2
        changed = {}
        async with asyncio.timeout(2):
            while Prop.NET_PSKC not in changed:
                event = await events.get()
                if isinstance(event, PropertyChanged):
                    changed[event.prop] = event.value
        assert changed[Prop.PHY_CHAN] == 15 and changed[Prop.MAC_15_4_PANID] == dataset.pan_id
        assert changed[Prop.NET_NETWORK_NAME] == dataset.network_name
        assert changed[Prop.NET_XPANID] == dataset.extended_pan_id and changed[Prop.NET_PSKC] == dataset.pskc
    finally:
        await client.stop()


async def test_withheld_rxrdy_delays_next_message_until_timeout(chili):
    link = create_link(f"cascoda+uart://{chili.path}")
    await link.open()

    def downlinks() -> list[bytes]:
        return [m.payload for m in chili.received if m.cmd == Cmd.OT_SERIAL_DOWNLINK]

    try:
        link.session.ack_timeout = 0.5
        chili.withhold_rxrdy = 1
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        link.write(b"\x7eAAAA\x7e")
        link.write(b"\x7eBBBB\x7e")
        async with asyncio.timeout(3):
            while len(downlinks()) < 2:
                await asyncio.sleep(0.01)
        # The second message waited for the RXRDY that never came.
        assert loop.time() - sent_at >= 0.5
        assert downlinks() == [b"\x7eAAAA\x7e", b"\x7eBBBB\x7e"]
        assert link.session.counters.ack_timeouts == 1
    finally:
        await link.close()


async def test_rxfail_makes_the_link_resend_the_message(chili):
    client = NcpClient(f"cascoda+uart://{chili.path}", request_timeout=1.0, get_retries=0)
    await client.start()
    try:
        chili.rxfail_next = 1
        before = len(chili.received)
        assert await client.get(Prop.HWADDR) == EUI64
        downlinks = [m for m in chili.received[before:] if m.cmd == Cmd.OT_SERIAL_DOWNLINK]
        assert len(downlinks) == 2 and downlinks[0] == downlinks[1]
        assert client.status()["cascoda"]["resends"] == 1
        assert client.counters.retries == 0
    finally:
        await client.stop()


async def test_incomplete_message_from_device_is_answered_with_rxfail(chili):
    link = create_link(f"cascoda+uart://{chili.path}")
    await link.open()
    try:
        await asyncio.sleep(0.1)  # let the RXRDYs for the open sequence pass
        before = len(chili.received)
        chili.write(b"\xde\xb3\x10\x7e\x80")  # promises 16 bytes, sends 2
        await asyncio.sleep(0.1)
        assert Cmd.EVBME_RXFAIL not in [m.cmd for m in chili.received[before:]]  # not before 200 ms
        await asyncio.sleep(0.25)
        assert [m.cmd for m in chili.received[before:]] == [Cmd.EVBME_RXFAIL]
        assert link.session.counters.incomplete == 1
    finally:
        await link.close()


async def test_hard_reset_uses_resetrf(chili):
    client = NcpClient(f"cascoda+uart://{chili.path}", request_timeout=1.0)
    await client.start()
    try:
        assert await client.reset(hard=True) == Status.RESET_POWER_ON
        sets = [m for m in chili.received if m.cmd == Cmd.EVBME_SET_REQUEST]
        assert sets and sets[-1].payload[:2] == b"\x00\x01"
    finally:
        await client.stop()


async def test_serial_port_that_does_not_exist_gives_link_error():
    from ncp.links import LinkDown

    link = create_link("cascoda+uart:///dev/does-not-exist")
    with pytest.raises(LinkDown, match="does-not-exist"):
        await link.open()
