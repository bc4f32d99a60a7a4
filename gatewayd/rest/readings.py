"""What ``/metrics`` (and the status page) show, read the way gatewayctl reads it: each component's
``status()`` as ``gatewayctl status`` lists it, and the gatewayctl commands' own implementations
(``counters``, ``nat64 counters``, ``dns64 counters``, ``border counters``, ``lwm2m clients``,
``lwm2m show``) run with an
unprivileged request, so nothing here can show more than a non-root gatewayctl user sees (no secrets).

Everything is read when asked (a scrape, a page refresh): nothing runs in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gatewayd.component import Component
from gatewayd.control import CommandError, Request

log = logging.getLogger("gatewayd.rest")
SESSIONS_SHOWN = 50  # NAT64 sessions on the status page; the count is of all


class Readings:
    def __init__(self, components: Mapping[str, Component]):
        #: the daemon's components by name (the factories' ``built``: filled in as they are built)
        self.components = components

    def status(self, name: str) -> dict[str, Any] | None:
        """``gatewayctl status``'s entry of one component (its supervisor state and ``status()``); None if it is
        not configured."""
        component = self.components.get(name)
        return dict(component.supervised_status()) if component is not None else None

    def component_states(self) -> dict[str, str]:
        """Each configured component's state as ``gatewayctl status`` shows it (running, failed...)."""
        return {name: str(component.supervised_status().get("state", "unknown"))
                for name, component in self.components.items()}

    async def command(self, component: str, name: str, *args: str) -> Any:
        """The gatewayctl command ``name`` as a non-root user runs it; None where it has nothing to say
        (the component is not configured or not running: gatewayctl prints an error then)."""
        owner = self.components.get(component)
        if owner is None:
            return None
        command = next((c for c in owner.commands() if c.name == name), None)
        if command is None:
            return None
        try:
            return await command.handler(Request(list(args), uid=None))
        except CommandError:
            return None
        except Exception:  # a reading must never fail the whole scrape
            log.warning("reading %r for the REST API failed", name, exc_info=True)
            return None

    async def lwm2m_clients(self) -> list[dict[str, Any]] | None:
        """``gatewayctl lwm2m clients`` with each client's ``gatewayctl lwm2m show`` merged in."""
        rows = await self.command("lwm2m", "lwm2m clients")
        if rows is None:
            return None
        out = []
        for row in rows:
            shown = await self.command("lwm2m", "lwm2m show", row["endpoint"]) or {}
            out.append({**shown, **row})
        return out

    async def status_page(self) -> dict[str, Any]:
        """What the status page shows (``/status.json``): Thread, its children, routers and network data, NAT64
        sessions, LwM2M clients; each part None where its component is not configured or not running."""
        state = await self.command("thread", "state")
        thread = None
        if state is not None:
            thread = {k: state.get(k) for k in ("role", "network_name", "channel", "pending_channel", "pending_in_s",
                                                "pan_id", "ext_pan_id", "mesh_local_prefix", "omr_prefix",
                                                "dns64_address", "children")}
        nat64 = await self.command("nat64", "nat64 counters")
        sessions = await self.command("nat64", "nat64 mappings")
        clients = await self.command("lwm2m", "lwm2m clients")
        ncp = self.status("ncp")
        return {
            "ncp": {k: ncp.get(k) for k in ("ncp_state", "version")} if ncp is not None else None,
            "thread": thread,
            "children": await self.command("thread", "child table"),
            "routers": await self.command("thread", "router table"),
            "netdata": await self.command("thread", "netdata show"),
            "nat64": None if nat64 is None else {
                "backend": nat64.get("backend"), "sessions": nat64.get("sessions"),
                "mappings": (sessions or [])[:SESSIONS_SHOWN], "mappings_total": len(sessions or [])},
            "lwm2m": None if clients is None else [
                {k: c.get(k) for k in ("endpoint", "state", "server", "expires_in", "error", "adapter") if k in c}
                for c in clients],
        }

    async def metrics(self) -> dict[str, Any]:
        """Everything ``/metrics`` shows, in gatewayctl's shapes."""
        return {
            "components": self.component_states(),
            "ncp": self.status("ncp"),
            "thread": self.status("thread"),
            "counters": await self.command("thread", "counters"),
            "nat64": await self.command("nat64", "nat64 counters"),
            "dns64": await self.command("dns64", "dns64 counters"),
            "border": await self.command("border", "border counters"),
            "lwm2m_status": self.status("lwm2m"),
            "lwm2m": await self.lwm2m_clients(),
        }
