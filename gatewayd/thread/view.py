"""What the Thread feature shows the components that depend on it (NAT64, DNS64, border routing).

:class:`ThreadView` is the seam: the network's current state, read as plain typed values, and
``on_change`` to hear when any of it changed, so a consumer neither probes the Thread component's
internals nor polls it. :class:`gatewayd.thread.network.ThreadNetwork` implements it; a consumer's
tests can hand it any object with the same members.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ncp.meshcop import Timestamp

if TYPE_CHECKING:
    from gatewayd.thread.routing import LanLearned

log = logging.getLogger("gatewayd.thread")

Unsubscribe = Callable[[], None]


@dataclass(frozen=True)
class DatasetSummary:
    """The active dataset's public identity (no key material)."""

    network_name: str | None
    channel: int | None
    pan_id: int | None
    mesh_local_prefix: ipaddress.IPv6Network | None
    extended_pan_id: bytes | None = None
    active_timestamp: Timestamp | None = None  # the border agent's _meshcop._udp record shows both


class ThreadView(Protocol):
    """The Thread network as its dependents see it; every member reads current state."""

    @property
    def role(self) -> int | None:
        """The NCP's role (an ``ncp.spinel.NetRole`` value), None while unknown (starting, link lost)."""

    @property
    def attached(self) -> bool:
        """Child, router or leader: the mesh carries traffic."""

    @property
    def interface(self) -> str | None:
        """The mesh interface's name (wpan0) once it exists, else None."""

    @property
    def interface_index(self) -> int | None:
        """Its ifindex once it exists, else None."""

    @property
    def addresses(self) -> frozenset[ipaddress.IPv6Interface]:
        """The mesh interface's addresses (the NCP's table plus the host's own DNS64 address)."""

    @property
    def mesh_local_prefix(self) -> ipaddress.IPv6Network | None: ...

    @property
    def omr_prefix(self) -> ipaddress.IPv6Network | None:
        """The mesh's favoured off-mesh-routable /64: ours, or another border router's that the routing
        manager adopted (every border router advertises the favoured one on the LAN, as OpenThread does)."""

    @property
    def nat64_prefix(self) -> ipaddress.IPv6Network | None:
        """The NAT64 prefix the mesh routes once the routing manager decided (ours, the LAN's, or another
        border router's it adopted), else None; DNS64 synthesises in it."""

    @property
    def dns_address(self) -> ipaddress.IPv6Address | None:
        """Where mesh devices reach the host's DNS64 (None when DNS64 is off)."""

    @property
    def dataset_summary(self) -> DatasetSummary | None: ...

    def learned_from_lan(self, lan: LanLearned) -> None:
        """What the infrastructure link offers the mesh now (routes, a default router, a NAT64 prefix):
        the routing manager (gatewayd/thread/routing.py) decides what of it is published, and when."""
        ...

    def on_change(self, callback: Callable[[], None]) -> Unsubscribe:
        """Call ``callback()`` (synchronously, in the event loop) whenever a member above changed;
        returns the function that ends the subscription."""
        ...


class Subscribers:
    """The callbacks behind an ``on_change``; one that raises is logged and the others still run."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> Unsubscribe:
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def notify(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("a Thread change subscriber failed")

    def __len__(self) -> int:
        return len(self._callbacks)
