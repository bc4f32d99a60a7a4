"""The advertiser on a real link: two network namespaces joined by a veth pair.

    infra ns: "infra0" (the border router's infrastructure interface, advertiser in this process)
      ── veth ──
    lan ns:   "host0"  (a Linux host with accept_ra=2, accept_ra_rt_info_max_plen=64)

The advertiser's sockets are created inside the infra namespace by a helper thread that enters it;
a socket keeps the namespace it was created in. The LAN side captures with a raw ICMPv6 socket made
the same way, and the LAN host's kernel shows what a user sees: a route to the OMR prefix.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import os
import select
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest

from gatewayd.border.advertiser import Advertiser, icmp6_filter_pass_only, interface_index
from gatewayd.border.ra import RouterAdvertisement, RouterSolicitation, build_rs, parse

pytestmark = [pytest.mark.root, pytest.mark.slow]

OMR = IPv6Network("fd5e:a1b2:c3d4:1::/64")
OMR2 = IPv6Network("fd5e:a1b2:c3d4:2::/64")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn in a thread that first enters network namespace `name` (the caller's thread stays put)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {name}")
            finally:
                os.close(fd)
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def sh(*cmd: str, check: bool = True) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {r.stderr}")
    return r.stdout


@dataclass
class Received:
    at: float
    src: IPv6Address
    dst: IPv6Address
    hop_limit: int
    ra: RouterAdvertisement


class Link:
    """The two namespaces; the veth between them is made by `connect` so tests can start without it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.infra, self.lan = f"rai-{tag}", f"ral-{tag}"
        for ns in (self.infra, self.lan):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # The LAN host: not a router, takes routes up to /64 from Route Information Options, no DAD wait.
        self.sysctl(self.lan, "accept_ra=2", "accept_ra_rt_info_max_plen=64", "forwarding=0", "accept_dad=0",
                    "router_solicitations=0")
        self.capture = in_netns(self.lan, socket.socket, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        self.capture.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        self.capture.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        self.capture.setsockopt(socket.IPPROTO_ICMPV6, 1, icmp6_filter_pass_only(134))
        self.capture.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)

    def sysctl(self, ns: str, *settings: str, dev: str = "default") -> None:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", *(f"net.ipv6.conf.{dev}.{s}" for s in settings))

    def connect(self) -> None:
        sh("ip", "link", "add", "infra0", "netns", self.infra, "type", "veth", "peer", "name", "host0",
           "netns", self.lan)
        sh("ip", "-n", self.infra, "link", "set", "infra0", "up")
        sh("ip", "-n", self.lan, "link", "set", "host0", "up")

    def factory(self, family: int, kind: int, proto: int) -> socket.socket:
        return in_netns(self.infra, socket.socket, family, kind, proto)

    def advertiser(self, **kw: Any) -> Advertiser:
        opts: dict[str, Any] = {"initial_interval": 0.6, "min_interval": 20.0, "max_interval": 25.0,
                                "min_delay_between_ras": 0.2, "retry_interval": 0.1, "check_interval": 0.1,
                                "socket_factory": self.factory}
        return Advertiser("infra0", **{**opts, **kw})

    def link_local(self, ns: str, dev: str) -> IPv6Address:
        out = sh("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
        return IPv6Address(out.split()[3].split("/")[0])

    def mac(self, ns: str, dev: str) -> bytes:
        out = sh("ip", "-n", ns, "-o", "link", "show", "dev", dev)
        return bytes.fromhex(out.split("link/ether ")[1].split()[0].replace(":", ""))

    def lan_routes(self) -> str:
        return sh("ip", "-n", self.lan, "-6", "route", "show")

    async def next_ra(self, timeout: float) -> Received:
        got = await asyncio.to_thread(self._recv, timeout)
        if got is None:
            raise AssertionError(f"no Router Advertisement on the LAN within {timeout} s")
        return got

    async def no_ra(self, seconds: float) -> None:
        got = await asyncio.to_thread(self._recv, seconds)
        assert got is None, f"unexpected RA after {seconds} s window: {got}"

    def _recv(self, timeout: float) -> Received | None:
        ready, _, _ = select.select([self.capture], [], [], timeout)
        if not ready:
            return None
        data, anc, _, addr = self.capture.recvmsg(4096, 256)
        at = time.monotonic()
        hop_limit, dst = -1, IPv6Address("::")
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                hop_limit = struct.unpack("=i", value[:4])[0]
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                dst = IPv6Address(value[:16])
        ra = parse(data)
        assert isinstance(ra, RouterAdvertisement)
        return Received(at, IPv6Address(addr[0].split("%")[0]), dst, hop_limit, ra)

    def send_rs(self, *, hop_limit: int = 255, lladdr: bytes | None = None) -> None:
        ifindex = interface_index(self.capture, "host0")
        self.capture.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hop_limit)
        self.capture.sendto(build_rs(RouterSolicitation(lladdr)), ("ff02::2", 0, 0, ifindex))

    def close(self) -> None:
        self.capture.close()
        for ns in (self.infra, self.lan):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
async def advertisers() -> AsyncIterator[list[Advertiser]]:
    """Advertisers started by a test, stopped even when it fails (before the namespaces go)."""
    made: list[Advertiser] = []
    yield made
    for adv in made:
        await adv.stop()


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def route_line(routes: str, prefix: IPv6Network) -> str | None:
    return next((line for line in routes.splitlines() if line.startswith(str(prefix))), None)


async def test_lan_host_learns_the_omr_route_via_the_border_router(link: Link, advertisers: list[Advertiser]):
    link.connect()
    adv = link.advertiser()
    advertisers.append(adv)
    adv.update([OMR])
    await adv.start()

    first = await link.next_ra(10)
    infra_ll = link.link_local(link.infra, "infra0")
    assert first.src == infra_ll and first.src.is_link_local
    assert first.dst == IPv6Address("ff02::1") and first.hop_limit == 255
    assert first.ra.router_lifetime == 0
    assert [(r.prefix, r.lifetime) for r in first.ra.routes] == [(OMR, 1800)]
    assert first.ra.source_lladdr == link.mac(link.infra, "infra0")

    line = await wait_for(lambda: route_line(link.lan_routes(), OMR), 5, "route to the OMR prefix on the LAN host")
    assert f"via {infra_ll} dev host0 proto ra" in line
    assert "default" not in link.lan_routes()  # router lifetime 0: not a default router

    # The Thread network gets a different OMR prefix: the old one is withdrawn promptly, the new one learnt.
    t0 = time.monotonic()
    adv.update([OMR2])
    ra = await link.next_ra(5)
    while {r.prefix for r in ra.ra.routes} != {OMR, OMR2}:
        ra = await link.next_ra(5)
    assert ra.at - t0 < 1.0
    assert {(r.prefix, r.lifetime) for r in ra.ra.routes} == {(OMR2, 1800), (OMR, 0)}
    await wait_for(lambda: route_line(link.lan_routes(), OMR) is None, 5, "withdrawal of the old OMR route")
    assert route_line(link.lan_routes(), OMR2) is not None
    later = await link.next_ra(5)
    assert [(r.prefix, r.lifetime) for r in later.ra.routes] == [(OMR2, 1800)]  # the withdrawal went out once

    status = adv.status()
    assert status["state"] == "advertising" and status["source"] == str(infra_ll)
    assert status["prefixes"] == [str(OMR2)] and status["withdrawing"] == []


async def test_first_three_advertisements_come_at_the_initial_interval(link: Link, advertisers: list[Advertiser]):
    link.connect()
    adv = link.advertiser(initial_interval=0.7, min_interval=2.5, max_interval=3.0)
    advertisers.append(adv)
    adv.update([OMR])
    await adv.start()
    ras = [await link.next_ra(10)]
    for _ in range(3):
        ras.append(await link.next_ra(5))
    gap = [b.at - a.at for a, b in itertools.pairwise(ras)]
    assert gap[0] == pytest.approx(0.7, abs=0.25) and gap[1] == pytest.approx(0.7, abs=0.25)
    assert 2.5 - 0.1 <= gap[2] <= 3.0 + 0.3  # then min..max interval
    assert adv.status()["ra_sent"] == 4


async def test_router_solicitations_are_answered_with_rate_limit(link: Link, advertisers: list[Advertiser]):
    link.connect()
    # Periodic RAs are far apart, so any RA after the first is an answer.
    adv = link.advertiser(initial_interval=60, min_interval=60, max_interval=70, min_delay_between_ras=3.0)
    advertisers.append(adv)
    adv.update([OMR])
    await adv.start()
    first = await link.next_ra(10)

    link.send_rs(lladdr=link.mac(link.lan, "host0"))
    answer = await link.next_ra(6)
    # MIN_DELAY_BETWEEN_RAS after the last multicast RA, plus up to MAX_RA_DELAY_TIME
    assert 3.0 - 0.1 <= answer.at - first.at <= 3.5 + 0.5
    assert answer.dst == IPv6Address("ff02::1") and answer.hop_limit == 255
    assert [r.prefix for r in answer.ra.routes] == [OMR]

    await asyncio.sleep(3.1)
    t0 = time.monotonic()
    link.send_rs()  # from the host's link-local address, no option
    answer = await link.next_ra(3)
    assert answer.at - t0 <= 0.5 + 0.5

    link.send_rs(hop_limit=64)  # not from the link: RFC 4861 §6.1.1 says discard
    await link.no_ra(4.0)
    status = await wait_for(lambda: (s := adv.status())["rs_invalid"] and s, 2, "the bad RS counted")
    assert (status["rs_received"], status["rs_answered"], status["rs_invalid"]) == (2, 2, 1)
    assert status["ra_sent"] == 3 and status["ra_sent_solicited"] == 2


async def test_unicast_answers_go_to_the_soliciting_host(link: Link, advertisers: list[Advertiser]):
    link.connect()
    adv = link.advertiser(initial_interval=60, min_interval=60, max_interval=70, unicast_solicited=True)
    advertisers.append(adv)
    adv.update([OMR])
    await adv.start()
    await link.next_ra(10)
    link.send_rs(lladdr=link.mac(link.lan, "host0"))
    answer = await link.next_ra(2)
    assert answer.dst == link.link_local(link.lan, "host0") and answer.hop_limit == 255
    assert [r.prefix for r in answer.ra.routes] == [OMR]


async def test_stop_withdraws_the_route(link: Link, advertisers: list[Advertiser]):
    link.connect()
    adv = link.advertiser()
    adv.update([OMR, OMR2])
    await adv.start()
    try:
        await link.next_ra(10)
        await wait_for(lambda: route_line(link.lan_routes(), OMR2), 5, "route on the LAN host")
    finally:
        await adv.stop()
    final = await link.next_ra(2)
    while any(r.lifetime for r in final.ra.routes):  # skip RAs that were already in flight
        final = await link.next_ra(2)
    assert final.ra.router_lifetime == 0
    assert {(r.prefix, r.lifetime) for r in final.ra.routes} == {(OMR, 0), (OMR2, 0)}
    await wait_for(lambda: route_line(link.lan_routes(), OMR) is None and route_line(link.lan_routes(), OMR2) is None,
                   5, "the LAN host dropping both routes")
    await link.no_ra(1.5)  # and nothing after it
    assert adv.status()["state"] == "stopped"


async def test_interface_missing_down_and_recreated(link: Link, advertisers: list[Advertiser],
                                                    caplog: pytest.LogCaptureFixture):
    adv = link.advertiser()
    advertisers.append(adv)
    adv.update([OMR])
    caplog.set_level("INFO", logger="gatewayd.border")
    await adv.start()
    status = await wait_for(lambda: (s := adv.status())["problem"] and s, 2, "a reported problem")
    assert status["state"] == "waiting" and "infra0 does not exist" in status["problem"]
    await asyncio.sleep(0.5)  # several retries...
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["router advertisements on infra0 paused: interface infra0 does not exist"]  # ...one warning

    link.connect()  # the interface appears: advertising starts by itself
    ra = await link.next_ra(10)
    assert [r.prefix for r in ra.ra.routes] == [OMR]
    assert adv.status()["state"] == "advertising"

    sh("ip", "-n", link.infra, "link", "set", "infra0", "down")
    await wait_for(lambda: adv.status()["state"] == "waiting", 5, "noticing the interface went down")
    assert "down" in adv.status()["problem"]
    while await asyncio.to_thread(link._recv, 0.3) is not None:
        pass
    sh("ip", "-n", link.infra, "link", "set", "infra0", "up")
    ras = [await link.next_ra(10), await link.next_ra(3)]  # a fresh initial phase, not minutes of silence
    assert ras[1].at - ras[0].at == pytest.approx(0.6, abs=0.25)

    sh("ip", "-n", link.lan, "link", "set", "host0", "down")  # the cable is pulled at the other end
    await wait_for(lambda: "no carrier" in (adv.status()["problem"] or ""), 5, "noticing the carrier loss")
    assert adv.status()["state"] == "waiting"
    sh("ip", "-n", link.lan, "link", "set", "host0", "up")
    await link.next_ra(10)
    assert adv.status()["state"] == "advertising"

    sh("ip", "-n", link.lan, "link", "del", "host0")  # deletes both ends
    await wait_for(lambda: adv.status()["state"] == "waiting", 5, "noticing the interface is gone")
    link.connect()
    ra = await link.next_ra(10)
    assert ra.src == link.link_local(link.infra, "infra0")
    assert adv.status()["state"] == "advertising" and adv.status()["ifindex"] is not None
    assert any("resumed" in r.getMessage() for r in caplog.records)


async def test_quiet_until_there_is_a_prefix(link: Link, advertisers: list[Advertiser]):
    link.connect()
    adv = link.advertiser()
    advertisers.append(adv)
    await adv.start()  # the Thread network has no OMR prefix yet
    await wait_for(lambda: adv.status()["state"] == "advertising", 10, "the link becoming usable")
    await link.no_ra(2.0)  # an RA without routes would tell hosts nothing
    link.send_rs()
    await link.no_ra(1.0)
    t0 = time.monotonic()
    adv.update([OMR])
    ra = await link.next_ra(2)
    assert ra.at - t0 < 1.0 and [r.prefix for r in ra.ra.routes] == [OMR]
    assert adv.status()["rs_received"] == 1 and adv.status()["rs_answered"] == 0
