"""The daemon's capabilities in start order.

Each factory takes the configuration and the components built before it (by name) and
returns a Component, or None when that capability is disabled. Imports are local so a
disabled capability costs nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from gatewayd.component import Component
from gatewayd.config import Config

Built = dict[str, Component]
Factory = Callable[[Config, Built], Component | None]


def ncp(config: Config, built: Built) -> Component:
    from gatewayd.thread.ncp import NcpComponent

    return NcpComponent(config)


def thread(config: Config, built: Built) -> Component:
    from gatewayd.thread.ncp import NcpComponent
    from gatewayd.thread.network import ThreadNetwork

    radio = built["ncp"]
    assert isinstance(radio, NcpComponent)
    return ThreadNetwork(config, radio)


def border(config: Config, built: Built) -> Component:
    from gatewayd.thread.border import BorderRouting
    from gatewayd.thread.network import ThreadNetwork

    network = built["thread"]
    assert isinstance(network, ThreadNetwork)
    return BorderRouting(config, network)


def nat64(config: Config, built: Built) -> Component | None:
    if not config.nat64.enabled:
        return None
    from gatewayd.translator import Nat64Component

    return Nat64Component(config, built.get("thread"))


def dns64(config: Config, built: Built) -> Component | None:
    if not config.dns64.enabled:
        return None
    from gatewayd.resolver import Dns64Component

    return Dns64Component(config, built.get("thread"))


def lwm2m(config: Config, built: Built) -> Component | None:
    if not config.lwm2m.enabled:
        return None
    from gatewayd.lwm2m.component import LwM2MComponent

    return LwM2MComponent(config, built.get("ncp"))


FACTORIES: list[Factory] = [ncp, thread, border, nat64, dns64, lwm2m]
