"""NCP client against the simulator: in this process on a real pty, with wire faults (see conftest.py),
and as a forkpty child for reconnects."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from ncp import hdlc, ipv6
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
from ncp.meshcop import Dataset
from ncp.sim.datapath import MLE_PORT
from ncp.sim.generation import CAPS, GENERATIONS
from ncp.spinel import Command, NetRole, Prop, Status, pack

from .conftest import EUI64, SimPeer, sim_config


def sim_url(tmp: Path) -> str:
    """The simulator as a forkpty child, as the daemon spawns it."""
    args = ["-m", "ncp.sim", "--mle-interval", "0", "--log", str(tmp / "sim.log")]
    return f"spinel+hdlc+forkpty://{sys.executable}?" + "&".join(f"args={a}" for a in args)


@pytest.fixture
async def peer():
    p = SimPeer()
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


async def next_change(queue, prop, value, timeout=3.0):
    """The first PropertyChanged of ``prop`` to ``value``; other events are skipped."""
    async with asyncio.timeout(timeout):
        while True:
            event = await next_event(queue, PropertyChanged, timeout)
            if (event.prop, event.value) == (prop, value):
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
        assert status["ncp"]["ncp_version"] == GENERATIONS["2025"].ncp_version
        assert status["ncp"]["ncp_version"].startswith("OPENTHREAD/714aeeb70; SIMULATION")
        assert status["ncp"]["hwaddr"] == "18b4300000000001"
        assert status["ncp"]["caps"] == CAPS
        assert status["counters"]["frames_out"] == 5 and status["counters"]["frames_in"] == 5
        states = [r.fields["NCP_STATE"] for r in caplog.records if hasattr(r, "fields")]
        assert states[:2] == ["CONNECTING", "RUNNING"]
    finally:
        await c.stop()
    assert c.state is NcpState.STOPPED


@pytest.mark.parametrize(
    ("forged", "why"),
    [
        ({Prop.PROTOCOL_VERSION: pack("ii", 5, 0)}, "protocol 5.0"),
        ({Prop.INTERFACE_TYPE: pack("i", 2)}, "interface type is 2"),
    ],
)
async def test_incompatible_ncp_is_refused_with_a_distinct_error(forged, why, caplog):
    p = SimPeer()
    p.forged.update(forged)  # what an NCP of another protocol version or an RCP answers
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


async def test_requests_match_replies_under_reordering_and_interleaved_pushes():
    peer = SimPeer(sim_config(leader_delay=0, attach_delay=0))
    client = NcpClient(f"spinel+hdlc+uart://{peer.path}", request_timeout=0.5)
    await client.start()
    try:
        await client.set(Prop.THREAD_ACTIVE_DATASET_TLVS, Dataset.generate(channel=15, rng=random.Random(1)).to_tlvs())
        await client.set(Prop.NET_IF_UP, True)
        events = client.subscribe()
        peer.hold = True
        tasks = [
            asyncio.create_task(client.get(Prop.PROTOCOL_VERSION)),
            asyncio.create_task(client.get(Prop.PHY_CHAN)),
            asyncio.create_task(client.get(Prop.HWADDR)),
            # what bringing the stack up pushes (role detached, then leader...) goes out before any reply
            asyncio.create_task(client.set(Prop.NET_STACK_UP, True)),
        ]
        async with asyncio.timeout(2):
            while len(peer.held) < 4:
                await asyncio.sleep(0.01)
        held, peer.held, peer.hold = peer.held, [], False
        # the replies go out last first, with more pushes between them: a child attaching, a packet
        peer.write_raw(held[3])
        peer.event(lambda now: peer.core.add_node("lamp", bytes.fromhex("1111111111111111"), now))
        peer.write_raw(held[2])
        packet = ipv6.build_udp(ipaddress.IPv6Address("2001:db8:1::5"), ipaddress.IPv6Address("2001:db8::1"),
                                5683, 5683, b"from the mesh")
        peer.event(lambda now: peer.core.handle_mesh_packet(packet, now))
        peer.write_raw(held[1])
        peer.write_raw(held[0])
        assert await asyncio.gather(*tasks) == [(4, 3), 15, EUI64, True]
        await next_change(events, Prop.NET_ROLE, NetRole.LEADER)
        child = await next_event(events, PropertyInserted)
        leader_rloc16 = await client.get(Prop.THREAD_RLOC16)
        assert child.prop == Prop.THREAD_CHILD_TABLE
        assert child.value.rloc16 == leader_rloc16 | peer.core.nodes["lamp"].child_id
        assert child.value.ext_address == bytes.fromhex("1111111111111111") and child.value.average_rssi == -45
        got = await asyncio.wait_for(client.packets.get(), 1)
        assert got.data == packet and got.secure
        assert client.counters.packets_in == 1
        assert client.counters.timeouts == 0
    finally:
        await client.stop()
        peer.close()


async def test_get_is_retried_after_a_timeout(peer, client):
    peer.drop = 1
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.counters.retries == 1 and client.counters.timeouts == 1


async def test_get_gives_up_after_retries(peer, client):
    peer.drop = 100
    with pytest.raises(NcpTimeout):
        await client.get(Prop.PHY_CHAN)
    assert client.counters.timeouts == 3
    peer.drop = 0
    assert await client.get(Prop.PHY_CHAN) == 11  # the client still works


async def test_a_late_reply_is_not_mistaken_for_a_push(peer, client):
    events = client.subscribe()
    peer.hold = True
    with pytest.raises(NcpTimeout):
        await client.request(Command.PROP_VALUE_GET, Prop.NET_ROLE, timeout=0.1)
    peer.hold = False
    peer.release()
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.counters.late_replies == 1
    assert events.empty()


async def test_set_insert_and_failure_status(peer, client):
    assert await client.set(Prop.PHY_CHAN, 15) == 15
    assert peer.core.dataset.channel == 15
    await client.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
    route = (ipaddress.IPv6Address("fd00:db8::"), 64, True, 0x31, True, 0xFC00, 0)
    assert await client.insert(Prop.THREAD_ON_MESH_NETS, route) == route
    assert peer.received[-1].value == pack("6CbCbSC", *route)
    nets = await client.get(Prop.THREAD_ON_MESH_NETS)
    assert [(n.network, n.is_local) for n in nets] == [(ipaddress.IPv6Network("fd00:db8::/64"), True)]
    # the PSKC is part of the dataset: an NCP refuses it while its stack is up
    await client.set(Prop.NET_IF_UP, True)
    await client.set(Prop.NET_STACK_UP, True)
    with pytest.raises(NcpStatusError) as info:
        await client.set(Prop.NET_PSKC, b"\x00" * 16)
    assert info.value.status == Status.INVALID_STATE
    assert "00000000" not in str(info.value)


async def test_send_packet_uses_stream_net_layout():
    peer = SimPeer(sim_config(mle_interval=3600))
    client = NcpClient(f"spinel+hdlc+uart://{peer.path}", request_timeout=0.5)
    await client.start()
    try:
        packet = b"\x60" + bytes(39)
        await client.send_packet(packet)
        async with asyncio.timeout(2):
            while not peer.received or peer.received[-1].prop != Prop.STREAM_NET:
                await asyncio.sleep(0.01)
        sent = peer.received[-1]
        assert sent.command == Command.PROP_VALUE_SET
        assert sent.value == len(packet).to_bytes(2, "little") + packet
        # the NCP's own MLE reaches the host as STREAM_NET_INSECURE once its stack is up
        await client.set(Prop.NET_IF_UP, True)
        await client.set(Prop.NET_STACK_UP, True)
        got = await asyncio.wait_for(client.packets.get(), 2)
        assert not got.secure
        mle = ipv6.parse(got.data)
        assert mle is not None and mle.udp_ports == (MLE_PORT, MLE_PORT)
        assert mle.src == await client.get(Prop.IPV6_LL_ADDR)
    finally:
        await client.stop()
        peer.close()


async def test_reset_waits_for_the_reset_status_and_emits_event(peer, client):
    events = client.subscribe()
    status = await client.reset()
    assert status == Status.RESET_POWER_ON
    assert (await next_event(events, Reset)).status == Status.RESET_POWER_ON
    assert client.counters.resets == 1 and client.state is NcpState.RUNNING
    assert peer.received[-1].command == Command.RESET
    # An unsolicited reset (e.g. watchdog) is reported too.
    peer.event(lambda now: peer.core.boot(now, Status.RESET_WATCHDOG))
    assert (await next_event(events, Reset)).status == Status.RESET_WATCHDOG
    assert client.counters.resets == 2


async def test_reset_times_out_without_hard_reset(peer, client):
    peer.drop = 1
    client.reset_timeout = 0.2
    with pytest.raises(NcpTimeout):
        await client.reset()
    assert client.state is NcpState.RUNNING


async def test_link_loss_fails_pending_requests_and_is_reported(peer, client):
    events = client.subscribe()
    peer.hold = True
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
    # a frame with a bad FCS, then two well-framed ones that are no Spinel (no header flag; too short)
    peer.write_raw(b"\x7e\x01\x02\x03\x04\x7e" + hdlc.encode(b"\x01\x02") + hdlc.encode(b"\x80"))
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.status()["hdlc"]["bad_fcs"] == 1
    assert client.counters.bad_frames == 2


async def test_a_failing_packet_handler_does_not_stop_the_reader(peer, client, caplog):
    def broken(_packet):
        raise RuntimeError("handler bug")

    await client.set(Prop.NET_IF_UP, True)
    link_local = await client.get(Prop.IPV6_LL_ADDR)
    client.on_packet = broken
    # the NCP answers an echo request to its own address itself: the reply reaches the host as STREAM_NET
    await client.send_packet(ipv6.build_echo_request(ipaddress.IPv6Address("fe80::1"), link_local, 1, 1))
    assert await client.get(Prop.PHY_CHAN) == 11
    assert client.counters.bad_frames == 1 and client.counters.packets_in == 1
    assert any("frame handling failed" in r.getMessage() for r in caplog.records)


async def test_forkpty_child_killed_then_client_reconnects(tmp_path):
    c = NcpClient(sim_url(tmp_path), request_timeout=0.5, backoff_initial=0.05)
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


async def test_stop_cleans_up_forkpty_child(tmp_path):
    c = NcpClient(sim_url(tmp_path), request_timeout=0.5)
    await c.start()
    proc = c.link.process
    await c.stop()
    assert proc.returncode is not None
