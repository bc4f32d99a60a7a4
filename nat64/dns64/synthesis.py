"""RFC 6147 synthesis and policy on dns.message objects, with no I/O.

The resolver feeds these functions the upstream answers it got; each returns the
message to give the client (header id/flags/EDNS are set later, when rendering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.AAAA
import dns.rrset

from nat64.rfc6052 import WELL_KNOWN_PREFIX, Nat64Prefix, Rfc6052Error

# §5.1.4: AAAA records in these ranges do not count as usable.
DEFAULT_AAAA_EXCLUDE = (IPv6Network("::ffff:0:0/96"),)
# §5.1.7: TTL cap for synthesized records when the negative AAAA answer carried no SOA.
NO_SOA_TTL = 600
IN_ADDR_ARPA = dns.name.from_text("in-addr.arpa.")
IP6_ARPA = dns.name.from_text("ip6.arpa.")


@dataclass(frozen=True)
class Dns64Policy:
    """What may be synthesized: the NAT64 prefix and the IPv4 addresses kept out of it."""

    prefix: IPv6Network = WELL_KNOWN_PREFIX
    exclude: tuple[IPv4Network, ...] = ()
    aaaa_exclude: tuple[IPv6Network, ...] = field(default=DEFAULT_AAAA_EXCLUDE)
    nat64: Nat64Prefix = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nat64", Nat64Prefix(self.prefix))

    def embed(self, v4: IPv4Address) -> IPv6Address:
        """*v4* under the prefix; callers check `maps` first."""
        return IPv6Address(self.nat64.embed_packed(v4.packed, check=False))

    def maps(self, v4: IPv4Address) -> bool:
        """Whether *v4* may be represented under the prefix (exclusions, RFC 6052 §3.1)."""
        if any(v4 in net for net in self.exclude):
            return False
        return not (self.prefix == WELL_KNOWN_PREFIX and not v4.is_global)

    def usable_aaaa(self, v6: IPv6Address) -> bool:
        return not any(v6 in net for net in self.aaaa_exclude)


def make_upstream_query(
    client: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.message.QueryMessage:
    """Query to forward: RD set, CD and DO as the client asked, EDNS only if the client used it."""
    q = dns.message.make_query(qname, rdtype, dns.rdataclass.IN, use_edns=False)
    q.flags = dns.flags.RD | (client.flags & dns.flags.CD)
    if client.edns >= 0:
        q.use_edns(0, client.ednsflags & dns.flags.DO, 1232)
    return q


def reply(
    query: dns.message.Message,
    rcode: dns.rcode.Rcode,
    answer: list[dns.rrset.RRset] | None = None,
    authority: list[dns.rrset.RRset] | None = None,
    additional: list[dns.rrset.RRset] | None = None,
    ad: bool = False,
) -> dns.message.Message:
    """A bare response to *query* with the given sections (no EDNS)."""
    r = dns.message.Message(id=query.id)
    r.flags = dns.flags.QR | dns.flags.RA | (query.flags & (dns.flags.RD | dns.flags.CD))
    if ad:
        r.flags |= dns.flags.AD
    r.set_rcode(rcode)
    r.question = list(query.question)
    r.answer = list(answer or ())
    r.authority = list(authority or ())
    r.additional = list(additional or ())
    return r


def servfail(query: dns.message.Message) -> dns.message.Message:
    return reply(query, dns.rcode.SERVFAIL)


def passthrough(query: dns.message.Message, upstream: dns.message.Message | None) -> dns.message.Message:
    """The upstream answer as is, re-addressed to the client (SERVFAIL when there is none)."""
    if upstream is None:
        return servfail(query)
    return reply(
        query,
        upstream.rcode(),
        upstream.answer,
        upstream.authority,
        upstream.additional,
        ad=bool(upstream.flags & dns.flags.AD),
    )


def negative_ttl(response: dns.message.Message) -> int | None:
    """RFC 2308 §5 negative TTL: min(SOA TTL, SOA MINIMUM) of the authority SOA, if any."""
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return min(rrset.ttl, rrset[0].minimum)
    return None


def _is_answer_type(rrset: dns.rrset.RRset, rdtype: dns.rdatatype.RdataType) -> bool:
    return rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN


def _filter_aaaa(response: dns.message.Message, policy: Dns64Policy) -> list[dns.rrset.RRset]:
    """Answer section with excluded AAAA records (and their signatures) taken out."""
    out = []
    for rrset in response.answer:
        if _is_answer_type(rrset, dns.rdatatype.AAAA):
            keep = [rd for rd in rrset if policy.usable_aaaa(IPv6Address(rd.address))]
            if len(keep) != len(rrset):
                if keep:
                    out.append(dns.rrset.from_rdata_list(rrset.name, rrset.ttl, keep))
                continue
        elif rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == dns.rdatatype.AAAA:
            aaaa = [r for r in response.answer if r.name == rrset.name and r.rdtype == dns.rdatatype.AAAA]
            if aaaa and not all(policy.usable_aaaa(IPv6Address(rd.address)) for rd in aaaa[0]):
                continue
        out.append(rrset)
    return out


def needs_synthesis(aaaa: dns.message.Message | None, policy: Dns64Policy) -> bool:
    """§5.1.1-5.1.4: whether the AAAA answer leaves the name without usable AAAA.

    NXDOMAIN is final; NOERROR counts only if a usable AAAA is in the answer; any
    other RCODE (or no answer at all) is treated as an empty NOERROR answer.
    """
    if aaaa is None:
        return True
    rcode = aaaa.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return False
    if rcode != dns.rcode.NOERROR:
        return True
    return not any(_is_answer_type(r, dns.rdatatype.AAAA) for r in _filter_aaaa(aaaa, policy))


def aaaa_answer(
    query: dns.message.Message, aaaa: dns.message.Message, policy: Dns64Policy
) -> dns.message.Message:
    """The AAAA answer given to the client when no synthesis happens (excluded AAAA removed)."""
    return reply(
        query,
        aaaa.rcode(),
        _filter_aaaa(aaaa, policy),
        aaaa.authority,
        aaaa.additional,
        ad=bool(aaaa.flags & dns.flags.AD),
    )


def _chain(
    answer: list[dns.rrset.RRset], qname: dns.name.Name
) -> tuple[list[dns.rrset.RRset], dns.name.Name]:
    """CNAME/DNAME records leading from *qname*, in order, and the name they end at."""
    chain: list[dns.rrset.RRset] = [r for r in answer if r.rdtype == dns.rdatatype.DNAME]
    name = qname
    for _ in range(len(answer) + 1):
        cname = next(
            (r for r in answer if r.rdtype == dns.rdatatype.CNAME and r.name == name and len(r)), None
        )
        if cname is None:
            break
        chain.append(cname)
        name = cname[0].target
        chain.extend(
            r
            for r in answer
            if r.rdtype == dns.rdatatype.RRSIG and r.covers == dns.rdatatype.CNAME and r.name == cname.name
        )
    return chain, name


def synthesize(
    query: dns.message.Message,
    aaaa: dns.message.Message | None,
    a: dns.message.Message | None,
    policy: Dns64Policy,
) -> dns.message.Message:
    """§5.1.6-5.1.8: AAAA answer built from the A answer, keeping the CNAME chain.

    Falls back to the (filtered) negative AAAA answer when there is no usable A record,
    and to SERVFAIL when neither upstream answer is usable.
    """
    qname = query.question[0].name
    if a is not None and a.rcode() == dns.rcode.NOERROR:
        chain, owner = _chain(a.answer, qname)
        a_rrset = next((r for r in a.answer if _is_answer_type(r, dns.rdatatype.A) and r.name == owner), None)
        if a_rrset is not None:
            v4s = [IPv4Address(rd.address) for rd in a_rrset]
            mapped = [policy.embed(v4) for v4 in v4s if policy.maps(v4)]
            if mapped:
                ttl = a_rrset.ttl
                neg = negative_ttl(aaaa) if aaaa is not None else None
                ttl = min(ttl, neg if neg is not None else NO_SOA_TTL)
                synth = dns.rrset.from_text_list(owner, ttl, "IN", "AAAA", [str(v6) for v6 in mapped])
                return reply(query, dns.rcode.NOERROR, [*chain, synth])
    # Nothing to synthesize: the negative answer the client would have had.
    if aaaa is not None and aaaa.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return aaaa_answer(query, aaaa, policy)
    if a is not None and a.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        chain, _ = _chain(a.answer, qname)
        return reply(query, a.rcode(), chain, a.authority)
    return servfail(query)


def ptr_target(qname: dns.name.Name, prefix: IPv6Network) -> dns.name.Name | None:
    """§5.3.1: in-addr.arpa name for a full ip6.arpa name inside the prefix, else None."""
    if not qname.is_subdomain(IP6_ARPA):
        return None
    nibbles = qname.relativize(IP6_ARPA).labels
    if len(nibbles) != 32:
        return None
    try:
        digits = "".join(label.decode("ascii") for label in reversed(nibbles))
        if any(len(label) != 1 for label in nibbles):
            return None
        v6 = IPv6Address(int(digits, 16))
    except (UnicodeDecodeError, ValueError):
        return None
    try:
        v4 = Nat64Prefix(prefix).extract(v6)
    except Rfc6052Error:  # outside the prefix, or an address the prefix may not carry
        return None
    return dns.name.from_text(v4.reverse_pointer + ".")


def ptr_answer(
    query: dns.message.Message, target: dns.name.Name, ptr: dns.message.Message | None
) -> dns.message.Message:
    """§5.3.1: CNAME from the ip6.arpa name to its in-addr.arpa name, plus the answer for that."""
    if ptr is None or ptr.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return servfail(query)
    qname = query.question[0].name
    ttl = min((r.ttl for r in ptr.answer), default=negative_ttl(ptr) or NO_SOA_TTL)
    cname = dns.rrset.from_text(qname, ttl, "IN", "CNAME", target.to_text())
    return reply(query, ptr.rcode(), [cname, *ptr.answer], ptr.authority)
