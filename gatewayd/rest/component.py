"""The REST API component: serves :mod:`gatewayd.rest.api` on each ``[rest] listen`` address.

aiohttp is imported here, and this module only when ``[rest] enabled`` is true (gatewayd/components.py), so
a daemon without the API neither loads nor pays for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gatewayd.component import Component
from gatewayd.config import Config
from gatewayd.ncp.component import NcpComponent
from gatewayd.rest.api import RestApi
from gatewayd.rest.listen import is_loopback, parse_listen
from gatewayd.rest.node import Node
from gatewayd.rest.readings import Readings
from gatewayd.rest.recent import RecentProblems
from gatewayd.secrets import reveal


class RestComponent(Component):
    name = "rest"

    def __init__(self, config: Config, ncp: NcpComponent | None, thread: Component | None,
                 components: Mapping[str, Component] | None = None):
        """``components``: the daemon's components by name, read by ``/metrics`` as gatewayctl reads them."""
        super().__init__(config)
        from gatewayd.thread.network import ThreadNetwork

        network = thread if isinstance(thread, ThreadNetwork) else None
        self.node = Node(ncp, network, config.daemon.state_dir)
        self.readings = Readings(components if components is not None else {})
        self.recent = RecentProblems()  # fed only while the component runs
        self._runners: list[web.AppRunner] = []
        self.listening: list[dict[str, Any]] = []

    async def start(self) -> None:
        if self.config.rest.metrics:
            try:
                import gatewayd.rest.metrics  # noqa: F401 - prometheus_client missing fails the start, not a scrape
            except ModuleNotFoundError:
                raise RuntimeError("[rest] metrics needs prometheus_client: apt install python3-prometheus-client "
                                   "(or pip install prometheus_client), or set metrics = false") from None
        token = reveal(self.config.rest.token)
        token_bytes = token.encode() if isinstance(token, str) else token
        self.recent.attach()
        try:
            for text in self.config.rest.listen:
                host, port = parse_listen(text)
                trusted = is_loopback(host)
                runner = web.AppRunner(RestApi(self.node, trusted, token_bytes, self.readings,
                                               self.config.rest.metrics, self.recent).application(), access_log=None,
                                       handle_signals=False)
                await runner.setup()
                self._runners.append(runner)
                await web.TCPSite(runner, host, port, reuse_address=True).start()
                self.listening.append({"listen": text, "token_required": not trusted})
                self.log.info("REST API on http://%s/ (%s)", text if ":" in text else f"{text}:{port}",
                              "loopback: as otbr-agent" if trusted else "dataset reads and changes need the token")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self.recent.detach()
        for runner in self._runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
        self.listening.clear()

    def status(self) -> dict[str, Any]:
        return {"listening": list(self.listening), "metrics": bool(self.listening) and self.config.rest.metrics}
