"""The LAN side of the border router: IPv6 forwarding between wpan0 and the infra interface, Router
Advertisements telling LAN hosts the mesh's OMR prefix is here, the LAN's own RAs read back (its
prefixes, routes, default router and NAT64 prefix handed to the Thread network's routing manager), and
the ingress filter keeping the LAN from spoofing the mesh's addresses."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from common.aio import cancel_and_wait
from common.sysctl import IPV6_FORWARDING, SysctlSaver, ipv6_conf
from gatewayd.border.infra import (
    IPV4ONLY_ARPA,
    RESOLV_CONF,
    Change,
    InfraLink,
    InfraState,
    Kind,
    RaTracker,
    changes,
    is_host_address,
    nat64_prefix_from_synthesis,
    resolv_conf_nameservers,
)
from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import Request
from gatewayd.dns64 import answer_addresses
from gatewayd.thread.view import ThreadView, Unsubscribe

if TYPE_CHECKING:
    from gatewayd.border.advertiser import Advertiser
    from gatewayd.border.firewall import IngressRules
    from gatewayd.border.listener import RaListener
    from gatewayd.border.ra import RouterAdvertisement

log = logging.getLogger("gatewayd.border")

#: How often the system resolver is asked for ipv4only.arpa (RFC 7050 §3: rediscover now and then; the
#: PREF64 option, when a router sends it, is heard at once instead).
DNS64_DISCOVERY_INTERVAL = 600.0
DNS64_DISCOVERY_TIMEOUT = 10.0

class BorderRouting(Component):
    name = "border"

    def __init__(self, config: Config, thread: ThreadView | None, lan: InfraLink | None = None):
        super().__init__(config)
        self.thread = thread
        self.lan = lan if lan is not None else InfraLink()  # what NAT64 reads to stand down for the LAN's
        self.sysctls = SysctlSaver()
        self.advertiser: Advertiser | None = None
        self.listener: RaListener | None = None
        self.tracker = RaTracker()
        self._advertised: ipaddress.IPv6Network | None = None
        self._unsubscribe: Unsubscribe | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._dns64_prefix: ipaddress.IPv6Network | None = None
        self._dns64_task: asyncio.Task[None] | None = None
        self._firewall: IngressRules | None = None
        self._firewall_task: asyncio.Task[None] | None = None
        self._firewall_wanted: IngressRules | None = None
        self._handed: object = None  # the last LanLearned handed to the Thread network
        self.counters = {"prefixes_learned": 0, "prefixes_withdrawn": 0, "prefixes_expired": 0,
                         "nat64_infrastructure_adopted": 0, "nat64_infrastructure_lost": 0,
                         "dns64_discovery_failures": 0, "dns64_discovery_self": 0}
        self._own_resolver: list[str] = []  # our DNS64 addresses the system resolver names, as last read

    async def start(self) -> None:
        border = self.config.border
        infra = border.infra_interface
        if border.forwarding:
            if infra:
                # A router ignores RAs unless accept_ra=2: keep the Pi's own LAN address and default route.
                self.sysctls.set(ipv6_conf(infra, "accept_ra"), "2")
            self.sysctls.set(IPV6_FORWARDING, "1")
            log.info("IPv6 forwarding enabled between %s and %s (border.forwarding)",
                     self.config.thread.interface, infra or "other interfaces")
        else:
            log.info("IPv6 forwarding left as it is (border.forwarding = false): mesh devices stay on the mesh")
        try:
            if infra and border.ingress_filter:
                try:
                    await self._install_firewall()
                except OSError as exc:  # FirewallError: nft missing or refusing; the rest still works
                    log.error("no ingress filter on %s: %s; install nftables (apt install nftables) or set "
                              "[border] ingress_filter = false", infra, exc, extra={"fields": {"FIREWALL": "failed"}})
            if infra and border.router_advertisements:
                from gatewayd.border.advertiser import Advertiser

                self.advertiser = Advertiser(infra)
                await self.advertiser.start()
                self._advertised = None
            if infra and border.lan_routes:
                from gatewayd.border.listener import RaListener

                # The kernel routes what is published: on-link prefixes and default route it learns by
                # itself (accept_ra=2); RIO routes only up to accept_ra_rt_info_max_plen.
                with contextlib.suppress(OSError):
                    self.sysctls.set(ipv6_conf(infra, "accept_ra_rt_info_max_plen"), "64")
                self.listener = RaListener(infra, self._on_ra, on_lost=self._on_link_lost)
                await self.listener.start()
            if self._wants_dns64_discovery():
                self._dns64_task = asyncio.create_task(self._discover_dns64(), name="border-rfc7050")
            if self.thread is not None:
                self._unsubscribe = self.thread.on_change(self._on_thread_change)
            self._on_thread_change()
        except BaseException:
            await self.stop()
            raise

    def _on_thread_change(self) -> None:
        self._follow_prefix()
        self._refresh_firewall()
        self._hand_over()

    def _follow_prefix(self) -> None:
        """Advertise the OMR prefix once the Thread network has one, and follow changes."""
        prefix = self.thread.omr_prefix if self.thread is not None else None
        if self.advertiser is None or prefix == self._advertised:
            return
        self._advertised = prefix
        self.advertiser.update([prefix] if prefix is not None else [])
        log.info("advertising route to %s on %s", prefix, self.config.border.infra_interface)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        await cancel_and_wait(self._dns64_task)
        self._dns64_task = None
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        if self.advertiser is not None:
            await self.advertiser.stop()  # a final RA with zero lifetimes withdraws the route from LAN hosts
            self.advertiser = None
        # What the LAN offered is no longer watched: the mesh stops being told about it.
        self.tracker.forget()
        self._dns64_prefix = None
        self._learned(InfraState(), "withdrawn")
        await cancel_and_wait(self._firewall_task)
        self._firewall_task = None
        if self._firewall is not None:
            from gatewayd.border import firewall

            await asyncio.to_thread(firewall.remove)
            log.info("ingress filter removed from %s", self._firewall.interface)
            self._firewall = None
        self.sysctls.restore()

    async def reload(self, config: Config) -> None:
        """Nothing of [border] is live; the filter is put back should something have removed it."""
        self.config = config
        if self._firewall is not None:
            self._refresh_firewall(force=True)

    # ---- the LAN's router advertisements ----------------------------------------------------------
    def _on_ra(self, router: ipaddress.IPv6Address, ra: RouterAdvertisement) -> None:
        now = asyncio.get_running_loop().time()
        self._learned(self.tracker.receive(router, ra, now), "withdrawn", router)

    def _on_expiry(self) -> None:
        self._expiry = None
        self._learned(self.tracker.expire(asyncio.get_running_loop().time()), "expired")

    def _on_link_lost(self) -> None:
        log.warning("%s went away: what its routers advertised is withdrawn from the mesh",
                    self.config.border.infra_interface)
        self.tracker.forget()
        self._learned(InfraState(), "withdrawn")

    def _current(self, state: InfraState) -> InfraState:
        """The tracker's view, with the NAT64 prefix the resolver found when no router sent PREF64."""
        if state.nat64_prefix is None and self._dns64_prefix is not None:
            state = InfraState(state.on_link, state.routes, state.default_route, self._dns64_prefix)
        return state

    def _learned(self, state: InfraState, gone: str, router: ipaddress.IPv6Address | None = None) -> None:
        """Log and count each change, tell NAT64 and the Thread network, and time the next expiry."""
        state = self._current(state)
        for change in changes(self.lan.state, state, gone):
            self._report(change, router)
        self.lan.update(state)
        self._hand_over()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        due = self.tracker.next_expiry()
        if due is not None and self.listener is not None:
            self._expiry = asyncio.get_running_loop().call_at(due, self._on_expiry)
        self.changed()

    def _report(self, change: Change, router: ipaddress.IPv6Address | None) -> None:
        fields = {"LAN_KIND": change.kind.name, "LAN_PREFIX": str(change.prefix), "LAN_DECISION": change.what}
        if router is not None and change.what == "learned":
            fields["LAN_ROUTER"] = str(router)
        if change.kind is Kind.NAT64:
            key = "nat64_infrastructure_adopted" if change.what == "learned" else "nat64_infrastructure_lost"
            self.counters[key] += 1
        else:
            self.counters[f"prefixes_{change.what}"] += 1
        via = f" from {router}" if router is not None and change.what == "learned" else ""
        log.info("LAN %s %s %s%s", change.kind.value, change.prefix, change.what, via, extra={"fields": fields})

    def _hand_over(self) -> None:
        """Give the Thread network's routing manager what the LAN offers, less the mesh's own prefixes."""
        if self.thread is None:
            return
        from gatewayd.thread.routing import DEFAULT_ROUTE, LanLearned, LanRoute, Preference

        state = self.lan.state
        exclude = [p for p in (self.thread.mesh_local_prefix, self.thread.omr_prefix, self._dns_route())
                   if p is not None]
        mode = self.config.nat64.infrastructure if self.config.nat64.enabled else "ignore"
        # Without forwarding the mesh cannot be routed to the LAN: offering it the LAN's routes would only
        # draw traffic this host drops.
        routes = state.external_routes(exclude) if self.config.border.forwarding else frozenset()
        learned = LanLearned(
            routes=frozenset(LanRoute(p, Preference[state.preference(p).name]) for p in routes
                             if p != DEFAULT_ROUTE),
            default_route=DEFAULT_ROUTE in routes,
            nat64_prefix=state.nat64_prefix if mode != "ignore" else None)
        if learned != self._handed:
            self._handed = learned
            self.thread.learned_from_lan(learned)

    def _dns_route(self) -> ipaddress.IPv6Network | None:
        addr = self.thread.dns_address if self.thread is not None else None
        return ipaddress.IPv6Network(f"{addr}/64", strict=False) if addr is not None else None

    # ---- RFC 7050 ---------------------------------------------------------------------------------
    def _wants_dns64_discovery(self) -> bool:
        border = self.config.border
        return (bool(border.infra_interface) and border.lan_routes and self.config.nat64.enabled
                and self.config.nat64.infrastructure != "ignore")

    def _own_dns64_resolvers(self) -> list[str]:
        """The system resolver's servers that are gatewayd's own DNS64: asked for ipv4only.arpa, it answers in
        our translator's prefix, and adopting that as the LAN's NAT64 would switch our translator off."""
        dns64 = self.config.dns64
        if not dns64.enabled or dns64.port != 53:
            return []
        try:
            with open(RESOLV_CONF, encoding="utf-8", errors="replace") as f:
                servers = resolv_conf_nameservers(f.read())
        except OSError:
            return []
        ours = set(answer_addresses(self.config, self.thread))
        if self.thread is not None and self.thread.dns_address is not None:
            ours.add(self.thread.dns_address)  # where it answers once wpan0 has the address
        wildcard = any(a.is_unspecified for a in dns64.listen)
        return [str(s) for s in servers if s in ours or (wildcard and is_host_address(s))]

    async def _discover_dns64(self) -> None:
        while True:
            own = self._own_dns64_resolvers()
            if own and own != self._own_resolver:
                log.warning("%s names gatewayd's own DNS64 (%s): no NAT64 discovery through it (RFC 7050), it "
                            "would find our own prefix; name the LAN's resolver there", RESOLV_CONF, ", ".join(own),
                            extra={"fields": {"NAT64_DISCOVERY": "rfc7050-self"}})
            self._own_resolver = own
            if own:
                self.counters["dns64_discovery_self"] += 1
                addresses: list[ipaddress.IPv6Address] | None = []
            else:
                addresses = await _resolve_aaaa(IPV4ONLY_ARPA, DNS64_DISCOVERY_TIMEOUT)
            if addresses is None:
                self.counters["dns64_discovery_failures"] += 1
            prefix = nat64_prefix_from_synthesis(addresses or [])
            if prefix != self._dns64_prefix:
                log.info("the system resolver %s", f"synthesises with NAT64 prefix {prefix} (RFC 7050)"
                         if prefix else "no longer synthesises ipv4only.arpa",
                         extra={"fields": {"NAT64_DISCOVERY": "rfc7050", "NAT64_PREFIX": str(prefix)}})
                self._dns64_prefix = prefix
                self._learned(self.tracker.state(asyncio.get_running_loop().time()), "withdrawn")
            await asyncio.sleep(DNS64_DISCOVERY_INTERVAL)

    # ---- ingress filter ---------------------------------------------------------------------------
    def _rules(self) -> IngressRules:
        from gatewayd.border.firewall import IngressRules

        t = self.thread
        mesh_local = (t.mesh_local_prefix,) if t is not None and t.mesh_local_prefix is not None else ()
        omr = (t.omr_prefix,) if t is not None and t.omr_prefix is not None else ()
        return IngressRules(self.config.border.infra_interface, mesh_local, omr)

    async def _install_firewall(self) -> None:
        from gatewayd.border import firewall

        rules = self._rules()
        await asyncio.to_thread(firewall.install, rules)
        self._firewall = rules
        log.info("ingress filter on %s: mesh-local %s, OMR %s", rules.interface,
                 ", ".join(map(str, rules.mesh_local)) or "(not yet known)",
                 ", ".join(map(str, rules.omr)) or "(not yet known)",
                 extra={"fields": {"FIREWALL": "installed"}})

    def _refresh_firewall(self, force: bool = False) -> None:
        """New prefixes into the installed filter (one nft transaction, counters kept)."""
        if self._firewall is None:
            return
        rules = self._rules()
        if rules == self._firewall and not force:
            return
        self._firewall_wanted = rules
        if self._firewall_task is None or self._firewall_task.done():
            self._firewall_task = asyncio.create_task(self._update_firewall(), name="border-firewall")

    async def _update_firewall(self) -> None:
        from gatewayd.border import firewall

        while self._firewall_wanted is not None:
            rules, self._firewall_wanted = self._firewall_wanted, None
            try:
                await asyncio.to_thread(firewall.update, rules)
            except firewall.FirewallError as exc:
                log.error("ingress filter not updated: %s", exc, extra={"fields": {"FIREWALL": "failed"}})
                self.failed(exc)
                return
            self._firewall = rules
            log.info("ingress filter on %s now for mesh-local %s, OMR %s", rules.interface,
                     ", ".join(map(str, rules.mesh_local)) or "-", ", ".join(map(str, rules.omr)) or "-")

    # ---- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"infra_interface": self.config.border.infra_interface,
                               "forwarding": self.config.border.forwarding}
        if self.advertiser is not None:
            out["ra"] = self.advertiser.status()
        state = self.lan.state
        if self.listener is not None:
            out["lan"] = {"on_link": sorted(map(str, state.on_link)), "routes": sorted(map(str, state.routes)),
                          "default_route": state.default_route,
                          "nat64_prefix": str(state.nat64_prefix) if state.nat64_prefix else None,
                          "listener": self.listener.status()}
        out["ingress_filter"] = self._firewall is not None
        return out

    def commands(self) -> list[Command]:
        return [
            Command("border lan", self._cmd_lan, "what the LAN's routers advertise: each router's prefixes, "
                    "routes, default route and NAT64 prefix, with the time left"),
            Command("border counters", self._cmd_counters, "LAN router advertisements, prefixes learned, "
                    "withdrawn and expired, infrastructure NAT64, ingress filter drops"),
        ]

    async def _cmd_lan(self, request: Request) -> list[dict[str, object]]:
        request.no_more_args()
        table = self.tracker.table(asyncio.get_running_loop().time())
        if self._dns64_prefix is not None:
            table.append({"kind": Kind.NAT64.value, "prefix": str(self._dns64_prefix), "router": "rfc7050",
                          "expires_in": None})
        return table

    async def _cmd_counters(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        out: dict[str, Any] = dict(self.counters)
        out["entries_dropped"] = self.tracker.dropped
        if self.listener is not None:
            out.update(self.listener.counters)
        if self._firewall is not None:
            from gatewayd.border import firewall

            drops = await asyncio.to_thread(firewall.counters)
            out["ingress_dropped"] = {name: c["packets"] for name, c in (drops or {}).items()}
            out["ingress_dropped_bytes"] = {name: c["bytes"] for name, c in (drops or {}).items()}
        return out


async def _resolve_aaaa(name: str, timeout: float) -> list[ipaddress.IPv6Address] | None:
    """The system resolver's AAAA answers for `name`, [] when it has none, None when it did not answer.

    Resolved on a daemon thread of its own: a resolver that hangs must not hold up the daemon's exit,
    as a thread of the loop's default executor would."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[ipaddress.IPv6Address] | None] = loop.create_future()

    def settle(result: list[ipaddress.IPv6Address] | None) -> None:
        if not done.done():
            done.set_result(result)

    def resolve() -> None:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET6, socket.SOCK_DGRAM)
            result: list[ipaddress.IPv6Address] | None = [ipaddress.IPv6Address(i[4][0].split("%")[0])
                                                           for i in infos]
        except socket.gaierror as exc:
            result = [] if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)) else None
        except (OSError, ValueError):
            result = None
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=resolve, name="rfc7050", daemon=True).start()
    try:
        async with asyncio.timeout(timeout):
            return await done
    except TimeoutError:
        return None
