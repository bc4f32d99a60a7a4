"""A ThreadView for the tests of the components that depend on the Thread network."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from gatewayd.thread.view import DatasetSummary, Subscribers, Unsubscribe


class FakeThreadView:
    """Plain values; ``update(**changes)`` sets some and tells the subscribers, as ThreadNetwork does."""

    def __init__(self, **values: Any) -> None:
        self.role: int | None = None
        self.attached = False
        self.interface: str | None = None
        self.interface_index: int | None = None
        # Any interface objects: the DNS64 tests bind loopback IPv4 addresses where wpan0's would be.
        self.addresses: frozenset[Any] = frozenset()
        self.mesh_local_prefix: ipaddress.IPv6Network | None = None
        self.omr_prefix: ipaddress.IPv6Network | None = None
        self.nat64_prefix: ipaddress.IPv6Network | None = None
        self.dns_address: ipaddress.IPv6Address | None = None
        self.dataset_summary: DatasetSummary | None = None
        self.lan: list[Any] = []  # each LanLearned handed to learned_from_lan, in order
        self.subscribers = Subscribers()
        self.set(**values)

    def set(self, **values: Any) -> None:
        for name, value in values.items():
            if not hasattr(self, name) or name == "subscribers":
                raise AttributeError(name)
            setattr(self, name, frozenset(value) if name == "addresses" else value)

    def update(self, **values: Any) -> None:
        self.set(**values)
        self.subscribers.notify()

    def learned_from_lan(self, lan: Any) -> None:
        self.lan.append(lan)

    def on_change(self, callback: Callable[[], None]) -> Unsubscribe:
        return self.subscribers.add(callback)
