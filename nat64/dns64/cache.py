"""Answer caches: resolved messages (RFC 2308 for negatives) and rendered wire answers.

Both are LRU-bounded and expire by TTL; times come from an injectable monotonic clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype

from nat64.dns64.synthesis import negative_ttl
from nat64.dns64.wire import age_ttls

MAX_TTL = 86400  # keep nothing longer than a day whatever upstream says
CacheKey = tuple[bytes, int, int, bool, bool]  # qname (lowercased wire), qtype, qclass, DO, CD


def answer_ttl(response: dns.message.Message) -> int | None:
    """How long *response* may be cached, or None if it must not be.

    Positive: the smallest TTL in the answer section. Negative (NXDOMAIN or NODATA):
    RFC 2308 min(SOA TTL, SOA MINIMUM); without an SOA it is not cached.
    """
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not response.question:
        return None
    if rcode == dns.rcode.NOERROR and _ends_in_data(response):
        return min(MAX_TTL, *(r.ttl for r in response.answer))
    neg = negative_ttl(response)
    if neg is None:
        return None
    return min(MAX_TTL, neg, *(r.ttl for r in response.answer))  # CNAMEs before the negative end


def _ends_in_data(response: dns.message.Message) -> bool:
    qtype = response.question[0].rdtype
    if qtype == dns.rdatatype.ANY:
        return bool(response.answer)
    return any(r.rdtype == qtype for r in response.answer)


@dataclass(slots=True)
class CacheEntry:
    response: dns.message.Message
    stored: float
    expires: float
    negative: bool
    hits: int = 0


@dataclass
class MessageCache:
    """Resolved answers keyed by (qname, qtype, qclass, DO, CD), client-independent."""

    size: int
    clock: Callable[[], float]
    entries: OrderedDict[CacheKey, CacheEntry] = field(default_factory=OrderedDict)
    hits: int = 0
    negative_hits: int = 0
    misses: int = 0
    inserts: int = 0
    evictions: int = 0
    expired: int = 0

    def get(self, key: CacheKey) -> CacheEntry | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if self.clock() >= entry.expires:
            del self.entries[key]
            self.expired += 1
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        entry.hits += 1
        self.hits += 1
        if entry.negative:
            self.negative_hits += 1
        return entry

    def put(self, key: CacheKey, response: dns.message.Message) -> CacheEntry | None:
        ttl = answer_ttl(response)
        if ttl is None or ttl <= 0 or self.size <= 0:
            return None
        now = self.clock()
        negative = not _ends_in_data(response)
        entry = CacheEntry(response, now, now + ttl, negative)
        self.entries[key] = entry
        self.entries.move_to_end(key)
        self.inserts += 1
        self._trim()
        return entry

    def resize(self, size: int) -> None:
        self.size = size
        self._trim()

    def _trim(self) -> None:
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
            self.evictions += 1

    def clear(self) -> None:
        self.entries.clear()


@dataclass(slots=True)
class WireEntry:
    """A rendered answer; `answer()` ages its TTLs, re-rendering at most once a second.

    For the server's per-datagram fast path, `answer()` also leaves `tail` (the aged answer after its
    ID) and `until`: before that time `tail` is still the right answer (same age in whole seconds, not
    expired) and fits in a UDP answer to the clients of this key. A hit then costs one comparison; the
    first query of each new second (or an expired or oversized entry) takes the general path, which
    calls `answer()` again.
    """

    wire: bytes
    ttls: list[tuple[int, int]]
    stored: float
    expires: float
    limit: int  # largest UDP answer the clients sending this key accept
    aged: bytes = b""
    aged_by: int = -1
    tail: bytes = b""
    until: float = float("-inf")

    def answer(self, now: float) -> bytes:
        age = int(now - self.stored)
        if age != self.aged_by:
            buf = bytearray(self.wire)
            age_ttls(buf, self.ttls, age)
            self.aged, self.aged_by = bytes(buf), age
            self.tail = self.aged[2:]
            if len(self.wire) <= self.limit:
                self.until = min(self.stored + age + 1, self.expires)
        return self.aged


@dataclass
class WireCache:
    """Rendered answers keyed by the query bytes minus the ID (see `wire.query_key`)."""

    size: int
    clock: Callable[[], float]
    entries: OrderedDict[bytes, WireEntry] = field(default_factory=OrderedDict)
    hits: int = 0
    evictions: int = 0

    def get(self, key: bytes) -> WireEntry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if self.clock() >= entry.expires:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: bytes, entry: WireEntry) -> None:
        if self.size <= 0:
            return
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
            self.evictions += 1

    def resize(self, size: int) -> None:
        self.size = size
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
            self.evictions += 1

    def clear(self) -> None:
        self.entries.clear()
