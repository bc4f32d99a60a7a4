"""IPv4-embedded IPv6 addresses (RFC 6052).

The IPv4 address is split around the "u" octet (bits 64-71), which must stay zero so the result is a
valid interface identifier. Under the Well-Known Prefix 64:ff9b::/96 only global IPv4 addresses may be
represented (§3.1), so a NAT64 using it cannot be abused to reach private IPv4 space.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, IPv6Network

__all__ = [
    "VALID_PREFIX_LENGTHS",
    "WELL_KNOWN_PREFIX",
    "Nat64Prefix",
    "Rfc6052Error",
    "embed",
    "extract",
]

WELL_KNOWN_PREFIX = IPv6Network("64:ff9b::/96")
VALID_PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)


class Rfc6052Error(ValueError):
    """Bad prefix, an address outside the prefix, or an IPv4 address the prefix may not represent."""


def _check_prefix(prefix: IPv6Network) -> None:
    if prefix.prefixlen not in VALID_PREFIX_LENGTHS:
        raise Rfc6052Error(f"NAT64 prefix length must be one of {VALID_PREFIX_LENGTHS}: {prefix}")
    if prefix.prefixlen == 96 and prefix.network_address.packed[8] != 0:
        raise Rfc6052Error(f"bits 64-71 (u octet) of a /96 NAT64 prefix must be zero: {prefix}")


def _octet_positions(prefixlen: int) -> tuple[int, ...]:
    """Byte offsets in the IPv6 address that hold the four IPv4 octets, skipping byte 8 (u)."""
    start = prefixlen // 8
    positions = []
    i = start
    while len(positions) < 4:
        if i != 8:
            positions.append(i)
        i += 1
    return tuple(positions)


_POSITIONS = {n: _octet_positions(n) for n in VALID_PREFIX_LENGTHS}


@lru_cache(maxsize=4096)
def _is_global(v4: bytes) -> bool:
    # is_global walks the IANA special-purpose registry; cache it since it runs per packet.
    return IPv4Address(v4).is_global


class Nat64Prefix:
    """A NAT64 prefix with precomputed byte positions; works on raw packed addresses for speed."""

    __slots__ = ("_positions", "_prefix_bytes", "network", "well_known")

    def __init__(self, prefix: str | IPv6Network) -> None:
        try:
            net = IPv6Network(prefix) if isinstance(prefix, str) else prefix
        except ValueError as exc:
            raise Rfc6052Error(f"bad NAT64 prefix {prefix!r}: {exc}") from None
        _check_prefix(net)
        self.network = net
        self.well_known = net == WELL_KNOWN_PREFIX
        self._positions = _POSITIONS[net.prefixlen]
        self._prefix_bytes = net.network_address.packed

    def __repr__(self) -> str:
        return f"Nat64Prefix({str(self.network)!r})"

    def contains(self, v6: bytes) -> bool:
        n = self.network.prefixlen // 8
        return v6[:n] == self._prefix_bytes[:n]

    def embed_packed(self, v4: bytes, *, check: bool = True) -> bytes:
        """IPv4 (4 bytes) → IPv6 (16 bytes); refuses non-global IPv4 under the Well-Known Prefix.

        ``check=False`` skips that rule, for the translator's own source address only.
        """
        if check and self.well_known and not _is_global(bytes(v4)):
            raise Rfc6052Error(f"{IPv4Address(v4)} is not global and may not use {WELL_KNOWN_PREFIX}")
        out = bytearray(self._prefix_bytes)
        p = self._positions
        out[p[0]], out[p[1]], out[p[2]], out[p[3]] = v4[0], v4[1], v4[2], v4[3]
        return bytes(out)

    def extract_packed(self, v6: bytes) -> bytes:
        """IPv6 (16 bytes) → IPv4 (4 bytes); the u octet and suffix are ignored on extraction."""
        if not self.contains(v6):
            raise Rfc6052Error(f"{IPv6Address(v6)} is not in {self.network}")
        p = self._positions
        v4 = bytes((v6[p[0]], v6[p[1]], v6[p[2]], v6[p[3]]))
        if self.well_known and not _is_global(bytes(v4)):
            raise Rfc6052Error(f"{IPv4Address(v4)} is not global and may not use {WELL_KNOWN_PREFIX}")
        return v4

    def embed(self, v4: IPv4Address | str) -> IPv6Address:
        return IPv6Address(self.embed_packed(ipaddress.IPv4Address(v4).packed))

    def extract(self, v6: IPv6Address | str) -> IPv4Address:
        return IPv4Address(self.extract_packed(ipaddress.IPv6Address(v6).packed))


def embed(prefix: str | IPv6Network, v4: str | IPv4Address) -> IPv6Address:
    """Embed ``v4`` in ``prefix`` (RFC 6052 §2.2)."""
    return Nat64Prefix(prefix).embed(v4)


def extract(prefix: str | IPv6Network, v6: str | IPv6Address) -> IPv4Address:
    """Extract the IPv4 address embedded in ``v6`` under ``prefix`` (RFC 6052 §2.3)."""
    return Nat64Prefix(prefix).extract(v6)
