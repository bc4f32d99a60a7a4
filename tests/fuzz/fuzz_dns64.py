"""Fuzz the DNS64 query path: wire bytes + client address in, wire bytes or None out.

Upstream answers come from an in-memory authoritative zone, so no socket is used.
Nothing may escape; every answer must be a parseable DNS response, and the server
must not have hit an internal error.
"""

from __future__ import annotations

import asyncio
import struct

import dns.message

from devtools.dns_zone import ZoneServer
from nat64.dns64 import Dns64Config, Dns64Server

ZONE = """
$TTL 300
@ SOA ns host 1 3600 600 86400 60
@ NS ns
ns A 93.184.216.1
v4 A 93.184.216.34
dual A 93.184.216.35
dual AAAA 2001:db8::35
alias CNAME v4
private A 10.1.2.3
"""
NAMES = [b"\x02v4\x07example\x04test\x00", b"\x05alias\x07example\x04test\x00", b"\x04dual\x07example\x04test\x00"]
CLIENTS = [("::1", 5353), ("127.0.0.1", 5353), ("fe80::1%lo", 1)]

_state: tuple[asyncio.AbstractEventLoop, Dns64Server] | None = None


def _server() -> tuple[asyncio.AbstractEventLoop, Dns64Server]:
    global _state
    if _state is None:
        zone = ZoneServer({"example.test.": ZONE})

        async def forward(q: dns.message.Message) -> dns.message.Message | None:
            out = zone.handle(q.to_wire(), tcp=True)
            return None if out is None else dns.message.from_wire(out)

        config = Dns64Config(upstreams=["127.0.0.1:9"], allowed=["::1/128", "fe80::/10"], cache_size=64)
        _state = (asyncio.new_event_loop(), Dns64Server(config, forward=forward))
    return _state


def _shape(data: bytes) -> bytes:
    """Steer some inputs into plausible queries so the resolver path is reached."""
    if not data:
        return data
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        return rest
    name = NAMES[rest[0] % len(NAMES)] if rest else NAMES[0]
    header = struct.pack("!HHHHHH", 0x1234, (rest[1] << 8 | 0) & 0x7BFF if len(rest) > 1 else 0x0100, 1, 0, 0, 0)
    qtype = struct.pack("!HH", rest[2] if len(rest) > 2 else 28, 1)
    if mode == 1:
        return header + name + qtype + rest[3:]
    return header + rest[3:] + qtype


def TestOneInput(data: bytes) -> None:
    loop, server = _server()
    wire = _shape(data)
    client = CLIENTS[data[0] // 3 % len(CLIENTS)] if data else CLIENTS[0]
    before = server.counters()["internal_errors"]
    for tcp in (False, True):
        out = loop.run_until_complete(asyncio.wait_for(server.handle_wire(wire, client, tcp=tcp), 5))
        if out is not None:
            response = dns.message.from_wire(out)
            assert response.flags & dns.flags.QR, "answer without QR"
            assert response.id == struct.unpack_from("!H", wire)[0]
            if not tcp:
                assert len(out) <= 65535
    assert server.counters()["internal_errors"] == before, "internal error in the query path"


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
