"""DNS64 server end to end on loopback: test authoritative server -> DNS64 -> dnspython client."""

from __future__ import annotations

import asyncio
import socket
import struct
from ipaddress import IPv6Address

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from devtools.dns_zone import Unbound, ZoneServer
from nat64.dns64 import Dns64Config, Dns64Server
from nat64.dns64 import server as server_module

LOOPS = ["python"] + (["native"] if server_module._native_serve is not None else [])

BIG = "\n".join(f"big A 93.184.217.{i}" for i in range(1, 61))
ZONE = f"""
$TTL 300
@ SOA ns host 1 3600 600 86400 60
@ NS ns
ns A 93.184.216.1
v4only A 93.184.216.34
short 20 A 93.184.216.40
dual A 93.184.216.35
dual AAAA 2001:db8::35
mapped AAAA ::ffff:93.184.216.36
mapped A 93.184.216.36
alias CNAME alias2
alias2 CNAME v4only
private A 10.1.2.3
{BIG}
"""
REVERSE = """
$TTL 300
@ SOA ns.example.test. host.example.test. 1 3600 600 86400 60
@ NS ns.example.test.
34 PTR v4only.example.test.
"""
ZONES = {"example.test.": ZONE, "216.184.93.in-addr.arpa.": REVERSE}


class FrozenClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True, params=LOOPS)
def udp_loop(request, monkeypatch) -> str:
    """Every test runs with the Python UDP loop and with the native one (nat64/dns64/_udpfast.c)."""
    if request.param == "python":
        monkeypatch.setattr(server_module, "_native_serve", None)
    return request.param


@pytest.fixture
async def zone():
    async with ZoneServer(ZONES) as z:
        yield z


def config(zone: ZoneServer, **kw) -> Dns64Config:
    base = dict(
        upstreams=[zone.address],
        listen=[("::1", 0), ("127.0.0.1", 0)],
        allowed=["::1/128", "fd00::/8"],
        timeout=1.0,
    )
    base.update(kw)
    return Dns64Config(**base)


@pytest.fixture
async def server(zone):
    s = Dns64Server(config(zone))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def port(server: Dns64Server, host: str = "::1") -> int:
    return next(p for a, p in server.addresses if a == host)


async def ask(server, name, rdtype="AAAA", host="::1", tcp=False, **kw) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    query = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await query(q, host, port=port(server, host), timeout=3)


def aaaa(r: dns.message.Message) -> list[str]:
    return sorted(rd.address for rr in r.answer if rr.rdtype == dns.rdatatype.AAAA for rd in rr)


async def raw_udp(data: bytes, host: str, port_: int, timeout: float = 0.5) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_sendto(s, data, (host, port_))
        try:
            return await asyncio.wait_for(loop.sock_recv(s, 65535), timeout)
        except TimeoutError:
            return None


async def test_a_only_name_is_synthesized_and_dual_stack_is_not(server):
    assert aaaa(await ask(server, "v4only.example.test")) == ["64:ff9b::5db8:d822"]
    assert aaaa(await ask(server, "dual.example.test")) == ["2001:db8::35"]
    assert aaaa(await ask(server, "mapped.example.test")) == ["64:ff9b::5db8:d824"]
    r = await ask(server, "private.example.test")
    assert r.rcode() == dns.rcode.NOERROR and aaaa(r) == []
    assert server.counters()["resolver_synthesized"] == 2


async def test_cname_chain_is_kept_and_nxdomain_stays(server):
    r = await ask(server, "alias.example.test")
    assert [dns.rdatatype.to_text(rr.rdtype) for rr in r.answer] == ["CNAME", "CNAME", "AAAA"]
    assert aaaa(r) == ["64:ff9b::5db8:d822"]
    r = await ask(server, "nope.example.test")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_synthesized_ttl_follows_a_ttl_and_soa_minimum(server):
    assert (await ask(server, "v4only.example.test")).answer[0].ttl == 60  # SOA minimum 60 < A TTL 300
    assert (await ask(server, "short.example.test")).answer[0].ttl == 20  # A TTL 20 < 60


async def test_client_outside_allowed_networks_is_refused(server):
    r = await ask(server, "v4only.example.test", host="127.0.0.1")
    assert r.rcode() == dns.rcode.REFUSED and not r.answer
    r = await ask(server, "v4only.example.test", host="127.0.0.1", tcp=True)
    assert r.rcode() == dns.rcode.REFUSED
    assert server.counters()["refused"] == 2


async def test_truncated_upstream_answer_falls_back_to_tcp_and_client_gets_tc(server, zone):
    r = await ask(server, "big.example.test")
    assert r.flags & dns.flags.TC and not r.answer
    assert zone.count("big.example.test", "A", "tcp") == 1
    r = await ask(server, "big.example.test", tcp=True)
    assert len(aaaa(r)) == 60 and not r.flags & dns.flags.TC
    assert IPv6Address("64:ff9b::5db8:d901") in map(IPv6Address, aaaa(r))
    r = await ask(server, "big.example.test", use_edns=0, payload=4096)
    assert len(aaaa(r)) == 60 and r.payload == 4096
    assert server.counters()["upstream_tcp_fallbacks"] >= 1 and server.counters()["truncated"] == 1


async def test_repeated_and_negative_queries_are_answered_from_cache(server, zone):
    for _ in range(3):
        await ask(server, "v4only.example.test")
        await ask(server, "nope.example.test")
    assert zone.count("v4only.example.test", "AAAA") == 1
    assert zone.count("v4only.example.test", "A") == 1
    assert zone.count("nope.example.test", "AAAA") == 1
    c = server.counters()
    assert c["fastpath_hits"] == 4 and c["cache_inserts"] == 2
    entries = {e["name"]: e for e in server.cache_entries()}
    assert entries["nope.example.test."]["negative"] and entries["nope.example.test."]["rcode"] == "NXDOMAIN"
    assert 0 < entries["nope.example.test."]["ttl"] <= 60
    assert entries["v4only.example.test."]["records"] == ["v4only.example.test. 60 IN AAAA 64:ff9b::5db8:d822"]


async def test_fast_path_answer_is_byte_identical_except_id_and_keeps_client_case(zone):
    s = Dns64Server(config(zone), clock=FrozenClock())
    await s.start()
    try:
        p = port(s)
        q = dns.message.make_query("alias.example.test", "AAAA", use_edns=0, payload=1232, id=1).to_wire()
        first = await raw_udp(q, "::1", p, 3)
        second = await raw_udp(struct.pack("!H", 2) + q[2:], "::1", p, 3)
        assert first is not None and second is not None
        assert first[:2] == b"\x00\x01" and second[:2] == b"\x00\x02" and first[2:] == second[2:]
        assert s.counters()["fastpath_hits"] == 1
        mixed = dns.message.make_query("ALIAS.Example.TEST", "AAAA", use_edns=0, payload=1232, id=3)
        third = await raw_udp(mixed.to_wire(), "::1", p, 3)
        assert s.counters()["fastpath_hits"] == 2
        r = dns.message.from_wire(third)
        assert mixed.is_response(r) and r.question[0].name.to_text() == "ALIAS.Example.TEST."
        assert aaaa(r) == ["64:ff9b::5db8:d822"]
    finally:
        await s.stop()


async def test_a_burst_of_repeats_from_several_clients_is_answered_id_by_id(zone, udp_loop):
    """What the UDP loop does per batch: hits answered with their own IDs, a new client, a client
    outside the allowed networks, datagrams too short for a header and another name all in one burst."""
    s = Dns64Server(config(zone, allowed=["::1/128"]), clock=FrozenClock())
    await s.start()
    loop = asyncio.get_running_loop()
    try:
        p, p4 = port(s), port(s, "127.0.0.1")
        q = dns.message.make_query("v4only.example.test", "AAAA", use_edns=0, payload=1232, id=0).to_wire()
        other = dns.message.make_query("dual.example.test", "AAAA", id=7).to_wire()
        assert await raw_udp(q, "::1", p, 3) is not None  # cached, and ::1 known good
        socks = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(3)]
        v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for sk in (*socks, v4):
                sk.setblocking(False)
            for i in range(40):  # one burst: the server reads it in batches
                socks[i % 3].sendto(struct.pack("!H", 1000 + i) + q[2:], ("::1", p))
            socks[0].sendto(b"\x01", ("::1", p))
            socks[1].sendto(other, ("::1", p))
            v4.sendto(q, ("127.0.0.1", p4))
            got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
            deadline = loop.time() + 5
            while sum(map(len, got.values())) < 41 and loop.time() < deadline:
                await asyncio.sleep(0.02)
                for n, sk in enumerate(socks):
                    while True:
                        try:
                            got[n].append(sk.recv(65535))
                        except BlockingIOError:
                            break
            await asyncio.sleep(0.2)
            refused = dns.message.from_wire(v4.recv(65535))  # outside the allowed networks: not from cache
            assert refused.rcode() == dns.rcode.REFUSED and not refused.answer
        finally:
            for sk in (*socks, v4):
                sk.close()
        answers = [a for n in got for a in got[n]]
        hits = sorted(struct.unpack("!H", a[:2])[0] for a in answers if a[2:] == answers[0][2:])
        assert hits == list(range(1000, 1040))
        dual = [dns.message.from_wire(a) for a in answers if a[:2] == b"\x00\x07"]
        assert len(dual) == 1 and aaaa(dual[0]) == ["2001:db8::35"]
        c = s.counters()
        assert c["fastpath_hits"] == 40 and c["refused"] == 1
        assert s.fast_path == udp_loop
    finally:
        await s.stop()


async def test_edns_payload_and_do_bit_are_kept(server, zone):
    r = await ask(server, "v4only.example.test", use_edns=0, payload=1400, want_dnssec=True)
    assert r.edns == 0 and r.payload == 1400 and r.ednsflags & dns.flags.DO
    assert zone.last_query is not None and zone.last_query.edns == 0
    assert zone.last_query.ednsflags & dns.flags.DO
    r = await ask(server, "dual.example.test")
    assert r.edns < 0 and zone.last_query.edns < 0


async def test_checking_disabled_returns_upstream_answer_unsynthesized(server, zone):
    q = dns.message.make_query("v4only.example.test", "AAAA")
    q.flags |= dns.flags.CD
    r = await dns.asyncquery.udp(q, "::1", port=port(server), timeout=3)
    assert r.rcode() == dns.rcode.NOERROR and aaaa(r) == [] and r.flags & dns.flags.CD
    assert zone.count("v4only.example.test", "A") == 0


async def test_ptr_under_prefix_answers_cname_to_in_addr_arpa(server):
    name = IPv6Address("64:ff9b::5db8:d822").reverse_pointer
    r = await ask(server, name, "PTR")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    assert r.answer[0][0].target.to_text() == "34.216.184.93.in-addr.arpa."
    ptr = [rd.target.to_text() for rr in r.answer if rr.rdtype == dns.rdatatype.PTR for rd in rr]
    assert ptr == ["v4only.example.test."]


async def test_upstream_fallback_and_servfail_when_all_fail(zone):
    async with ZoneServer(ZONES) as dead, ZoneServer(ZONES) as broken:
        dead.mode, broken.mode = "drop", "servfail"
        s = Dns64Server(config(zone, upstreams=[dead.address, broken.address, zone.address], timeout=0.3))
        await s.start()
        try:
            assert aaaa(await ask(s, "v4only.example.test")) == ["64:ff9b::5db8:d822"]
            c = s.counters()
            assert c["upstream_timeouts"] == 2 and c["upstream_failed_rcodes"] == 2  # AAAA and A each
            await s.reload(config(zone, upstreams=[dead.address, broken.address], timeout=0.3))
            r = await ask(s, "dual.example.test")
            assert r.rcode() == dns.rcode.SERVFAIL
        finally:
            await s.stop()


async def test_bad_queries_get_errors_or_drops_and_server_survives(server):
    p = port(server)
    good = dns.message.make_query("dual.example.test", "AAAA", id=99).to_wire()
    assert await raw_udp(b"\x00\x01garbage", "::1", p) is None  # no header: dropped
    response = bytearray(good)
    response[2] |= 0x80
    assert await raw_udp(bytes(response), "::1", p) is None  # QR=1: never answered
    formerr = await raw_udp(good[:20], "::1", p)
    assert formerr is not None and dns.message.from_wire(formerr).rcode() == dns.rcode.FORMERR
    two = dns.message.make_query("dual.example.test", "AAAA")
    two.question.append(dns.message.make_query("v4only.example.test", "AAAA").question[0])
    r = dns.message.from_wire(await raw_udp(two.to_wire(), "::1", p))
    assert r.rcode() == dns.rcode.FORMERR
    notify = dns.message.make_query("dual.example.test", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    r = dns.message.from_wire(await raw_udp(notify.to_wire(), "::1", p))
    assert r.rcode() == dns.rcode.NOTIMP
    axfr = await raw_udp(dns.message.make_query("example.test", "AXFR").to_wire(), "::1", p)
    assert dns.message.from_wire(axfr).rcode() == dns.rcode.NOTIMP
    c = server.counters()
    assert c["dropped"] == 2 and c["formerr"] == 2 and c["notimp"] == 2 and c["internal_errors"] == 0
    assert aaaa(dns.message.from_wire(await raw_udp(good, "::1", p, 3))) == ["2001:db8::35"]


async def test_tcp_connections_are_capped_and_time_out_when_idle(zone):
    s = Dns64Server(config(zone, tcp_idle_timeout=1.0, tcp_max_connections=2))
    await s.start()
    conns = []
    try:
        for _ in range(2):
            conns.append(await asyncio.open_connection("::1", port(s)))
        await asyncio.sleep(0.05)
        r3, w3 = await asyncio.open_connection("::1", port(s))
        conns.append((r3, w3))
        assert await asyncio.wait_for(r3.read(), 2) == b""  # closed at once
        assert s.counters()["tcp_rejected"] == 1
        for r, _ in conns[:2]:
            assert await asyncio.wait_for(r.read(), 5) == b""  # idle timeout closes
        assert s.counters()["tcp_idle_timeouts"] == 2
        # Pipelined queries on one connection are all answered.
        r, w = await asyncio.open_connection("::1", port(s))
        conns.append((r, w))
        for i, name in enumerate(["v4only", "dual"]):
            q = dns.message.make_query(f"{name}.example.test", "AAAA", id=i).to_wire()
            w.write(struct.pack("!H", len(q)) + q)
        ids = set()
        for _ in range(2):
            (n,) = struct.unpack("!H", await asyncio.wait_for(r.readexactly(2), 3))
            ids.add(dns.message.from_wire(await r.readexactly(n)).id)
        assert ids == {0, 1}
    finally:
        for _, w in conns:
            w.close()
        await s.stop()


async def test_reload_changes_prefix_allowed_and_listen(server, zone):
    assert aaaa(await ask(server, "v4only.example.test")) == ["64:ff9b::5db8:d822"]
    old_port, v4_port = port(server), port(server, "127.0.0.1")
    await server.reload(
        config(zone, prefix="2001:db8:64::/96", allowed=["::1/128", "127.0.0.0/8"], listen=[("::1", 0)])
    )
    assert aaaa(await ask(server, "v4only.example.test")) == ["2001:db8:64::5db8:d822"]
    assert aaaa(await ask(server, "private.example.test")) == ["2001:db8:64::a01:203"]
    assert server.addresses == [("::1", old_port)]  # kept; the IPv4 listener is gone
    assert await raw_udp(dns.message.make_query("x.test", "A").to_wire(), "127.0.0.1", v4_port, 0.3) is None
    await server.reload(config(zone, allowed=["127.0.0.0/8"], listen=[("::1", 0), ("127.0.0.1", 0)]))
    r = await ask(server, "v4only.example.test", host="127.0.0.1")
    assert aaaa(r) == ["64:ff9b::5db8:d822"]


@pytest.mark.skipif(Unbound.available() is None, reason="unbound is not installed")
async def test_behind_unbound_forwarder(zone):
    async with Unbound(("127.0.0.1", zone.port)) as unbound:
        s = Dns64Server(config(zone, upstreams=[f"127.0.0.1:{unbound.port}"]))
        await s.start()
        try:
            r = await ask(s, "alias.example.test")
            assert [dns.rdatatype.to_text(rr.rdtype) for rr in r.answer] == ["CNAME", "CNAME", "AAAA"]
            assert aaaa(r) == ["64:ff9b::5db8:d822"]
            assert aaaa(await ask(s, "dual.example.test")) == ["2001:db8::35"]
            assert (await ask(s, "nope.example.test")).rcode() == dns.rcode.NXDOMAIN
            r = await ask(s, "big.example.test", tcp=True)
            assert len(aaaa(r)) == 60
        finally:
            await s.stop()
