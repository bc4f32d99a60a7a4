"""The NAT64 component: lets IPv6-only mesh devices reach IPv4 hosts through the border router.

Two backends behind one config key, ``[nat64] backend``:

- ``builtin``: gatewayd's own stateful translator (:mod:`nat64`) on the TUN ``[nat64] interface``.
- ``tayga``: Debian's tayga on that TUN, as a supervised child restarted with backoff when it dies.

Either way the component routes the NAT64 prefix and the IPv4 pool into the TUN (the pool route
brings the replies back), turns IPv4 forwarding on (and IPv6 forwarding, which the mesh side needs)
and puts both back on stop, and with ``masquerade = true`` masquerades the pool on the uplink
(``[nat64] uplink``, or the interface of the IPv4 default route). Jool is not supported: it is a kernel
module, and neither the Pi's kernel nor these machines ship it.

The Thread component publishes the prefix into the mesh as a NAT64 route; this one only translates.
When the LAN already has a NAT64 (its routers' PREF64 option, or its DNS64 answering ipv4only.arpa;
:mod:`gatewayd.border.infra`), ``[nat64] infrastructure = "auto"`` keeps our translator off while it is
there (its prefix is published instead) and brings ours up when it goes; "only" never runs ours.
"""

from __future__ import annotations

import asyncio
import socket
import time
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.aio import cancel_and_wait
from common.sysctl import IPV4_FORWARDING, IPV6_FORWARDING, SysctlSaver
from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import CommandError, Request
from gatewayd.thread.view import ThreadView, Unsubscribe

if TYPE_CHECKING:
    from gatewayd.border.infra import InfraLink

FORWARDING = (IPV4_FORWARDING, IPV6_FORWARDING)


def timeouts_from(config: Config) -> Any:
    from nat64.state import Timeouts

    c = config.nat64
    return Timeouts(udp=float(c.udp_timeout), tcp_established=float(c.tcp_established_timeout),
                    tcp_transitory=float(c.tcp_transitory_timeout), icmp=float(c.icmp_timeout))


def caps_from(config: Config) -> Any:
    from nat64.state import Caps

    c = config.nat64
    return Caps(max_sessions=c.max_sessions, max_sessions_per_source=c.max_sessions_per_host)


def default_uplink() -> str | None:
    """The interface of the IPv4 default route (blocking: call it in a thread)."""
    from common.netlink import Rtnl

    with Rtnl() as rt:
        for route in rt.default_routes(socket.AF_INET):
            oif = route.interface
            link = rt.link(index=oif) if oif is not None else None
            if link is not None and link.name:
                return link.name
    return None


class Nat64Component(Component):
    name = "nat64"

    def __init__(self, config: Config, thread: ThreadView | None = None, lan: InfraLink | None = None):
        super().__init__(config)
        self.thread = thread
        self.lan = lan
        self._lan_unsubscribe: Unsubscribe | None = None
        self._following: asyncio.Task[None] | None = None
        self.stood_down = 0  # times our translator stopped for the LAN's
        self.backend = config.nat64.backend
        self.runner: Any = None
        self.routes: list[Any] = []
        self.uplink: str | None = None
        self.settings = SysctlSaver()
        self._waiting: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Translate once the mesh interface exists: before that there is nobody to translate for, and
        the host's routes and forwarding stay untouched (a daemon whose radio never came up). Not while
        the LAN's own NAT64 is used instead (module docstring)."""
        if self.lan is not None and self.config.nat64.infrastructure != "ignore":
            self._lan_unsubscribe = self.lan.on_change(self._lan_changed)
        if not self._ours_wanted():
            self._log_infrastructure()
            return
        await self._start_ours()

    def _infrastructure_prefix(self) -> Any:
        return self.lan.state.nat64_prefix if self.lan is not None else None

    def _ours_wanted(self) -> bool:
        mode = self.config.nat64.infrastructure
        return mode == "ignore" or (mode == "auto" and self._infrastructure_prefix() is None)

    def _log_infrastructure(self) -> None:
        prefix = self._infrastructure_prefix()
        self.log.info("NAT64: %s; our translator stays off",
                      f"the LAN's NAT64 ({prefix}) is used" if prefix else 'none on the LAN yet ([nat64] '
                      'infrastructure = "only")',
                      extra={"fields": {"NAT64_INFRASTRUCTURE": str(prefix) if prefix else "none",
                                        "NAT64_DECISION": "infrastructure"}})

    def _lan_changed(self) -> None:
        if self._following is None or self._following.done():
            self._following = asyncio.create_task(self._follow_lan(), name="nat64-follow-lan")

    async def _follow_lan(self) -> None:
        """Ours up when the LAN's NAT64 went, down when it came (one change at a time, to the latest)."""
        while True:
            wanted = self._ours_wanted()
            if wanted == (self.runner is not None or self._waiting is not None):
                return
            try:
                if wanted:
                    self.log.info("NAT64: the LAN's translator is gone; starting ours",
                                  extra={"fields": {"NAT64_DECISION": "ours"}})
                    await self._start_ours()
                else:
                    await self._stop_ours()
                    self.stood_down += 1
                    self._log_infrastructure()
            except Exception as exc:
                self.failed(exc)
                return
            self.changed()

    async def _start_ours(self) -> None:
        thread = self.thread
        if thread is None or thread.interface is not None:
            await self._bring_up()
            return
        self.log.info("NAT64 waits for the Thread interface")
        self._waiting = asyncio.create_task(self._wait_for_mesh(thread), name="nat64-wait")

    async def _wait_for_mesh(self, thread: ThreadView) -> None:
        appeared = asyncio.Event()
        unsubscribe = thread.on_change(lambda: appeared.set() if thread.interface is not None else None)
        try:
            if thread.interface is None:  # it may have appeared before this task ran
                await appeared.wait()
        finally:
            unsubscribe()
        self._waiting = None
        try:
            await self._bring_up()
        except Exception as exc:
            self.failed(exc)
            return
        self.changed()

    async def _bring_up(self) -> None:
        from nat64.backends.builtin import install_masquerade, install_routes, required_routes

        c = self.config.nat64
        self.backend = c.backend
        prefix, pools = str(c.prefix), [str(p) for p in c.pool]
        try:
            routes = required_routes(prefix, pools, c.interface)
            if self.backend == "tayga":
                self.runner = self._tayga()
                routes += self.runner.config.extra_routes()
            else:
                self.runner = self._builtin()
            await self.runner.start()
            self.routes = routes
            await asyncio.to_thread(install_routes, routes)
            for path in FORWARDING:
                self.settings.set(path, "1")
            if c.masquerade:
                uplink = c.uplink or await asyncio.to_thread(default_uplink)
                if not uplink:
                    raise OSError("no IPv4 default route to masquerade the pool on: set [nat64] uplink")
                await asyncio.to_thread(install_masquerade, pools, uplink)
                self.uplink = uplink
        except BaseException:
            await self._stop_ours()
            raise
        self.log.info("NAT64 (%s) translating %s with pool %s%s", self.backend, prefix, ", ".join(pools),
                      f", masqueraded on {self.uplink}" if self.uplink else "",
                      extra={"fields": {"NAT64_BACKEND": self.backend}})

    def _builtin(self) -> Any:
        from nat64.backends.builtin import BuiltinNat64
        from nat64.translator import Nat64

        c = self.config.nat64
        nat = Nat64(str(c.prefix), [str(p) for p in c.pool], timeouts_from(self.config), caps_from(self.config))
        return BuiltinNat64(nat, c.interface)

    def _tayga(self) -> Any:
        from nat64.backends.tayga import TaygaConfig, TaygaNat64

        c = self.config.nat64
        state = Path(self.config.daemon.state_dir) / "tayga"
        conf = TaygaConfig.for_pool(c.prefix, list(c.pool), c.interface, state)
        return TaygaNat64(conf, state / "tayga.conf", on_failure=self.failed)

    async def stop(self) -> None:
        if self._lan_unsubscribe is not None:
            self._lan_unsubscribe()
            self._lan_unsubscribe = None
        if self._following is not None and self._following is not asyncio.current_task():
            await cancel_and_wait(self._following)
            self._following = None
        await self._stop_ours()

    async def _stop_ours(self) -> None:
        from nat64.backends.builtin import remove_masquerade, remove_routes

        if self._waiting is not None:
            await cancel_and_wait(self._waiting)
            self._waiting = None

        if self.uplink is not None:
            await asyncio.to_thread(remove_masquerade)
            self.uplink = None
        self.settings.restore()
        if self.routes:
            await asyncio.to_thread(remove_routes, self.routes)
            self.routes = []
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None

    async def reload(self, config: Config) -> None:
        """Timeouts and caps apply to the running builtin translator; tayga has neither."""
        self.config = config
        if self.backend == "builtin" and self.runner is not None:
            await asyncio.to_thread(self.runner.set_limits, timeouts_from(config), caps_from(config))
            self.log.info("NAT64 timeouts and caps updated")

    # ---- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        if self.runner is None:
            out: dict[str, Any] = {"backend": self.backend,
                                   "waiting_for": "the Thread interface" if self._waiting else None}
            if not self._ours_wanted():
                prefix = self._infrastructure_prefix()
                out["infrastructure"] = str(prefix) if prefix else None
            return out
        out = dict(self.runner.status())
        out["uplink"] = self.uplink
        if self.backend == "tayga":
            maps = self.runner.mappings()
            out["mappings"] = len(maps) if maps is not None else None
        return out

    def status_line(self) -> str | None:
        if self.runner is None:
            if not self._ours_wanted():
                return "NAT64 by the LAN" if self._infrastructure_prefix() else "NAT64 off (infrastructure only)"
            return "NAT64 waiting for the mesh" if self._waiting else None
        if self.backend == "builtin":
            n = len(self.runner.nat.table)
            return f"NAT64 {n} session" + ("" if n == 1 else "s")
        maps = self.runner.mappings()
        return "NAT64 tayga" + (f" {len(maps)} mappings" if maps is not None else "")

    def commands(self) -> list[Command]:
        return [
            Command("nat64 mappings", self._cmd_mappings, "NAT64 sessions (builtin) or dynamic maps (tayga)"),
            Command("nat64 counters", self._cmd_counters, "NAT64 packets translated and dropped, by reason"),
        ]

    def _running(self) -> Any:
        if self.runner is None:
            raise CommandError("NAT64 is not running")
        return self.runner

    async def _cmd_mappings(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        runner = self._running()
        if self.backend == "builtin":
            return [_session_row(i, m) for i, m in enumerate(runner.mappings(), 1)]
        maps = runner.mappings()
        if maps is None:
            raise CommandError("nat64 mappings: not available with tayga until it has written its dynamic.map")
        now = time.time()
        return [{"ipv6": str(m.ipv6), "ipv4": str(m.ipv4),
                 "idle": "-" if m.last_use is None else f"{max(0, int(now - m.last_use))}s"} for m in maps]

    async def _cmd_counters(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        runner = self._running()
        if self.backend == "builtin":
            status = runner.status()
            return {"backend": "builtin", "sessions": status["sessions"], "bib_entries": status["bib_entries"],
                    "tun_rx_packets": runner.rx_packets, "tun_tx_packets": runner.tx_packets,
                    "write_errors": runner.write_errors, "fast_path": status["fast_path"],
                    "fast_path_packets": status["fast_path_packets"], **runner.counters()}
        return {"backend": "tayga", **runner.counters()}


def _session_row(index: int, m: dict[str, Any]) -> dict[str, Any]:
    """One session as ot-ctl's nat64 mappings shows it: who, as whom, to where, how long, how much."""
    v6 = IPv6Address(m["v6_src"])
    return {
        "id": index,
        "proto": m["protocol"].lower(),
        "ipv6": f"[{v6}]:{m['v6_src_port']}",
        "ipv4": f"{m['v4_pool']}:{m['v4_pool_port']}",
        "remote": f"{m['dst']}:{m['dst_port']}",
        "state": m["state"],
        "expiry": f"{max(0, int(m['expires_in']))}s",
        "4to6_packets": m["packets_4to6"],
        "4to6_bytes": m["bytes_4to6"],
        "6to4_packets": m["packets_6to4"],
        "6to4_bytes": m["bytes_6to4"],
    }
