"""DNS64 configuration: what to listen on, where to forward, whom to serve."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from common.hostport import split_host_port
from nat64.rfc6052 import WELL_KNOWN_PREFIX, Nat64Prefix, Rfc6052Error

log = logging.getLogger(__name__)

RESOLV_CONF = Path("/etc/resolv.conf")

Network = IPv4Network | IPv6Network


class Dns64ConfigError(ValueError):
    """A DNS64 setting cannot be used (bad prefix, upstream or listen address)."""


def parse_upstream(text: str, default_port: int = 53) -> tuple[str, int]:
    """Split "addr", "addr:port", "[v6]:port" or a bare IPv6 "addr" into (addr, port)."""
    try:
        return split_host_port(text, default_port)
    except ValueError as exc:
        raise Dns64ConfigError(f"bad upstream: {exc}") from None


def resolv_conf_nameservers(path: Path = RESOLV_CONF) -> list[tuple[str, int]]:
    """The nameservers of a resolv.conf, in order (unreadable file: none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        log.warning("cannot read %s: %s", path, e)
        return []
    out = []
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                out.append(parse_upstream(words[1]))
            except Dns64ConfigError:
                log.warning("ignoring nameserver %r in %s", words[1], path)
    return out


@dataclass
class Dns64Config:
    """Settings of one DNS64 server; `Dns64Server.reload` accepts a changed copy.

    upstreams: "addr" or "addr:port" strings (or (addr, port) tuples); empty means the
    nameservers of `resolv_conf`. allowed: client networks served; everyone else gets
    REFUSED. exclude: IPv4 networks never mapped into the prefix. fast_path: answer
    repeated queries from rendered wire answers (off only to measure or debug).
    """

    prefix: IPv6Network = WELL_KNOWN_PREFIX
    upstreams: list[str | tuple[str, int]] = field(default_factory=list)
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("::1", 53)])
    allowed: list[Network] = field(default_factory=list)
    cache_size: int = 10000
    timeout: float = 2.0
    exclude: list[IPv4Network] = field(default_factory=list)
    tcp_idle_timeout: float = 10.0
    tcp_max_connections: int = 64
    max_pending: int = 1024
    fast_path: bool = True
    resolv_conf: Path = RESOLV_CONF

    def __post_init__(self) -> None:
        try:
            self.prefix = Nat64Prefix(IPv6Network(self.prefix)).network
        except (Rfc6052Error, ValueError) as e:
            raise Dns64ConfigError(str(e)) from e
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in self.allowed]
        self.exclude = [IPv4Network(n, strict=False) for n in self.exclude]
        self.listen = [(str(ipaddress.ip_address(a)), int(p)) for a, p in self.listen]
        if self.cache_size < 0 or self.timeout <= 0:
            raise Dns64ConfigError("cache_size must be >= 0 and timeout > 0")

    def upstream_addresses(self) -> list[tuple[str, int]]:
        """Upstreams as (addr, port), falling back to resolv.conf when none are set."""
        if not self.upstreams:
            found = resolv_conf_nameservers(self.resolv_conf)
        else:
            found = [(str(u[0]), int(u[1])) if isinstance(u, tuple) else parse_upstream(u) for u in self.upstreams]
        own = set(self.listen)
        for u in found:
            if u in own:  # e.g. resolv.conf naming this very server: forwarding would loop
                log.warning("dns64 ignores upstream %s port %d: it is one of its own listen addresses", *u)
        return [u for u in found if u not in own]

    @property
    def well_known(self) -> bool:
        return self.prefix == WELL_KNOWN_PREFIX
