"""RFC 6052 §2.2 address embedding, kept local to DNS64 until a shared module exists.

The IPv4 address fills the octets after the prefix, skipping octet 8 (bits 64-71,
the "u" octet, which must stay zero); anything after the IPv4 octets is the suffix.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)


def _v4_octets(prefixlen: int) -> list[int]:
    if prefixlen not in PREFIX_LENGTHS:
        raise ValueError(f"RFC 6052 prefix length must be one of {PREFIX_LENGTHS}, not {prefixlen}")
    return [i for i in range(prefixlen // 8, 16) if i != 8][:4]


def embed(prefix: IPv6Network, v4: IPv4Address) -> IPv6Address:
    """IPv4-embedded IPv6 address of *v4* under *prefix* (suffix zero)."""
    out = bytearray(prefix.network_address.packed)
    for pos, octet in zip(_v4_octets(prefix.prefixlen), v4.packed, strict=True):
        out[pos] = octet
    return IPv6Address(bytes(out))


def extract(prefix: IPv6Network, v6: IPv6Address) -> IPv4Address | None:
    """IPv4 address embedded in *v6*, or None when *v6* is outside *prefix*."""
    if v6 not in prefix:
        return None
    packed = v6.packed
    return IPv4Address(bytes(packed[i] for i in _v4_octets(prefix.prefixlen)))
