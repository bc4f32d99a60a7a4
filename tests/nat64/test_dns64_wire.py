"""Fast-path byte helpers, caches and the resolver with an in-memory upstream."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.dns_zone import ZoneServer
from nat64.dns64 import Dns64Config, Dns64Server, wire
from nat64.dns64.cache import MessageCache, WireEntry, answer_ttl
from nat64.dns64.resolver import Dns64Resolver
from nat64.dns64.synthesis import Dns64Policy

ZONE = """
$TTL 300
@ SOA ns host 1 3600 600 86400 60
@ NS ns
ns A 93.184.216.1
v4only A 93.184.216.34
dual A 93.184.216.35
dual AAAA 2001:db8::35
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def in_memory_upstream(zone: ZoneServer):
    async def forward(q: dns.message.Message) -> dns.message.Message | None:
        out = zone.handle(q.to_wire(), tcp=True)
        return None if out is None else dns.message.from_wire(out)

    return forward


# -- query_key ----------------------------------------------------------------------------------


def test_query_key_ignores_id_and_name_case_but_not_type():
    a = dns.message.make_query("Www.Example.TEST", "AAAA", id=1).to_wire()
    b = dns.message.make_query("www.example.test", "AAAA", id=2).to_wire()
    ka, kb = wire.query_key(a), wire.query_key(b)
    assert ka is not None and kb is not None and ka.key == kb.key
    # qtype 65 (HTTPS, bytes 00 41 = "\0A") and 97 (bytes 00 61) must not collide.
    k65 = wire.query_key(dns.message.make_query("x.test", 65).to_wire())
    k97 = wire.query_key(dns.message.make_query("x.test", 97).to_wire())
    assert k65 is not None and k97 is not None and k65.key != k97.key


def test_query_key_covers_edns_flags_and_payload():
    plain = wire.query_key(dns.message.make_query("x.test", "A").to_wire())
    edns = wire.query_key(dns.message.make_query("x.test", "A", use_edns=0, payload=1232).to_wire())
    do = wire.query_key(dns.message.make_query("x.test", "A", want_dnssec=True, payload=1232).to_wire())
    assert plain is not None and edns is not None and do is not None
    assert len({plain.key, edns.key, do.key}) == 3
    assert plain.limit == 512 and edns.limit == 1232
    cd = dns.message.make_query("x.test", "A")
    cd.flags |= dns.flags.CD
    assert wire.query_key(cd.to_wire()).key != plain.key


def test_query_key_ignores_edns_options_but_checks_them():
    plain = dns.message.make_query("x.test", "A", use_edns=0, id=1)
    cookie = dns.message.make_query("x.test", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"12345678")])
    assert wire.query_key(cookie.to_wire()).key == wire.query_key(plain.to_wire()).key
    broken = cookie.to_wire()[:-3]
    assert wire.query_key(broken) is None


def test_query_key_sends_unusual_queries_to_the_slow_path():
    response = dns.message.make_response(dns.message.make_query("x.test", "A"))
    assert wire.query_key(response.to_wire()) is None
    two = dns.message.make_query("x.test", "A")
    two.question.append(dns.message.make_query("y.test", "A").question[0])
    assert wire.query_key(two.to_wire()) is None


def test_ttl_offsets_find_every_ttl_and_aging_rewrites_them():
    r = dns.message.from_text(
        "id 5\nflags QR RD RA\n;QUESTION\nx.test. IN AAAA\n;ANSWER\nx.test. 100 IN CNAME y.test.\n"
        "y.test. 30 IN AAAA 2001:db8::1\ny.test. 30 IN AAAA 2001:db8::2\n;AUTHORITY\n"
        "test. 50 IN SOA ns. host. 1 2 3 4 5\n"
    )
    r.use_edns(0, 0, 1232)
    out = r.to_wire()
    offsets = wire.ttl_offsets(out)
    assert sorted(t for _, t in offsets) == [30, 30, 50, 100]
    buf = bytearray(out)
    wire.age_ttls(buf, offsets, 40)
    aged = dns.message.from_wire(bytes(buf))
    assert sorted(rr.ttl for rr in aged.answer + aged.authority) == [0, 10, 60]
    assert aged.edns == 0 and aged.payload == 1232


def test_error_reply_echoes_id_rd_and_question():
    q = dns.message.make_query("x.test", "A", id=4242)
    out = dns.message.from_wire(wire.error_reply(q.to_wire(), dns.rcode.REFUSED))
    assert q.is_response(out) and out.rcode() == dns.rcode.REFUSED and out.flags & dns.flags.RD


@given(st.binary(max_size=600))
@settings(max_examples=500)
def test_byte_helpers_never_raise_anything_but_their_error(data):
    wire.query_key(data)
    wire.question_end(data)
    if len(data) >= 12:
        assert len(wire.error_reply(data, 1)) >= 12
    try:
        offsets = wire.ttl_offsets(data)
    except wire.Dns64WireError:
        return
    assert all(0 <= off <= len(data) - 4 for off, _ in offsets)


@given(st.from_regex(r"[a-zA-Z0-9-]{1,20}(\.[a-zA-Z0-9-]{1,20}){0,3}", fullmatch=True), st.integers(1, 300))
def test_query_key_agrees_with_dnspython(name, rdtype):
    q = dns.message.make_query(name, rdtype).to_wire()
    k = wire.query_key(q)
    assert k is not None
    assert k.qend == len(q)
    assert k.key == q[2:12] + q[12 : k.qend - 4].lower() + q[k.qend - 4 :]
    upper = dns.message.make_query(name.upper(), rdtype).to_wire()
    assert wire.query_key(upper).key == k.key


# -- caches -------------------------------------------------------------------------------------


def msg(text: str) -> dns.message.Message:
    return dns.message.from_text("id 1\nflags QR RD RA\n" + text)


def test_answer_ttl_positive_negative_and_uncacheable():
    assert answer_ttl(msg(";QUESTION\nx. IN A\n;ANSWER\nx. 30 IN A 1.2.3.4\n")) == 30
    nodata = msg(";QUESTION\nx. IN A\n;ANSWER\n;AUTHORITY\n. 300 IN SOA a. b. 1 2 3 4 45\n")
    assert answer_ttl(nodata) == 45  # RFC 2308: min(SOA TTL, MINIMUM)
    assert answer_ttl(msg(";QUESTION\nx. IN A\n;ANSWER\n")) is None  # no SOA: not cached
    assert answer_ttl(msg("rcode SERVFAIL\n;QUESTION\nx. IN A\n")) is None


def test_message_cache_is_lru_bounded_and_expires():
    clock = Clock()
    cache = MessageCache(2, clock)
    for i in range(3):
        cache.put((b"k%d" % i, 1, 1, False, False), msg(f";QUESTION\nx. IN A\n;ANSWER\nx. {10 + i} IN A 1.2.3.4\n"))
    assert cache.evictions == 1 and cache.get((b"k0", 1, 1, False, False)) is None
    assert cache.get((b"k1", 1, 1, False, False)) is not None
    clock.now += 11
    assert cache.get((b"k1", 1, 1, False, False)) is None  # TTL 11 passed
    assert cache.get((b"k2", 1, 1, False, False)) is not None
    assert cache.expired == 1


# -- resolver with in-memory upstream ------------------------------------------------------------


@pytest.fixture
def zone():
    return ZoneServer({"example.test.": ZONE})


async def test_resolver_cd_returns_upstream_answer_without_synthesis(zone):
    resolver = Dns64Resolver(Dns64Policy(), in_memory_upstream(zone), MessageCache(10, Clock()))
    q = dns.message.make_query("v4only.example.test", "AAAA")
    q.flags |= dns.flags.CD
    r, _ = await resolver.resolve(q)
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert zone.count("v4only.example.test", "A") == 0
    r, _ = await resolver.resolve(dns.message.make_query("v4only.example.test", "AAAA"))
    assert [rd.address for rr in r.answer for rd in rr] == ["64:ff9b::5db8:d822"]


async def test_resolver_caches_and_coalesces(zone):
    import asyncio

    resolver = Dns64Resolver(Dns64Policy(), in_memory_upstream(zone), MessageCache(10, Clock()))
    qs = [dns.message.make_query("v4only.example.test", "AAAA") for _ in range(5)]
    await asyncio.gather(*(resolver.resolve(q) for q in qs))
    await resolver.resolve(qs[0])
    assert zone.count("v4only.example.test", "AAAA") == 1
    assert zone.count("v4only.example.test", "A") == 1


async def test_server_wire_path_ages_ttls_from_fast_path(zone):
    clock = Clock()
    server = Dns64Server(
        Dns64Config(upstreams=["127.0.0.1:9"], allowed=["::1/128"]), forward=in_memory_upstream(zone), clock=clock
    )
    q = dns.message.make_query("v4only.example.test", "AAAA", id=7).to_wire()
    first = await server.handle_wire(q, ("::1", 5353))
    clock.now += 25
    second = await server.handle_wire(struct.pack("!H", 8) + q[2:], ("::1", 5353))
    assert server.counters()["fastpath_hits"] == 1
    a, b = dns.message.from_wire(first), dns.message.from_wire(second)
    assert b.id == 8 and a.answer[0].ttl == 60 and b.answer[0].ttl == 35
    clock.now += 40  # past the TTL: resolved again
    await server.handle_wire(q, ("::1", 5353))
    assert zone.count("v4only.example.test", "A") == 2


async def test_fast_path_echoes_each_clients_name_spelling(zone):
    server = Dns64Server(
        Dns64Config(upstreams=["127.0.0.1:9"], allowed=["::1/128"]), forward=in_memory_upstream(zone), clock=Clock()
    )
    for name in ["V4ONLY.Example.TEST", "v4only.example.test", "v4ONLY.example.test"]:
        q = dns.message.make_query(name, "AAAA")
        r = dns.message.from_wire(await server.handle_wire(q.to_wire(), ("::1", 1)))
        assert q.is_response(r)
        assert r.question[0].name.to_text() == name + "."
        assert [rd.address for rr in r.answer for rd in rr] == ["64:ff9b::5db8:d822"]
    assert server.counters()["fastpath_hits"] == 2
    assert zone.count("v4only.example.test", "AAAA") == 1


async def test_edns_options_ride_the_fast_path_and_are_not_echoed(zone):
    server = Dns64Server(
        Dns64Config(upstreams=["127.0.0.1:9"], allowed=["::1/128"]), forward=in_memory_upstream(zone), clock=Clock()
    )
    plain = dns.message.make_query("dual.example.test", "AAAA", use_edns=0, payload=1232)
    cookie = dns.message.make_query(
        "dual.example.test", "AAAA", use_edns=0, payload=1232, options=[dns.edns.GenericOption(10, b"8bytes!!")]
    )
    first = dns.message.from_wire(await server.handle_wire(cookie.to_wire(), ("::1", 1)))
    second = dns.message.from_wire(await server.handle_wire(plain.to_wire(), ("::1", 1)))
    third = dns.message.from_wire(await server.handle_wire(cookie.to_wire(), ("::1", 1)))
    assert server.counters()["fastpath_hits"] == 2
    for r in (first, second, third):
        assert r.edns == 0 and r.payload == 1232 and r.options == ()
        assert [rd.address for rr in r.answer for rd in rr] == ["2001:db8::35"]


def test_upstream_parsing_and_resolv_conf_fallback(tmp_path):
    from nat64.dns64.config import Dns64ConfigError, parse_upstream

    assert parse_upstream("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_upstream("192.0.2.1:5353") == ("192.0.2.1", 5353)
    assert parse_upstream("2001:db8::1") == ("2001:db8::1", 53)
    assert parse_upstream("[2001:db8::1]:5353") == ("2001:db8::1", 5353)
    for bad in ["resolver.example", "192.0.2.1:0", "[2001:db8::1", "1.2.3.4:x"]:
        with pytest.raises(Dns64ConfigError):
            parse_upstream(bad)
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver fd00::53 # v6\nnameserver bogus\n")
    cfg = Dns64Config(resolv_conf=conf)
    assert cfg.upstream_addresses() == [("192.0.2.53", 53), ("fd00::53", 53)]
    assert Dns64Config(upstreams=["192.0.2.9:5300"], resolv_conf=conf).upstream_addresses() == [("192.0.2.9", 5300)]
    with pytest.raises(Dns64ConfigError):
        Dns64Config(prefix="2001:db8::/80")
    # A resolv.conf naming this server itself would make it forward to itself.
    conf.write_text("nameserver ::1\nnameserver 192.0.2.53\n")
    assert Dns64Config(listen=[("::1", 53)], resolv_conf=conf).upstream_addresses() == [("192.0.2.53", 53)]


def test_wire_entry_tail_is_the_aged_answer_until_its_age_changes_or_it_expires():
    q = dns.message.make_query("h.example.test", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("h.example.test.", 100, "IN", "A", "192.0.2.1"))
    out = r.to_wire()
    e = WireEntry(out, wire.ttl_offsets(out), stored=10.0, expires=12.5, limit=512)
    assert e.until == float("-inf")  # nothing rendered yet: the general path answers first
    aged = e.answer(11.2)
    assert e.tail == aged[2:] and dns.message.from_wire(aged).answer[0].ttl == 99
    assert e.until == 12.0  # the age in whole seconds changes then
    e.answer(12.1)
    assert e.until == 12.5  # capped at the expiry
    big = WireEntry(out, wire.ttl_offsets(out), stored=10.0, expires=20.0, limit=len(out) - 1)
    big.answer(10.0)
    assert big.until == float("-inf")  # too long for these clients over UDP: never the inline path
