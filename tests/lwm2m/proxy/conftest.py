"""Fixtures the proxy tests share."""

from __future__ import annotations

import pytest

from devtools.testbed.sensors import Sensor
from tests.lwm2m.servers import free_udp_port


@pytest.fixture
async def sensors():
    """Three CoAP sensors on loopback, stopped at teardown."""
    made = []
    for _ in range(3):
        s = Sensor("127.0.0.1", free_udp_port())
        await s.start()
        made.append(s)
    yield made
    for s in made:
        await s.stop()
