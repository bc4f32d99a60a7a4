"""Many LwM2M clients in one process: the gateway's own and the virtual ones, by endpoint name."""

from __future__ import annotations

import asyncio
from typing import Any

from ..persist import StateStore
from ..store import ObjectStore
from .ramp import DEFAULT_CONCURRENCY, DEFAULT_FIRST_JITTER, RegisterRamp
from .registration import LwM2MClient
from .state import ClientSettings


class LwM2MEngine:
    """Owns the clients; each has its own socket, registration task and saved state file.

    At most ``register_concurrency`` of them register (or request bootstrap) at once, each after a
    random delay of up to ``first_jitter`` seconds; see :mod:`.ramp`.
    """

    def __init__(self, state: StateStore | None = None, settings: ClientSettings | None = None,
                 register_concurrency: int = DEFAULT_CONCURRENCY,
                 first_jitter: float = DEFAULT_FIRST_JITTER) -> None:
        self.state = state
        self.settings = settings or ClientSettings()
        self.clients: dict[str, LwM2MClient] = {}
        self.ramp = RegisterRamp(register_concurrency, first_jitter)

    async def add(self, endpoint: str, store: ObjectStore, settings: ClientSettings | None = None) -> LwM2MClient:
        """Create and start a client for ``store`` (whose Security/Server objects name its server)."""
        if endpoint in self.clients:
            raise KeyError(f"endpoint {endpoint!r} already exists")
        client = LwM2MClient(endpoint, store, settings or self.settings, self.state, self.ramp)
        self.clients[endpoint] = client
        await client.start()
        return client

    async def remove(self, endpoint: str, deregister: bool = True, forget: bool = False) -> None:
        """Stop a client (Deregister first); ``forget`` also deletes its saved state."""
        client = self.clients.pop(endpoint)
        await client.stop(deregister)
        if forget and self.state is not None:
            self.state.remove(endpoint)

    async def stop(self, deregister: bool = True) -> None:
        clients, self.clients = list(self.clients.values()), {}
        await asyncio.gather(*(c.stop(deregister) for c in clients), return_exceptions=True)

    def rows(self) -> list[dict[str, Any]]:
        return [c.info() for c in sorted(self.clients.values(), key=lambda c: c.endpoint)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.clients.values():
            out[c.state.value] = out.get(c.state.value, 0) + 1
        return out
