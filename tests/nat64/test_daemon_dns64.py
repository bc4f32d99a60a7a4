"""The DNS64 component follows the mesh interface's addresses and serves the mesh's prefixes (loopback only)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Interface, IPv6Network

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest

from devtools.dns_zone import ZoneServer, free_port
from gatewayd.config.loader import parse
from gatewayd.control import CommandError, Request
from gatewayd.dns64.component import Dns64Component
from tests.thread.fake_view import FakeThreadView

ZONE = "$TTL 300\n@ SOA ns host 1 3600 600 86400 60\n@ NS ns\nns A 100.64.0.10\nlwm2m A 100.64.0.10\n"


def config(upstream: str, port: int, extra: str = ""):
    return parse(f'[nat64]\nprefix = "fd64:64::/96"\n[dns64]\nupstream = ["{upstream}"]\nport = {port}\n'
                 f'allowed = ["127.0.0.0/8"]\n{extra}')


async def aaaa(server: str, port: int, name: str = "lwm2m.example.test") -> list[str] | None:
    try:
        r = await dns.asyncquery.udp(dns.message.make_query(name, "AAAA"), server, port=port, timeout=0.5)
    except dns.exception.Timeout:
        return None
    return [rd.to_text() for rrset in r.answer for rd in rrset]


async def test_answers_on_the_mesh_addresses_and_follows_them():
    port = free_port()
    thread = FakeThreadView()
    async with ZoneServer({"example.test": ZONE}) as zone:
        dns64 = Dns64Component(config(zone.address, port), thread, retry_interval=0.05)
        await dns64.start()
        try:
            assert dns64.server.addresses == [], "no mesh yet, nothing to answer on"
            assert len(thread.subscribers) == 1
            thread.update(interface="wpan0", addresses={IPv4Interface("127.0.0.2/8")})
            for _ in range(40):
                if dns64.server.addresses:
                    break
                await asyncio.sleep(0.05)
            assert await aaaa("127.0.0.2", port) == ["fd64:64::6440:a"]

            # the mesh address changes (re-attach, new prefix): the old one goes quiet, the new one answers
            thread.update(addresses={IPv4Interface("127.0.0.3/8")})
            for _ in range(40):
                if dns64.server.addresses == [("127.0.0.3", port)]:
                    break
                await asyncio.sleep(0.05)
            assert await aaaa("127.0.0.3", port) == ["fd64:64::6440:a"]
            assert await aaaa("127.0.0.2", port) is None
            assert zone.count("lwm2m.example.test", "AAAA") + zone.count("lwm2m.example.test", "A") >= 1

            rows = await dns64._cmd_cache(Request([]))
            assert any(r["name"] == "lwm2m.example.test." and r["answer"] == "fd64:64::6440:a" for r in rows)
            counters = await dns64._cmd_counters(Request([]))
            assert counters["queries"] >= 2
            assert dns64.status_line() == "DNS64 on 1 address"
        finally:
            await dns64.stop()
        assert dns64.server is None
        assert len(thread.subscribers) == 0, "stop() ends the subscription"
        with pytest.raises(CommandError):
            await dns64._cmd_counters(Request([]))


async def test_serves_mesh_local_and_omr_prefixes_and_refuses_others():
    port = free_port()
    mesh_local, omr = IPv6Network("fd11:22::/64"), IPv6Network("fd33:44::/64")
    thread = FakeThreadView(interface="wpan0", addresses={IPv4Interface("127.0.0.4/8")},
                            mesh_local_prefix=mesh_local, omr_prefix=omr)
    async with ZoneServer({"example.test": ZONE}) as zone:
        cfg = parse(f'[nat64]\nprefix = "fd64:64::/96"\n[dns64]\nupstream = ["{zone.address}"]\nport = {port}\n'
                    'listen = ["127.0.0.5"]\nallowed = ["10.9.0.0/16"]\n')
        dns64 = Dns64Component(cfg, thread)
        await dns64.start()
        try:
            wanted = dns64.dns64_config()
            assert [str(n) for n in wanted.allowed] == [str(mesh_local), str(omr), "10.9.0.0/16"]
            assert sorted(dns64.server.addresses) == [("127.0.0.4", port), ("127.0.0.5", port)]
            r = await dns.asyncquery.udp(dns.message.make_query("lwm2m.example.test", "AAAA"), "127.0.0.5",
                                         port=port, timeout=1)
            assert dns.rcode.to_text(r.rcode()) == "REFUSED", "127.0.0.1 is in none of the served prefixes"
        finally:
            await dns64.stop()


async def test_synthesises_in_the_nat64_prefix_the_mesh_routes():
    """Another border router's NAT64 prefix was favoured over ours (gatewayd/thread/routing.py): an address
    in ours would lead to a route the mesh no longer has."""
    port = free_port()
    thread = FakeThreadView(interface="wpan0", addresses={IPv4Interface("127.0.0.6/8")})
    async with ZoneServer({"example.test": ZONE}) as zone:
        dns64 = Dns64Component(config(zone.address, port), thread, retry_interval=0.05)
        await dns64.start()
        try:
            assert await aaaa("127.0.0.6", port) == ["fd64:64::6440:a"]
            thread.update(nat64_prefix=IPv6Network("fd99:64::/96"))
            for _ in range(40):
                if str(dns64.server.config.prefix) == "fd99:64::/96":
                    break
                await asyncio.sleep(0.05)
            assert await aaaa("127.0.0.6", port) == ["fd99:64::6440:a"]
        finally:
            await dns64.stop()
