"""Border routing decisions for a mesh with several border routers, as OpenThread's routing manager makes them.

Every border router on a mesh reads the leader's network data and decides, by the same rules, what of its
own it publishes, so the mesh converges on one OMR prefix and one NAT64 prefix without talking about it
(``src/core/border_router/routing_manager.cpp``):

- **OMR prefix.** The favoured OMR prefix is the valid one (/64, on-mesh, SLAAC, stable, preferred) with the
  highest preference, then the numerically smallest. Ours is published when there is none, when the
  favoured one's preference is lower than ours, or when the favoured one *is* ours; otherwise it is
  withdrawn and the favoured one adopted. When the other router leaves, its prefix leaves the network
  data and ours is favoured again.
- **NAT64 prefix.** One is published in the mesh: the preferred NAT64 route is the highest preference, then
  the smallest prefix, then (same prefix) the entry of a router before an end device, then the smaller
  RLOC16 (OpenThread's publisher). Ours is published when none exists, when the preferred one ranks below
  ours, or when the preferred entry is ours. A NAT64 prefix the LAN offers (PREF64, RFC 7050) is
  published at medium preference instead of our translator's (low), by every border router on that LAN.
- **Default route and LAN routes.** Each router publishes what it routes: ``::/0`` when it has an upstream
  default route (the host's, or a default router on the LAN), and the routes the LAN advertises.

:func:`decide` is the pure part (network data in, decisions out); :class:`RoutingManager` keeps the
inputs, counts and logs each change of decision. The LAN side feeds :class:`LanLearned` in through
:meth:`RoutingManager.learned_from_lan`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum

from gatewayd.thread.netdata import OMR_FLAGS
from ncp.netdata import ExternalRoute, OnMeshPrefix
from ncp.spinel.props import NET_FLAG_ON_MESH, NET_FLAG_PREFERRED, NET_FLAG_SLAAC, ROUTE_FLAG_NAT64

log = logging.getLogger("gatewayd.thread")

__all__ = [
    "DEFAULT_ROUTE",
    "Decision",
    "LanLearned",
    "LanRoute",
    "LocalIntent",
    "MeshData",
    "Preference",
    "RoutingManager",
    "decide",
    "favoured_omr",
    "preferred_nat64",
]

DEFAULT_ROUTE = ipaddress.IPv6Network("::/0")
NAT64_PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)  # RFC 6052 section 2.2
RLOC16_CHILD_BITS = 0x1FF
_PREFERENCE_SHIFT = 6


class Preference(IntEnum):
    """A route preference (RFC 4191 section 2.1), as OpenThread orders them."""

    LOW = -1
    MEDIUM = 0
    HIGH = 1


def preference_of(flags: int) -> Preference:
    """The preference in bits 7-6 of a Spinel flag byte (two's complement; 10, reserved, reads as medium)."""
    bits = (flags >> _PREFERENCE_SHIFT) & 0b11
    return {0b01: Preference.HIGH, 0b11: Preference.LOW}.get(bits, Preference.MEDIUM)


def with_preference(flags: int, preference: Preference) -> int:
    """``flags`` with bits 7-6 set to ``preference``."""
    return (flags & 0x3F) | ((int(preference) & 0b11) << _PREFERENCE_SHIFT)


# ---- inputs ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class LanRoute:
    """A prefix reachable on or through the infrastructure link (an on-link PIO prefix or an RIO route)."""

    prefix: ipaddress.IPv6Network
    preference: Preference = Preference.MEDIUM


@dataclass(frozen=True)
class LanLearned:
    """What the infrastructure link offers the mesh, learnt from its Router Advertisements and DNS
    (gatewayd/border feeds it; everything else about publishing stays here)."""

    routes: frozenset[LanRoute] = frozenset()  # published as external routes into the mesh
    default_route: bool = False  # a default router on the LAN: the mesh gets ::/0 through us
    nat64_prefix: ipaddress.IPv6Network | None = None  # PREF64 (RFC 8781) or RFC 7050; None: no infrastructure NAT64


@dataclass(frozen=True)
class LocalIntent:
    """What this border router could publish of its own."""

    omr_prefix: ipaddress.IPv6Network | None = None
    omr_preference: Preference = Preference.LOW  # OpenThread's generated ULA OMR prefix is low
    nat64_prefix: ipaddress.IPv6Network | None = None  # our translator's; None: no translator of ours
    upstream_default: bool = False  # the host itself has an IPv6 default route off the mesh
    dns_route: ipaddress.IPv6Network | None = None  # where mesh devices reach our DNS64


@dataclass(frozen=True)
class MeshData:
    """The leader's network data (the NCP's non-local THREAD_ON_MESH_NETS / THREAD_OFF_MESH_ROUTES entries)
    and our RLOC16 in it (None while unknown)."""

    prefixes: tuple[OnMeshPrefix, ...] = ()
    routes: tuple[ExternalRoute, ...] = ()
    rloc16: int | None = None


# ---- the rules -----------------------------------------------------------------------------------------------

def is_valid_omr(entry: OnMeshPrefix) -> bool:
    """OpenThread's ``IsValidOmrPrefix`` (and the preferred flag it also requires of a favoured one)."""
    p = entry.prefix
    return (p.prefixlen == 64 and not p.is_link_local and not p.is_multicast and entry.stable
            and bool(entry.flags & NET_FLAG_ON_MESH) and bool(entry.flags & NET_FLAG_SLAAC)
            and bool(entry.flags & NET_FLAG_PREFERRED))


def favoured_omr(prefixes: Iterable[OnMeshPrefix]) -> OnMeshPrefix | None:
    """The favoured OMR prefix: highest preference, then the numerically smallest prefix."""
    valid = [p for p in prefixes if is_valid_omr(p)]
    return min(valid, key=lambda p: (-preference_of(p.flags), p.prefix), default=None)


def is_nat64_route(route: ExternalRoute) -> bool:
    return bool(route.flags & ROUTE_FLAG_NAT64) and route.prefix.prefixlen in NAT64_PREFIX_LENGTHS


def _router_first(rloc16: int) -> tuple[int, int]:
    return (0 if rloc16 & RLOC16_CHILD_BITS == 0 else 1, rloc16)


def preferred_nat64(routes: Iterable[ExternalRoute]) -> ExternalRoute | None:
    """The NAT64 route the mesh uses: highest preference, smallest prefix, a router's, the smaller RLOC16."""
    nat64 = [r for r in routes if is_nat64_route(r)]
    return min(nat64, key=lambda r: (-preference_of(r.flags), r.prefix, _router_first(r.rloc16)), default=None)


class Verdict:
    """What became of one of our entries (the journal's ``*_DECISION`` values)."""

    PUBLISHED = "published"  # ours is the one the mesh uses
    ADOPTED = "adopted"  # another border router's is favoured: ours withdrawn, theirs used
    NONE = "none"  # we have nothing of this kind to offer and nobody else does either


@dataclass(frozen=True)
class Decision:
    """What to publish (exactly: the publisher makes the NCP's local network data this) and why."""

    prefixes: frozenset[OnMeshPrefix] = frozenset()
    routes: frozenset[ExternalRoute] = frozenset()
    omr_prefix: ipaddress.IPv6Network | None = None  # the favoured OMR prefix after our decision
    omr: str = Verdict.NONE
    nat64_prefix: ipaddress.IPv6Network | None = None  # the mesh's NAT64 prefix after our decision
    nat64: str = Verdict.NONE
    nat64_ours_translates: bool = False  # the published NAT64 prefix is our own translator's


def _is_ours(entry: OnMeshPrefix | ExternalRoute, rloc16: int | None) -> bool:
    return rloc16 is not None and entry.rloc16 == rloc16


def decide(local: LocalIntent, lan: LanLearned, mesh: MeshData) -> Decision:
    """This border router's publication given the leader's network data (a pure function)."""
    prefixes: set[OnMeshPrefix] = set()
    routes: set[ExternalRoute] = set()

    # OMR prefix (OmrPrefixManager::Evaluate)
    favoured = favoured_omr(mesh.prefixes)
    omr_verdict, omr = Verdict.NONE, favoured.prefix if favoured is not None else None
    if local.omr_prefix is not None:
        if (favoured is None or preference_of(favoured.flags) < local.omr_preference
                or favoured.prefix == local.omr_prefix):
            prefixes.add(OnMeshPrefix(local.omr_prefix, with_preference(OMR_FLAGS, local.omr_preference)))
            omr_verdict, omr = Verdict.PUBLISHED, local.omr_prefix
        else:
            omr_verdict = Verdict.ADOPTED
    elif favoured is not None:
        omr_verdict = Verdict.ADOPTED

    # NAT64 prefix (Nat64PrefixManager::Evaluate)
    if lan.nat64_prefix is not None:
        ours_nat64, ours_pref = lan.nat64_prefix, Preference.MEDIUM
    else:
        ours_nat64, ours_pref = local.nat64_prefix, Preference.LOW
    preferred = preferred_nat64(mesh.routes)
    nat64_verdict, nat64 = Verdict.NONE, preferred.prefix if preferred is not None else None
    if ours_nat64 is not None:
        if (preferred is None or preference_of(preferred.flags) < ours_pref or _is_ours(preferred, mesh.rloc16)
                or (lan.nat64_prefix is not None and preferred.prefix == lan.nat64_prefix)):
            routes.add(ExternalRoute(ours_nat64, with_preference(ROUTE_FLAG_NAT64, ours_pref)))
            nat64_verdict, nat64 = Verdict.PUBLISHED, ours_nat64
        else:
            nat64_verdict = Verdict.ADOPTED
    elif preferred is not None:
        nat64_verdict = Verdict.ADOPTED

    # What we route: the upstream default, the LAN's routes, our DNS64
    if local.upstream_default or lan.default_route:
        routes.add(ExternalRoute(DEFAULT_ROUTE))
    on_mesh = {p.prefix for p in mesh.prefixes}  # the mesh's own prefixes, seen in another router's RA
    for lan_route in lan.routes:
        if lan_route.prefix != DEFAULT_ROUTE and lan_route.prefix not in on_mesh:
            routes.add(ExternalRoute(lan_route.prefix, with_preference(0, lan_route.preference)))
    if local.dns_route is not None:
        routes.add(ExternalRoute(local.dns_route))
    return Decision(frozenset(prefixes), frozenset(routes), omr, omr_verdict, nat64, nat64_verdict,
                    nat64_verdict == Verdict.PUBLISHED and lan.nat64_prefix is None)


# ---- the stateful shell ------------------------------------------------------------------------------------

@dataclass
class RoutingCounters:
    """Each decision that changed something, counted (``gatewayctl netdata show`` lists them)."""

    omr_published: int = 0
    omr_withdrawn: int = 0
    omr_adopted: int = 0
    nat64_published: int = 0
    nat64_withdrawn: int = 0
    nat64_adopted: int = 0
    evaluations: int = 0


@dataclass
class RoutingManager:
    """Keeps the inputs of :func:`decide`, and counts and logs each decision that changed."""

    local: LocalIntent = field(default_factory=LocalIntent)
    lan: LanLearned = field(default_factory=LanLearned)
    mesh: MeshData = field(default_factory=MeshData)
    decision: Decision | None = None
    counters: RoutingCounters = field(default_factory=RoutingCounters)

    def learned_from_lan(self, lan: LanLearned) -> bool:
        """New LAN input; True if it differs (the caller then evaluates and publishes)."""
        changed, self.lan = lan != self.lan, lan
        return changed

    def set_local(self, **changes: object) -> bool:
        new = replace(self.local, **changes)  # type: ignore[arg-type]
        changed, self.local = new != self.local, new
        return changed

    def evaluate(self, mesh: MeshData | None = None) -> Decision:
        if mesh is not None:
            self.mesh = mesh
        self.counters.evaluations += 1
        new = decide(self.local, self.lan, self.mesh)
        old, self.decision = self.decision, new
        self._report("OMR", old.omr if old else None, new.omr, new.omr_prefix, self.local.omr_prefix)
        ours_nat64 = self.lan.nat64_prefix or self.local.nat64_prefix
        self._report("NAT64", old.nat64 if old else None, new.nat64, new.nat64_prefix, ours_nat64)
        return new

    def _report(self, kind: str, old: str | None, new: str, used: ipaddress.IPv6Network | None,
                ours: ipaddress.IPv6Network | None) -> None:
        if old == new:
            return
        c = self.counters
        key = kind.lower()
        if new == Verdict.PUBLISHED:
            setattr(c, f"{key}_published", getattr(c, f"{key}_published") + 1)
            log.info("%s prefix %s published: no border router on the mesh offers a favoured one", kind, used,
                     extra={"fields": {f"{kind}_PREFIX": str(used), f"{kind}_DECISION": "published"}})
        elif new == Verdict.ADOPTED:
            setattr(c, f"{key}_adopted", getattr(c, f"{key}_adopted") + 1)
            if old == Verdict.PUBLISHED:
                setattr(c, f"{key}_withdrawn", getattr(c, f"{key}_withdrawn") + 1)
            log.info("%s prefix %s of another border router adopted%s", kind, used,
                     f"; ours ({ours}) withdrawn" if old == Verdict.PUBLISHED else "",
                     extra={"fields": {f"{kind}_PREFIX": str(used), f"{kind}_DECISION":
                                       "withdrawn" if old == Verdict.PUBLISHED else "adopted"}})
        elif old == Verdict.PUBLISHED:
            setattr(c, f"{key}_withdrawn", getattr(c, f"{key}_withdrawn") + 1)
            log.info("%s prefix %s withdrawn", kind, ours,
                     extra={"fields": {f"{kind}_PREFIX": str(ours), f"{kind}_DECISION": "withdrawn"}})

    def status(self) -> dict[str, object]:
        d = self.decision
        out: dict[str, object] = {"counters": vars(self.counters).copy()}
        if d is not None:
            out.update(omr_prefix=str(d.omr_prefix) if d.omr_prefix else None, omr=d.omr,
                       nat64_prefix=str(d.nat64_prefix) if d.nat64_prefix else None, nat64=d.nat64,
                       nat64_ours_translates=d.nat64_ours_translates)
        return out
