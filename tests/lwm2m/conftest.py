"""Fixtures for the LwM2M tests."""

from __future__ import annotations

import asyncio
import gc

import pytest

from gatewayd.lwm2m.client import LwM2MClient
from gatewayd.lwm2m.definitions import ObjectRegistry

from .aioserver import LwM2MTestServer
from .objects import make_registry
from .servers import free_udp_port


@pytest.fixture(scope="session")
def registry() -> ObjectRegistry:
    return make_registry()


@pytest.fixture
async def server():
    """An LwM2M server on aiocoap, on loopback, for what the third-party servers lack."""
    srv = LwM2MTestServer(free_udp_port())
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def clients():
    """Clients a test made; stopped at teardown even when the test fails."""
    made: list[LwM2MClient] = []
    yield made
    for c in made:
        await c.stop()
    # DTLS sessions die here, with the event loop still running, not later in a garbage collection
    # that finds the loop closed
    gc.collect()
    await asyncio.sleep(0.05)
