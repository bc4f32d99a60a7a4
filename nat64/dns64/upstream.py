"""Forwarding to upstream resolvers: in order, with a timeout each, TCP on truncation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

log = logging.getLogger(__name__)

# Upstream RCODEs that mean "ask the next one" rather than an answer about the name.
FAILED_RCODES = frozenset({dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.NOTIMP, dns.rcode.FORMERR})

Forward = Callable[[dns.message.Message], Awaitable[dns.message.Message | None]]


@dataclass
class UpstreamCounters:
    queries: int = 0
    timeouts: int = 0
    errors: int = 0
    failed_rcodes: int = 0
    tcp_fallbacks: int = 0
    all_failed: int = 0


@dataclass
class Forwarder:
    """Sends a query to each upstream in turn until one gives a usable answer."""

    upstreams: list[tuple[str, int]]
    timeout: float = 2.0
    counters: UpstreamCounters = field(default_factory=UpstreamCounters)

    async def __call__(self, query: dns.message.Message) -> dns.message.Message | None:
        for addr, port in self.upstreams:
            self.counters.queries += 1
            try:
                response = await self._ask(query, addr, port)
            except dns.exception.Timeout:
                self.counters.timeouts += 1
                log.debug("upstream %s port %d timed out", addr, port)
                continue
            except (OSError, EOFError, dns.exception.DNSException, ValueError) as e:
                self.counters.errors += 1
                log.debug("upstream %s port %d failed: %r", addr, port, e)
                continue
            if response.rcode() in FAILED_RCODES:
                self.counters.failed_rcodes += 1
                log.debug("upstream %s port %d answered %s", addr, port, dns.rcode.to_text(response.rcode()))
                continue
            return response
        self.counters.all_failed += 1
        if self.upstreams:
            log.info("no upstream answered %s", query.question[0] if query.question else "?")
        return None

    async def _ask(self, query: dns.message.Message, addr: str, port: int) -> dns.message.Message:
        try:
            response = await dns.asyncquery.udp(
                query, addr, timeout=self.timeout, port=port, ignore_unexpected=True, raise_on_truncation=True
            )
        except dns.message.Truncated:
            response = None
        if response is None or response.flags & dns.flags.TC:
            self.counters.tcp_fallbacks += 1
            response = await dns.asyncquery.tcp(query, addr, timeout=self.timeout, port=port)
        return response
