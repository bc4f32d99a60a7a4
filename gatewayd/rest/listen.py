"""``[rest] listen`` addresses: parsing and the loopback test, without importing aiohttp (the schema's
check uses them whether or not the API is enabled)."""

from __future__ import annotations

import ipaddress

from common.hostport import split_host_port

DEFAULT_PORT = 8081  # otbr-agent's


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8081"``, ``"[::1]:8081"``, ``"::1"`` or ``"0.0.0.0"`` → (address, port)."""
    return split_host_port(text, DEFAULT_PORT)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1). A wildcard address is not."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
