"""Test peers for the LwM2M client: the npm lwm2m-node-lib server driven over its own CLI, helpers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from aiocoap import resource

from devtools.testbed.lwm2m_server import NODE_LIB, NODE_SERVER, NodeServer, node_server_available
from devtools.testbed.lwm2m_server import NPM_PEERS as PEERS
from gatewayd.lwm2m import load_registry
from gatewayd.lwm2m.bootstrap import factory_bootstrap
from gatewayd.lwm2m.client import LwM2MClient, RegistrationState
from gatewayd.lwm2m.store import ObjectStore

__all__ = ["NODE_LIB", "NODE_SERVER", "PEERS", "REGISTRY", "REPO", "NodeServer", "device_store", "free_udp_port",
           "gateway_with_devices", "node_server_available", "until", "wait_state"]

REPO = Path(__file__).resolve().parents[2]
REGISTRY = load_registry()


class HeldResource(resource.Resource):
    """Answers only once the test sets ``release``: counts the requests waiting at once (``peak``)
    and those answered (``done``)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = self.peak = self.done = 0
        self.release = asyncio.Event()

    async def held(self) -> None:
        self.pending += 1
        self.peak = max(self.peak, self.pending)
        try:
            await self.release.wait()
        finally:
            self.pending -= 1
        self.done += 1


def free_udp_port() -> int:
    """A UDP port free on loopback now (and, for DTLS peers, the one above it too)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
                try:
                    s2.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free UDP port pair")


def device_store(uri: str | None = None, *, identity: bytes = b"", key: bytes = b"", lifetime: int = 300,
                 bootstrap: bool = False) -> ObjectStore:
    """A store with a Device object (and, given a URI, the account to register with)."""
    store = ObjectStore(REGISTRY)
    store.add_instance(3, 0, {0: "gatewayd tests", 1: "model-1", 2: "0011223344556677", 3: "fw-1.0",
                              11: {0: 0}, 13: 1_700_000_000, 14: "+01", 16: "U"})
    if uri is not None:
        factory_bootstrap(store, uri, identity=identity, key=key, lifetime=lifetime, bootstrap=bootstrap)
    return store


async def wait_state(client: LwM2MClient, state: RegistrationState, timeout: float = 10.0) -> None:
    """Wait until ``client`` reaches ``state`` (TimeoutError after ``timeout`` seconds)."""
    async def poll() -> None:
        while client.state != state:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def gateway_with_devices(uri: str, endpoint: str, count: int, **settings) -> tuple[LwM2MClient, Any]:
    """A gateway-mode client for ``uri`` (not started yet) with ``count`` devices behind it, each a
    temperature sensor: its Register lists ``count`` /25 instances (11 bytes each from /25/1000)."""
    from gatewayd.lwm2m.client import ClientSettings
    from gatewayd.lwm2m.proxy.gateway_mode import GatewayEngine

    store = device_store(uri, lifetime=120)
    store.add_object(25)
    gateway = LwM2MClient(endpoint, store, ClientSettings(keepalive=0, **settings))
    engine = GatewayEngine(gateway)
    for i in range(count):
        sensor = ObjectStore(REGISTRY)
        sensor.add_instance(3303, 0, {5700: 21.5})
        await engine.add(f"node-{i:04d}", sensor)
    return gateway, engine


async def until(predicate, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (TimeoutError after ``timeout`` seconds)."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)
