"""The builtin runner's datapath, in both I/O modes, with a datagram socket pair standing in for the TUN.

A TUN hands the reader one packet per read() and takes one per write(), exactly like a SOCK_DGRAM socket
pair, so the runner's loop, its request hand-over to the datapath thread and its expiry run without root.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw, raw

import nat64.backends.builtin as builtin
from nat64 import Nat64, Timeouts
from tests.nat64.helpers import HOST, POOL, PREFIX, SERVER, SERVER6, checksums_ok


@pytest.fixture
def tun(monkeypatch):
    """The far end of a socket pair whose near end the runner opens as its TUN."""
    near, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    monkeypatch.setattr(builtin, "open_tun", lambda name: near.detach())
    far.settimeout(5)
    yield far
    far.close()


async def recv(sock: socket.socket) -> bytes:
    return await asyncio.to_thread(sock.recv, 65535)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("io", ["thread", "asyncio"])
async def test_runner_translates_counts_and_expires(tun, io):
    nat = Nat64(PREFIX, [POOL], Timeouts(udp=0.5), rng=random.Random(3))
    runner = builtin.BuiltinNat64(nat, "test64", expire_interval=0.05, io=io)
    await runner.start()
    try:
        for i in range(20):  # the first packet takes the full path, the rest the fast path
            tun.send(raw(IPv6(src=HOST, dst=SERVER6) / UDP(sport=5000, dport=53) / Raw(b"q%d" % i)))
            out = await recv(tun)
            assert checksums_ok(out) and IP(out)[Raw].load == b"q%d" % i
            port = IP(out)[UDP].sport
            tun.send(raw(IP(src=SERVER, dst=POOL) / UDP(sport=53, dport=port) / Raw(b"a%d" % i)))
            back = await recv(tun)
            assert checksums_ok(back) and IPv6(back)[Raw].load == b"a%d" % i
        tun.send(b"\x00garbage")  # neither IPv4 nor IPv6: counted, nothing written
        await wait_for(lambda: runner.counters()["dropped"].get("bad_ip_version") == 1)

        [row] = runner.mappings()
        assert (row["packets_6to4"], row["packets_4to6"]) == (20, 20)
        counters = runner.counters()
        assert counters["translated"] == {"6to4": {"udp": 20}, "4to6": {"udp": 20}}
        status = runner.status()
        assert (status["rx_packets"], status["tx_packets"], status["io"]) == (41, 40, io)
        assert status["fast_path_packets"] == 38 and status["sessions"] == 1

        # idle past the UDP timeout: the runner's own expiry removes the session and its templates
        await wait_for(lambda: runner.mappings() == [])
        assert runner.counters()["sessions_expired"] == 1 and runner.status()["fast_path_flows"] == 0
    finally:
        await runner.stop()
    assert not runner.running
    assert runner.mappings() == []  # stopped: served directly, no thread to hand over to


async def test_control_requests_are_answered_under_load(tun):
    """mappings/counters from the event loop get answers while the datapath thread is busy."""
    nat = Nat64(PREFIX, [POOL], rng=random.Random(3))
    runner = builtin.BuiltinNat64(nat, "test64", io="thread")
    await runner.start()
    try:
        pkt = raw(IPv6(src=HOST, dst=SERVER6) / UDP(sport=5000, dport=53) / Raw(b"x" * 20))
        tun.setblocking(False)
        sent = 0
        answers = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            for _ in range(50):
                try:
                    tun.send(pkt)
                    sent += 1
                except BlockingIOError:
                    break
            try:
                while tun.recv(65535):
                    pass
            except BlockingIOError:
                pass
            rows = runner.mappings()
            answers += 1
            assert len(rows) <= 1 and sum(r["packets_6to4"] for r in rows) <= sent
        assert answers > 5 and sent > 100
        await wait_for(lambda: runner.status()["rx_packets"] == sent)
        assert runner.counters()["translated"]["6to4"]["udp"] == sent == runner.mappings()[0]["packets_6to4"]
    finally:
        await runner.stop()


@pytest.mark.parametrize("io", ["thread", "asyncio"])
async def test_new_limits_apply_to_the_packets_after_them(tun, io):
    """A reload's timeouts reach a running datapath (whose native pump counts on a copy of them)."""
    nat = Nat64(PREFIX, [POOL], Timeouts(udp=300), rng=random.Random(3))
    runner = builtin.BuiltinNat64(nat, "test64", io=io)
    await runner.start()
    try:
        async def echo(i: int) -> None:
            tun.send(raw(IPv6(src=HOST, dst=SERVER6) / UDP(sport=5000, dport=53) / Raw(b"q%d" % i)))
            assert IP(await recv(tun))[Raw].load == b"q%d" % i

        for i in range(3):  # learned, then the fast path
            await echo(i)
        assert 299 < runner.mappings()[0]["expires_in"] <= 300
        await asyncio.to_thread(runner.set_limits, Timeouts(udp=30), nat.table.caps)
        await echo(3)
        [row] = runner.mappings()
        assert 29 < row["expires_in"] <= 30 and row["packets_6to4"] == 4
        status = runner.status()
        assert status["thread_id"] == (None if io == "asyncio" else runner._thread.native_id)
    finally:
        await runner.stop()


@pytest.mark.parametrize("native", [True, False])
async def test_start_says_which_fast_path_runs(tun, caplog, native):
    caplog.set_level("INFO", logger="nat64")
    runner = builtin.BuiltinNat64(Nat64(PREFIX, [POOL], native_fast_path=native), "test64")
    await runner.start()
    await runner.stop()
    started = next(r for r in caplog.records if "NAT64 running" in r.getMessage())
    assert started.fields == {"NAT64_FAST_PATH": "native" if native else "python"}
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "fast path" in r.getMessage()]
    assert bool(warned) != native, "the Python fallback tells the user how to get the native one"
