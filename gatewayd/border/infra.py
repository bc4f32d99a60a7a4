"""What the LAN's routers advertise, learned from their Router Advertisements; sans-I/O.

RFC 4861 §6.3.4 (a host processing RAs), RFC 4191 §3.1 (Route Information), RFC 8781 §5 (PREF64):
every router keeps what it announced for the lifetime it gave; a lifetime of 0 withdraws at once,
a lifetime that runs out expires the entry, and a later RA that leaves an option out does not remove
it (hosts must not read silence as withdrawal). The border router publishes the result into the mesh:
on-link prefixes and routes as external routes, ``::/0`` when some router is a default router, and
the LAN's NAT64 prefix instead of its own translator's (see :mod:`gatewayd.border.component`).

Times are seconds on any monotonic clock the caller passes in; nothing here reads a clock or a socket.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import math
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from gatewayd.border.ra import INFINITY, RoutePreference, RouterAdvertisement
from gatewayd.thread.view import Subscribers, Unsubscribe
from nat64.rfc6052 import VALID_PREFIX_LENGTHS

#: Entries kept per kind; an RA flood with ever new prefixes is dropped and counted beyond this.
MAX_ENTRIES = 64

DEFAULT_ROUTE = IPv6Network("::/0")


class Kind(enum.Enum):
    """What a router told us, as the RFCs name it."""

    ON_LINK = "on-link prefix"  # PIO with the L flag (RFC 4861 §4.6.2)
    ROUTE = "route"  # Route Information Option (RFC 4191 §2.3)
    DEFAULT = "default route"  # Router Lifetime > 0 (RFC 4861 §4.2), or a RIO for ::/0
    NAT64 = "NAT64 prefix"  # PREF64 (RFC 8781)


@dataclass(frozen=True)
class InfraState:
    """The LAN as the border router last learned it; what it publishes into the mesh follows from it."""

    on_link: frozenset[IPv6Network] = frozenset()
    routes: frozenset[IPv6Network] = frozenset()
    default_route: bool = False
    #: The NAT64 prefix a LAN router translates (PREF64) or the LAN's DNS64 synthesises (RFC 7050).
    nat64_prefix: IPv6Network | None = None
    #: Routes announced at other than medium preference (RFC 4191): the highest any router gave.
    route_preferences: frozenset[tuple[IPv6Network, RoutePreference]] = frozenset()

    def preference(self, prefix: IPv6Network) -> RoutePreference:
        return next((p for net, p in self.route_preferences if net == prefix), RoutePreference.MEDIUM)

    def external_routes(self, exclude: Iterable[IPv6Network] = ()) -> frozenset[IPv6Network]:
        """Prefixes to publish as external routes: on-link prefixes and routes, plus ``::/0`` for a
        default route; none that overlaps `exclude` (the mesh's own prefixes: a LAN router, or another
        border router of this mesh, announcing them must not make the mesh route them off-mesh), and
        no link-local, multicast or unspecified prefixes."""
        skip = list(exclude)
        out = {p for p in self.on_link | self.routes if usable(p) and not any(p.overlaps(x) for x in skip)}
        if self.default_route:
            out.add(DEFAULT_ROUTE)
        return frozenset(out)


def usable(prefix: IPv6Network) -> bool:
    """A prefix that may be routed: not link-local, multicast, loopback or ::/0 (that is the default route)."""
    return prefix.prefixlen > 0 and not (prefix.is_link_local or prefix.is_multicast or prefix.is_loopback
                                         or prefix.network_address.is_unspecified)


@dataclass(frozen=True)
class Change:
    """One decision: `what` ("learned", "withdrawn" by a lifetime of 0, "expired") for `prefix`."""

    kind: Kind
    prefix: IPv6Network
    what: str


def changes(old: InfraState, new: InfraState, gone: str) -> list[Change]:
    """What differs from `old` to `new`; entries that left are called `gone` ("withdrawn"/"expired")."""
    out = []
    for kind, before, after in ((Kind.ON_LINK, old.on_link, new.on_link), (Kind.ROUTE, old.routes, new.routes)):
        out += [Change(kind, p, "learned") for p in sorted(after - before)]
        out += [Change(kind, p, gone) for p in sorted(before - after)]
    if old.default_route != new.default_route:
        out.append(Change(Kind.DEFAULT, DEFAULT_ROUTE, "learned" if new.default_route else gone))
    if old.nat64_prefix != new.nat64_prefix:
        if old.nat64_prefix is not None:
            out.append(Change(Kind.NAT64, old.nat64_prefix, gone))
        if new.nat64_prefix is not None:
            out.append(Change(Kind.NAT64, new.nat64_prefix, "learned"))
    return out


@dataclass
class RaTracker:
    """The entries each LAN router announced, keyed by (kind, router, prefix), with when they end."""

    max_entries: int = MAX_ENTRIES
    #: (kind, router, prefix) → expiry time (math.inf for the infinite lifetime).
    entries: dict[tuple[Kind, IPv6Address, IPv6Network], float] = field(default_factory=dict)
    #: Options not kept because the table was full.
    dropped: int = 0
    #: (router, prefix) → the preference of its Route Information Option.
    preferences: dict[tuple[IPv6Address, IPv6Network], RoutePreference] = field(default_factory=dict)

    def receive(self, router: IPv6Address, ra: RouterAdvertisement, now: float) -> InfraState:
        """Take in an RA from `router` (already validated: hop limit 255, link-local source)."""
        self._set(Kind.DEFAULT, router, DEFAULT_ROUTE, ra.router_lifetime, now)
        for pio in ra.prefixes:
            if pio.on_link:
                self._set(Kind.ON_LINK, router, pio.prefix, pio.valid_lifetime, now)
        for rio in ra.routes:
            kind = Kind.DEFAULT if rio.prefix.prefixlen == 0 else Kind.ROUTE
            if kind is Kind.DEFAULT and ra.router_lifetime:
                continue  # the Router Lifetime already said it; a ::/0 RIO would only shorten or lengthen it
            self._set(kind, router, rio.prefix, rio.lifetime, now)
            if kind is Kind.ROUTE and (kind, router, rio.prefix) in self.entries:
                self.preferences[(router, rio.prefix)] = rio.preference
        for pref in ra.pref64:
            self._set(Kind.NAT64, router, pref.prefix, pref.lifetime, now)
        return self.state(now)

    def _set(self, kind: Kind, router: IPv6Address, prefix: IPv6Network, lifetime: int, now: float) -> None:
        key = (kind, router, prefix)
        if lifetime == 0:
            self.entries.pop(key, None)
            if kind is Kind.ROUTE:
                self.preferences.pop((router, prefix), None)
            return
        if key not in self.entries and sum(1 for k in self.entries if k[0] is kind) >= self.max_entries:
            self.dropped += 1
            return
        self.entries[key] = math.inf if lifetime == INFINITY else now + lifetime

    def expire(self, now: float) -> InfraState:
        """Drop what ran out by `now`."""
        for key in [k for k, until in self.entries.items() if until <= now]:
            del self.entries[key]
            if key[0] is Kind.ROUTE:
                self.preferences.pop(key[1:], None)
        return self.state(now)

    def next_expiry(self) -> float | None:
        """When `expire` next has something to do, or None."""
        finite = [until for until in self.entries.values() if until != math.inf]
        return min(finite) if finite else None

    def state(self, now: float) -> InfraState:
        live = [k for k, until in self.entries.items() if until > now]
        nat64 = sorted({p for kind, _, p in live if kind is Kind.NAT64}, key=_order)
        best: dict[IPv6Network, RoutePreference] = {}
        for kind, router, prefix in live:
            if kind is Kind.ROUTE:
                pref = self.preferences.get((router, prefix), RoutePreference.MEDIUM)
                if prefix not in best or _RANK[pref] > _RANK[best[prefix]]:
                    best[prefix] = pref
        return InfraState(
            on_link=frozenset(p for kind, _, p in live if kind is Kind.ON_LINK),
            routes=frozenset(best),
            default_route=any(kind is Kind.DEFAULT for kind, _, _ in live),
            nat64_prefix=nat64[0] if nat64 else None,
            route_preferences=frozenset((p, v) for p, v in best.items() if v != RoutePreference.MEDIUM))

    def forget(self) -> None:
        """The interface went away: nothing learned on it holds any more."""
        self.entries.clear()
        self.preferences.clear()

    def table(self, now: float) -> list[dict[str, object]]:
        """Every entry, for gatewayctl: who announced what, and for how much longer."""
        return [{"kind": kind.value, "prefix": str(prefix), "router": str(router),
                 "expires_in": None if until == math.inf else round(until - now, 1)}
                for (kind, router, prefix), until in sorted(self.entries.items(), key=lambda e: (
                    e[0][0].value, _order(e[0][2]), e[0][1]))]


_RANK = {RoutePreference.LOW: -1, RoutePreference.MEDIUM: 0, RoutePreference.HIGH: 1}


def _order(prefix: IPv6Network) -> tuple[int, int]:
    """Deterministic choice among several NAT64 prefixes on one LAN: the numerically lowest, then shortest."""
    return (int(prefix.network_address), prefix.prefixlen)


# --- RFC 7050: the NAT64 prefix from a DNS64's answer for ipv4only.arpa ----------------------------

IPV4ONLY_ARPA = "ipv4only.arpa"
#: The well-known IPv4 addresses of ipv4only.arpa (RFC 7050 §2.2).
WKA = (ipaddress.IPv4Address("192.0.0.170"), ipaddress.IPv4Address("192.0.0.171"))


def _embedded(address: IPv6Address, plen: int) -> ipaddress.IPv4Address:
    """The IPv4 address RFC 6052 §2.2 puts after a `plen` prefix (octet 8, the u octet, skipped)."""
    octets = [b for i, b in enumerate(address.packed) if i >= plen // 8 and i != 8]
    return ipaddress.IPv4Address(bytes(octets[:4]))


def nat64_prefix_from_synthesis(addresses: Iterable[IPv6Address]) -> IPv6Network | None:
    """RFC 7050 §3: the NAT64 prefix a DNS64 used for ipv4only.arpa, found by locating a well-known
    address in its AAAA answers at one of RFC 6052's positions; None when none carries one."""
    found: list[IPv6Network] = []
    for address in addresses:
        if address.packed[8] != 0:  # RFC 6052 §2.2: the u octet is zero in every format
            continue
        for plen in sorted(VALID_PREFIX_LENGTHS, reverse=True):
            if _embedded(address, plen) in WKA:
                found.append(IPv6Network((int(address) >> (128 - plen) << (128 - plen), plen)))
                break
    return min(found, key=_order) if found else None


#: Where the system resolver's servers are listed (what getaddrinfo asks for ipv4only.arpa).
RESOLV_CONF = "/etc/resolv.conf"


def resolv_conf_nameservers(text: str) -> list[ipaddress.IPv4Address | IPv6Address]:
    """The ``nameserver`` lines of a resolv.conf (zone ids dropped; lines that are no address skipped)."""
    servers: list[ipaddress.IPv4Address | IPv6Address] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            with contextlib.suppress(ValueError):
                servers.append(ipaddress.ip_address(fields[1].split("%")[0]))
    return servers


def is_host_address(address: ipaddress.IPv4Address | IPv6Address) -> bool:
    """True when ``address`` is one of this host's own (a socket binds to it), loopback included."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((str(address), 0))
    except OSError:
        return False
    return True


class InfraLink:
    """The seam between the border component, which learns the LAN, and those that act on it (the
    Thread network publishes it into the mesh, NAT64 stands down for the LAN's translator)."""

    def __init__(self) -> None:
        self.state = InfraState()
        self._subscribers = Subscribers()

    def update(self, state: InfraState) -> None:
        if state != self.state:
            self.state = state
            self._subscribers.notify()

    def on_change(self, callback: Callable[[], None]) -> Unsubscribe:
        return self._subscribers.add(callback)
