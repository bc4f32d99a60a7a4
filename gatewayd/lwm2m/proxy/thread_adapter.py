"""Thread nodes the NCP knows as virtual LwM2M clients, and EUI-64 → address lookups for CoAP devices.

:class:`NcpTables` reads the NCP's child table (``SPINEL_PROP_THREAD_CHILD_TABLE``), neighbor table and
router table, and the addresses each child registered (``SPINEL_PROP_THREAD_CHILD_TABLE_ADDRESSES``).
Only MTD children register their addresses with the parent, so that table lists none for an FTD child,
and a node that became a router is in no child table at all: such nodes are reached at their RLOC
address (mesh-local prefix + ``0:ff:fe00:RLOC16``), which every Thread node answers on.

The "EUI-64" of these tables is the node's IEEE 802.15.4 extended address. OpenThread derives it
randomly per network unless the product sets it to the factory EUI-64; endpoint names and
``eui64 =`` device keys use the value the tables show.

:class:`ThreadDevices` gives every node a virtual client ``<prefix><eui64>`` exposing Device (3:
serial number = EUI-64, model = child or router) and Connectivity Monitoring (4: Radio Signal Strength
= average RSSI, Link Quality = Thread link quality in (0..3), IP Addresses, Router IP Addresses = the
parent's RLOC address for a child, Cell ID = router id for a router), refreshed every
``poll_interval`` seconds and at once when the NCP announces a child or neighbor arriving or leaving
(an idle gateway reads no tables in between). A node missing from the tables for ``absence_timeout``
seconds is deregistered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.aio import cancel_and_wait
from ncp.client import PropertyChanged, PropertyInserted, PropertyRemoved
from ncp.ipv6 import is_rloc_or_aloc, rloc_address
from ncp.spinel.props import Prop

from ..client import ClientSettings, LwM2MEngine
from ..definitions import ObjectRegistry
from ..paths import LwM2MPath
from ..store import ObjectStore
from .virtual import UpstreamAccount, endpoint_account, virtual_store

log = logging.getLogger("gatewayd.lwm2m.proxy")

TABLE_MAX_AGE = 1.0
ANNOUNCED = (Prop.THREAD_CHILD_TABLE, Prop.THREAD_NEIGHBOR_TABLE)  # tables the NCP pushes changes of


@dataclass
class ThreadNode:
    """One node as the NCP's tables show it."""

    eui64: str
    rloc16: int
    is_child: bool
    link_quality: int = 0
    rssi: int = 0
    addresses: list[str] = field(default_factory=list)

    @property
    def router_id(self) -> int:
        return self.rloc16 >> 10

    @property
    def parent_rloc16(self) -> int:
        return self.rloc16 & 0xFC00


def preferred_address(addresses: list[str], mesh_local: ipaddress.IPv6Network | None) -> str | None:
    """The address to reach a node at: a routable (OMR) one if listed, else its mesh-local EID.

    Routable first: the same address reaches the device from the LAN and keeps working whatever source
    address the host picks for mesh-local destinations (see ``_lifetimes`` in gatewayd/thread/wpan.py).
    """
    usable = []
    for text in addresses:
        addr = ipaddress.IPv6Address(text)
        if addr.is_link_local or addr.is_multicast or is_rloc_or_aloc(addr):
            continue
        usable.append(addr)
    usable.sort(key=lambda a: mesh_local is not None and a in mesh_local)
    return str(usable[0]) if usable else None


class NcpTables:
    """The NCP's view of the mesh, read at most once a second however many callers ask."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self.client = client
        self.nodes: dict[str, ThreadNode] = {}
        self.mesh_local: ipaddress.IPv6Network | None = None
        self.rloc16: int | None = None
        self.ext_address: str | None = None  # the NCP's own, as hex
        self.read_at = 0.0
        self.ok = False
        self._lock = asyncio.Lock()

    async def refresh(self, max_age: float = TABLE_MAX_AGE) -> bool:
        """Read the tables unless they are younger than ``max_age``; False if the NCP did not answer."""
        async with self._lock:
            if time.monotonic() - self.read_at < max_age:
                return self.ok
            self.read_at = time.monotonic()
            ncp = self.client()
            if ncp is None:
                self.ok = False
                return False
            try:
                self.nodes = await self._read(ncp)
                self.ok = True
            except Exception as exc:  # NCP down, timed out, or a table it does not support
                log.debug("reading the NCP's tables failed: %s", exc)
                self.ok = False
            return self.ok

    async def _read(self, ncp: Any) -> dict[str, ThreadNode]:
        nodes: dict[str, ThreadNode] = {}
        with contextlib.suppress(Exception):
            prefix, length = await ncp.get(Prop.IPV6_ML_PREFIX)
            self.mesh_local = ipaddress.IPv6Network(f"{prefix}/{length}", strict=False)
        with contextlib.suppress(Exception):
            self.rloc16 = int(await ncp.get(Prop.THREAD_RLOC16))
        with contextlib.suppress(Exception):
            self.ext_address = bytes(await ncp.get(Prop.MAC_15_4_LADDR)).hex()
        for child in await ncp.get(Prop.THREAD_CHILD_TABLE):
            key = child.ext_address.hex()
            nodes[key] = ThreadNode(key, child.rloc16, True, child.link_quality_in or 0, child.average_rssi or 0)
        with contextlib.suppress(Exception):  # like the tables below: one an NCP lacks costs only its nodes
            for neighbor in await ncp.get(Prop.THREAD_NEIGHBOR_TABLE):
                key = neighbor.ext_address.hex()
                if not neighbor.is_child and key not in nodes:
                    nodes[key] = ThreadNode(key, neighbor.rloc16, False, neighbor.link_quality_in or 0,
                                            neighbor.average_rssi or 0)
        with contextlib.suppress(Exception):
            for router in await ncp.get(Prop.THREAD_ROUTER_TABLE):
                # A child that just became a router stays in the child table for a while: the router
                # table is the truth about its RLOC16.
                # The NCP lists itself: known by its extended address, which stays while its RLOC16 changes
                # with its role (an RLOC16 read as it became leader let the border router in as a node).
                key = router.ext_address.hex()
                if router.rloc16 != self.rloc16 and key != self.ext_address:
                    nodes[key] = ThreadNode(key, router.rloc16, False, router.link_quality_in or 0, 0)
        with contextlib.suppress(Exception):
            for entry in await ncp.get(Prop.THREAD_CHILD_TABLE_ADDRESSES):
                node = nodes.get(entry.ext_address.hex())
                if node is not None:
                    node.addresses = [str(a) for a in entry.addresses]
        return nodes

    async def address_of(self, eui64: str, fresh: bool = False) -> str | None:
        """Where the node with this EUI-64 (hex) can be reached now, if the NCP knows.

        ``fresh`` reads the tables again even if they are younger than a second: the caller's last
        request went unanswered, perhaps because the node moved since.
        """
        await self.refresh(max_age=0.0 if fresh else TABLE_MAX_AGE)
        node = self.nodes.get(eui64.lower())
        if node is None:
            return None
        return preferred_address(node.addresses, self.mesh_local) or self.rloc_address(node.rloc16)

    def rloc_address(self, rloc16: int) -> str | None:
        return str(rloc_address(self.mesh_local, rloc16)) if self.mesh_local is not None else None


@dataclass(frozen=True)
class ThreadDevicesConfig:
    enabled: bool = False
    prefix: str = "thread-"
    absence_timeout: float = 120.0
    poll_interval: float = 30.0
    account: UpstreamAccount = field(default_factory=lambda: UpstreamAccount(""))
    per_node_psk: bool = False  # each node its own identity and derived key (virtual.endpoint_account)


@dataclass
class _NodeClient:
    node: ThreadNode
    store: ObjectStore
    last_seen: float
    first_seen: float = field(default_factory=time.time)


class ThreadDevices:
    """Keeps one virtual client per node in the NCP's tables."""

    adapter = "thread"

    def __init__(self, config: ThreadDevicesConfig, engine: LwM2MEngine, registry: ObjectRegistry,
                 settings: ClientSettings, tables: NcpTables) -> None:
        self.config = config
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self.tables = tables
        self.nodes: dict[str, _NodeClient] = {}  # by endpoint
        self._task: asyncio.Task[None] | None = None
        self._announced = asyncio.Event()  # the NCP announced a change to its child or neighbor table
        self._listening: Any = None  # the NcpClient whose announcements we follow

    def endpoint(self, eui64: str) -> str:
        return f"{self.config.prefix}{eui64}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lwm2m thread devices")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._listen(None)
        for endpoint in list(self.nodes):
            await self._remove(endpoint, "proxy stopped")

    def _listen(self, client: Any) -> None:
        if client is self._listening:
            return
        if self._listening is not None:
            self._listening.remove_event_handler(self._on_event)
        if client is not None:
            client.add_event_handler(self._on_event)
        self._listening = client

    def _on_event(self, event: object) -> None:
        if isinstance(event, PropertyInserted | PropertyRemoved | PropertyChanged) and event.prop in ANNOUNCED:
            self._announced.set()

    async def _run(self) -> None:
        announced = False
        while True:
            self._listen(self.tables.client())  # a new client after the NCP component restarted
            self._announced.clear()
            try:
                await self.poll(fresh=announced)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Thread device poll failed")
            try:
                await asyncio.wait_for(self._announced.wait(), self.config.poll_interval)
                announced = True
            except TimeoutError:
                announced = False

    async def poll(self, fresh: bool = False) -> None:
        """One look at the tables: new nodes get a client, known ones fresh values, gone ones leave.

        ``fresh``: the NCP announced a change, so tables read before it (even a moment ago) are stale.
        """
        max_age = 0.0 if fresh else min(TABLE_MAX_AGE, self.config.poll_interval / 2)
        if not await self.tables.refresh(max_age=max_age):
            return  # the NCP did not answer: that says nothing about the nodes
        now = time.monotonic()
        for node in self.tables.nodes.values():
            endpoint = self.endpoint(node.eui64)
            known = self.nodes.get(endpoint)
            if known is None:
                await self._add(node, now)
            else:
                known.node, known.last_seen = node, now
                self._update(known.store, node)
        for endpoint, nc in list(self.nodes.items()):
            if now - nc.last_seen >= self.config.absence_timeout:
                await self._remove(endpoint, f"absent for {now - nc.last_seen:.0f} s")

    async def _add(self, node: ThreadNode, now: float) -> None:
        endpoint = self.endpoint(node.eui64)
        if endpoint in self.engine.clients:
            return
        account = self.config.account
        if self.config.per_node_psk and account.key:
            account = endpoint_account(account, endpoint)
        store = virtual_store(self.registry, account, manufacturer="Thread",
                              model="child" if node.is_child else "router", serial=node.eui64)
        self._update(store, node)
        self.nodes[endpoint] = _NodeClient(node, store, now)
        await self.engine.add(endpoint, store, self.settings)
        log.info("LwM2M proxy: %s for Thread %s %s", endpoint, "child" if node.is_child else "router",
                 node.eui64, extra={"fields": {"LWM2M_ENDPOINT": endpoint}})

    def _update(self, store: ObjectStore, node: ThreadNode) -> None:
        store.set(LwM2MPath(4, 0, 2), int(node.rssi))
        store.set(LwM2MPath(4, 0, 3), int(node.link_quality))
        # A node that registered no addresses (an FTD child, a router) is known by its RLOC.
        rloc = self.tables.rloc_address(node.rloc16)
        addresses = node.addresses or ([rloc] if rloc is not None else [])
        store.set(LwM2MPath(4, 0, 4), dict(enumerate(addresses)))
        if node.is_child:
            parent = self.tables.rloc_address(node.parent_rloc16)
            if parent is not None:
                store.set(LwM2MPath(4, 0, 5), {0: parent})
        else:
            store.set(LwM2MPath(4, 0, 8), node.router_id)

    async def _remove(self, endpoint: str, why: str) -> None:
        self.nodes.pop(endpoint, None)
        if endpoint in self.engine.clients:
            await self.engine.remove(endpoint, deregister=True, forget=True)
        log.info("LwM2M proxy: %s deregistered (%s)", endpoint, why, extra={"fields": {"LWM2M_ENDPOINT": endpoint}})

    def info(self, endpoint: str) -> dict[str, Any] | None:
        nc = self.nodes.get(endpoint)
        if nc is None:
            return None
        n = nc.node
        return {"adapter": self.adapter, "device": ", ".join(n.addresses) or f"rloc16 0x{n.rloc16:04x}",
                "rloc16": f"0x{n.rloc16:04x}", "role": "child" if n.is_child else "router",
                "link_quality": n.link_quality, "rssi": n.rssi,
                "last_contact_ago": round(time.monotonic() - nc.last_seen, 1)}
