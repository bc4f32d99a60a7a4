"""The one retry policy: grows, is capped, never aligns, and starts afresh after a healthy run."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.backoff import Backoff


@given(st.floats(0.01, 10), st.floats(1, 600), st.integers(1, 40))
def test_delays_double_within_jitter_up_to_the_cap(initial: float, maximum: float, n: int) -> None:
    b = Backoff(initial, maximum, jitter=0.2)
    for k in range(n):
        base = min(maximum, initial * 2.0**k)
        assert 0.8 * base <= b.delay() <= 1.2 * base
    assert b.attempts == n


def test_jitter_spreads_retries() -> None:
    assert len({round(Backoff(1.0, 60.0).delay(), 6) for _ in range(50)}) > 40


def test_reset_and_a_healthy_run_start_from_the_first_step() -> None:
    now = [0.0]
    b = Backoff(1.0, 60.0, jitter=0.0, healthy=10.0, clock=lambda: now[0])
    assert [b.delay() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    b.started()
    now[0] += 3.0  # a short run: it keeps growing
    assert b.delay() == 16.0
    b.started()
    now[0] += 10.0  # a healthy run: the next failure is retried at once
    assert b.delay() == 1.0
    b.reset()
    assert (b.attempts, b.delay()) == (0, 1.0)
