"""Host → mesh unicast waits while a restarted NCP restores its children; nothing is lost within the bound."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from gatewayd.thread.hold import RecoveryHold
from ncp.ipv6 import build_udp

SRC = ipaddress.IPv6Address("fd00::1")
CHILD = ipaddress.IPv6Address("fd00:1::2")
GROUP = ipaddress.IPv6Address("ff03::1")


def udp(dst: ipaddress.IPv6Address, n: int) -> bytes:
    return build_udp(SRC, dst, 5683, 5683, n.to_bytes(4, "big"))


def test_unicast_waits_for_every_child_then_goes_out_in_order() -> None:
    hold = RecoveryHold()
    assert not hold.offer(udp(CHILD, 0)), "nothing is held outside a recovery"
    hold.start([b"A" * 8, b"B" * 8])
    sent = [udp(CHILD, n) for n in range(3)]
    assert all(hold.offer(p) for p in sent)
    assert not hold.offer(udp(GROUP, 9)), "multicast needs no address query: never held"
    assert not hold.ready([b"A" * 8]), "one child is still missing"
    assert hold.ready([b"B" * 8, b"A" * 8, b"C" * 8])
    assert hold.release() == sent and not hold.active
    assert not hold.offer(udp(CHILD, 4))


@given(st.integers(1, 20), st.integers(0, 60))
def test_the_bound_drops_the_oldest_and_counts_them(limit: int, n: int) -> None:
    hold = RecoveryHold(limit=limit)
    hold.start([b"A" * 8])
    packets = [udp(CHILD, i) for i in range(n)]
    for p in packets:
        hold.offer(p)
    assert hold.release() == (packets[-limit:] if n else [])
    assert (hold.held, hold.dropped) == (n, max(0, n - limit))


def test_short_garbage_is_never_held() -> None:
    hold = RecoveryHold()
    hold.start([b"A" * 8])
    assert not hold.offer(b"\x60\x00")
