"""The LAN side of the border router: IPv6 forwarding between wpan0 and the infra
interface, and Router Advertisements telling LAN hosts the mesh's OMR prefix is here."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from common.sysctl import IPV6_FORWARDING, SysctlSaver, ipv6_conf
from gatewayd.component import Component
from gatewayd.config import Config
from gatewayd.thread.view import ThreadView, Unsubscribe

if TYPE_CHECKING:
    from gatewayd.border.advertiser import Advertiser

log = logging.getLogger("gatewayd.border")

class BorderRouting(Component):
    name = "border"

    def __init__(self, config: Config, thread: ThreadView | None):
        super().__init__(config)
        self.thread = thread
        self.sysctls = SysctlSaver()
        self.advertiser: Advertiser | None = None
        self._advertised: ipaddress.IPv6Network | None = None
        self._unsubscribe: Unsubscribe | None = None

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
        if infra and border.router_advertisements:
            from gatewayd.border.advertiser import Advertiser

            self.advertiser = Advertiser(infra)
            await self.advertiser.start()
            self._advertised = None
            if self.thread is not None:
                self._unsubscribe = self.thread.on_change(self._follow_prefix)
            self._follow_prefix()

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
        if self.advertiser is not None:
            await self.advertiser.stop()  # a final RA with zero lifetimes withdraws the route from LAN hosts
            self.advertiser = None
        self.sysctls.restore()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"infra_interface": self.config.border.infra_interface,
                               "forwarding": self.config.border.forwarding}
        if self.advertiser is not None:
            out["ra"] = self.advertiser.status()
        return out
