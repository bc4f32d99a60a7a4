"""Fuzz target: the NAT64 fast path (native where built) against the full translation path.

Established UDP and TCP flows are learned in both directions by a translator with the fast path and by
one without; each input then mutates packets of those flows (bytes overwritten, cut short or extended),
so most inputs get past the flow lookup into the fast path's checks, and both translators must give the
same packets, counters and session rows. A difference, or an exception, is a bug in the fast path.
"""

from __future__ import annotations

from common.checksum import checksum
from tests.nat64.test_nat64_fastpath import (
    HOSTS,
    PSH_ACK,
    Pair,
    open_flow,
    v4_packet,
    v6_packet,
)


def _templates(pair: Pair) -> list[bytes]:
    udp = open_flow(pair, HOSTS[0], 17, 5000, 53)
    tcp = open_flow(pair, HOSTS[1], 6, 6000, 443)
    packets = [v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"query"),
               v6_packet(pair.fast, HOSTS[1], 6, 6000, 443, b"GET /", flags=PSH_ACK),
               v4_packet(17, 53, udp, b"answer"),
               v4_packet(6, 443, tcp, b"200 OK", flags=PSH_ACK)]
    for p in packets:  # learned in both directions
        (pair.v6 if p[0] >> 4 == 6 else pair.v4)(p)
    return packets


def _mutate(template: bytes, data: bytes) -> bytes:
    mode, rest = (data[0] % 4, data[1:]) if data else (0, b"")
    packet = bytearray(template)
    if mode == 0:  # overwrite: (offset, value) pairs
        for i in range(0, len(rest) - 1, 2):
            packet[rest[i] % len(packet)] = rest[i + 1]
    elif mode == 1:  # cut short
        del packet[(rest[0] if rest else 0) % len(packet):]
    elif mode == 2:  # extend
        packet += rest
    else:  # a new payload after the transport header, the IP length (and IPv4 header checksum) made right
        v6 = template[0] >> 4 == 6
        del packet[(40 if v6 else 20) + (8 if template[6 if v6 else 9] == 17 else 20):]
        packet += rest
        if v6:
            packet[4:6] = (len(packet) - 40).to_bytes(2, "big")
        else:
            packet[2:4] = len(packet).to_bytes(2, "big")
            packet[10:12] = b"\0\0"
            packet[10:12] = checksum(packet[:20]).to_bytes(2, "big")
    return bytes(packet)


def TestOneInput(data: bytes) -> None:
    pair = Pair()
    templates = _templates(pair)
    for i in range(0, max(len(data), 1), 16):
        chunk = data[i : i + 16]
        template = templates[chunk[0] % 4 if chunk else 0]
        packet = _mutate(template, chunk[1:])
        (pair.v6 if packet and packet[0] >> 4 == 6 else pair.v4)(packet)  # asserts both agree
        (pair.v6 if template[0] >> 4 == 6 else pair.v4)(template)  # the flow goes on (or not) alike
    pair.check_state()


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
