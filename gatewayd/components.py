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


FACTORIES: list[Factory] = [ncp, thread, border]
