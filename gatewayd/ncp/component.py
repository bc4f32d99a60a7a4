"""The NCP component: owns the Spinel client for ``[ncp] url`` and shows it in gatewayctl."""

from __future__ import annotations

from typing import Any

from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import CommandError, Request
from ncp.client import NcpClient, NcpState


class NcpComponent(Component):
    name = "ncp"

    def __init__(self, config: Config):
        super().__init__(config)
        self.client: NcpClient | None = None

    def _make_client(self) -> NcpClient:
        ncp = self.config.ncp
        return NcpClient(ncp.url, request_timeout=ncp.request_timeout, get_retries=ncp.request_retries,
                         backoff_max=ncp.reconnect_max_backoff)

    async def start(self) -> None:
        client = self._make_client()
        try:
            await client.start()
        except Exception:
            await client.stop()
            raise
        self.client = client
        client.add_event_handler(lambda _event: self.changed())

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()
            self.client = None

    async def reload(self, config: Config) -> None:
        self.config = config
        if self.client is not None:
            self.client.request_timeout = config.ncp.request_timeout
            self.client.get_retries = config.ncp.request_retries
            self.client.backoff_max = config.ncp.reconnect_max_backoff

    @property
    def running(self) -> bool:
        return self.client is not None and self.client.state in (NcpState.RUNNING, NcpState.RESETTING)

    def require(self) -> NcpClient:
        """The client, or a clear error for callers that need a live NCP."""
        if self.client is None or self.client.state is NcpState.STOPPED:
            raise CommandError("the NCP is not connected (see: gatewayctl ncp, journalctl GATEWAYD_COMPONENT=ncp)")
        return self.client

    def status(self) -> dict[str, Any]:
        if self.client is None:
            return {"url": self.config.ncp.url}
        return {"ncp_state": str(self.client.state), "version": self.client.info.get("ncp_version", "")}

    def status_line(self) -> str | None:
        if self.client is None or self.client.state is NcpState.RUNNING:
            return None
        return f"NCP {str(self.client.state).lower().replace('_', ' ')}"

    def commands(self) -> list[Command]:
        return [Command("ncp", self._cmd_ncp, "NCP link, identity, state and counters"),
                Command("ncp reset", self._cmd_reset, "restart the NCP (root only); the Thread network recovers")]

    async def _cmd_ncp(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        if self.client is None:
            return {"state": "not connected", "link": self.config.ncp.url}
        return self.client.status()

    async def _cmd_reset(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        request.require_root("ncp reset")
        status = await self.require().reset()
        return {"reset": getattr(status, "name", str(status))}
