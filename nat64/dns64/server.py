"""The DNS64 server: UDP and TCP listeners around the resolver, with access control.

Cached answers to plain queries are sent straight from `datagram_received` by
patching a stored wire answer (`wire.query_key`); everything else is parsed and
resolved in a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address, IPv6Address

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from common.aio import cancel_all
from nat64.dns64 import synthesis, wire
from nat64.dns64.cache import CacheEntry, MessageCache, WireCache, WireEntry
from nat64.dns64.config import Dns64Config
from nat64.dns64.resolver import Dns64Resolver
from nat64.dns64.synthesis import Dns64Policy
from nat64.dns64.upstream import Forward, Forwarder

try:
    from nat64.dns64._udpfast import serve as _native_serve
except ImportError:  # built without a C compiler: the Python loop in _UdpListener.readable answers
    _native_serve = None

log = logging.getLogger(__name__)

TCP_MAX = 65535
UNSUPPORTED_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR, dns.rdatatype.MAILA, dns.rdatatype.MAILB})


@dataclass
class ServerCounters:
    queries: int = 0
    udp_queries: int = 0
    tcp_queries: int = 0
    fastpath_hits: int = 0
    refused: int = 0
    formerr: int = 0
    notimp: int = 0
    dropped: int = 0
    dropped_overload: int = 0
    truncated: int = 0
    internal_errors: int = 0
    tcp_connections: int = 0
    tcp_rejected: int = 0
    tcp_idle_timeouts: int = 0


@dataclass(frozen=True, slots=True)
class _Pending:
    """A query that needs the resolver: parsed, keyed for the fast path if plain."""

    query: dns.message.Message
    key: wire.QueryKey | None
    limit: int


def _policy(config: Dns64Config) -> Dns64Policy:
    return Dns64Policy(prefix=config.prefix, exclude=tuple(config.exclude))


def _client_ip(host: str) -> IPv4Address | IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class _UdpListener:
    """A non-blocking UDP socket read straight from the event loop's selector.

    Reading up to a batch of datagrams per wake-up with a 64 KiB buffer is several
    times cheaper than a DatagramTransport, whose 256 KiB receive buffer is
    allocated per datagram.
    """

    BATCH = 64

    def __init__(self, server: Dns64Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.closed = False
        self.batch: list[tuple[bytes, tuple]] | None = None

    def readable(self) -> None:
        # Answers go out after the batch is read: a burst of sends wakes the client once.
        # Repeats of cached plain queries from known-good clients are answered inline here
        # while their aged answer is current (`WireEntry.until`); everything else takes the
        # general path (`Dns64Server._screen`). This loop is the server's per-query cost
        # under load: no method call, counter update or copy of the answer per hit beyond
        # what the socket calls need (the counts are added once per batch).
        server = self.server
        if _native_serve is not None and server.config.fast_path:
            self._readable_native()
            return
        recvfrom = self.sock.recvfrom
        out: list[tuple[bytes, tuple]] = []
        self.batch = out
        entries = server._wire_cache.entries if server.config.fast_path else {}
        acl = server._acl.get
        now = server._clock()
        hits = 0
        try:
            for _ in range(self.BATCH):
                try:
                    data, addr = recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:  # e.g. ICMP errors surfacing on the socket
                    log.debug("udp receive error: %s", e)
                    break
                entry = entries.get(data[2:]) if acl(addr[0]) else None
                if entry is not None and now < entry.until:
                    # The key holds the flags, so a hit is a plain QUERY with QR clear.
                    hits += 1
                    out.append((data[:2] + entry.tail, addr))
                    continue
                server._udp_datagram(self, data, addr)
        finally:
            self._finish_batch(hits, out)

    def _readable_native(self) -> None:
        """The loop of :meth:`readable`, with the hits read, looked up and answered natively
        (nat64/dns64/_udpfast.c: the interpreter's cost of two socket calls per query was more than all
        of unbound's work per query); the misses come back here and take the general path. A client is
        answered natively once its packed address is in ``_acl_raw``, which this fills from
        :meth:`Dns64Server.allowed`."""
        server = self.server
        out: list[tuple[bytes, tuple]] = []
        self.batch = out
        acl = server._acl_raw
        hits = 0
        try:
            hits, dropped, misses = _native_serve(self.sock.fileno(), server._wire_cache.entries, acl,
                                                  server._clock(), self.BATCH)
            server._stats.dropped_overload += dropped
            for data, addr, packed in misses:
                if packed not in acl:
                    if len(acl) > 4096:
                        acl.clear()
                    acl[packed] = server.allowed(addr[0])
                server._udp_datagram(self, data, addr)
        finally:
            self._finish_batch(hits, out)

    def _finish_batch(self, hits: int, out: list[tuple[bytes, tuple]]) -> None:
        """Count the batch's hits once and send the answers the general path gave."""
        server = self.server
        self.batch = None
        if hits:
            stats = server._stats
            stats.queries += hits
            stats.udp_queries += hits
            stats.fastpath_hits += hits
            server._wire_cache.hits += hits
        if not self.closed:
            sendto = self.sock.sendto
            for data, addr in out:
                try:
                    sendto(data, addr)
                except (BlockingIOError, InterruptedError):
                    server._stats.dropped_overload += 1
                except OSError as e:
                    log.debug("udp send to %s failed: %s", addr[0], e)

    def send(self, data: bytes, addr: tuple) -> None:
        if self.closed:
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.server._stats.dropped_overload += 1
        except OSError as e:
            log.debug("udp send to %s failed: %s", addr[0], e)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.sock)
            self.sock.close()


def _udp_socket(addr: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setblocking(False)
        sock.bind((addr, port))
    except BaseException:
        sock.close()
        raise
    return sock


class Dns64Server:
    """DNS64 (RFC 6147) forwarder serving the allowed client networks.

    *forward* replaces the upstream forwarder (tests, fuzzing); *clock* is the
    monotonic clock used for cache ages.
    """

    def __init__(
        self,
        config: Dns64Config,
        *,
        forward: Forward | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._forwarder = None if forward is not None else Forwarder(config.upstream_addresses(), config.timeout)
        self._cache = MessageCache(config.cache_size, clock)
        self._wire_cache = WireCache(config.cache_size, clock)
        self._resolver = Dns64Resolver(_policy(config), forward or self._forwarder, self._cache)  # type: ignore[arg-type]
        self._stats = ServerCounters()
        self._acl: dict[str, bool] = {}
        self._acl_raw: dict[bytes, bool] = {}  # the same verdicts by packed address, for the native path
        self._udp: dict[tuple[str, int], _UdpListener] = {}
        self._tcp: dict[tuple[str, int], asyncio.Server] = {}
        self._tasks: set[asyncio.Task] = set()
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self._running = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every listen address (UDP and TCP on the same port; port 0 picks one)."""
        self._running = True
        try:
            for addr, port in self.config.listen:
                await self._bind(addr, port)
        except BaseException:
            await self.stop()
            raise
        log.info("dns64 serving %s with prefix %s", self.addresses, self.config.prefix)

    async def stop(self) -> None:
        self._running = False
        for key in list(self._udp):
            await self._unbind(key)
        for key in list(self._tcp):
            await self._unbind(key)
        for w in list(self._tcp_writers):
            w.close()
        await cancel_all(*self._tasks)

    async def reload(self, config: Dns64Config) -> None:
        """Apply a new configuration live; answers cached under the old one are dropped
        when the prefix, exclusions or upstreams change; listen changes re-bind."""
        old, self.config = self.config, config
        if self._forwarder is not None:
            self._forwarder.upstreams = config.upstream_addresses()
            self._forwarder.timeout = config.timeout
        self._resolver.policy = _policy(config)
        if (old.prefix, old.exclude, old.upstreams) != (config.prefix, config.exclude, config.upstreams):
            self._cache.clear()
            self._wire_cache.clear()
        self._cache.resize(config.cache_size)
        self._wire_cache.resize(config.cache_size)
        self._acl.clear()
        self._acl_raw.clear()
        if self._running and old.listen != config.listen:
            wanted = set(config.listen)
            for key in set(self._udp) - wanted:
                await self._unbind(key)
            for addr, port in config.listen:
                if (addr, port) not in self._udp:
                    await self._bind(addr, port)
        log.info("dns64 reloaded: prefix %s, %d upstreams", config.prefix, len(config.upstream_addresses()))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (addr, port) pairs actually bound (useful with port 0)."""
        return [u.sock.getsockname()[:2] for u in self._udp.values()]

    async def _bind(self, addr: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(5 if port == 0 else 1):
            udp = _UdpListener(self, _udp_socket(addr, port))
            real_port = udp.sock.getsockname()[1]
            try:
                server = await asyncio.start_server(self._tcp_client, host=addr, port=real_port)
            except OSError:
                udp.close()
                if attempt == 4 or port != 0:
                    raise
                continue
            key = (addr, port if port else real_port)
            loop.add_reader(udp.sock, udp.readable)
            self._udp[(addr, port)] = udp
            self._tcp[(addr, port)] = server
            log.debug("dns64 bound %s port %d", *key)
            return

    async def _unbind(self, key: tuple[str, int]) -> None:
        udp = self._udp.pop(key, None)
        if udp is not None:
            udp.close()
        tcp = self._tcp.pop(key, None)
        if tcp is not None:
            tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(tcp.wait_closed(), 1)

    # -- query path ------------------------------------------------------------------------------

    def allowed(self, host: str) -> bool:
        """Whether a client address is inside an allowed network (decisions are memoised)."""
        verdict = self._acl.get(host)
        if verdict is None:
            ip = _client_ip(host)
            verdict = ip is not None and any(ip in net for net in self.config.allowed)
            if len(self._acl) > 4096:
                self._acl.clear()
            self._acl[host] = verdict
        return verdict

    async def handle_wire(self, data: bytes, client: tuple, tcp: bool = False) -> bytes | None:
        """Answer one query in wire format from *client* (host, port, ...); None means drop.

        Never raises: internal faults are logged, counted and answered SERVFAIL.
        """
        result = self._screen(data, client, tcp)
        if isinstance(result, _Pending):
            return await self._complete(result)
        return result

    def _screen(self, data: bytes, client: tuple, tcp: bool) -> bytes | _Pending | None:
        try:
            return self._screen_unsafe(data, client, tcp)
        except Exception:
            self._stats.internal_errors += 1
            log.exception("dns64 failed on a query from %s", client[0] if client else "?")
            return None

    def _screen_unsafe(self, data: bytes, client: tuple, tcp: bool) -> bytes | _Pending | None:
        stats = self._stats
        stats.queries += 1
        if tcp:
            stats.tcp_queries += 1
        else:
            stats.udp_queries += 1
        if len(data) < 12 or data[2] & 0x80:  # no header, or a response: never answer
            stats.dropped += 1
            return None
        if not self.allowed(client[0]):
            stats.refused += 1
            return wire.error_reply(data, dns.rcode.REFUSED)
        if data[2] & 0x78:  # opcode other than QUERY
            stats.notimp += 1  # other opcodes lay out sections differently: header only
            return wire.error_reply(data, dns.rcode.NOTIMP, with_question=False)
        # Fast path: a cached answer to the same query bytes (ID aside). Most clients send
        # lowercase names, so the raw bytes are tried as the key before any parsing.
        entry = self._wire_cache.get(data[2:]) if self.config.fast_path else None
        key = None
        if entry is None and self.config.fast_path:
            key = wire.query_key(data)
            if key is not None:
                entry = self._wire_cache.get(key.key)
        if entry is not None and (tcp or len(entry.wire) <= entry.limit):
            stats.fastpath_hits += 1
            aged = entry.answer(self._clock())
            if key is None:
                return data[:2] + aged[2:]
            buf = bytearray(aged)
            buf[0:2] = data[0:2]
            buf[12 : key.qend] = data[12 : key.qend]  # the client's spelling of the name
            return bytes(buf)
        if key is None and self.config.fast_path:
            key = wire.query_key(data)
        try:
            query = dns.message.from_wire(data)
        except Exception:
            stats.formerr += 1
            return wire.error_reply(data, dns.rcode.FORMERR)
        if len(query.question) != 1:
            stats.formerr += 1
            return wire.error_reply(data, dns.rcode.FORMERR, with_question=False)
        if query.edns > 0:
            r = synthesis.reply(query, dns.rcode.NOERROR)
            r.use_edns(0, 0, 1232)
            r.set_rcode(dns.rcode.BADVERS)
            return r.to_wire()
        qtype = query.question[0].rdtype
        if qtype in UNSUPPORTED_TYPES or (dns.rdatatype.is_metatype(qtype) and qtype != dns.rdatatype.ANY):
            stats.notimp += 1
            return wire.error_reply(data, dns.rcode.NOTIMP)
        limit = TCP_MAX if tcp else (max(512, query.payload) if query.edns >= 0 else 512)
        return _Pending(query, key, limit)

    async def _complete(self, pending: _Pending) -> bytes | None:
        query = pending.query
        try:
            response, entry = await self._resolver.resolve(query)
            return self._render(query, response, entry, pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._stats.internal_errors += 1
            log.exception("dns64 failed to answer %s", query.question[0])
            try:
                return self._to_wire(query, synthesis.servfail(query), TCP_MAX)
            except Exception:
                return None

    def _to_wire(self, query: dns.message.Message, response: dns.message.Message, limit: int) -> bytes:
        if query.edns >= 0:
            response.use_edns(0, query.ednsflags & dns.flags.DO, max(512, query.payload))
        return response.to_wire(max_size=limit)

    def _render(
        self,
        query: dns.message.Message,
        response: dns.message.Message,
        entry: CacheEntry | None,
        pending: _Pending,
    ) -> bytes:
        # AD only for clients that signal they understand it (RFC 6840 §5.8).
        ad_ok = bool(query.flags & dns.flags.AD) or (query.edns >= 0 and bool(query.ednsflags & dns.flags.DO))
        msg = synthesis.reply(
            query,
            response.rcode(),
            response.answer,
            response.authority,
            response.additional,
            ad=ad_ok and bool(response.flags & dns.flags.AD),
        )
        try:
            out = self._to_wire(query, msg, TCP_MAX)
        except dns.exception.TooBig:
            out = b""
        if out and entry is not None:
            ttls = wire.ttl_offsets(out)
            key = pending.key
            if key is not None:
                # Stored with the name in lowercase, as it appears in the key.
                qlen = key.qend - 12
                lowered = out[:12] + key.key[10 : 10 + qlen] + out[key.qend :]
                self._wire_cache.put(key.key, WireEntry(lowered, ttls, entry.stored, entry.expires, key.limit))
            out = WireEntry(out, ttls, entry.stored, entry.expires, 0).answer(self._clock())
        if len(out) > pending.limit or not out:
            # RFC 2181 §9 / RFC 1035: tell the client to retry over TCP.
            self._stats.truncated += 1
            tc = synthesis.reply(query, response.rcode())
            tc.flags |= dns.flags.TC
            out = self._to_wire(query, tc, TCP_MAX)
        return out

    # -- transports ------------------------------------------------------------------------------

    def _udp_datagram(self, udp: _UdpListener, data: bytes, addr: tuple) -> None:
        result = self._screen(data, addr, tcp=False)
        if isinstance(result, bytes):
            if udp.batch is not None:
                udp.batch.append((result, addr))
            else:
                udp.send(result, addr)
        elif isinstance(result, _Pending):
            if len(self._tasks) >= self.config.max_pending:
                self._stats.dropped_overload += 1
                return
            task = asyncio.get_running_loop().create_task(self._udp_finish(udp, result, addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _udp_finish(self, udp: _UdpListener, pending: _Pending, addr: tuple) -> None:
        out = await self._complete(pending)
        if out is not None:
            udp.send(out, addr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        if len(self._tcp_writers) >= self.config.tcp_max_connections:
            self._stats.tcp_rejected += 1
            writer.close()
            return
        self._stats.tcp_connections += 1
        self._tcp_writers.add(writer)
        timeout = self.config.tcp_idle_timeout
        try:
            while True:
                try:
                    (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout))
                    data = await asyncio.wait_for(reader.readexactly(length), timeout)
                except TimeoutError:
                    self._stats.tcp_idle_timeouts += 1
                    return
                out = await self.handle_wire(data, peer, tcp=True)
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await asyncio.wait_for(writer.drain(), timeout)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError):
            pass
        finally:
            self._tcp_writers.discard(writer)
            writer.close()

    # -- introspection ---------------------------------------------------------------------------

    @property
    def fast_path(self) -> str:
        """Which loop answers cached repeats over UDP: "native", "python" (no C compiler at build) or "off"."""
        if not self.config.fast_path:
            return "off"
        return "python" if _native_serve is None else "native"

    def counters(self) -> dict[str, int]:
        """Flat counters for `gatewayctl dns64 counters`."""
        out = asdict(self._stats)
        out.update({f"resolver_{k}": v for k, v in asdict(self._resolver.counters).items()})
        if self._forwarder is not None:
            out.update({f"upstream_{k}": v for k, v in asdict(self._forwarder.counters).items()})
        c = self._cache
        out.update(
            cache_entries=len(c.entries),
            cache_hits=c.hits,
            cache_negative_hits=c.negative_hits,
            cache_misses=c.misses,
            cache_inserts=c.inserts,
            cache_evictions=c.evictions,
            cache_expired=c.expired,
            wire_cache_entries=len(self._wire_cache.entries),
            tcp_active=len(self._tcp_writers),
            pending=len(self._tasks),
        )
        return out

    def cache_entries(self) -> list[dict]:
        """Live cache contents for `gatewayctl dns64 cache`, most recently used last."""
        now = self._clock()
        out = []
        for (qname, qtype, qclass, do, cd), e in list(self._cache.entries.items()):
            if now >= e.expires:
                continue
            age = int(now - e.stored)
            out.append(
                {
                    "name": dns.name.from_wire(qname, 0)[0].to_text(),
                    "type": dns.rdatatype.to_text(qtype),
                    "class": dns.rdataclass.to_text(qclass),
                    "do": do,
                    "cd": cd,
                    "rcode": dns.rcode.to_text(e.response.rcode()),
                    "negative": e.negative,
                    "ttl": int(e.expires - now),
                    "hits": e.hits,
                    "records": [
                        f"{r.name} {max(0, r.ttl - age)} {dns.rdataclass.to_text(r.rdclass)} "
                        f"{dns.rdatatype.to_text(r.rdtype)} {rd}"
                        for r in e.response.answer
                        for rd in r
                    ],
                }
            )
        return out
