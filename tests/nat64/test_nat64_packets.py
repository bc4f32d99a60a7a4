"""Checksum helpers and the minimal IP parsers, against scapy and with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.packet import Raw, raw

from common.checksum import checksum, checksum_adjust, ones_sum
from nat64.packets import PacketError, build_ipv4, build_ipv6, parse_ipv4, parse_ipv6


@given(st.binary(max_size=200))
def test_checksum_matches_scapy(data):
    from scapy.utils import checksum as scapy_checksum

    assert checksum(data) == scapy_checksum(data)


@given(st.binary(min_size=2, max_size=200).filter(lambda b: len(b) % 2 == 0), st.data())
def test_incremental_update_equals_recomputation(data, draw):
    buf = bytearray(data)
    ck = checksum(bytes(buf))
    i = draw.draw(st.integers(0, len(buf) // 2 - 1)) * 2
    new = draw.draw(st.binary(min_size=2, max_size=2))
    old = bytes(buf[i : i + 2])
    buf[i : i + 2] = new
    adjusted = checksum_adjust(ck, ones_sum(old), ones_sum(new))
    # one's complement has two zeros; both verify
    assert checksum(bytes(buf)) == adjusted or {adjusted, checksum(bytes(buf))} == {0, 0xFFFF}


def test_build_ipv4_matches_scapy():
    ours = build_ipv4(bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2]), 17, b"\0" * 8, ttl=9, identification=7)
    ref = raw(IP(src="192.0.2.1", dst="198.51.100.2", ttl=9, id=7, proto=17) / Raw(b"\0" * 8))
    assert ours == ref


def test_parse_ipv6_skips_extension_headers_and_reads_fragment_header():
    pkt = IPv6(src="::1", dst="::2") / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(id=77, offset=3, m=1) / UDP()
    h, pl = parse_ipv6(raw(pkt))
    assert h.next_header == 17 and h.fragment and h.frag_id == 77 and h.frag_offset == 24 and h.more_fragments
    assert pl[:6] == raw(UDP())[:6] and len(pl) == 8


def test_build_ipv6_round_trip():
    p = build_ipv6(b"\x20" + b"\0" * 15, b"\xfd" + b"\0" * 15, 17, b"abcdefgh", fragment=(16, True, 5))
    h, pl = parse_ipv6(p)
    assert (h.frag_offset, h.more_fragments, h.frag_id, pl) == (16, True, 5, b"abcdefgh")


@given(st.binary(max_size=120))
def test_parsers_raise_only_packet_error(data):
    for fn in (parse_ipv4, parse_ipv6):
        for prefix in (b"", b"\x45", b"\x60\0\0\0"):
            try:
                fn(prefix + data)
            except PacketError:
                pass


def test_truncated_ipv4_refused_unless_allowed():
    p = raw(IP(src="1.2.3.4", dst="5.6.7.8") / UDP() / Raw(b"x" * 40))[:-10]
    with pytest.raises(PacketError):
        parse_ipv4(p)
    h, pl = parse_ipv4(p, truncated_ok=True)
    assert h.total_length == 20 + 8 + 40 and len(pl) == 38
