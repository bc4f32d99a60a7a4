"""RFC 6147 synthesis and policy on dns.message objects, no sockets."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from nat64 import rfc6052
from nat64.dns64 import synthesis
from nat64.dns64.synthesis import Dns64Policy

WKP = Dns64Policy()
NSP = Dns64Policy(prefix=IPv6Network("2001:db8:64::/96"))
SOA = "example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 60"


def query(name: str, rdtype: str = "AAAA", cd: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    if cd:
        q.flags |= dns.flags.CD
    return q


def response(name: str, rdtype: str, answer=(), authority=(), rcode: str = "NOERROR") -> dns.message.Message:
    lines = [
        "id 1",
        "opcode QUERY",
        f"rcode {rcode}",
        "flags QR RD RA",
        ";QUESTION",
        f"{name} IN {rdtype}",
        ";ANSWER",
        *answer,
        ";AUTHORITY",
        *authority,
    ]
    return dns.message.from_text("\n".join(lines))


def records(msg: dns.message.Message, rdtype: str) -> list[tuple[str, int, str]]:
    t = dns.rdatatype.from_text(rdtype)
    return [(r.name.to_text(), r.ttl, rd.to_text()) for r in msg.answer if r.rdtype == t for rd in r]


NODATA = response("v4.example.", "AAAA", authority=[SOA])


def test_a_only_name_gets_aaaa_in_prefix_with_soa_minimum_ttl():
    a = response("v4.example.", "A", ["v4.example. 300 IN A 93.184.216.34"])
    assert synthesis.needs_synthesis(NODATA, WKP)
    out = synthesis.synthesize(query("v4.example."), NODATA, a, WKP)
    assert out.rcode() == dns.rcode.NOERROR
    assert records(out, "AAAA") == [("v4.example.", 60, "64:ff9b::5db8:d822")]
    assert not out.flags & dns.flags.AD


def test_a_ttl_below_soa_minimum_wins():
    a = response("v4.example.", "A", ["v4.example. 20 IN A 93.184.216.34"])
    out = synthesis.synthesize(query("v4.example."), NODATA, a, WKP)
    assert records(out, "AAAA")[0][1] == 20


def test_without_soa_ttl_is_capped_at_600():
    aaaa = response("v4.example.", "AAAA")
    a = response("v4.example.", "A", ["v4.example. 3600 IN A 93.184.216.34"])
    out = synthesis.synthesize(query("v4.example."), aaaa, a, WKP)
    assert records(out, "AAAA")[0][1] == 600


def test_real_aaaa_is_passed_not_synthesized():
    aaaa = response("dual.example.", "AAAA", ["dual.example. 300 IN AAAA 2001:db8::35"])
    assert not synthesis.needs_synthesis(aaaa, WKP)
    out = synthesis.aaaa_answer(query("dual.example."), aaaa, WKP)
    assert records(out, "AAAA") == [("dual.example.", 300, "2001:db8::35")]


def test_aaaa_only_in_ffff_counts_as_none():
    aaaa = response("m.example.", "AAAA", ["m.example. 300 IN AAAA ::ffff:93.184.216.36"])
    a = response("m.example.", "A", ["m.example. 300 IN A 93.184.216.36"])
    assert synthesis.needs_synthesis(aaaa, WKP)
    out = synthesis.synthesize(query("m.example."), aaaa, a, WKP)
    assert records(out, "AAAA") == [("m.example.", 300, "64:ff9b::5db8:d824")]


def test_ffff_mixed_with_real_aaaa_keeps_only_real():
    aaaa = response(
        "m.example.", "AAAA", ["m.example. 300 IN AAAA ::ffff:93.184.216.36", "m.example. 300 IN AAAA 2001:db8::1"]
    )
    assert not synthesis.needs_synthesis(aaaa, WKP)
    assert [r[2] for r in records(synthesis.aaaa_answer(query("m.example."), aaaa, WKP), "AAAA")] == ["2001:db8::1"]


def test_nxdomain_stays_nxdomain():
    aaaa = response("nx.example.", "AAAA", authority=[SOA], rcode="NXDOMAIN")
    assert not synthesis.needs_synthesis(aaaa, WKP)
    out = synthesis.aaaa_answer(query("nx.example."), aaaa, WKP)
    assert out.rcode() == dns.rcode.NXDOMAIN
    assert out.authority and out.authority[0].rdtype == dns.rdatatype.SOA


def test_cname_chain_is_kept_in_order_before_synthesized_aaaa():
    aaaa = response(
        "alias.example.",
        "AAAA",
        ["alias.example. 100 IN CNAME mid.example.", "mid.example. 200 IN CNAME v4.example."],
        [SOA],
    )
    a = response(
        "alias.example.",
        "A",
        [
            "alias.example. 100 IN CNAME mid.example.",
            "mid.example. 200 IN CNAME v4.example.",
            "v4.example. 300 IN A 93.184.216.34",
        ],
    )
    assert synthesis.needs_synthesis(aaaa, WKP)
    out = synthesis.synthesize(query("alias.example."), aaaa, a, WKP)
    assert [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)) for r in out.answer] == [
        ("alias.example.", "CNAME"),
        ("mid.example.", "CNAME"),
        ("v4.example.", "AAAA"),
    ]
    assert records(out, "AAAA") == [("v4.example.", 60, "64:ff9b::5db8:d822")]


def test_cname_chain_to_a_nameless_target_is_nodata():
    aaaa = response("alias.example.", "AAAA", ["alias.example. 100 IN CNAME gone.example."], [SOA])
    a = response("alias.example.", "A", ["alias.example. 100 IN CNAME gone.example."], [SOA])
    out = synthesis.synthesize(query("alias.example."), aaaa, a, WKP)
    assert out.rcode() == dns.rcode.NOERROR
    assert records(out, "AAAA") == []
    assert records(out, "CNAME") == [("alias.example.", 100, "gone.example.")]


def test_excluded_ipv4_is_not_mapped_and_all_excluded_is_nodata():
    policy = Dns64Policy(prefix=NSP.prefix, exclude=(IPv4Network("93.184.216.0/24"),))
    a = response("v4.example.", "A", ["v4.example. 300 IN A 93.184.216.34", "v4.example. 300 IN A 8.8.8.8"])
    out = synthesis.synthesize(query("v4.example."), NODATA, a, policy)
    assert [r[2] for r in records(out, "AAAA")] == ["2001:db8:64::808:808"]
    a_only_excluded = response("v4.example.", "A", ["v4.example. 300 IN A 93.184.216.34"])
    out = synthesis.synthesize(query("v4.example."), NODATA, a_only_excluded, policy)
    assert out.rcode() == dns.rcode.NOERROR and records(out, "AAAA") == []
    assert out.authority[0].rdtype == dns.rdatatype.SOA


@pytest.mark.parametrize("v4", ["10.1.2.3", "192.168.1.1", "100.64.0.1", "127.0.0.1", "169.254.1.1"])
def test_non_global_ipv4_is_not_mapped_under_well_known_prefix(v4):
    a = response("p.example.", "A", [f"p.example. 300 IN A {v4}"])
    assert records(synthesis.synthesize(query("p.example."), NODATA, a, WKP), "AAAA") == []
    # A network-specific prefix may carry it.
    out = synthesis.synthesize(query("p.example."), NODATA, a, NSP)
    assert records(out, "AAAA")[0][2] == str(rfc6052.embed(NSP.prefix, IPv4Address(v4)))


def test_mixed_global_and_private_keeps_global_only():
    a = response("p.example.", "A", ["p.example. 300 IN A 10.1.2.3", "p.example. 300 IN A 93.184.216.37"])
    out = synthesis.synthesize(query("p.example."), NODATA, a, WKP)
    assert [r[2] for r in records(out, "AAAA")] == ["64:ff9b::5db8:d825"]


def test_failed_aaaa_lookup_still_synthesizes_and_both_failing_is_servfail():
    a = response("v4.example.", "A", ["v4.example. 300 IN A 93.184.216.34"])
    servfail = response("v4.example.", "AAAA", rcode="SERVFAIL")
    assert synthesis.needs_synthesis(servfail, WKP)
    assert records(synthesis.synthesize(query("v4.example."), servfail, a, WKP), "AAAA")
    assert synthesis.synthesize(query("v4.example."), None, None, WKP).rcode() == dns.rcode.SERVFAIL


def test_upstream_query_mirrors_cd_do_and_edns_presence():
    q = dns.message.make_query("x.example.", "AAAA", want_dnssec=True)
    q.flags |= dns.flags.CD
    up = synthesis.make_upstream_query(q, q.question[0].name, dns.rdatatype.A)
    assert up.flags & dns.flags.CD and up.flags & dns.flags.RD
    assert up.edns == 0 and up.ednsflags & dns.flags.DO
    plain = synthesis.make_upstream_query(query("x.example."), dns.name.from_text("x.example."), dns.rdatatype.A)
    assert plain.edns < 0 and not plain.flags & dns.flags.CD


def ip6_arpa(addr: str) -> dns.name.Name:
    return dns.name.from_text(IPv6Address(addr).reverse_pointer + ".")


def test_ptr_under_prefix_maps_to_in_addr_arpa():
    target = synthesis.ptr_target(ip6_arpa("64:ff9b::5db8:d822"), WKP.prefix)
    assert target == dns.name.from_text("34.216.184.93.in-addr.arpa.")
    assert synthesis.ptr_target(ip6_arpa("2001:db8::1"), WKP.prefix) is None
    assert synthesis.ptr_target(dns.name.from_text("b.9.f.f.4.6.0.0.ip6.arpa."), WKP.prefix) is None
    assert synthesis.ptr_target(dns.name.from_text("34.216.184.93.in-addr.arpa."), WKP.prefix) is None


def test_ptr_under_64_prefix_skips_u_octet():
    prefix = IPv6Network("2001:db8:122:344::/64")
    addr = rfc6052.embed(prefix, IPv4Address("192.0.2.33"))
    assert synthesis.ptr_target(ip6_arpa(str(addr)), prefix) == dns.name.from_text("33.2.0.192.in-addr.arpa.")


def test_ptr_answer_is_cname_plus_target_answer():
    qname = ip6_arpa("64:ff9b::5db8:d822")
    target = dns.name.from_text("34.216.184.93.in-addr.arpa.")
    ptr = response(target.to_text(), "PTR", [f"{target} 300 IN PTR v4.example."])
    out = synthesis.ptr_answer(query(qname.to_text(), "PTR"), target, ptr)
    assert out.answer[0].rdtype == dns.rdatatype.CNAME and out.answer[0].name == qname
    assert out.answer[0][0].target == target
    assert records(out, "PTR") == [(target.to_text(), 300, "v4.example.")]
    nx = response(target.to_text(), "PTR", authority=[SOA], rcode="NXDOMAIN")
    out = synthesis.ptr_answer(query(qname.to_text(), "PTR"), target, nx)
    assert out.rcode() == dns.rcode.NXDOMAIN and out.answer[0].rdtype == dns.rdatatype.CNAME
    assert synthesis.ptr_answer(query(qname.to_text(), "PTR"), target, None).rcode() == dns.rcode.SERVFAIL


# RFC 6052 §2.4 examples: 192.0.2.33 under each prefix length.
RFC6052_EXAMPLES = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
    ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
]


@pytest.mark.parametrize(("prefix", "expected"), RFC6052_EXAMPLES[:-1])
def test_synthesis_embeds_per_rfc6052_examples_and_ptr_reverses_it(prefix, expected):
    policy = Dns64Policy(prefix=IPv6Network(prefix))
    a = response("v4.example.", "A", ["v4.example. 300 IN A 192.0.2.33"])
    out = synthesis.synthesize(query("v4.example."), NODATA, a, policy)
    assert records(out, "AAAA") == [("v4.example.", 60, str(IPv6Address(expected)))]
    target = synthesis.ptr_target(ip6_arpa(expected), policy.prefix)
    assert target == dns.name.from_text("33.2.0.192.in-addr.arpa.")


def test_documentation_address_is_not_mapped_under_well_known_prefix():
    a = response("v4.example.", "A", ["v4.example. 300 IN A 192.0.2.33"])
    assert records(synthesis.synthesize(query("v4.example."), NODATA, a, WKP), "AAAA") == []
    assert synthesis.ptr_target(ip6_arpa("64:ff9b::192.0.2.33"), WKP.prefix) is None
