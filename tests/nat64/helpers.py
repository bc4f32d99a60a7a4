"""Shared helpers for the NAT64 translator tests (packets built and checked with scapy)."""

from __future__ import annotations

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import NoPayload, raw

PREFIX = "2001:db8:64::/96"
POOL = "198.51.100.1"
SERVER = "203.0.113.10"
SERVER6 = "2001:db8:64::cb00:710a"  # SERVER embedded in PREFIX
HOST = "fd00:db8::1"
HOST2 = "fd00:db8::2"


def parse(packet: bytes):
    return IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)


def checksums_ok(packet: bytes) -> bool:
    """Let scapy recompute every outer checksum (IP header, UDP/TCP/ICMP/ICMPv6) and compare bytes.

    Layers quoted inside ICMP errors are left alone: they are truncated, so scapy cannot recompute them.
    """
    pkt = parse(packet)
    layer = pkt
    while not isinstance(layer, NoPayload):
        if "error" in type(layer).__name__.lower():
            break
        for name in ("chksum", "cksum"):
            if name in layer.fields:
                delattr(layer, name)
        layer = layer.payload
    return raw(pkt.__class__(raw(pkt))) == packet
