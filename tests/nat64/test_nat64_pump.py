"""FastPath.pump: the datapath loop, native and Python, on a datagram socket standing in for the TUN.

A TUN fd hands out one packet per read and takes one per write; an AF_UNIX datagram socketpair does
the same, so the tests can play the kernel's side from the other end without root.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.nat64.test_nat64_fastpath import (
    HOSTS,
    PACKET,
    PSH_ACK,
    SYN,
    Pair,
    damage,
    open_flow,
    v4_packet,
    v6_packet,
)


@pytest.fixture
def pair(fast_path_impl):
    p = Pair()
    assert p.fast.fast.native == (fast_path_impl == "native")
    return p


@pytest.fixture
def tun():
    """(fd the translator reads and writes, the kernel's end)."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    kernel.settimeout(2)
    yield ours, kernel
    ours.close()
    kernel.close()


def established(pair: Pair) -> tuple[int, int]:
    """A UDP flow and a TCP connection, each learned in both directions; their pool ports."""
    udp = open_flow(pair, HOSTS[0], 17, 5000, 53)
    tcp = open_flow(pair, HOSTS[1], 6, 6000, 443)
    pair.v4(v4_packet(17, 53, udp, b"teach"))
    pair.v4(v4_packet(6, 443, tcp, b"teach", flags=PSH_ACK))
    return udp, tcp


def test_pump_translates_a_burst_like_the_full_path_and_reports_drained(pair, tun):
    ours, kernel = tun
    udp, tcp = established(pair)
    packets = []
    for i in range(6):
        packets.append(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"q%d" % i))
        packets.append(v4_packet(6, 443, tcp, b"data %d" % i, flags=PSH_ACK))
        packets.append(v4_packet(17, 53, udp, b"a%d" % i))
    for p in packets:
        kernel.send(p)
    translated, errors, slow, drained = pair.fast.fast.pump(ours.fileno(), pair.now, 64)
    assert (translated, errors, slow, drained) == (18, 0, None, True)
    for p in packets:  # the slow-only translator, fed the same packets, gives the same bytes
        expect = pair.slow.from_v6(p, pair.now) if p[0] >> 4 == 6 else pair.slow.from_v4(p, pair.now)
        assert kernel.recv(70000) == expect[0].packet
    pair.check_state()


def test_pump_counts_every_flow_of_a_burst_that_interleaves_more_flows_than_a_batch_keeps(pair, tun):
    ours, kernel = tun
    flows = []
    for i in range(12):  # 24 templates, both directions: the native batch keeps 8 at once
        src, proto = HOSTS[i % 3], (6, 17)[i % 2]
        pool_port = open_flow(pair, src, proto, 2000 + i, 80 + i)
        pair.v4(v4_packet(proto, 80 + i, pool_port, b"teach", flags=PSH_ACK))
        flows.append((src, proto, 2000 + i, 80 + i, pool_port))
    burst = [p for _ in range(2) for src, proto, sport, dport, pool_port in flows
             for p in (v6_packet(pair.fast, src, proto, sport, dport, b"q", flags=PSH_ACK),
                       v4_packet(proto, dport, pool_port, b"a", flags=PSH_ACK))]
    for p in burst:
        kernel.send(p)
    assert pair.fast.fast.pump(ours.fileno(), pair.now, 64) == (48, 0, None, True)
    for p in burst:
        expect = pair.slow.from_v6(p, pair.now) if p[0] >> 4 == 6 else pair.slow.from_v4(p, pair.now)
        assert kernel.recv(70000) == expect[0].packet
    pair.check_state()


@pytest.mark.usefixtures("fast_path_impl")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows=st.lists(st.tuples(st.sampled_from([6, 17]), st.integers(1024, 65535)), min_size=1, max_size=12,
                      unique_by=lambda f: f[1]),
       packets=st.lists(st.tuples(st.integers(0, 11), st.booleans(), st.one_of(st.none(), st.none(), PACKET)),
                        min_size=1, max_size=60),
       budget=st.integers(1, 64))
def test_pump_translates_random_bursts_like_the_full_path(flows, packets, budget):
    """Bursts that interleave up to 12 flows (more than a native batch keeps at once), both directions,
    plain packets (None) and odd or damaged ones, pumped with any budget, the packets it hands over
    taken the full way as the builtin backend does: the same bytes in the same order, and the same
    counters and sessions."""
    pair = Pair()
    opened = []
    for i, (proto, port) in enumerate(flows):
        src = HOSTS[i % 3]
        pool_port = open_flow(pair, src, proto, port, 80 + i)
        pair.v4(v4_packet(proto, 80 + i, pool_port, b"teach", flags=PSH_ACK))  # both directions learned
        opened.append((src, proto, port, 80 + i, pool_port))
    burst = []
    for i, v4, p in packets:
        src, proto, sport, dport, pool_port = opened[i % len(opened)]
        if p is None:
            pkt = (v4_packet(proto, dport, pool_port, b"a", flags=PSH_ACK) if v4 else
                   v6_packet(pair.fast, src, proto, sport, dport, b"q", flags=PSH_ACK))
        elif p["v4"]:
            body = b"r" * max(0, p["size"] - (28 if proto == 17 else 40))
            pkt = v4_packet(proto, dport, pool_port, body, flags=p["flags"], ttl=p["hop"], tos=p["tc"], df=p["df"],
                            ck=p["ck"], ident=len(body))
        else:
            body = b"q" * max(0, p["size"] - (48 if proto == 17 else 60))
            pkt = v6_packet(pair.fast, src, proto, sport, dport, body, flags=p["flags"], hlim=p["hop"], tc=p["tc"],
                            ck=p["ck"])
        burst.append(pkt if p is None else damage(pkt, p["damage"], p["v4"]))
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        for sock in (ours, kernel):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        ours.setblocking(False)
        kernel.settimeout(2)
        for pkt in burst:
            kernel.send(pkt)
        expected = [o.packet for pkt in burst
                    for o in (pair.slow.from_v6 if pkt[0] >> 4 == 6 else pair.slow.from_v4)(pkt, pair.now)]
        drained = False
        while not drained:
            _n, errors, slow, drained = pair.fast.fast.pump(ours.fileno(), pair.now, budget)
            assert errors == 0
            if slow is not None:
                for o in (pair.fast.slow_from_v6 if slow[0] >> 4 == 6 else pair.fast.slow_from_v4)(slow, pair.now):
                    ours.send(o.packet)
        assert [kernel.recv(70000) for _ in expected] == expected
    pair.check_state()


def test_pump_hands_over_the_first_packet_the_fast_path_does_not_take(pair, tun):
    ours, kernel = tun
    established(pair)
    syn = v6_packet(pair.fast, HOSTS[2], 6, 7000, 80, b"", flags=SYN)  # a new connection: the full path
    fast = [v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"q%d" % i) for i in range(4)]
    for p in [*fast[:2], syn, *fast[2:], b"\x00junk"]:
        kernel.send(p)
    fd = ours.fileno()
    assert pair.fast.fast.pump(fd, pair.now, 64) == (2, 0, syn, False)
    assert pair.fast.fast.pump(fd, pair.now, 64) == (2, 0, b"\x00junk", False)  # not IPv4 or IPv6 either
    assert pair.fast.fast.pump(fd, pair.now, 64) == (0, 0, None, True)
    assert [len(kernel.recv(2048)) for _ in range(4)] == [len(p) - 20 for p in fast]


def test_pump_stops_at_its_budget_and_loses_nothing(pair, tun):
    ours, kernel = tun
    established(pair)
    hits = pair.fast.fast.hits
    for i in range(5):
        kernel.send(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"q%d" % i))
    fd = ours.fileno()
    assert pair.fast.fast.pump(fd, pair.now, 2) == (2, 0, None, False)
    assert pair.fast.fast.pump(fd, pair.now, 2) == (2, 0, None, False)
    assert pair.fast.fast.pump(fd, pair.now, 2) == (1, 0, None, True)
    assert [kernel.recv(2048)[-2:] for _ in range(5)] == [b"q%d" % i for i in range(5)]
    assert pair.fast.fast.hits - hits == 5


def test_pump_counts_writes_the_kernel_refuses(pair, tun):
    ours, kernel = tun
    established(pair)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)  # the kernel rounds up to its minimum
    body = b"x" * 1200
    for _ in range(12):
        kernel.send(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, body))
    translated, errors, slow, drained = pair.fast.fast.pump(ours.fileno(), pair.now, 64)
    assert (translated, slow, drained) == (12, None, True)
    assert 0 < errors < 12
    delivered = 0
    kernel.settimeout(0.2)
    try:
        while kernel.recv(2048):
            delivered += 1
    except TimeoutError:
        pass
    assert delivered == translated - errors


def test_pump_raises_a_read_error_it_cannot_continue_from(pair):
    r, w = os.pipe()
    os.close(w)
    os.close(r)
    with pytest.raises(OSError):
        pair.fast.fast.pump(r, pair.now, 64)  # a closed fd: EBADF


@pytest.fixture
def wake():
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    os.close(r)
    os.close(w)


def session_of(pair: Pair, pool_port: int):
    return next(s for s in pair.fast.table.by6.values() if s.bib.v4_port == pool_port)


def test_pump_with_a_wake_fd_waits_for_packets_and_translates_them_at_their_arrival(pair, tun, wake):
    ours, kernel = tun
    udp, _tcp = established(pair)
    r, w = wake

    def play() -> None:
        time.sleep(0.05)
        kernel.send(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"late"))
        time.sleep(0.05)
        os.write(w, b"xyz")

    t0 = time.monotonic()
    player = threading.Thread(target=play)
    player.start()
    try:
        result = pair.fast.fast.pump(ours.fileno(), pair.now, 64, r, -1.0)  # no deadline: only the pipe ends it
    finally:
        player.join()
    assert result == (1, 0, None, True)
    assert time.monotonic() - t0 >= 0.1
    assert kernel.recv(2048)[-4:] == b"late"
    # translated at time.monotonic() of its arrival, not at the stale now it was called with
    assert session_of(pair, udp).expires >= t0 + 0.05 + pair.fast.table.timeouts.udp
    with pytest.raises(BlockingIOError):
        os.read(r, 1)  # the pump emptied the wake pipe


def test_pump_with_a_wake_fd_counts_its_budget_from_the_last_wait(pair, tun, wake):
    """Packets that each arrive at an empty TUN keep the pump waiting (returning would take the GIL): only
    a run of packets without a wait is bounded by the budget."""
    ours, kernel = tun
    established(pair)
    r, w = wake

    def play() -> None:
        for i in range(3):
            time.sleep(0.03)
            kernel.send(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"t%d" % i))
        time.sleep(0.03)
        os.write(w, b"x")

    player = threading.Thread(target=play)
    player.start()
    try:
        assert pair.fast.fast.pump(ours.fileno(), pair.now, 2, r, -1.0) == (3, 0, None, True)
    finally:
        player.join()
    assert [kernel.recv(2048)[-2:] for _ in range(3)] == [b"t0", b"t1", b"t2"]


def test_pump_with_a_wake_fd_returns_at_its_deadline_or_at_once_past_it(pair, tun, wake):
    ours, _kernel = tun
    established(pair)
    r, _w = wake
    t0 = time.monotonic()
    assert pair.fast.fast.pump(ours.fileno(), pair.now, 64, r, t0 + 0.05) == (0, 0, None, True)
    assert 0.05 <= time.monotonic() - t0 < 1
    t0 = time.monotonic()
    assert pair.fast.fast.pump(ours.fileno(), pair.now, 64, r, t0 - 1) == (0, 0, None, True)
    assert time.monotonic() - t0 < 0.05


def test_pump_with_a_wake_fd_still_hands_over_the_slow_packet_and_keeps_its_budget(pair, tun, wake):
    ours, kernel = tun
    established(pair)
    r, _w = wake
    syn = v6_packet(pair.fast, HOSTS[2], 6, 7000, 80, b"", flags=SYN)
    for i in range(3):
        kernel.send(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"q%d" % i))
    kernel.send(syn)
    fd = ours.fileno()
    deadline = time.monotonic() + 5
    assert pair.fast.fast.pump(fd, pair.now, 2, r, deadline) == (2, 0, None, False)
    assert pair.fast.fast.pump(fd, pair.now, 2, r, deadline) == (1, 0, syn, False)
