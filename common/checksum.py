"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624), shared by the NAT64
translator, the mesh datapath and the Router Advertisements: one implementation, tested once."""

from __future__ import annotations


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """16-bit one's-complement sum of big-endian words; fold and invert with :func:`checksum`.

    Since 2**16 ≡ 1 (mod 0xFFFF), the one's-complement sum of the words equals the whole buffer read as
    one big integer modulo 0xFFFF (with 0xFFFF standing for a non-zero multiple). CPython does both the
    conversion and the modulo in C, which beats any per-word loop by an order of magnitude.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF
    return initial + s


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Internet checksum (RFC 1071) of ``data`` plus an already-summed ``initial`` (e.g. a pseudo-header)."""
    return (~_fold(ones_sum(data, initial))) & 0xFFFF


def checksum_adjust(old_checksum: int, old_sum: int, new_sum: int) -> int:
    """Incremental update (RFC 1624 eqn. 3): HC' = ~(~HC + ~m + m').

    ``old_sum``/``new_sum`` are :func:`ones_sum` values of everything that changed, so a translator can
    fix a TCP/UDP checksum for a new pseudo-header and port without touching the payload (which may be
    absent in a non-first fragment or truncated in an ICMP error).
    """
    return checksum_apply(old_checksum, checksum_delta(old_sum, new_sum))


def checksum_delta(old_sum: int, new_sum: int) -> int:
    """The ``~m + m'`` part of RFC 1624 eqn. 3: constant for a flow, so it can be computed once."""
    return (~_fold(old_sum) & 0xFFFF) + _fold(new_sum)


def checksum_apply(old_checksum: int, delta: int) -> int:
    """Apply a :func:`checksum_delta` to a checksum."""
    return (~_fold((~old_checksum & 0xFFFF) + delta)) & 0xFFFF


def pseudo_sum_v4(src: bytes, dst: bytes, proto: int, length: int) -> int:
    return ones_sum(src + dst) + proto + length


def pseudo_sum_v6(src: bytes, dst: bytes, next_header: int, length: int) -> int:
    return ones_sum(src + dst) + (length >> 16) + (length & 0xFFFF) + next_header
