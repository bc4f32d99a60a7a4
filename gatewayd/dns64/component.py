"""The DNS64 component: mesh devices resolve IPv4-only names to addresses in the NAT64 prefix.

It answers on the border router's mesh-facing addresses, those of the Thread interface (wpan0),
plus ``[dns64] listen``. wpan0's addresses exist only once the network has formed and change with
it (re-attach, new mesh-local prefix, NCP recovery), so the component follows them (the Thread
view's ``on_change``) and re-binds.
Clients are served when they are in the mesh-local prefix, the OMR prefix or ``[dns64] allowed``;
upstreams come from ``[dns64] upstream`` or /etc/resolv.conf; the synthesis prefix is ``[nat64] prefix``,
or the LAN's NAT64 prefix while the mesh uses the LAN's translator instead of ours (``[nat64]
infrastructure``, :mod:`gatewayd.border.infra`): an address synthesised in a prefix nobody translates
would lead nowhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Any

from common.aio import cancel_and_wait
from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import CommandError, Request
from gatewayd.dns64 import answer_addresses
from gatewayd.thread.view import ThreadView, Unsubscribe

if TYPE_CHECKING:
    from gatewayd.border.infra import InfraLink

# After a failed re-bind (an address gone between looking and binding), try again this much later even
# if the mesh does not change again: the failure itself is not an event anyone would send.
RETRY_INTERVAL = 1.0


class Dns64Component(Component):
    name = "dns64"

    def __init__(self, config: Config, thread: ThreadView | None = None, *, retry_interval: float = RETRY_INTERVAL,
                 lan: InfraLink | None = None):
        super().__init__(config)
        self.thread = thread
        self.lan = lan
        self._lan_unsubscribe: Unsubscribe | None = None
        self.retry_interval = retry_interval
        self.server: Any = None
        self._applied: Any = None
        self._follow: asyncio.Task[None] | None = None
        self._mesh_changed = asyncio.Event()
        self._unsubscribe: Unsubscribe | None = None

    # ---- what to serve -------------------------------------------------------------------------
    def mesh_prefixes(self) -> list[ipaddress.IPv6Network]:
        if self.thread is None:
            return []
        return [p for p in (self.thread.mesh_local_prefix, self.thread.omr_prefix) if p is not None]

    def synthesis_prefix(self) -> ipaddress.IPv6Network:
        """The NAT64 prefix the mesh routes once the routing manager decided (another border router's may
        be favoured over ours); before that the LAN's when the mesh is given it (see [nat64] infrastructure),
        else ours."""
        if self.thread is not None and self.thread.nat64_prefix is not None:
            return self.thread.nat64_prefix
        n = self.config.nat64
        lan_prefix = self.lan.state.nat64_prefix if self.lan is not None else None
        if n.enabled and n.infrastructure != "ignore" and lan_prefix is not None:
            return lan_prefix
        return n.prefix

    def dns64_config(self) -> Any:
        from nat64.dns64 import Dns64Config

        d = self.config.dns64
        port = int(d.port)
        return Dns64Config(
            prefix=self.synthesis_prefix(),
            upstreams=[str(u) for u in d.upstream],
            listen=[(str(a), port) for a in answer_addresses(self.config, self.thread)],
            allowed=[*self.mesh_prefixes(), *d.allowed],
            cache_size=int(d.cache_size),
        )

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        from nat64.dns64 import Dns64Server

        self._mesh_changed.clear()
        if self.thread is not None:  # before reading it: a change while the server starts is not lost
            self._unsubscribe = self.thread.on_change(self._mesh_changed.set)
        if self.lan is not None:
            self._lan_unsubscribe = self.lan.on_change(self._mesh_changed.set)
        wanted = self.dns64_config()
        self.server = Dns64Server(wanted)
        try:
            await self.server.start()
        except BaseException:
            self.server = None
            self._stop_following()
            raise
        self._applied = wanted
        self._follow = asyncio.create_task(self._follow_mesh(), name="dns64-follow")
        self._log_serving()

    def _stop_following(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._lan_unsubscribe is not None:
            self._lan_unsubscribe()
            self._lan_unsubscribe = None

    async def stop(self) -> None:
        self._stop_following()
        if self._follow is not None:
            await cancel_and_wait(self._follow)
            self._follow = None
        if self.server is not None:
            await self.server.stop()
            self.server = None
        self._applied = None

    async def reload(self, config: Config) -> None:
        self.config = config
        await self._apply()

    async def _follow_mesh(self) -> None:
        while True:
            await self._mesh_changed.wait()
            self._mesh_changed.clear()
            try:
                await self._apply()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an address gone between looking and binding: try again shortly
                self.log.warning("dns64 could not follow the mesh addresses: %s", exc)
                await asyncio.sleep(self.retry_interval)
                self._mesh_changed.set()

    async def _apply(self) -> None:
        if self.server is None:
            return
        wanted = self.dns64_config()
        if wanted == self._applied:
            return
        try:
            await self.server.reload(wanted)
        except BaseException:
            # The server took the new config before binding failed: hand it the last good one so the
            # next attempt sees a difference and binds again.
            self.server.config = self._applied
            raise
        self._applied = wanted
        self._log_serving()
        self.changed()

    def _log_serving(self) -> None:
        assert self._applied is not None
        where = ", ".join(a for a, _ in self._applied.listen) or "no address yet (waiting for the mesh)"
        self.log.info("DNS64 answering on %s port %d for %s", where, int(self.config.dns64.port),
                      ", ".join(str(n) for n in self._applied.allowed) or "nobody yet")

    # ---- status and commands -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        if self.server is None:
            return {}
        return {"listen": [f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in self.server.addresses],
                "prefix": str(self.server.config.prefix),
                "allowed": [str(n) for n in self.server.config.allowed],
                "fast_path": self.server.fast_path}

    def status_line(self) -> str | None:
        if self.server is None:
            return None
        n = len(self.server.addresses)
        return f"DNS64 on {n} address" + ("" if n == 1 else "es")

    def commands(self) -> list[Command]:
        return [
            Command("dns64 cache", self._cmd_cache, "DNS64 cached answers"),
            Command("dns64 counters", self._cmd_counters, "DNS64 query, cache and upstream counters"),
        ]

    def _running(self) -> Any:
        if self.server is None:
            raise CommandError("DNS64 is not running")
        return self.server

    async def _cmd_cache(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        rows = []
        for e in self._running().cache_entries():
            rows.append({"name": e["name"], "type": e["type"], "rcode": e["rcode"], "ttl": e["ttl"],
                         "hits": e["hits"], "answer": " ".join(r.split()[-1] for r in e["records"]) or "-"})
        return rows

    async def _cmd_counters(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        return dict(self._running().counters())
