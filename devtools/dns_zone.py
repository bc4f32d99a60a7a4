"""A small authoritative DNS server for tests and benchmarks, on loopback only.

Serves static zones over UDP and TCP (answers that do not fit a UDP client get
TC), follows in-zone CNAMEs like an authoritative server, counts the queries it
gets, and can be told to stay silent or fail to exercise upstream fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
from collections import Counter

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: ZoneServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        out = self.server.handle(data, tcp=False)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class ZoneServer:
    """Authoritative server for *zones* ({origin: zone text}) on *host*, UDP+TCP, one port.

    mode: "answer" (default), "drop" (never reply) or "servfail".
    """

    def __init__(self, zones: dict[str, str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.zones = [dns.zone.from_text(text, origin, relativize=False) for origin, text in zones.items()]
        self.host = host
        self.port = port
        self.mode = "answer"
        self.queries: Counter[tuple[str, str, str]] = Counter()
        self.last_query: dns.message.Message | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """"addr:port" (IPv6 bracketed) for use as an upstream."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def count(self, name: str, rdtype: str, proto: str | None = None) -> int:
        """Queries seen for *name*/*rdtype* (over *proto* "udp"/"tcp", or both)."""
        name = name.lower().rstrip(".") + "."
        return sum(n for (qn, qt, p), n in self.queries.items() if qn == name and qt == rdtype
                   and proto in (None, p))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(5):
            udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, self.host, port)
            except OSError:
                udp.close()
                if self.port:
                    raise
                continue
            self._udp, self.port = udp, port
            return
        raise OSError("could not bind UDP and TCP on one port")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1)

    async def __aenter__(self) -> ZoneServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
                out = self.handle(await reader.readexactly(n), tcp=True)
                if out is not None:
                    writer.write(struct.pack("!H", len(out)) + out)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def handle(self, data: bytes, tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        q = query.question[0]
        self.last_query = query
        self.queries[(q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype), "tcp" if tcp else "udp")] += 1
        if self.mode == "drop":
            return None
        response = dns.message.make_response(query)
        if self.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            self._answer(q.name, q.rdtype, response)
        limit = 65535 if tcp else (max(512, query.payload) if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer, response.authority, response.additional = [], [], []
            response.flags |= dns.flags.TC
            return response.to_wire()

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        best = None
        for zone in self.zones:
            if name.is_subdomain(zone.origin) and (best is None or zone.origin.is_subdomain(best.origin)):
                best = zone
        return best

    def _answer(self, name: dns.name.Name, rdtype: int, response: dns.message.Message) -> None:
        zone = self._zone_for(name)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return
        response.flags |= dns.flags.AA
        for _ in range(16):
            node = zone.get_node(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                break
            rds = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rds is not None:
                response.answer.append(dns.rrset.from_rdata_list(name, rds.ttl, list(rds)))
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or rdtype == dns.rdatatype.CNAME:
                break
            response.answer.append(dns.rrset.from_rdata_list(name, cname.ttl, list(cname)))
            name = cname[0].target
            nxt = self._zone_for(name)
            if nxt is None:
                return
            zone = nxt
        soa = zone.find_rdataset(zone.origin, dns.rdatatype.SOA)
        response.authority.append(dns.rrset.from_rdata_list(zone.origin, min(soa.ttl, soa[0].minimum), list(soa)))


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on *host* right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        with socket.socket(family, socket.SOCK_DGRAM) as u, socket.socket(family, socket.SOCK_STREAM) as t:
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                t.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError("no free port")


class Unbound:
    """Debian unbound on loopback forwarding everything to *forward* ("addr", port).

    With *dns64_prefix* it runs its dns64 module ("dns64 iterator"); otherwise it is a
    plain forwarding resolver. Needs the `unbound` binary (see `Unbound.available`).
    """

    def __init__(self, forward: tuple[str, int], dns64_prefix: str | None = None, host: str = "127.0.0.1") -> None:
        self.forward = forward
        self.dns64_prefix = dns64_prefix
        self.host = host
        self.port = 0
        self._dir: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> str | None:
        return shutil.which("unbound") or next(
            (p for p in ("/usr/sbin/unbound",) if os.access(p, os.X_OK)), None
        )

    def config_text(self) -> str:
        modules = "dns64 iterator" if self.dns64_prefix else "iterator"
        fwd_host, fwd_port = self.forward
        lines = [
            "server:",
            f"  interface: {self.host}",
            f"  port: {self.port}",
            "  do-daemonize: no",
            '  chroot: ""',
            '  username: ""',
            f'  directory: "{self._dir.name if self._dir else "/tmp"}"',
            '  pidfile: ""',
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 0",
            "  num-threads: 1",
            "  do-not-query-localhost: no",
            "  access-control: 127.0.0.0/8 allow",
            "  access-control: ::1/128 allow",
            f'  module-config: "{modules}"',
            "  msg-cache-size: 16m",
            "  rrset-cache-size: 16m",
            # RFC 6761 names (test., invalid., ...) are served locally by default; let them through.
            '  local-zone: "test." nodefault',
        ]
        if self.dns64_prefix:
            lines.append(f"  dns64-prefix: {self.dns64_prefix}")
        lines += [
            "remote-control:",
            "  control-enable: no",
            "forward-zone:",
            '  name: "."',
            f"  forward-addr: {fwd_host}@{fwd_port}",
        ]
        return "\n".join(lines) + "\n"

    async def start(self, timeout: float = 10.0) -> None:
        binary = self.available()
        if binary is None:
            raise FileNotFoundError("unbound is not installed")
        self._dir = tempfile.TemporaryDirectory(prefix="dns64-unbound-")
        self.port = free_port(self.host)
        conf = os.path.join(self._dir.name, "unbound.conf")
        with open(conf, "w") as f:
            f.write(self.config_text())
        self._proc = subprocess.Popen(
            [binary, "-d", "-p", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = asyncio.get_running_loop().time() + timeout
        probe = dns.message.make_query(".", "SOA")
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                await self.stop()
                raise RuntimeError(f"unbound exited: {err.strip()}")
            try:
                await dns.asyncquery.udp(probe, self.host, port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                if asyncio.get_running_loop().time() > deadline:
                    await self.stop()
                    raise RuntimeError("unbound did not answer") from None

    async def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                await asyncio.to_thread(self._proc.wait, 5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await asyncio.to_thread(self._proc.wait)
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def __aenter__(self) -> Unbound:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
