"""DNS64 resolution: cache, then upstream queries, then synthesis (RFC 6147 §5)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from nat64.dns64 import synthesis
from nat64.dns64.cache import CacheEntry, CacheKey, MessageCache
from nat64.dns64.synthesis import Dns64Policy
from nat64.dns64.upstream import Forward

log = logging.getLogger(__name__)


@dataclass
class ResolverCounters:
    synthesized: int = 0
    ptr_synthesized: int = 0
    aaaa_passed: int = 0
    checking_disabled: int = 0
    forwarded: int = 0
    servfail: int = 0
    coalesced: int = 0


def cache_key(query: dns.message.Message) -> CacheKey:
    q = query.question[0]
    do = query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)
    return (q.name.canonicalize().to_wire(), q.rdtype, q.rdclass, do, bool(query.flags & dns.flags.CD))


class Dns64Resolver:
    """Answers one parsed query; identical concurrent lookups share one upstream exchange."""

    def __init__(self, policy: Dns64Policy, forward: Forward, cache: MessageCache) -> None:
        self.policy = policy
        self.forward = forward
        self.cache = cache
        self.counters = ResolverCounters()
        self._inflight: dict[CacheKey, asyncio.Future[CacheEntry | dns.message.Message]] = {}

    async def resolve(self, query: dns.message.Message) -> tuple[dns.message.Message, CacheEntry | None]:
        """Answer for *query* and, when it came from or went into the cache, its entry."""
        key = cache_key(query)
        entry = self.cache.get(key)
        if entry is not None:
            return entry.response, entry
        pending = self._inflight.get(key)
        if pending is not None:
            self.counters.coalesced += 1
            result = await asyncio.shield(pending)
        else:
            fut: asyncio.Future[CacheEntry | dns.message.Message] = asyncio.get_running_loop().create_future()
            self._inflight[key] = fut
            try:
                response = await self._lookup(query)
                entry = self.cache.put(key, response)
                result = entry if entry is not None else response
                fut.set_result(result)
            except BaseException as e:
                fut.set_exception(e)
                fut.exception()  # mark retrieved: waiters may be gone
                raise
            finally:
                self._inflight.pop(key, None)
        if isinstance(result, CacheEntry):
            return result.response, result
        return result, None

    async def _lookup(self, query: dns.message.Message) -> dns.message.Message:
        q = query.question[0]
        cd = bool(query.flags & dns.flags.CD)
        if q.rdclass == dns.rdataclass.IN and cd and q.rdtype in (dns.rdatatype.AAAA, dns.rdatatype.PTR):
            self.counters.checking_disabled += 1
        elif q.rdclass == dns.rdataclass.IN and q.rdtype == dns.rdatatype.AAAA:
            return await self._aaaa(query)
        elif q.rdclass == dns.rdataclass.IN and q.rdtype == dns.rdatatype.PTR:
            target = synthesis.ptr_target(q.name, self.policy.prefix)
            if target is not None:
                ptr = await self.forward(synthesis.make_upstream_query(query, target, dns.rdatatype.PTR))
                self.counters.ptr_synthesized += 1
                return self._count(synthesis.ptr_answer(query, target, ptr))
        self.counters.forwarded += 1
        upstream = await self.forward(synthesis.make_upstream_query(query, q.name, q.rdtype))
        return self._count(synthesis.passthrough(query, upstream))

    async def _aaaa(self, query: dns.message.Message) -> dns.message.Message:
        qname = query.question[0].name
        aaaa = await self.forward(synthesis.make_upstream_query(query, qname, dns.rdatatype.AAAA))
        if not synthesis.needs_synthesis(aaaa, self.policy):
            assert aaaa is not None
            self.counters.aaaa_passed += 1
            return synthesis.aaaa_answer(query, aaaa, self.policy)
        a = await self.forward(synthesis.make_upstream_query(query, qname, dns.rdatatype.A))
        response = synthesis.synthesize(query, aaaa, a, self.policy)
        if any(r.rdtype == dns.rdatatype.AAAA for r in response.answer):
            self.counters.synthesized += 1
        return self._count(response)

    def _count(self, response: dns.message.Message) -> dns.message.Message:
        if response.rcode() == dns.rcode.SERVFAIL:
            self.counters.servfail += 1
        return response
