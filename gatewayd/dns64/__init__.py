"""The DNS64 feature: the :mod:`nat64.dns64` resolver answering on the mesh-facing addresses."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatewayd.config import Config
    from gatewayd.thread.view import ThreadView

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def answer_addresses(config: Config, thread: ThreadView | None) -> list[Address]:
    """Where the DNS64 answers, each once: wpan0's addresses a mesh device can send to without a scope
    (link-local and multicast ones left out), then ``[dns64] listen``."""
    addresses = thread.addresses if thread is not None else ()
    mesh = sorted((a.ip for a in addresses if not a.ip.is_link_local and not a.ip.is_multicast), key=str)
    return list(dict.fromkeys([*mesh, *config.dns64.listen]))
