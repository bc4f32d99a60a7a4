"""Property tests: no input makes the translator raise; bad input is counted, and state stays bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.packet import Raw, raw

from nat64 import Caps, Nat64
from tests.fuzz.fuzz_nat64 import TestOneInput
from tests.nat64.helpers import HOST, POOL, PREFIX, SERVER6


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_target_on_random_bytes(data):
    TestOneInput(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_counted_drops(data):
    nat = Nat64(PREFIX, [POOL])
    assert nat.from_v6(data, 0.0) == [] or (data[:1] and data[0] >> 4 == 6)
    nat.from_v4(data, 0.0)
    c = nat.counters
    total = sum(c.dropped.values()) + sum(c.translated_6to4.values()) + sum(c.translated_4to6.values())
    assert total >= 1 and c.dropped["internal_error"] == 0


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=120), cut=st.integers(0, 200))
def test_truncated_icmp_errors_never_raise(payload, cut):
    nat = Nat64(PREFIX, [POOL])
    inner = raw(IP(src=POOL, dst="203.0.113.10") / UDP(sport=1, dport=2) / Raw(payload))[:cut]
    err = IPv6(src=HOST, dst=SERVER6) / ICMPv6DestUnreach(code=4) / Raw(inner)
    nat.from_v6(raw(err), 0.0)
    nat.from_v4(raw(IP(src="203.0.113.10", dst=POOL) / Raw(b"\x03\x03\0\0\0\0\0\0" + inner)), 0.0)
    assert nat.counters.dropped["internal_error"] == 0


def test_flood_of_new_flows_stays_within_caps():
    nat = Nat64(PREFIX, [POOL], caps=Caps(max_sessions=50, max_sessions_per_source=10))
    for i in range(500):
        src = f"fd00:db8::{i % 20 + 1:x}"
        nat.from_v6(raw(IPv6(src=src, dst=SERVER6) / UDP(sport=1000 + i, dport=53) / Raw(b"q")), 0.0)
    assert len(nat.table) == 50
    assert nat.counters.dropped["source_cap"] + nat.counters.dropped["session_cap"] == 450
