"""DNS on both sides of DNS64, run inside a testbed namespace (``python -m devtools.testbed.dns_peer``).

``zone ADDR``: an authoritative server for example.test on ADDR:53 (the IPv4-only "Internet");
prints "ready". ``resolve SERVER NAME TYPE``: one query to SERVER:53 from a mesh node; prints JSON.
lwm2m.example.test is the demo's upstream LwM2M server; dual.example.test has its own AAAA.
"""

from __future__ import annotations

import asyncio
import json
import sys

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from devtools.testbed.topology import DNS_ZONE, INET4

# Every name points at the Internet namespace's one host, where the peers run.
ZONE = f"""
$TTL 300
@ SOA ns host 1 3600 600 86400 60
@ NS ns
ns A {INET4}
lwm2m A {INET4}
echo A {INET4}
dual A {INET4}
dual AAAA 2001:db8::10
"""


async def zone(addr: str) -> None:
    from devtools.dns_zone import ZoneServer

    async with ZoneServer({DNS_ZONE: ZONE}, host=addr, port=53):
        print("ready", flush=True)
        await asyncio.Event().wait()


def resolve(server: str, name: str, rdtype: str) -> dict:
    query = dns.message.make_query(name, rdtype)
    response = dns.query.udp(query, server, timeout=3, port=53)
    answers = [rd.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype)
               for rd in rrset]
    return {"rcode": dns.rcode.to_text(response.rcode()), "answers": answers}


def main() -> None:
    cmd, *args = sys.argv[1:]
    if cmd == "zone":
        asyncio.run(zone(args[0]))
    elif cmd == "resolve":
        print(json.dumps(resolve(*args)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
