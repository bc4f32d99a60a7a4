"""``address``, ``address:port``, ``[IPv6]:port`` or a bare IPv6 address, as configs write endpoints."""

from __future__ import annotations

import ipaddress


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """(address as ipaddress writes it, port); a zone (``%eth0``) is dropped. ValueError says what is wrong."""
    text = text.strip()
    host, port = text, default_port
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
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"{text}: {host!r} is not an IP address") from None
    return str(address), port


def _port(number: str, text: str) -> int:
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"{text}: the port must be 1..65535")
    return int(number)
