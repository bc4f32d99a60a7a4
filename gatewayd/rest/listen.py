"""``[rest] listen`` addresses: parsing and the loopback test, without importing aiohttp (the schema's
check uses them whether or not the API is enabled)."""

from __future__ import annotations

import ipaddress

DEFAULT_PORT = 8081  # otbr-agent's


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8081"``, ``"[::1]:8081"``, ``"::1"`` or ``"0.0.0.0"`` → (address, port)."""
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text}: unclosed [")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text}: expected [address]:port")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text}: {host!r} is not an IP address") from None
    return str(address), port


def _port(number: str, text: str) -> int:
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"{text}: the port must be 1..65535")
    return int(number)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1). A wildcard address is not."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
