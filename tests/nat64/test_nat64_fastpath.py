"""The established-flow fast path gives byte-identical results to the full translation path.

Every case runs the same packets through two translators with the same seed, one with the fast path
and one without, and compares outputs, counters and session rows; the fast path must actually be taken.
Every case runs twice: with the native fast path (nat64/_fastpath.c) and with its Python reference.
"""

from __future__ import annotations

import random
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.checksum import checksum, pseudo_sum_v4, pseudo_sum_v6
from nat64 import Caps, Nat64, Side, Timeouts
from nat64.packets import build_ipv4, build_ipv6
from tests.nat64.helpers import HOST, POOL, PREFIX, SERVER, checksums_ok

POOL4 = IPv4Address(POOL).packed
SERVER4 = IPv4Address(SERVER).packed
HOSTS = [IPv6Address(HOST).packed, IPv6Address("fd00:db8::2").packed, IPv6Address("fd00:db8::3").packed]
ACK, PSH_ACK, FIN_ACK, RST, SYN, SYN_ACK = 0x10, 0x18, 0x11, 0x04, 0x02, 0x12


pytestmark = pytest.mark.usefixtures("fast_path_impl")


def make(fast: bool, **kw) -> Nat64:
    return Nat64(PREFIX, [POOL], rng=random.Random(7), fast_path=fast, **kw)


def transport(proto: int, sport: int, dport: int, body: bytes, flags: int, pseudo: int, ck: int | None) -> bytes:
    """A UDP or TCP segment; ``ck`` None computes the right checksum, otherwise it is written as given."""
    if proto == 17:
        seg = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
        off = 6
    else:
        seg = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4, flags, 65535, 0, 0) + body
        off = 16
    if ck is None:
        ck = checksum(seg, pseudo) or (0xFFFF if proto == 17 else 0)
    return seg[:off] + ck.to_bytes(2, "big") + seg[off + 2 :]


def v6_packet(nat: Nat64, src: bytes, proto: int, sport: int, dport: int, body: bytes, *, flags: int = ACK,
              hlim: int = 64, tc: int = 0, ck: int | None = None) -> bytes:
    dst = nat.prefix.embed_packed(SERVER4)
    seg = transport(proto, sport, dport, body, flags, pseudo_sum_v6(src, dst, proto, 8 + len(body)
                                                                     if proto == 17 else 20 + len(body)), ck)
    return build_ipv6(src, dst, proto, seg, hop_limit=hlim, traffic_class=tc)


def v4_packet(proto: int, sport: int, pool_port: int, body: bytes, *, flags: int = ACK, ttl: int = 64,
              tos: int = 0, df: bool = False, ck: int | None = None, ident: int = 0) -> bytes:
    length = 8 + len(body) if proto == 17 else 20 + len(body)
    seg = transport(proto, sport, pool_port, body, flags, pseudo_sum_v4(SERVER4, POOL4, proto, length), ck)
    return build_ipv4(SERVER4, POOL4, proto, seg, ttl=ttl, tos=tos, identification=ident,
                      flags_offset=0x4000 if df else 0)


class Pair:
    """The same traffic through a fast and a slow translator, compared packet by packet."""

    def __init__(self, **kw) -> None:
        self.fast = make(True, **kw)
        self.slow = make(False, **kw)
        self.now = 0.0
        assert self.fast.fast is not None
        self.native = self.fast.fast.native

    def v6(self, packet: bytes):
        a, b = self.fast.from_v6(packet, self.now), self.slow.from_v6(packet, self.now)
        assert a == b
        return a

    def v4(self, packet: bytes):
        a, b = self.fast.from_v4(packet, self.now), self.slow.from_v4(packet, self.now)
        assert a == b
        return a

    def expire(self, now: float) -> None:
        self.now = now
        assert self.fast.expire(now) == self.slow.expire(now)

    def check_state(self) -> None:
        assert self.fast.counters.as_dict() == self.slow.counters.as_dict()
        assert self.fast.mappings(self.now) == self.slow.mappings(self.now)
        assert self.slow.fast is None


def open_flow(pair: Pair, src: bytes, proto: int, sport: int, dport: int) -> int:
    """Open a flow (TCP through the handshake to ESTABLISHED); returns the pool port."""
    out = pair.v6(v6_packet(pair.fast, src, proto, sport, dport, b"open", flags=SYN))
    assert len(out) == 1 and out[0].side is Side.V4
    pool_port = int.from_bytes(out[0].packet[20:22], "big")
    if proto == 6:
        assert pair.v4(v4_packet(6, dport, pool_port, b"", flags=SYN_ACK))
        assert pair.v6(v6_packet(pair.fast, src, 6, sport, dport, b"", flags=ACK))
    return pool_port


SIZES = st.one_of(st.integers(0, 1600),  # whole packet length, IPv6 or IPv4
                  # around the 1260-byte DF threshold, the 1280/1400/1500-byte MTUs of either side
                  st.sampled_from([1259, 1260, 1261, 1279, 1280, 1281, 1299, 1300, 1301, 1419, 1420, 1421,
                                   1479, 1480, 1481, 1499, 1500, 1501, 1519, 1520, 1521]))
PACKET = st.fixed_dictionaries({
    "flow": st.integers(0, 2),
    "v4": st.booleans(),
    "size": SIZES,
    # mostly the flow's usual hop limit/TTL (a template per value), sometimes the edges
    "hop": st.one_of(st.just(64), st.just(64), st.just(64), st.sampled_from([0, 1, 2, 255]), st.integers(0, 255)),
    "tc": st.sampled_from([0, 1, 2, 3, 0xB8, 0xFF]),
    "flags": st.sampled_from([ACK, ACK, PSH_ACK, PSH_ACK, FIN_ACK, RST, SYN]),
    "df": st.booleans(),
    "ck": st.one_of(st.none(), st.none(), st.sampled_from([0, 1, 0xFFFF, 0xFFFE])),
    "damage": st.sampled_from([None, None, None, None, "trailing", "short", "ihl", "hdr_checksum", "frag"]),
    "dt": st.sampled_from([0.0, 0.0, 0.5, 30.0, 299.0, 301.0]),
    "expire": st.booleans(),
})


def damage(packet: bytes, how: str | None, v4: bool) -> bytes:
    if how == "trailing":
        return packet + b"\x00\x01"
    if how == "short":
        return packet[:-1]
    if not v4:
        return packet
    b = bytearray(packet)
    if how == "ihl":  # options: a 24-byte header with a no-op option, total length and checksum kept right
        b = bytearray(packet[:20] + b"\x01\x01\x01\x00" + packet[20:])
        b[0] = 0x46
        b[2:4] = (len(b)).to_bytes(2, "big")
    elif how == "frag":
        b[6] |= 0x20  # More Fragments
    if how in ("ihl", "frag", "hdr_checksum"):
        b[10:12] = b"\0\0"
        ihl = (b[0] & 0x0F) * 4
        b[10:12] = checksum(bytes(b[:ihl])).to_bytes(2, "big")
    if how == "hdr_checksum":
        b[11] ^= 0x5A
    return bytes(b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protos=st.lists(st.sampled_from([6, 17]), min_size=3, max_size=3),
       ports=st.lists(st.integers(1024, 65535), min_size=3, max_size=3, unique=True),
       ipv4_mtu=st.sampled_from([1280, 1400, 1500]), ipv6_mtu=st.sampled_from([1280, 1500]),
       packets=st.lists(PACKET, min_size=1, max_size=25))
def test_random_established_flows_translate_identically(protos, ports, ipv4_mtu, ipv6_mtu, packets):
    pair = Pair(ipv4_mtu=ipv4_mtu, ipv6_mtu=ipv6_mtu)
    flows = []
    for i in range(3):
        pool_port = open_flow(pair, HOSTS[i], protos[i], ports[i], 80 + i)
        flows.append((HOSTS[i], protos[i], ports[i], 80 + i, pool_port))
    for p in packets:
        src, proto, sport, dport, pool_port = flows[p["flow"]]
        if p["v4"]:
            body = b"r" * max(0, p["size"] - (28 if proto == 17 else 40))
            pkt = v4_packet(proto, dport, pool_port, body, flags=p["flags"], ttl=p["hop"], tos=p["tc"], df=p["df"],
                            ck=p["ck"], ident=len(body))
            outs = pair.v4(damage(pkt, p["damage"], True))
        else:
            body = b"q" * max(0, p["size"] - (48 if proto == 17 else 60))
            pkt = v6_packet(pair.fast, src, proto, sport, dport, body, flags=p["flags"], hlim=p["hop"], tc=p["tc"],
                            ck=p["ck"])
            outs = pair.v6(damage(pkt, p["damage"], False))
        if outs and p["ck"] is None and p["damage"] is None and p["size"] < 1200:
            assert all(checksums_ok(o.packet) for o in outs)
        pair.now += p["dt"]
        if p["expire"]:
            pair.expire(pair.now)
    pair.check_state()


def test_fast_path_is_taken_for_plain_established_traffic(fast_path_impl):
    pair = Pair()
    assert pair.native == (fast_path_impl == "native")
    udp_port = open_flow(pair, HOSTS[0], 17, 5000, 53)
    tcp_port = open_flow(pair, HOSTS[1], 6, 6000, 443)
    hits = pair.fast.fast.hits
    for i in range(10):
        pair.v6(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"query %d" % i))
        pair.v4(v4_packet(17, 53, udp_port, b"answer %d" % i))
        pair.v6(v6_packet(pair.fast, HOSTS[1], 6, 6000, 443, b"GET %d" % i, flags=PSH_ACK))
        pair.v4(v4_packet(6, 443, tcp_port, b"200 OK %d" % i, flags=PSH_ACK))
    assert pair.fast.fast.hits - hits == 39  # all but the first UDP answer, which teaches the IPv4 side
    pair.check_state()
    rows = {m["protocol"]: m for m in pair.fast.mappings(pair.now)}
    assert rows["UDP"]["packets_6to4"] == 11 and rows["UDP"]["packets_4to6"] == 10
    assert rows["TCP"]["packets_6to4"] == 12 and rows["TCP"]["packets_4to6"] == 11
    assert pair.fast.status()["fast_path_flows"] == 4


def test_every_incoming_checksum_value_gives_the_same_output():
    """Exhaustive over the 16-bit transport checksum, including the ones that translate to 0/0xFFFF."""
    pair = Pair()
    udp_port = open_flow(pair, HOSTS[0], 17, 5000, 53)
    tcp_port = open_flow(pair, HOSTS[1], 6, 6000, 443)
    before = pair.fast.fast.hits
    for ck in range(0x10000):
        if ck % 7 == 0:
            pair.v6(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"x", ck=ck))
            pair.v4(v4_packet(6, 443, tcp_port, b"y", ck=ck))
        else:
            pair.v4(v4_packet(17, 53, udp_port, b"y", ck=ck))
            pair.v6(v6_packet(pair.fast, HOSTS[1], 6, 6000, 443, b"x", ck=ck))
    assert pair.fast.fast.hits - before == 2 * 0x10000 - 2  # all but the two zero UDP checksums
    pair.check_state()


def test_ipv4_identification_is_shared_with_the_slow_path():
    pair = Pair()
    open_flow(pair, HOSTS[0], 17, 5000, 53)
    idents = []
    for i in range(6):  # alternate fast (established) and slow (new flows) packets
        out = pair.v6(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"a"))
        idents.append(int.from_bytes(out[0].packet[4:6], "big"))
        out = pair.v6(v6_packet(pair.fast, HOSTS[2], 17, 7000 + i, 53, b"b"))
        idents.append(int.from_bytes(out[0].packet[4:6], "big"))
    assert idents == list(range(idents[0], idents[0] + 12))


def test_fast_path_flow_is_refreshed_while_active_and_expires_when_idle():
    pair = Pair(timeouts=Timeouts(udp=10.0))
    port = open_flow(pair, HOSTS[0], 17, 5000, 53)
    for t in (8.0, 16.0, 24.0):  # each packet, through the fast path, pushes the lifetime on
        pair.now = t
        pair.v4(v4_packet(17, 53, port, b"keepalive"))
        pair.expire(t + 9.0)
        pair.now = t
        assert len(pair.fast.table) == 1
    assert pair.fast.mappings(24.0)[0]["expires_in"] == 10.0
    assert len(pair.fast.fast) == 2
    pair.expire(34.0)  # idle for the whole timeout: the session and its templates go
    assert len(pair.fast.table) == 0 and len(pair.fast.fast) == 0
    assert pair.fast.counters.sessions_expired == 1
    # the next packet opens a new session through the slow path, which relearns the flow
    pair.v6(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"again"))
    assert pair.fast.counters.sessions_created == 2 and len(pair.fast.fast) == 1
    pair.check_state()


def test_new_timeouts_apply_to_fast_path_flows():
    pair = Pair(timeouts=Timeouts(udp=10.0))
    open_flow(pair, HOSTS[0], 17, 5000, 53)
    for nat in (pair.fast, pair.slow):  # what the daemon's reload does
        nat.table.timeouts = Timeouts(udp=100.0)
    pair.v6(v6_packet(pair.fast, HOSTS[0], 17, 5000, 53, b"x"))
    assert pair.fast.mappings(0.0)[0]["expires_in"] == 100.0
    pair.check_state()


def test_tcp_fin_and_rst_leave_the_fast_path_and_move_the_state():
    pair = Pair(timeouts=Timeouts(tcp_transitory=4.0))
    port = open_flow(pair, HOSTS[0], 6, 6000, 443)
    pair.v6(v6_packet(pair.fast, HOSTS[0], 6, 6000, 443, b"data", flags=PSH_ACK))
    hits = pair.fast.fast.hits
    pair.v6(v6_packet(pair.fast, HOSTS[0], 6, 6000, 443, b"", flags=FIN_ACK))
    assert pair.fast.mappings(pair.now)[0]["state"] == "V6 FIN RCV"
    pair.v4(v4_packet(6, 443, port, b"", flags=FIN_ACK))
    assert pair.fast.mappings(pair.now)[0]["state"] == "V4 FIN + V6 FIN RCV"
    pair.now = 1.0  # a last ACK must not push the transitory lifetime on
    pair.v6(v6_packet(pair.fast, HOSTS[0], 6, 6000, 443, b"", flags=ACK))
    assert pair.fast.fast.hits == hits
    pair.expire(4.5)
    assert pair.fast.mappings(4.5) == []
    pair.check_state()


def test_rst_moves_an_established_fast_path_flow_to_trans():
    pair = Pair()
    port = open_flow(pair, HOSTS[0], 6, 6000, 443)
    pair.v4(v4_packet(6, 443, port, b"", flags=RST))
    assert pair.fast.mappings(0.0)[0]["state"] == "TRANS"
    pair.v6(v6_packet(pair.fast, HOSTS[0], 6, 6000, 443, b"more", flags=PSH_ACK))
    assert pair.fast.mappings(0.0)[0]["state"] == "ESTABLISHED"
    pair.check_state()


def test_templates_stay_bounded():
    pair = Pair(caps=Caps(max_sessions=8, max_sessions_per_source=8))
    for i in range(8):
        open_flow(pair, HOSTS[0], 17, 5000 + i, 53)
        for hlim in range(2, 40):  # a hop limit per packet: one template each
            pair.v6(v6_packet(pair.fast, HOSTS[0], 17, 5000 + i, 53, b"x", hlim=hlim))
    assert len(pair.fast.fast.v6) <= pair.fast.fast.max_flows == 2 * 8 + 64
    pair.check_state()


def test_sizes_around_the_df_threshold_and_both_mtus_translate_identically():
    edges = sorted({e + d for e in (1260, 1280, 1400, 1500) for d in (-1, 0, 1)}
                   | {e + 20 + d for e in (1260, 1280, 1400, 1500) for d in (-1, 0, 1)})
    for ipv4_mtu in (1280, 1400, 1500):
        for ipv6_mtu in (1280, 1500):
            pair = Pair(ipv4_mtu=ipv4_mtu, ipv6_mtu=ipv6_mtu)
            ports = {p: open_flow(pair, HOSTS[0], p, 5000 + p, 80) for p in (17, 6)}
            hits = pair.fast.fast.hits
            for size in edges:
                for proto, port in ports.items():
                    head6, head4 = (48, 28) if proto == 17 else (60, 40)
                    outs = pair.v6(v6_packet(pair.fast, HOSTS[0], proto, 5000 + proto, 80, b"q" * (size - head6)))
                    assert outs and (outs[0].side is Side.V4) == (size - 20 <= ipv4_mtu)
                    for df in (False, True):
                        outs = pair.v4(v4_packet(proto, 80, port, b"r" * (size - head4), df=df))
                        assert len(outs) == (1 if size + 20 <= ipv6_mtu or df else 2)
            # fast: everything that fits, but the first UDP answer (it teaches the IPv4 side)
            fits6, fits4 = sum(s - 20 <= ipv4_mtu for s in edges), sum(s + 20 <= ipv6_mtu for s in edges)
            assert pair.fast.fast.hits - hits == 2 * fits6 + 4 * fits4 - 1
            pair.check_state()


def test_udp_and_tcp_on_the_same_addresses_and_ports_stay_apart():
    pair = Pair()
    ports = {p: open_flow(pair, HOSTS[0], p, 5000, 80) for p in (17, 6)}
    for i in range(5):
        for proto, port in ports.items():
            pair.v6(v6_packet(pair.fast, HOSTS[0], proto, 5000, 80, b"q%d" % i))
            pair.v4(v4_packet(proto, 80, port, b"r%d" % i))
    rows = {m["protocol"]: m for m in pair.fast.mappings(0.0)}
    assert rows["UDP"]["packets_4to6"] == rows["TCP"]["packets_4to6"] - 1 == 5
    pair.check_state()
