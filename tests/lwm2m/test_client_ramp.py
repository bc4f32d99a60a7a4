"""The registration ramp: an engine keeps at most N Registers in flight and still registers everyone."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest
from aiocoap import resource
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine, RegisterRamp, RegistrationState

from .servers import HeldResource, device_store, free_udp_port

pytestmark = pytest.mark.timeout(60)


class _SlowRd(HeldResource):
    """Holds every Register until the test lets it go, so the Registers in flight can be counted."""

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        await self.held()
        msg = aiocoap.Message(code=Code.CREATED)
        msg.opt.location_path = ("rd", str(self.done))
        return msg


@pytest.fixture
async def slow_server():
    port = free_udp_port()
    rd = _SlowRd()
    site = resource.Site()
    site.add_resource(["rd"], rd)
    ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port), transports=["udp6"])
    try:
        yield rd, f"coap://127.0.0.1:{port}"
    finally:
        rd.release.set()
        await ctx.shutdown()


async def wait_for(predicate, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_engine_caps_registers_in_flight(slow_server) -> None:
    rd, uri = slow_server
    engine = LwM2MEngine(settings=ClientSettings(keepalive=0, request_timeout=30), register_concurrency=4,
                         first_jitter=0.05)
    try:
        for i in range(20):
            await engine.add(f"ramp-{i}", device_store(uri))
        await wait_for(lambda: rd.pending == 4)
        await asyncio.sleep(0.3)  # nobody else gets through while four are held
        assert rd.pending == 4 and engine.ramp.in_flight == 4 and engine.ramp.waiting == 16
        rd.release.set()
        await wait_for(lambda: engine.counts().get(RegistrationState.REGISTERED.value, 0) == 20)
        assert rd.peak == 4 and engine.ramp.peak == 4
        assert rd.done == 20, "one Register each: no timeouts, no retries"
    finally:
        rd.release.set()
        await engine.stop(deregister=False)


async def test_uncapped_ramp_lets_all_through(slow_server) -> None:
    rd, uri = slow_server
    engine = LwM2MEngine(settings=ClientSettings(keepalive=0), register_concurrency=0, first_jitter=0)
    try:
        for i in range(10):
            await engine.add(f"free-{i}", device_store(uri))
        await wait_for(lambda: rd.pending == 10)
        rd.release.set()
        await wait_for(lambda: engine.counts().get("registered", 0) == 10)
    finally:
        await engine.stop(deregister=False)


async def test_first_attempts_are_spread_over_the_jitter() -> None:
    ramp = RegisterRamp(concurrency=8, first_jitter=0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def one() -> float:
        await ramp.first_attempt()
        return loop.time() - t0

    starts = sorted(await asyncio.gather(*(one() for _ in range(40))))
    assert starts[-1] <= 0.7 and starts[-1] - starts[0] > 0.2, "spread out, not all at once"


async def test_a_cancelled_waiter_gives_back_nothing_it_did_not_take() -> None:
    ramp = RegisterRamp(concurrency=1, first_jitter=0)
    held = asyncio.Event()
    leave = asyncio.Event()

    async def holder() -> None:
        async with ramp.slot():
            held.set()
            await leave.wait()

    async def waiter() -> None:
        async with ramp.slot():
            pass

    h = asyncio.create_task(holder())
    await held.wait()
    w = asyncio.create_task(waiter())
    await asyncio.sleep(0.05)
    assert ramp.waiting == 1
    w.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w
    leave.set()
    await h
    assert (ramp.in_flight, ramp.waiting) == (0, 0)
    async with ramp.slot():
        assert ramp.in_flight == 1
