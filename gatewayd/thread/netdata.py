"""Publishing the border router's prefixes and routes into Thread network data.

OpenThread takes local network-data changes between THREAD_ALLOW_LOCAL_NET_DATA_CHANGE
= 1 and = 0; the second SET makes the NCP register them with the leader. An NCP reset
forgets them, so the publisher keeps the wanted set and can push it again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from ncp.client import NcpClient, NcpStatusError
from ncp.netdata import ExternalRoute, OnMeshPrefix
from ncp.spinel import Prop
from ncp.spinel.props import (
    NET_FLAG_DEFAULT_ROUTE,
    NET_FLAG_ON_MESH,
    NET_FLAG_PREFERRED,
    NET_FLAG_SLAAC,
    ROUTE_FLAG_NAT64,
)

log = logging.getLogger("gatewayd.thread")

__all__ = ["OMR_FLAGS", "ROUTE_FLAG_NAT64", "ExternalRoute", "NetdataPublisher", "OnMeshPrefix", "omr_prefix"]

OMR_FLAGS = NET_FLAG_ON_MESH | NET_FLAG_DEFAULT_ROUTE | NET_FLAG_SLAAC | NET_FLAG_PREFERRED


def omr_prefix(prefix: ipaddress.IPv6Network) -> OnMeshPrefix:
    """The border router's off-mesh-routable prefix as published: on-mesh, default route, SLAAC, preferred."""
    return OnMeshPrefix(prefix, OMR_FLAGS)


class NetdataPublisher:
    def __init__(self, client: NcpClient):
        self.client = client
        self.prefixes: set[OnMeshPrefix] = set()
        self.routes: set[ExternalRoute] = set()
        self.published_prefixes: set[OnMeshPrefix] = set()
        self.published_routes: set[ExternalRoute] = set()
        self._lock = asyncio.Lock()  # one ALLOW_LOCAL_NET_DATA_CHANGE transaction at a time

    def forget(self) -> None:
        """The NCP reset: nothing of ours is in its network data any more."""
        self.published_prefixes.clear()
        self.published_routes.clear()

    async def publish(self, prefixes: set[OnMeshPrefix], routes: set[ExternalRoute]) -> bool:
        """Make the NCP's local network data exactly ``prefixes`` and ``routes``; True if changed."""
        async with self._lock:
            return await self._publish(prefixes, routes)

    async def _publish(self, prefixes: set[OnMeshPrefix], routes: set[ExternalRoute]) -> bool:
        self.prefixes, self.routes = set(prefixes), set(routes)
        add_p, del_p = prefixes - self.published_prefixes, self.published_prefixes - prefixes
        add_r, del_r = routes - self.published_routes, self.published_routes - routes
        if not (add_p or del_p or add_r or del_r):
            return False
        await self.client.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, True)
        try:
            for p in sorted(del_p):
                await self._change(Prop.THREAD_ON_MESH_NETS, p.element(), insert=False)
                self.published_prefixes.discard(p)
            for r in sorted(del_r):
                await self._change(Prop.THREAD_OFF_MESH_ROUTES, r.element(), insert=False)
                self.published_routes.discard(r)
            for p in sorted(add_p):
                await self._change(Prop.THREAD_ON_MESH_NETS, p.element(), insert=True)
                self.published_prefixes.add(p)
            for r in sorted(add_r):
                await self._change(Prop.THREAD_OFF_MESH_ROUTES, r.element(), insert=True)
                self.published_routes.add(r)
        finally:
            await self.client.set(Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, False)
        log.info("network data published: %s",
                 ", ".join([str(p.prefix) for p in sorted(self.published_prefixes)]
                           + [f"route {r.prefix}" for r in sorted(self.published_routes)]) or "nothing")
        return True

    async def _change(self, prop: Prop, element: tuple[Any, ...], insert: bool) -> None:
        try:
            if insert:
                await self.client.insert(prop, element)
            else:
                await self.client.remove(prop, element)
        except NcpStatusError as exc:
            # Removing what the NCP no longer has is fine; anything else is worth a warning.
            if insert:
                log.warning("NCP refused to publish %s/%d: %s", element[0], element[1], exc)
                raise

    async def withdraw(self) -> None:
        await self.publish(set(), set())

    def status(self) -> dict[str, list[str]]:
        return {"prefixes": [str(p.prefix) for p in sorted(self.published_prefixes)],
                "routes": [str(r.prefix) for r in sorted(self.published_routes)]}
