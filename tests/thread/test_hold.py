"""Host → mesh unicast waits while a restarted NCP restores its children; nothing is lost within the bound."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from gatewayd.thread.hold import MPL_ALLOWANCE, MplSequences, RecoveryHold, is_mpl_multicast
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


# ---- MPL sequence numbers a restarted NCP skips (OpenThread restarts its MPL counter at 0) -------------------
MESH_GROUP = ipaddress.IPv6Address("ff03::1")
LINK_GROUP = ipaddress.IPv6Address("ff02::1")


def test_only_realm_local_or_wider_multicast_takes_an_mpl_sequence_number() -> None:
    assert is_mpl_multicast(udp(MESH_GROUP, 0)) and is_mpl_multicast(udp(ipaddress.IPv6Address("ff05::1"), 0))
    assert not is_mpl_multicast(udp(LINK_GROUP, 0)) and not is_mpl_multicast(udp(CHILD, 0))
    assert not is_mpl_multicast(b"\xff" * 30)


def test_the_first_life_skips_nothing_then_back_to_back_lives_stay_clear_of_each_other() -> None:
    now = [0.0]
    mpl = MplSequences(clock=lambda: now[0])
    assert mpl.plan(1) == 0, "the NCP's first life follows no other"
    mpl.sent(udp(CHILD, 0))
    mpl.restarted()  # it used [0, 1 + allowance)
    now[0] = 1.5
    assert mpl.plan(1) == 1 + MPL_ALLOWANCE, "the new life's first query lands past what the last one used"
    assert mpl.plan(1) == 0, "planned once per life"
    mpl.sent(udp(CHILD, 1))
    now[0] = 3.0
    mpl.restarted()
    now[0] = 4.5
    skip = mpl.plan(1)
    assert skip >= 2 * (1 + MPL_ALLOWANCE), "clear of both lives the mesh still remembers"
    mpl.sent(udp(CHILD, 2))
    mpl.restarted()
    now[0] = 9.5  # the first two lives are forgotten, the last one ([skip, skip + 1 + allowance)) is not
    assert mpl.plan(1) == 0, "the numbers below the last life's are free again"
    assert mpl.skipped == (1 + MPL_ALLOWANCE) + skip


def test_multicast_sent_before_the_skip_counts_as_used() -> None:
    now = [0.0]
    mpl = MplSequences(clock=lambda: now[0])
    mpl.restarted()
    mpl.sent(udp(MESH_GROUP, 0))
    mpl.sent(udp(MESH_GROUP, 1))
    skip = mpl.plan(0)
    assert mpl.start == 2 + skip and mpl.start >= MPL_ALLOWANCE


life = st.tuples(
    st.floats(0, 8), st.integers(0, 3), st.integers(0, 4), st.integers(0, 3), st.integers(0, MPL_ALLOWANCE)
)


@given(st.lists(life, min_size=1, max_size=8))
def test_a_restarted_ncp_never_reuses_a_sequence_number_the_mesh_remembers(lives: list[tuple]) -> None:
    """A model of OpenThread: each life's counter starts at 0; each realm-local multicast and each first query
    for a destination takes the next number; a node drops a number it heard less than 5 s ago."""
    now = [0.0]
    mpl = MplSequences(clock=lambda: now[0])
    heard: list[tuple[float, int, int]] = []  # (time, life, sequence number) on the air
    for n, (duration, before, queried, after, own) in enumerate(lives):
        mpl.restarted()
        counter = 0
        for i in range(before):  # the host's multicast while the NCP recovers, before the skip
            mpl.sent(udp(MESH_GROUP, i))
            heard.append((now[0], n, counter))
            counter += 1
        counter += mpl.plan(queried)
        mine = [(counter + i) % 256 for i in range(queried + own)]  # its first queries, and its own
        remembered = {seq for t, life_, seq in heard if life_ != n and now[0] - t < 5.0}
        assert not remembered & set(mine), (remembered, mine)
        for i in range(queried):
            mpl.sent(udp(ipaddress.IPv6Address(int(CHILD) + i), i))
        for i in range(after):
            mpl.sent(udp(MESH_GROUP, i))
        for seq in range(counter, counter + queried + own + after):
            heard.append((now[0], n, seq % 256))
        now[0] += duration
