"""A failing optional component is retried with backoff and reported, not fatal."""

from __future__ import annotations

import asyncio

from gatewayd.component import Component, Slot, State, Supervisor
from gatewayd.config import parse


class Flaky(Component):
    """Fails its first `failures` starts, like an NCP that is not plugged in yet."""

    name = "ncp"

    def __init__(self, failures: int):
        super().__init__(parse(""))
        self.failures = failures
        self.starts = 0
        self.stops = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise OSError("no such device /dev/ttyACM0")

    async def stop(self) -> None:
        self.stops += 1

    def status_line(self) -> str:
        return "leader ch 15"


class Hung(Component):
    name = "nat64"

    async def stop(self) -> None:
        await asyncio.sleep(60)


async def running_again(slot: Slot, within: float = 5.0) -> None:
    """Wait for the supervisor's retry to bring the component back."""
    for _ in range(int(within / 0.05)):
        await asyncio.sleep(0.05)
        if slot.state == State.RUNNING:
            return
    raise AssertionError(f"{slot.component.name} is {slot.state} after {within} s")


async def test_failed_component_is_retried_with_backoff_and_reported():
    sup = Supervisor(max_backoff=0.2)
    flaky = Flaky(failures=2)
    sup.add(flaky)
    await sup.start_all()
    slot = sup.slot("ncp")
    assert slot.state == State.FAILED
    assert sup.status_line().startswith("ncp failed (no such device /dev/ttyACM0, retry in")
    await running_again(slot)
    assert flaky.starts == 3
    assert sup.status_line() == "leader ch 15"
    await sup.stop_all(1)


async def test_runtime_failure_restarts_component():
    sup = Supervisor(max_backoff=0.1)
    flaky = Flaky(failures=0)
    sup.add(flaky)
    await sup.start_all()
    flaky.failed(ConnectionError("link lost"))
    slot = sup.slot("ncp")
    assert slot.state == State.FAILED
    await running_again(slot)
    assert flaky.starts == 2 and flaky.stops >= 1
    await sup.stop_all(1)


async def test_stop_is_bounded_by_timeout():
    sup = Supervisor()
    sup.add(Flaky(failures=0))
    sup.add(Hung(parse("")))
    await sup.start_all()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await sup.stop_all(0.5)
    assert loop.time() - began < 1.5
    assert all(s.state == State.STOPPED for s in sup.slots)


async def test_a_failure_after_a_healthy_run_is_retried_from_the_first_step():
    """A crash after hours of service must not inherit the delay earlier failures built up."""
    sup = Supervisor(max_backoff=60)
    flaky = Flaky(failures=0)
    sup.add(flaky)
    slot = sup.slot("ncp")
    slot.backoff.initial, slot.backoff.healthy = 0.05, 0.3
    await sup.start_all()
    for _ in range(5):  # quick failures: 0.05, 0.1, 0.2, 0.4, 0.8 s
        flaky.failed(ConnectionError("link lost"))
        await running_again(slot)
        assert slot.backoff.attempts > 0
    await asyncio.sleep(0.35)  # now it ran healthily
    flaky.failed(ConnectionError("link lost"))
    assert slot.retry_at is not None and slot.retry_at - asyncio.get_running_loop().time() < 0.1
    await running_again(slot, within=1.0)
    await sup.stop_all(1)
