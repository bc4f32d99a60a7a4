"""NCP client against a fake NCP on a real pty (and as a forkpty child for reconnects)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import sys

import pytest

from ncp import hdlc
from ncp.client import (
    Connected,
    LinkLost,
    NcpClient,
    NcpIncompatible,
    NcpNotConnected,
    NcpState,
    NcpStatusError,
    NcpTimeout,
    PropertyChanged,
    PropertyInserted,
    Reset,
)
from ncp.spinel import Command, Prop, SpinelFrame, Status, pack, pack_prop

from .fake_ncp import FakeNcp, PtyPeer, default_props

FAKE_NCP = os.path.join(os.path.dirname(__file__), "fake_ncp.py")


@pytest.fixture
async def peer():
    p = PtyPeer()
    yield p
    p.close()


@pytest.fixture
async def client(peer):
    c = NcpClient(f"spinel+hdlc+uart://{peer.path}?baudrate=115200", request_timeout=0.3, backoff_initial=0.05)
    await c.start()
    yield c
    await c.stop()


async def next_event(queue, kind, timeout=3.0):
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if isinstance(event, kind):
                return event


async def test_connect_reads_identity_and_logs_state(peer, caplog):
    caplog.set_level(logging.INFO, logger="ncp")
    c = NcpClient(f"spinel+hdlc+uart://{peer.path}", request_timeout=0.3)
    try:
        await c.start()
        assert c.state is NcpState.RUNNING
        status = c.status()
        assert status["state"] == "RUNNING"
        assert status["ncp"]["protocol_version"] == "4.3"
        assert status["ncp"]["ncp_version"] == "OPENTHREAD/fake; TEST"
        assert status["ncp"]["hwaddr"] == "18b4300000000001"
        assert status["ncp"]["caps"] == [1, 2, 3, 5, 512]
        assert status["counters"]["frames_out"] == 5 and status["counters"]["frames_in"] == 5
        states = [r.fields["NCP_STATE"] for r in caplog.records if hasattr(r, "fields")]
        assert states[:2] == ["CONNECTING", "RUNNING"]
    finally:
        await c.stop()
    assert c.state is NcpState.STOPPED


@pytest.mark.parametrize(
    ("props", "why"),
    [(default_props((5, 0), 3), "protocol 5.0"), (default_props((4, 3), 2), "interface type is 2")],
)
async def test_incompatible_ncp_is_refused_with_a_distinct_error(props, why, caplog):
    p = PtyPeer(FakeNcp(props))
    c = NcpClient(f"spinel+hdlc+uart://{p.path}", request_timeout=0.3)
    try:
        with pytest.raises(NcpIncompatible) as info:
            await c.start()
        assert why in str(info.value) and "flash" in str(info.value)
        assert c.state is NcpState.INCOMPATIBLE
        assert any(getattr(r, "fields", {}).get("NCP_STATE") == "INCOMPATIBLE" for r in caplog.records)
    finally:
        await c.stop()
        p.close()


async def test_requests_match_replies_under_reordering_and_interleaved_pushes(peer, client):
    events = client.subscribe()
    packet = bytes(range(48))
    peer.ncp.push_before_reply = [
        FakeNcp.frame(0, Command.PROP_VALUE_IS, Prop.NET_ROLE, pack("C", 3)),
        FakeNcp.frame(
            0,
            Command.PROP_VALUE_INSERTED,
            Prop.THREAD_CHILD_TABLE,
            pack("ESLLCCcCc", b"\x11" * 8, 0x0401, 240, 3, 7, 3, -40, 0x0F, -42),
        ),
        FakeNcp.frame(0, Command.PROP_VALUE_IS, Prop.STREAM_NET, pack_prop(Prop.STREAM_NET, (packet, b""))),
    ]
    peer.ncp.hold = True
    tasks = [
        asyncio.create_task(client.get(Prop.PROTOCOL_VERSION)),
        asyncio.create_task(client.get(Prop.PHY_CHAN)),
        asyncio.create_task(client.get(Prop.HWADDR)),
    ]
    async with asyncio.timeout(2):
        while len(peer.ncp.held) < 3:
            await asyncio.sleep(0.01)
    peer.send(peer.ncp.release(reverse=True))
    assert await asyncio.gather(*tasks) == [(4, 3), 11, bytes.fromhex("18b4300000000001")]
    role = await next_event(events, PropertyChanged)
    assert (role.prop, role.value) == (Prop.NET_ROLE, 3)
    child = await next_event(events, PropertyInserted)
    assert child.prop == Prop.THREAD_CHILD_TABLE and child.value[1] == 0x0401 and child.value[6] == -40
    got = [await asyncio.wait_for(client.packets.get(), 1) for _ in range(3)]
    assert got[0].data == packet and got[0].secure
    assert client.counters.packets_in == 3


async def test_get_is_retried_after_a_timeout(peer, client):
    peer.ncp.drop = 1
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.counters.retries == 1 and client.counters.timeouts == 1


async def test_get_gives_up_after_retries(peer, client):
    peer.ncp.drop = 100
    with pytest.raises(NcpTimeout):
        await client.get(Prop.PHY_CHAN)
    assert client.counters.timeouts == 3
    peer.ncp.drop = 0
    assert await client.get(Prop.PHY_CHAN) == 11  # the client still works


async def test_a_late_reply_is_not_mistaken_for_a_push(peer, client):
    events = client.subscribe()
    peer.ncp.hold = True
    with pytest.raises(NcpTimeout):
        await client.request(Command.PROP_VALUE_GET, Prop.NET_ROLE, timeout=0.1)
    peer.ncp.hold = False
    peer.send(peer.ncp.release())
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.counters.late_replies == 1
    assert events.empty()


async def test_set_insert_and_failure_status(peer, client):
    assert await client.set(Prop.PHY_CHAN, 15) == 15
    assert peer.ncp.props[Prop.PHY_CHAN] == b"\x0f"
    route = (ipaddress.IPv6Address("fd00:db8::"), 64, True, 0x31, True, 0xFC00, 0)
    assert await client.insert(Prop.THREAD_ON_MESH_NETS, route) == route
    assert peer.ncp.received[-1].value == pack("6CbCbSC", *route)
    with pytest.raises(NcpStatusError) as info:
        await client.set(Prop.NET_PSKC, b"\x00" * 16)
    assert info.value.status == Status.PROP_NOT_FOUND
    assert "00000000" not in str(info.value)


async def test_send_packet_uses_stream_net_layout(peer, client):
    packet = b"\x60" + bytes(39)
    await client.send_packet(packet)
    async with asyncio.timeout(2):
        while not peer.ncp.received or peer.ncp.received[-1].prop != Prop.STREAM_NET:
            await asyncio.sleep(0.01)
    sent = peer.ncp.received[-1]
    assert sent.command == Command.PROP_VALUE_SET
    assert sent.value == len(packet).to_bytes(2, "little") + packet
    peer.send(FakeNcp.frame(0, Command.PROP_VALUE_IS, Prop.STREAM_NET_INSECURE, pack("dD", packet, b"")))
    got = await asyncio.wait_for(client.packets.get(), 1)
    assert got.data == packet and not got.secure


async def test_reset_waits_for_the_reset_status_and_emits_event(peer, client):
    events = client.subscribe()
    status = await client.reset()
    assert status == Status.RESET_POWER_ON
    assert (await next_event(events, Reset)).status == Status.RESET_POWER_ON
    assert client.counters.resets == 1 and client.state is NcpState.RUNNING
    assert peer.ncp.received[-1].command == Command.RESET
    # An unsolicited reset (e.g. watchdog) is reported too.
    peer.send(peer.ncp.status(0, Status.RESET_WATCHDOG))
    assert (await next_event(events, Reset)).status == Status.RESET_WATCHDOG
    assert client.counters.resets == 2


async def test_reset_times_out_without_hard_reset(peer, client):
    peer.ncp.drop = 1
    client.reset_timeout = 0.2
    with pytest.raises(NcpTimeout):
        await client.reset()
    assert client.state is NcpState.RUNNING


async def test_link_loss_fails_pending_requests_and_is_reported(peer, client):
    events = client.subscribe()
    peer.ncp.hold = True
    pending = asyncio.create_task(client.get(Prop.PHY_CHAN, timeout=5))
    await asyncio.sleep(0.05)
    peer.hangup()
    lost = await next_event(events, LinkLost)
    assert lost.reason
    with pytest.raises(NcpNotConnected):
        await asyncio.wait_for(pending, 1)
    assert client.state is NcpState.LINK_LOST
    assert client.counters.link_losses == 1
    with pytest.raises(NcpNotConnected):
        await client.get(Prop.PHY_CHAN)


async def test_bad_frames_are_counted_not_raised(peer, client):
    peer.send(b"\x7e\x01\x02\x03\x04\x7e" + hdlc.encode(b"\x01\x02") + hdlc.encode(b"\x80"))
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.status()["hdlc"]["bad_fcs"] == 1
    assert client.counters.bad_frames == 2


async def test_a_failing_packet_handler_does_not_stop_the_reader(peer, client, caplog):
    def broken(_packet):
        raise RuntimeError("handler bug")

    client.on_packet = broken
    peer.send(FakeNcp.frame(0, Command.PROP_VALUE_IS, Prop.STREAM_NET, pack("dD", b"\x60" + bytes(39), b"")))
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.counters.bad_frames == 1
    assert any("frame handling failed" in r.getMessage() for r in caplog.records)


async def test_forkpty_child_killed_then_client_reconnects():
    url = f"spinel+hdlc+forkpty://{sys.executable}?args={FAKE_NCP}&args=--protocol&args=4.3"
    c = NcpClient(url, request_timeout=0.5, backoff_initial=0.05)
    events = c.subscribe()
    try:
        await c.start()
        first_pid = c.link.process.pid
        os.kill(first_pid, signal.SIGKILL)
        await next_event(events, LinkLost)
        connected = await next_event(events, Connected, timeout=10)
        assert connected.info["protocol_version"] == "4.3"
        assert c.link.process.pid != first_pid
        assert c.state is NcpState.RUNNING
        assert await c.get(Prop.PHY_CHAN) == 11
        assert (c.counters.link_losses, c.counters.reconnects) == (1, 1)
        # The boot LAST_STATUS of the new child counts as a reset.
        assert c.counters.resets >= 1
    finally:
        await c.stop()
    assert c.link.process is None


async def test_stop_cleans_up_forkpty_child():
    c = NcpClient(f"spinel+hdlc+forkpty://{sys.executable}?args={FAKE_NCP}", request_timeout=0.5)
    await c.start()
    proc = c.link.process
    await c.stop()
    assert proc.returncode is not None


def test_frames_in_tests_are_valid():
    # Guard the fake against drifting from the codec.
    assert SpinelFrame.decode(hdlc.HdlcDecoder().feed(FakeNcp().boot())[0]).prop == Prop.LAST_STATUS
