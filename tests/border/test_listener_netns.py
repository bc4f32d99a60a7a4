"""The LAN's Router Advertisements received on a real veth (namespaces made here): what reaches `on_ra`,
what is counted and dropped (RFC 4861 §6.1.2, our own RAs), the Router Solicitation sent at start, and an
interface that comes late or goes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest

from gatewayd.border.advertiser import icmp6_filter_pass_only, interface_index
from gatewayd.border.listener import RaListener
from gatewayd.border.ra import Pref64, RouteInformation, RouterAdvertisement, build_ra, parse
from tests.border.test_ra_netns import Link, in_netns, sh, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

RA = RouterAdvertisement(router_lifetime=600, routes=(RouteInformation(IPv6Network("2001:db8:99::/48"), 300),),
                         pref64=(Pref64(IPv6Network("64:ff9b::/96"), 600),))


class Heard:
    def __init__(self) -> None:
        self.ras: list[tuple[IPv6Address, RouterAdvertisement]] = []
        self.lost = 0

    def on_ra(self, source: IPv6Address, ra: RouterAdvertisement) -> None:
        self.ras.append((source, ra))

    def on_lost(self) -> None:
        self.lost += 1


@pytest.fixture
async def listening(link: Link) -> AsyncIterator[tuple[RaListener, Heard]]:
    heard = Heard()
    listener = RaListener("infra0", heard.on_ra, on_lost=heard.on_lost, check_interval=0.2,
                          socket_factory=link.factory)
    await listener.start()
    try:
        yield listener, heard
    finally:
        await listener.stop()


async def send_ra(link: Link, *, hop_limit: int = 255, ra: RouterAdvertisement = RA) -> None:
    """From the LAN host (once its link-local address is usable)."""
    link.capture.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hop_limit)
    await wait_for(lambda: _try_send(link.capture, "host0", ra), 5, "the LAN host's link-local address")


def rs_capture(link: Link) -> Any:
    """A socket on the LAN host hearing solicitations to all-routers (a host does not join that group)."""
    sock = in_netns(link.lan, socket.socket, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.IPPROTO_ICMPV6, 1, icmp6_filter_pass_only(133))
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, "ff02::2")
                    + interface_index(sock, "host0").to_bytes(4, "little"))
    sock.settimeout(5)
    return sock


async def test_an_ra_from_the_lan_is_heard_with_its_source_and_an_rs_goes_out_at_start(link: Link, listening):
    listener, heard = listening
    await asyncio.sleep(0.3)  # the listener looks for infra0, which is not there yet
    link.sysctl(link.infra, "router_solicitations=0")  # so the solicitation heard is ours, not the kernel's
    link.connect()  # the interface appears after the listener started (its link-local address after DAD)
    rs_sock = rs_capture(link)
    try:
        data, addr = await asyncio.to_thread(rs_sock.recvfrom, 1500)
        assert type(parse(data)).__name__ == "RouterSolicitation"
        assert IPv6Address(addr[0].split("%")[0]) == link.link_local(link.infra, "infra0")
    finally:
        rs_sock.close()
    await send_ra(link)
    await wait_for(lambda: heard.ras, 5, "the RA")
    assert heard.ras == [(link.link_local(link.lan, "host0"), RA)]
    assert listener.counters["ra_received"] == 1 and listener.counters["rs_sent"] == 1


async def test_invalid_and_own_ras_are_counted_not_heard(link: Link, listening):
    listener, heard = listening
    link.connect()
    await wait_for(lambda: listener.status()["listening"], 5, "the listener's socket")
    await send_ra(link, hop_limit=64)  # RFC 4861 §6.1.2: not from this link
    await wait_for(lambda: listener.counters["ra_invalid"] == 1, 5, "the bad hop limit counted")
    # an RA this host sends itself, looped back to it
    own = link.factory(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        own.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        own.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        await wait_for(lambda: _try_send(own, "infra0"), 5, "the infra link-local address")
    finally:
        own.close()
    await wait_for(lambda: listener.counters["ra_own_ignored"] >= 1, 5, "our own RA ignored")
    await send_ra(link)
    await wait_for(lambda: heard.ras, 5, "a good RA after them")
    assert len(heard.ras) == 1


def _try_send(sock: socket.socket, interface: str, ra: RouterAdvertisement = RA) -> bool:
    try:
        sock.sendto(build_ra(ra), ("ff02::1", 0, 0, interface_index(sock, interface)))
    except OSError:
        return False
    return True


async def test_a_vanished_interface_is_reported_and_a_new_one_heard(link: Link, listening):
    listener, heard = listening
    link.connect()
    await wait_for(lambda: listener.status()["listening"], 5, "the listener's socket")
    sh("ip", "-n", link.infra, "link", "del", "infra0")
    await wait_for(lambda: heard.lost == 1, 5, "the loss reported")
    link.connect()
    await wait_for(lambda: listener.status()["listening"], 5, "the listener's socket again")
    await send_ra(link)
    await wait_for(lambda: heard.ras, 5, "an RA on the new interface")
