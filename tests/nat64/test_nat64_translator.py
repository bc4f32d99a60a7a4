"""Translation cases of the NAT64 core, with packets built and checked by scapy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror, defragment, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPerror6,
    IPv6,
    IPv6ExtHdrFragment,
    defragment6,
    fragment6,
)
from scapy.packet import Raw, raw

from nat64 import Caps, Nat64, Side, Timeouts
from tests.nat64.helpers import HOST, HOST2, POOL, PREFIX, SERVER, SERVER6, checksums_ok, parse


def make(**kw) -> Nat64:
    kw.setdefault("rng", random.Random(1))
    return Nat64(PREFIX, [POOL], **kw)


def one(outputs, side: Side) -> bytes:
    assert len(outputs) == 1, outputs
    assert outputs[0].side is side
    assert checksums_ok(outputs[0].packet)
    return outputs[0].packet


def udp6(src=HOST, sport=5000, dport=7, data=b"hello", hlim=64, dst=SERVER6):
    return raw(IPv6(src=src, dst=dst, hlim=hlim) / UDP(sport=sport, dport=dport) / Raw(data))


# --- UDP -----------------------------------------------------------------------------------------


def test_udp_6to4_and_reply_4to6():
    nat = make()
    out = IP(one(nat.from_v6(udp6(hlim=64, data=b"ping payload"), 0.0), Side.V4))
    assert (out.src, out.dst, out.ttl) == (POOL, SERVER, 63)
    assert out[UDP].dport == 7 and out[UDP].load == b"ping payload"
    assert out[UDP].sport == 5000  # port kept when free
    reply = IP(src=SERVER, dst=POOL, ttl=50) / UDP(sport=7, dport=out[UDP].sport) / Raw(b"pong")
    back = IPv6(one(nat.from_v4(raw(reply), 1.0), Side.V6))
    assert (back.src, back.dst, back.hlim) == (SERVER6, HOST, 49)
    assert (back[UDP].sport, back[UDP].dport, back[UDP].load) == (7, 5000, b"pong")
    c = nat.counters.as_dict()
    assert c["translated"] == {"6to4": {"udp": 1}, "4to6": {"udp": 1}}


def test_many_ipv6_sources_share_one_pool_address():
    nat = make()
    hosts = [f"fd00:db8::{i:x}" for i in range(1, 21)]
    ports = {}
    for h in hosts:
        out = IP(one(nat.from_v6(udp6(src=h, sport=4000), 0.0), Side.V4))
        assert out.src == POOL
        ports[h] = out[UDP].sport
    assert len(set(ports.values())) == len(hosts)  # same v6 port, distinct v4 ports
    for h, p in ports.items():
        reply = IP(src=SERVER, dst=POOL) / UDP(sport=7, dport=p) / Raw(h.encode())
        back = IPv6(one(nat.from_v4(raw(reply), 1.0), Side.V6))
        assert back.dst == h and back[UDP].dport == 4000


def test_pool_of_several_addresses_is_used_and_stable_per_host():
    nat = Nat64(PREFIX, ["198.51.100.0/29"], rng=random.Random(2))
    assert len(nat.pool) == 6
    seen = {}
    for i in range(1, 41):
        h = f"fd00:db8::{i:x}"
        for sport in (1111, 2222):
            out = IP(one(nat.from_v6(udp6(src=h, sport=sport), 0.0), Side.V4))
            seen.setdefault(h, set()).add(out.src)
    assert all(len(v) == 1 for v in seen.values())  # paired pooling
    assert len({next(iter(v)) for v in seen.values()}) > 1


def test_unsolicited_ipv4_is_dropped_with_port_unreachable_and_filtered_by_address():
    nat = make()
    probe = IP(src=SERVER, dst=POOL) / UDP(sport=7, dport=5000) / Raw(b"x")
    err = IP(one(nat.from_v4(raw(probe), 0.0), Side.V4))
    assert err.dst == SERVER and err[ICMP].type == 3 and err[ICMP].code == 3
    nat.from_v6(udp6(), 0.0)
    other = IP(src="203.0.113.99", dst=POOL) / UDP(sport=7, dport=5000) / Raw(b"x")
    assert nat.from_v4(raw(other), 1.0) == []
    assert nat.counters.dropped["filtered"] == 1
    assert nat.counters.dropped["no_bib_entry"] == 1


def test_endpoint_independent_filtering_lets_other_ipv4_hosts_in():
    nat = make(endpoint_independent_filtering=True)
    nat.from_v6(udp6(), 0.0)
    other = IP(src="203.0.113.99", dst=POOL) / UDP(sport=9, dport=5000) / Raw(b"x")
    back = IPv6(one(nat.from_v4(raw(other), 1.0), Side.V6))
    assert back.dst == HOST and back.src == "2001:db8:64::cb00:7163"
    assert len(nat.table) == 2


def test_ipv4_udp_without_checksum_gets_one_on_ipv6():
    nat = make()
    out = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    reply = IP(src=SERVER, dst=POOL) / UDP(sport=7, dport=out[UDP].sport, chksum=0) / Raw(b"nochk")
    back = one(nat.from_v4(raw(reply), 1.0), Side.V6)
    assert IPv6(back)[UDP].chksum != 0


def test_ipv6_udp_zero_checksum_is_dropped():
    nat = make()
    pkt = IPv6(src=HOST, dst=SERVER6) / UDP(sport=1, dport=2, chksum=0) / Raw(b"x")
    assert nat.from_v6(raw(pkt), 0.0) == []
    assert nat.counters.dropped["udp_zero_checksum"] == 1


# --- TCP -----------------------------------------------------------------------------------------


def _tcp6(flags, seq=100, data=b"", sport=40000):
    return raw(IPv6(src=HOST, dst=SERVER6) / TCP(sport=sport, dport=80, flags=flags, seq=seq) / Raw(data))


def _tcp4(flags, dport, seq=900, data=b""):
    return raw(IP(src=SERVER, dst=POOL) / TCP(sport=80, dport=dport, flags=flags, seq=seq) / Raw(data))


def _state(nat):
    (row,) = nat.mappings(0.0)
    return row["state"]


def test_tcp_handshake_data_fin_close_and_expiry():
    nat = make()
    syn = IP(one(nat.from_v6(_tcp6("S"), 0.0), Side.V4))
    assert syn[TCP].flags == "S" and (syn.src, syn.dst) == (POOL, SERVER)
    port = syn[TCP].sport
    assert _state(nat) == "V6 SYN RCV"
    synack = IPv6(one(nat.from_v4(_tcp4("SA", port), 0.1), Side.V6))
    assert synack[TCP].flags == "SA" and synack[TCP].dport == 40000
    assert _state(nat) == "ESTABLISHED"
    data = IP(one(nat.from_v6(_tcp6("PA", 101, b"GET / HTTP/1.0\r\n\r\n"), 0.2), Side.V4))
    assert data[TCP].load == b"GET / HTTP/1.0\r\n\r\n"
    resp = IPv6(one(nat.from_v4(_tcp4("PA", port, 901, b"HTTP/1.0 200 OK\r\n"), 0.3), Side.V6))
    assert resp[TCP].load == b"HTTP/1.0 200 OK\r\n"
    one(nat.from_v6(_tcp6("FA", 120), 0.4), Side.V4)
    assert _state(nat) == "V6 FIN RCV"
    one(nat.from_v4(_tcp4("FA", port, 920), 0.5), Side.V6)
    assert _state(nat) == "V4 FIN + V6 FIN RCV"
    one(nat.from_v6(_tcp6("A", 121), 0.6), Side.V4)  # last ACK still passes
    assert nat.expire(0.5 + 239) == 0
    assert nat.expire(0.5 + 240) == 1
    assert nat.mappings(300.0) == [] and len(nat.table.bib) == 0


def test_tcp_established_lasts_2h4m_and_rst_moves_to_trans():
    nat = make()
    port = IP(nat.from_v6(_tcp6("S"), 0.0)[0].packet)[TCP].sport
    nat.from_v4(_tcp4("SA", port), 0.0)
    assert nat.expire(7439.0) == 0
    one(nat.from_v6(_tcp6("A", 101), 7000.0), Side.V4)  # refresh
    assert nat.expire(7000.0 + 7439) == 0
    one(nat.from_v4(_tcp4("R", port, 901), 8000.0), Side.V6)
    assert _state(nat) == "TRANS"
    assert nat.expire(8000.0 + 240) == 1


def test_tcp_without_syn_cannot_open_a_session():
    nat = make()
    assert nat.from_v6(_tcp6("A"), 0.0) == []
    assert nat.counters.dropped["tcp_no_session"] == 1 and len(nat.table) == 0


def test_tcp_unanswered_syn_expires_after_transitory_timeout():
    nat = make(timeouts=Timeouts(tcp_transitory=10.0))
    nat.from_v6(_tcp6("S"), 0.0)
    assert nat.expire(9.9) == 0 and nat.expire(10.0) == 1


# --- ICMP echo -----------------------------------------------------------------------------------


def test_icmpv6_echo_to_icmp_echo_with_identifier_mapping_both_ways():
    nat = make()
    reqs = []
    for host in (HOST, HOST2):  # two hosts, same identifier
        e = IPv6(src=host, dst=SERVER6) / ICMPv6EchoRequest(id=0x1234, seq=7, data=b"abcdefgh")
        out = IP(one(nat.from_v6(raw(e), 0.0), Side.V4))
        assert out[ICMP].type == 8 and out[ICMP].seq == 7 and out[ICMP].load == b"abcdefgh"
        reqs.append(out[ICMP].id)
    assert reqs[0] != reqs[1]
    for host, ident in zip((HOST, HOST2), reqs, strict=True):
        r = IP(src=SERVER, dst=POOL) / ICMP(type=0, id=ident, seq=7) / Raw(b"abcdefgh")
        back = IPv6(one(nat.from_v4(raw(r), 1.0), Side.V6))
        assert back.dst == host and back.src == SERVER6
        assert back[ICMPv6EchoReply].id == 0x1234 and back[ICMPv6EchoReply].data == b"abcdefgh"
    assert nat.counters.translated_6to4["icmp"] == 2 and nat.counters.translated_4to6["icmp"] == 2


def test_icmp_echo_session_expires_after_60s():
    nat = make()
    nat.from_v6(raw(IPv6(src=HOST, dst=SERVER6) / ICMPv6EchoRequest(id=1)), 0.0)
    assert nat.expire(59.0) == 0 and nat.expire(60.0) == 1
    r = IP(src=SERVER, dst=POOL) / ICMP(type=0, id=1)
    assert nat.from_v4(raw(r), 61.0) == []
    assert nat.counters.dropped["no_session"] == 1


def test_echo_request_from_ipv4_to_an_ipv6_host_with_a_mapping():
    nat = make(endpoint_independent_filtering=True)
    ident = IP(nat.from_v6(raw(IPv6(src=HOST, dst=SERVER6) / ICMPv6EchoRequest(id=9)), 0.0)[0].packet)[ICMP].id
    req = IP(src="203.0.113.77", dst=POOL) / ICMP(type=8, id=ident, seq=1) / Raw(b"hi")
    v6 = IPv6(one(nat.from_v4(raw(req), 1.0), Side.V6))
    assert v6[ICMPv6EchoRequest].id == 9
    rep = IPv6(src=HOST, dst=v6.src) / ICMPv6EchoReply(id=9, seq=1, data=b"hi")
    v4 = IP(one(nat.from_v6(raw(rep), 2.0), Side.V4))
    assert v4.dst == "203.0.113.77" and v4[ICMP].type == 0 and v4[ICMP].id == ident


def test_bad_icmp_checksum_is_dropped_not_repaired():
    nat = make()
    e = raw(IPv6(src=HOST, dst=SERVER6) / ICMPv6EchoRequest(id=1, data=b"x"))
    bad = e[:-1] + bytes([e[-1] ^ 1])
    assert nat.from_v6(bad, 0.0) == []
    assert nat.counters.dropped["bad_checksum"] == 1


# --- ICMP errors ---------------------------------------------------------------------------------


def test_ipv4_port_unreachable_becomes_icmpv6_port_unreachable_quoting_the_original_packet():
    nat = make()
    original = udp6(data=b"is anyone there?", hlim=64)
    sent = one(nat.from_v6(original, 0.0), Side.V4)
    err = IP(src=SERVER, dst=POOL, ttl=60) / ICMP(type=3, code=3) / sent
    out = one(nat.from_v4(raw(err), 0.5), Side.V6)
    v6 = IPv6(out)
    assert (v6.src, v6.dst, v6.hlim) == (SERVER6, HOST, 59)
    assert v6[ICMPv6DestUnreach].code == 4
    quoted = raw(v6[IPerror6])
    expected = bytearray(original)
    expected[7] = 63  # the quoted packet carries the hop limit it had on the IPv4 side
    assert quoted == bytes(expected)


def test_ipv6_port_unreachable_becomes_icmp_port_unreachable_quoting_the_ipv4_packet():
    nat = make()
    out4 = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    reply = raw(IP(src=SERVER, dst=POOL, ttl=64, id=0) / UDP(sport=7, dport=out4[UDP].sport) / Raw(b"late"))
    delivered = one(nat.from_v4(reply, 0.1), Side.V6)
    err6 = IPv6(src=HOST, dst=SERVER6) / ICMPv6DestUnreach(code=4) / IPv6(delivered)
    out = IP(one(nat.from_v6(raw(err6), 0.2), Side.V4))
    assert (out.src, out.dst) == (POOL, SERVER)
    assert out[ICMP].type == 3 and out[ICMP].code == 3
    quoted = out[IPerror]
    assert (quoted.src, quoted.dst, quoted[UDPerror].sport, quoted[UDPerror].dport) == (
        SERVER, POOL, 7, out4[UDP].sport)
    assert raw(quoted[UDPerror]) == reply[20:]  # UDP header incl. checksum back to the original


@pytest.mark.parametrize(
    ("v4", "v6"),
    [((3, 1), (1, 0)), ((3, 3), (1, 4)), ((3, 13), (1, 1)), ((11, 0), (3, 0)), ((11, 1), (3, 1)),
     ((3, 2), (4, 1))],
)
def test_icmpv4_error_type_mapping(v4, v6):
    nat = make()
    sent = one(nat.from_v6(udp6(), 0.0), Side.V4)
    err = IP(src="203.0.113.1", dst=POOL) / ICMP(type=v4[0], code=v4[1]) / sent
    out = IPv6(one(nat.from_v4(raw(err), 0.1), Side.V6))
    icmp = out.payload
    assert (icmp.type, icmp.code) == v6
    assert out.src == "2001:db8:64::cb00:7101"  # the reporting router, embedded


def test_untranslatable_icmp_is_dropped_and_counted():
    nat = make()
    sent = one(nat.from_v6(udp6(), 0.0), Side.V4)
    err = IP(src=SERVER, dst=POOL) / ICMP(type=3, code=14) / sent  # precedence cutoff: drop per RFC 7915
    assert nat.from_v4(raw(err), 0.1) == []
    ts = IP(src=SERVER, dst=POOL) / ICMP(type=13)
    assert nat.from_v4(raw(ts), 0.1) == []
    assert nat.counters.dropped["icmp_untranslatable"] == 2


def test_frag_needed_becomes_packet_too_big_with_mtu_plus_20():
    nat = make(ipv6_mtu=1500)
    sent = one(nat.from_v6(udp6(data=b"x" * 1400), 0.0), Side.V4)
    err = IP(src="203.0.113.1", dst=POOL) / ICMP(type=3, code=4, nexthopmtu=1400) / sent
    out = IPv6(one(nat.from_v4(raw(err), 0.1), Side.V6))
    assert out[ICMPv6PacketTooBig].mtu == 1420
    err = IP(src="203.0.113.1", dst=POOL) / ICMP(type=3, code=4, nexthopmtu=576) / sent
    out = IPv6(one(nat.from_v4(raw(err), 0.1), Side.V6))
    assert out[ICMPv6PacketTooBig].mtu == 1280  # never below the IPv6 minimum


def test_packet_too_big_becomes_frag_needed_with_mtu_minus_20():
    nat = make(ipv6_mtu=1500)
    out4 = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    reply = IP(src=SERVER, dst=POOL) / UDP(sport=7, dport=out4[UDP].sport) / Raw(b"y" * 1300)
    delivered = one(nat.from_v4(raw(reply), 0.1), Side.V6)
    ptb = IPv6(src="fd00:db8::fe", dst=SERVER6) / ICMPv6PacketTooBig(mtu=1400) / IPv6(delivered)
    out = IP(one(nat.from_v6(raw(ptb), 0.2), Side.V4))
    assert out[ICMP].type == 3 and out[ICMP].code == 4 and out[ICMP].nexthopmtu == 1380


def test_ipv4_df_packet_too_big_for_ipv6_gets_frag_needed_1260():
    nat = make()
    out4 = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    big = IP(src=SERVER, dst=POOL, flags="DF") / UDP(sport=7, dport=out4[UDP].sport) / Raw(b"z" * 1300)
    err = IP(one(nat.from_v4(raw(big), 0.1), Side.V4))
    assert err.dst == SERVER and err[ICMP].type == 3 and err[ICMP].code == 4
    assert err[ICMP].nexthopmtu == 1260
    assert nat.counters.dropped["packet_too_big"] == 1


def test_ipv4_packet_without_df_is_fragmented_to_fit_1280():
    nat = make()
    out4 = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    payload = bytes(random.Random(3).getrandbits(8) for _ in range(3000))
    big = IP(src=SERVER, dst=POOL, id=0x4242) / UDP(sport=7, dport=out4[UDP].sport) / Raw(payload)
    outs = nat.from_v4(raw(big), 0.1)
    assert len(outs) == 3 and all(o.side is Side.V6 and len(o.packet) <= 1280 for o in outs)
    whole = defragment6([IPv6(o.packet) for o in outs])
    assert whole[UDP].load == payload and whole.dst == HOST
    assert checksums_ok(raw(whole))


def test_ipv6_to_ipv4_sets_df_only_above_1260_bytes():
    nat = make(ipv6_mtu=1500)
    small = IP(one(nat.from_v6(udp6(data=b"a" * 1000), 0.0), Side.V4))
    large = IP(one(nat.from_v6(udp6(data=b"a" * 1300), 0.0), Side.V4))
    assert not small.flags.DF and large.flags.DF


def test_ipv6_packet_too_big_for_ipv4_mtu_gets_packet_too_big():
    nat = make(ipv6_mtu=1500, ipv4_mtu=1400)
    out = IPv6(one(nat.from_v6(udp6(data=b"a" * 1420), 0.0), Side.V6))
    assert out[ICMPv6PacketTooBig].mtu == 1420 and out.dst == HOST


# --- hop limit / TTL -----------------------------------------------------------------------------


def test_hop_limit_1_gets_icmpv6_time_exceeded():
    nat = make()
    out = IPv6(one(nat.from_v6(udp6(hlim=1), 0.0), Side.V6))
    assert out.dst == HOST and out[ICMPv6TimeExceeded].code == 0
    assert len(nat.table) == 0 and nat.counters.dropped["hop_limit_exceeded"] == 1


def test_ttl_1_gets_icmp_time_exceeded():
    nat = make()
    out4 = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    pkt = IP(src=SERVER, dst=POOL, ttl=1) / UDP(sport=7, dport=out4[UDP].sport) / Raw(b"x")
    out = IP(one(nat.from_v4(raw(pkt), 0.1), Side.V4))
    assert out.dst == SERVER and out[ICMP].type == 11


def test_ipv4_header_checksum_is_verified():
    nat = make()
    pkt = bytearray(raw(IP(src=SERVER, dst=POOL) / UDP(sport=7, dport=5000)))
    pkt[8] ^= 0x40  # TTL changed, checksum not
    assert nat.from_v4(bytes(pkt), 0.0) == []
    assert nat.counters.dropped["bad_checksum"] == 1


# --- fragments -----------------------------------------------------------------------------------


def test_ipv6_fragments_translate_to_ipv4_fragments_that_reassemble():
    nat = make(ipv6_mtu=1500)
    payload = bytes(range(256)) * 10
    pkt = IPv6(src=HOST, dst=SERVER6) / IPv6ExtHdrFragment(id=0xABCD1234) / UDP(sport=5000, dport=7) / Raw(payload)
    frags = fragment6(pkt, 1000)
    outs = []
    for f in frags:
        res = nat.from_v6(raw(f), 0.0)
        assert len(res) == 1 and res[0].side is Side.V4
        outs.append(IP(res[0].packet))
    assert all(o.id == 0x1234 for o in outs)
    whole = defragment(outs)[0]
    assert whole[UDP].load == payload and (whole.src, whole.dst) == (POOL, SERVER)
    c = whole.copy()
    del c[UDP].chksum
    assert IP(raw(c))[UDP].chksum == whole[UDP].chksum


def test_ipv6_non_first_fragment_alone_is_dropped_and_counted():
    nat = make()
    pkt = IPv6(src=HOST, dst=SERVER6) / IPv6ExtHdrFragment(id=7) / UDP(sport=5000, dport=7) / Raw(b"q" * 2000)
    frags = fragment6(pkt, 1000)
    assert nat.from_v6(raw(frags[1]), 0.0) == []
    assert nat.counters.dropped["fragment_without_first"] == 1


def test_ipv4_fragments_translate_to_ipv6_fragments_that_reassemble():
    nat = make()
    out4 = IP(one(nat.from_v6(udp6(), 0.0), Side.V4))
    payload = bytes(range(256)) * 12
    big = IP(src=SERVER, dst=POOL, id=999) / UDP(sport=7, dport=out4[UDP].sport) / Raw(payload)
    outs = []
    for f in fragment(big, 1400):
        outs += [IPv6(o.packet) for o in nat.from_v4(raw(f), 0.1)]
    assert all(len(raw(o)) <= 1280 for o in outs)
    whole = defragment6(outs)
    assert whole[UDP].load == payload and whole.dst == HOST
    assert checksums_ok(raw(whole))


# --- caps, expiry --------------------------------------------------------------------------------


def test_per_source_cap_refuses_new_flows_with_admin_prohibited_and_keeps_old_ones():
    nat = make(caps=Caps(max_sessions_per_source=2))
    one(nat.from_v6(udp6(dport=1), 0.0), Side.V4)
    one(nat.from_v6(udp6(dport=2), 0.0), Side.V4)
    err = IPv6(one(nat.from_v6(udp6(dport=3), 0.0), Side.V6))
    assert err.dst == HOST and err[ICMPv6DestUnreach].code == 1
    assert nat.counters.dropped["source_cap"] == 1
    one(nat.from_v6(udp6(dport=1), 1.0), Side.V4)  # existing flows untouched
    one(nat.from_v6(udp6(src=HOST2, dport=3), 1.0), Side.V4)  # other sources unaffected
    assert len(nat.table) == 3


def test_total_session_cap():
    nat = make(caps=Caps(max_sessions=3))
    for i in range(3):
        one(nat.from_v6(udp6(src=f"fd00:db8::{i + 1:x}"), 0.0), Side.V4)
    err = IPv6(one(nat.from_v6(udp6(src="fd00:db8::99"), 0.0), Side.V6))
    assert err[ICMPv6DestUnreach].code == 1
    assert nat.counters.dropped["session_cap"] == 1
    nat.expire(300.0)
    one(nat.from_v6(udp6(src="fd00:db8::99"), 300.0), Side.V4)  # room again after expiry


def test_udp_expiry_with_fake_clock_and_refresh():
    nat = make(timeouts=Timeouts(udp=30.0))
    one(nat.from_v6(udp6(), 0.0), Side.V4)
    assert nat.expire(29.0) == 0
    one(nat.from_v6(udp6(), 29.0), Side.V4)
    assert nat.expire(58.0) == 0
    assert nat.expire(59.0) == 1
    assert len(nat.table.bib) == 0 and nat.counters.sessions_expired == 1


def test_mappings_and_counters_listing():
    nat = make()
    out4 = IP(one(nat.from_v6(udp6(data=b"12345"), 10.0), Side.V4))
    nat.from_v4(raw(IP(src=SERVER, dst=POOL) / UDP(sport=7, dport=out4[UDP].sport) / Raw(b"abc")), 11.0)
    (row,) = nat.mappings(15.0)
    assert row["protocol"] == "UDP" and row["v6_src"] == HOST and row["v6_src_port"] == 5000
    assert row["v4_pool"] == POOL and row["v4_pool_port"] == out4[UDP].sport
    assert row["dst"] == SERVER and row["v6_dst"] == SERVER6 and row["dst_port"] == 7
    assert row["age"] == 5.0 and row["packets_6to4"] == 1 and row["packets_4to6"] == 1
    assert row["bytes_6to4"] == 40 + 8 + 5 and row["bytes_4to6"] == 20 + 8 + 3


# --- well-known prefix ---------------------------------------------------------------------------


def test_well_known_prefix_translates_global_destinations():
    nat = Nat64("64:ff9b::/96", ["198.51.100.1"])
    e = IPv6(src=HOST, dst="64:ff9b::1.1.1.1") / ICMPv6EchoRequest(id=5)
    out = IP(one(nat.from_v6(raw(e), 0.0), Side.V4))
    assert out.dst == "1.1.1.1"


@pytest.mark.parametrize("dst", ["10.1.2.3", "192.168.1.1", "100.64.0.10", "127.0.0.1", "172.16.0.1"])
def test_well_known_prefix_refuses_non_global_destinations(dst):
    nat = Nat64("64:ff9b::/96", ["198.51.100.1"])
    pkt = IPv6(src=HOST, dst=f"64:ff9b::{dst}") / UDP(sport=1, dport=2) / Raw(b"x")
    err = IPv6(one(nat.from_v6(raw(pkt), 0.0), Side.V6))
    assert err[ICMPv6DestUnreach].code == 1
    assert nat.counters.dropped["non_global_destination"] == 1 and len(nat.table) == 0


def test_well_known_prefix_drops_non_global_ipv4_sources():
    nat = Nat64("64:ff9b::/96", ["198.51.100.1"], endpoint_independent_filtering=True)
    out4 = IP(one(nat.from_v6(raw(IPv6(src=HOST, dst="64:ff9b::1.1.1.1") / UDP(sport=1, dport=2)), 0.0),
                  Side.V4))
    pkt = IP(src="10.0.0.1", dst="198.51.100.1") / UDP(sport=2, dport=out4[UDP].sport)
    assert nat.from_v4(raw(pkt), 0.0) == []
    assert nat.counters.dropped["non_global_source"] == 1


# --- junk ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x60", b"\x45" + b"\0" * 10, raw(IPv6(src=HOST, dst=SERVER6, plen=500) / UDP()),
     raw(IPv6(src=HOST, dst="2001:db8:99::1") / UDP()), raw(IPv6(src=HOST, dst=SERVER6, nh=47) / Raw(b"gre"))],
)
def test_bad_ipv6_input_is_a_counted_drop(junk):
    nat = make()
    assert nat.from_v6(junk, 0.0) == []
    assert sum(nat.counters.dropped.values()) == 1
    assert nat.counters.dropped["internal_error"] == 0


def test_parse_helper_matches_side():
    assert isinstance(parse(udp6()), IPv6)


def test_only_a_translator_with_state_needs_expiry_wakeups():
    """The runners sleep while nothing can expire (an idle border router must not wake every second)."""
    nat = make()
    assert not nat.expiring()
    one(nat.from_v6(udp6(), 0.0), Side.V4)
    assert nat.expiring()
    nat.expire(10_000.0)
    assert not nat.expiring()


@given(st.lists(st.tuples(st.sampled_from(["udp", "syn", "ack", "rst", "expire"]), st.integers(0, 3),
                          st.floats(0, 400)), max_size=30))
def test_the_next_expiry_never_comes_after_a_session_expires(steps):
    """The datapath thread sleeps until next_expiry(): a session must never outlive it unexpired."""
    nat = make()
    now = 0.0
    for kind, source, dt in steps:
        now += dt
        if kind == "expire":
            nat.expire(now)
        elif kind == "udp":
            nat.from_v6(udp6(sport=6000 + source), now)
        else:
            nat.from_v6(_tcp6({"syn": "S", "ack": "A", "rst": "R"}[kind], sport=41000 + source), now)
        sessions = [s.expires for s in nat.table.by6.values()]
        if sessions:
            assert nat.next_expiry() is not None and nat.next_expiry() <= min(sessions)
