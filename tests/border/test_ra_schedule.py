"""RFC 4861 §6.2.4/§6.2.6 timing of the border router's RAs, and the advertiser without privileges."""

from __future__ import annotations

import itertools
import logging
import random
import socket
from ipaddress import IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.border.advertiser import Advertiser, Schedule, icmp6_filter_pass_only


def run_unsolicited(schedule: Schedule, count: int) -> list[float]:
    """Send every RA exactly when it is due; return the send times."""
    times = []
    for _ in range(count):
        now = schedule.next
        times.append(now)
        schedule.sent(now)
    return times


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@given(st.integers(0, 2**32), st.floats(1, 30), st.floats(3, 200), st.floats(0, 300))
def test_first_three_are_at_most_the_initial_interval_apart_then_jittered(seed, initial, lo, spread):
    hi = lo + spread
    s = Schedule(initial_interval=initial, min_interval=lo, max_interval=hi, rng=random.Random(seed))
    s.restart(100.0)
    times = run_unsolicited(s, 12)
    assert times[0] == 100.0  # the first goes out as soon as the interface advertises
    first, later = gaps(times)[:2], gaps(times)[2:]
    eps = 1e-6
    assert all(min(initial, lo) - eps <= g <= initial + eps for g in first)
    assert all(lo - eps <= g <= hi + eps for g in later)


def test_periodic_intervals_are_randomised_across_the_whole_range():
    s = Schedule(initial_interval=16, min_interval=150, max_interval=210, rng=random.Random(7))
    s.restart(0.0)
    later = gaps(run_unsolicited(s, 400))[2:]
    assert min(later) < 156 and max(later) > 204  # uses the range, not one value
    assert len({round(g, 3) for g in later}) > 300
    assert 175 < sum(later) / len(later) < 185  # ~3 minutes on average


def test_defaults_follow_rfc4861():
    s = Advertiser("eth0")._schedule
    s.restart(0.0)
    times = run_unsolicited(s, 4)
    assert gaps(times)[:2] == [16.0, 16.0]  # MAX_INITIAL_RTR_ADVERT_INTERVAL
    assert 150 <= gaps(times)[2] <= 210
    assert s.min_delay == 3.0  # MIN_DELAY_BETWEEN_RAS


def test_solicited_answer_is_delayed_and_rate_limited():
    s = Schedule(initial_interval=16, min_interval=150, max_interval=210, rng=random.Random(1))
    s.restart(0.0)
    s.sent(0.0)
    assert s.solicited(1.0, 0.3) == pytest.approx(3.3)  # MIN_DELAY_BETWEEN_RAS after the last, plus the delay
    s.sent(3.3, solicited=True)
    assert s.solicited(10.0, 0.2) == pytest.approx(10.2)  # no RA for a while: just the random delay
    assert s.count == 1  # a solicited RA is not one of the initial unsolicited ones
    assert s.solicited(15.9, 0.5) == pytest.approx(16.0)  # the scheduled RA answers it


def test_change_restarts_the_initial_phase_but_keeps_the_rate_limit():
    s = Schedule(initial_interval=16, min_interval=150, max_interval=210, rng=random.Random(1))
    s.restart(0.0)
    run_unsolicited(s, 5)
    last = s.last
    s.restart(last + 1.0)
    assert s.next == pytest.approx(last + 3.0)
    times = run_unsolicited(s, 3)
    assert gaps(times) == [16.0, 16.0]


def test_icmp6_filter_passes_only_router_solicitations():
    words = [int.from_bytes(icmp6_filter_pass_only(133)[i : i + 4], "little") for i in range(0, 32, 4)]
    passing = [t for t in range(256) if not words[t >> 5] & (1 << (t & 31))]
    assert passing == [133]


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        Advertiser("eth0", min_interval=10, max_interval=5)
    with pytest.raises(ValueError):
        Advertiser("eth0", max_interval=600, route_lifetime=300)  # routes would expire between RAs


async def test_without_a_raw_socket_it_waits_and_says_why(caplog: pytest.LogCaptureFixture):
    calls = []

    def refuse(*args: int) -> socket.socket:
        calls.append(args)
        raise PermissionError(1, "Operation not permitted")

    adv = Advertiser("eth0", retry_interval=0.01, socket_factory=refuse)
    adv.update([IPv6Network("fd00:1:2:3::/64")])
    with caplog.at_level(logging.WARNING, logger="gatewayd.border"):
        await adv.start()
        for _ in range(200):
            if len(calls) >= 3:
                break
            await __import__("asyncio").sleep(0.01)
        status = adv.status()
        await adv.stop()
    assert len(calls) >= 3  # it keeps retrying
    assert status["state"] == "waiting" and "CAP_NET_RAW" in status["problem"]
    assert status["prefixes"] == ["fd00:1:2:3::/64"] and status["ra_sent"] == 0
    warnings = [r for r in caplog.records if r.name == "gatewayd.border" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "eth0" in warnings[0].getMessage()  # said once, not on every retry
    assert adv.status()["state"] == "stopped"


def test_update_tracks_withdrawn_prefixes():
    adv = Advertiser("eth0")
    a, b = IPv6Network("fd00:a::/64"), IPv6Network("fd00:b::/64")
    adv.update([a, b])
    adv.update([b])
    assert adv.status()["withdrawing"] == [str(a)]
    ra = adv._advertisement()
    assert [(str(r.prefix), r.lifetime) for r in ra.routes] == [(str(b), 1800), (str(a), 0)]
    adv.update([a, b])  # back before the withdrawal went out: no zero lifetime for it
    assert adv.status()["withdrawing"] == []
    final = adv._advertisement(final=True)
    assert {r.lifetime for r in final.routes} == {0} and final.router_lifetime == 0
