"""Router Advertisements of the LAN's routers, received on the infrastructure interface.

A raw ICMPv6 socket bound to the interface and filtered to type 134 in the kernel; each RA is checked as
RFC 4861 §6.1.2 says (hop limit 255, link-local source, decodable) and handed to `on_ra`, except this
host's own (a source address the interface holds): the border router must not learn the OMR route it
advertises itself. Bad RAs are counted, never raised. On opening, one Router Solicitation asks the
LAN's routers to speak now rather than at their next periodic RA (minutes away).

The interface may be missing or re-created: the socket is opened when it exists and the link is looked at
every `check_interval` seconds, and `on_lost` is called when what was learned on it no longer holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any

from common.aio import cancel_and_wait
from gatewayd.border.advertiser import (
    ALL_ROUTERS,
    ICMP6_FILTER,
    SocketFactory,
    close_reader,
    icmp6_filter_pass_only,
    interface_index,
    receive_nd,
)
from gatewayd.border.ra import ND_ROUTER_ADVERT, RouterAdvertisement, RouterSolicitation, build_rs

log = logging.getLogger("gatewayd.border")


class RaListener:
    """Calls `on_ra(source, ra)` for each valid RA another router sends on `interface`."""

    def __init__(self, interface: str, on_ra: Callable[[IPv6Address, RouterAdvertisement], None], *,
                 on_lost: Callable[[], None] | None = None, check_interval: float = 10.0,
                 socket_factory: SocketFactory = socket.socket):
        self.interface = interface
        self.on_ra = on_ra
        self.on_lost = on_lost
        self.check_interval = check_interval
        self._factory = socket_factory
        self._sock: socket.socket | None = None
        self._ifindex = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._problem: str | None = None
        self._solicit_pending = False
        self.counters = {"ra_received": 0, "ra_invalid": 0, "ra_own_ignored": 0, "rs_sent": 0}

    async def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name=f"ra-listener-{self.interface}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._close()

    def status(self) -> dict[str, Any]:
        return {"listening": self._sock is not None, "problem": self._problem, **self.counters}

    async def _run(self) -> None:
        while True:
            if self._sock is None:
                self._open()
            elif not self._same_link():
                self._close()
                if self.on_lost is not None:
                    self.on_lost()
                continue
            elif self._solicit_pending:
                self._solicit()
            # quickly while the interface is missing or has no address to solicit from yet
            quick = self._sock is None or self._solicit_pending
            await asyncio.sleep(min(self.check_interval, 0.5) if quick else self.check_interval)

    def _report(self, problem: str | None) -> None:
        if problem != self._problem and problem is not None:
            log.warning("not listening for the LAN's router advertisements on %s: %s", self.interface, problem,
                        extra={"fields": {"RA_INTERFACE": self.interface}})
        self._problem = problem

    def _open(self) -> None:
        try:
            sock = self._factory(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as exc:
            self._report(f"cannot open a raw ICMPv6 socket ({exc.strerror or exc}); needs CAP_NET_RAW")
            return
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            ifindex = interface_index(sock, self.interface)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter_pass_only(ND_ROUTER_ADVERT))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        except OSError as exc:
            sock.close()
            self._report(f"interface {self.interface} does not exist" if exc.errno in (errno.ENODEV, errno.ENXIO)
                         else f"cannot set up the socket: {exc.strerror or exc}")
            return
        self._sock, self._ifindex = sock, ifindex
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._readable)
        if self._problem is not None:
            log.info("listening for the LAN's router advertisements on %s again", self.interface)
        self._problem = None
        self._solicit_pending = True
        self._solicit()

    def _solicit(self) -> None:
        """One RS (RFC 4861 §6.3.7), so the LAN's routers answer now; a failure only delays learning."""
        assert self._sock is not None
        try:
            self._sock.sendto(build_rs(RouterSolicitation()), (str(ALL_ROUTERS), 0, 0, self._ifindex))
        except OSError as exc:  # no link-local address yet (DAD): again shortly
            log.debug("router solicitation on %s: %s", self.interface, exc)
            return
        self.counters["rs_sent"] += 1
        self._solicit_pending = False

    def _same_link(self) -> bool:
        assert self._sock is not None
        try:
            return interface_index(self._sock, self.interface) == self._ifindex
        except OSError:
            return False

    def _close(self) -> None:
        close_reader(self._loop, self._sock)
        self._sock = None

    def _readable(self) -> None:
        if self._sock is not None:
            receive_nd(self._sock, self._on_message)

    def _on_message(self, ra: RouterAdvertisement | RouterSolicitation | None, source: IPv6Address,
                    hop_limit: int | None) -> None:
        # RFC 4861 §6.1.2: hop limit 255 and a link-local source, or the RA is silently discarded.
        if not isinstance(ra, RouterAdvertisement) or hop_limit != 255 or not source.is_link_local:
            self.counters["ra_invalid"] += 1
            return
        if self._is_own(source):
            self.counters["ra_own_ignored"] += 1
            return
        self.counters["ra_received"] += 1
        try:
            self.on_ra(source, ra)
        except Exception:  # a bug in what acts on it must not stop the listening
            log.exception("acting on a router advertisement from %s failed", source)

    def _is_own(self, source: IPv6Address) -> bool:
        """Does this host hold `source` on the interface? Binding to it succeeds only then."""
        try:
            probe = self._factory(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        except OSError:
            return False
        with probe, contextlib.suppress(OSError):
            probe.bind((str(source), 0, 0, self._ifindex))
            return True
        return False
