"""The daemon's capabilities in start order.

Each factory takes the configuration and the components built before it (by name) and
returns a Component, or None when that capability is disabled. Imports are local so a
disabled capability costs nothing at start-up. A component's dependencies are handed over
typed: NAT64, DNS64 and border routing get the Thread network as a
:class:`gatewayd.thread.view.ThreadView`, NAT64 also what border routing learnt of the LAN
(:class:`gatewayd.border.infra.InfraLink`), and so does DNS64; LwM2M gets the NCP component.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gatewayd.component import Component
from gatewayd.config import Config

if TYPE_CHECKING:
    from gatewayd.border.infra import InfraLink
    from gatewayd.ncp.component import NcpComponent
    from gatewayd.thread.view import ThreadView

Built = dict[str, Component]
Factory = Callable[[Config, Built], Component | None]


def thread_view(built: Built) -> ThreadView | None:
    """The Thread network as its dependents see it, if it was built."""
    from gatewayd.thread.network import ThreadNetwork

    network = built.get("thread")
    return network if isinstance(network, ThreadNetwork) else None


def infra_link(built: Built) -> InfraLink | None:
    """What the LAN offers (its NAT64 prefix, routes), learnt by the border component, if it was built."""
    from gatewayd.border.component import BorderRouting

    lan = built.get("border")
    return lan.lan if isinstance(lan, BorderRouting) else None


def ncp_component(built: Built) -> NcpComponent | None:
    from gatewayd.ncp.component import NcpComponent

    radio = built.get("ncp")
    return radio if isinstance(radio, NcpComponent) else None


def ncp(config: Config, built: Built) -> Component:
    from gatewayd.ncp.component import NcpComponent

    return NcpComponent(config)


def thread(config: Config, built: Built) -> Component:
    from gatewayd.ncp.component import NcpComponent
    from gatewayd.thread.network import ThreadNetwork

    radio = built["ncp"]
    assert isinstance(radio, NcpComponent)
    return ThreadNetwork(config, radio)


def border(config: Config, built: Built) -> Component:
    from gatewayd.border.component import BorderRouting

    network = thread_view(built)
    assert network is not None
    return BorderRouting(config, network)


def border_agent(config: Config, built: Built) -> Component | None:
    """``_meshcop._udp`` on the LAN; python-zeroconf is imported only when it starts."""
    if not config.border.meshcop_mdns or not config.border.infra_interface:
        return None
    from gatewayd.border.agent import BorderAgent

    return BorderAgent(config, thread_view(built), ncp_component(built))


def nat64(config: Config, built: Built) -> Component | None:
    if not config.nat64.enabled:
        return None
    from gatewayd.nat64.component import Nat64Component

    return Nat64Component(config, thread_view(built), infra_link(built))


def dns64(config: Config, built: Built) -> Component | None:
    if not config.dns64.enabled:
        return None
    from gatewayd.dns64.component import Dns64Component

    return Dns64Component(config, thread_view(built), lan=infra_link(built))


def lwm2m(config: Config, built: Built) -> Component | None:
    if not config.lwm2m.enabled:
        return None
    from gatewayd.lwm2m.component import LwM2MComponent

    return LwM2MComponent(config, ncp_component(built))


class Uninstalled(Component):
    """A capability switched on whose library is not installed (the .deb only Recommends it): it fails to
    start, and says what to install, instead of taking the daemon down."""

    def __init__(self, config: Config, name: str, missing: str, package: str):
        self.name = name
        super().__init__(config)
        self.why = f"{missing} is not installed: apt install {package} (or pip install {missing}), or turn it off"

    async def start(self) -> None:
        raise RuntimeError(self.why)


def commissioning(config: Config, built: Built) -> Component:
    from gatewayd.commissioning.component import Commissioning

    radio = ncp_component(built)
    assert radio is not None
    return Commissioning(config, radio, thread_view(built))


def rest(config: Config, built: Built) -> Component | None:
    if not config.rest.enabled:
        return None
    try:
        from gatewayd.rest.component import RestComponent  # aiohttp is imported only when the API is enabled
    except ModuleNotFoundError as exc:
        return Uninstalled(config, "rest", exc.name or "aiohttp", "python3-aiohttp")
    return RestComponent(config, ncp_component(built), built.get("thread"), built)


FACTORIES: list[Factory] = [ncp, thread, border, border_agent, nat64, dns64, lwm2m, commissioning, rest]
