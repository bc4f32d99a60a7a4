"""Router Advertisements on the infrastructure link: tells LAN hosts that the OMR prefix is reachable
through this border router (a Route Information Option, RFC 4191, in an RA with Router Lifetime 0).

Timing follows RFC 4861 §6.2.4–6.2.6: after the interface becomes an advertising interface the first
MAX_INITIAL_RTR_ADVERTISEMENTS go out at most `initial_interval` apart, then uniformly random between
`min_interval` and `max_interval`; solicitations are answered after a random delay of up to
MAX_RA_DELAY_TIME, and multicast RAs are at least MIN_DELAY_BETWEEN_RAS apart. A change of the
advertised set restarts the initial phase, so hosts hear about it within seconds.

The interface may be missing, down or still without a link-local address (DAD): the advertiser logs
the condition once, looks again every `retry_interval` seconds and never raises out of its task. While
advertising it looks every `check_interval` seconds (10 s, as the LAN listener does), so a lost interface
shows in `status()` without waiting for the next RA; a 2 s look was half an idle daemon's wakeups. With
nothing to advertise it stays quiet.

Interface facts (index, flags, link-layer address) are read with ioctls on the advertiser's own socket,
so they come from the network namespace the socket was created in; `socket_factory` lets a caller
create the sockets inside another namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import random
import socket
import struct
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from common.aio import cancel_and_wait
from gatewayd.border.ra import (
    MAX_INITIAL_RTR_ADVERT_INTERVAL,
    MAX_INITIAL_RTR_ADVERTISEMENTS,
    MAX_RA_DELAY_TIME,
    MIN_DELAY_BETWEEN_RAS,
    ND_ROUTER_SOLICIT,
    RaError,
    RouteInformation,
    RoutePreference,
    RouterAdvertisement,
    RouterSolicitation,
    build_ra,
    parse,
)

log = logging.getLogger("gatewayd.border")

SocketFactory = Callable[[int, int, int], socket.socket]

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")

# <linux/sockios.h>, <linux/if.h>, <linux/if_arp.h>, <netinet/icmp6.h>
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
IFF_UP = 0x1
IFF_RUNNING = 0x40
ARPHRD_ETHER = 1
ICMP6_FILTER = 1

#: errnos that mean "the interface is not usable right now" rather than a bug.
_LINK_ERRNOS = {errno.ENETDOWN, errno.ENXIO, errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENETUNREACH,
                errno.EHOSTUNREACH, errno.ENOBUFS}


def icmp6_filter_pass_only(*types: int) -> bytes:
    """struct icmp6_filter that blocks every ICMPv6 type but `types` (a set bit blocks, Linux semantics)."""
    words = [0xFFFFFFFF] * 8
    for t in types:
        words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    return fcntl.ioctl(sock.fileno(), request, struct.pack("16s16x", name.encode()))


def interface_index(sock: socket.socket, name: str) -> int:
    """Index of `name` in the socket's network namespace (OSError ENODEV if there is none)."""
    return struct.unpack_from("=i", _ifreq(sock, SIOCGIFINDEX, name), 16)[0]


def interface_flags(sock: socket.socket, name: str) -> int:
    return struct.unpack_from("=H", _ifreq(sock, SIOCGIFFLAGS, name), 16)[0]


def interface_lladdr(sock: socket.socket, name: str) -> bytes | None:
    """The Ethernet address for the Source Link-Layer Address option, or None for other link types."""
    family, data = struct.unpack_from("=H14s", _ifreq(sock, SIOCGIFHWADDR, name), 16)
    addr = data[:6]
    return addr if family == ARPHRD_ETHER and any(addr) else None


NdMessage = RouterAdvertisement | RouterSolicitation


def close_reader(loop: asyncio.AbstractEventLoop | None, sock: socket.socket | None) -> None:
    """Stop watching `sock` in `loop` (if it still runs) and close it."""
    if sock is not None:
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sock.fileno())
        sock.close()


def receive_nd(sock: socket.socket, on_message: Callable[[NdMessage | None, IPv6Address, int | None], None],
               limit: int = 64) -> None:
    """Hand what is queued on a raw ICMPv6 socket (IPV6_RECVHOPLIMIT on) to `on_message(message, source,
    hop limit)`, message None when it does not decode; at most `limit`, so a flood cannot starve the loop."""
    for _ in range(limit):
        try:
            data, ancdata, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(4))
        except OSError:  # nothing more queued (BlockingIOError), or the socket went
            return
        hop_limit = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                hop_limit = struct.unpack_from("=i", value)[0]
        msg: NdMessage | None
        try:
            source = IPv6Address(str(addr[0]).split("%")[0])
            msg = parse(data)
        except (RaError, ValueError):
            source, msg = IPv6Address(0), None
        on_message(msg, source, hop_limit)


class Schedule:
    """When the next multicast RA is due (RFC 4861 §6.2.4, §6.2.6); pure, times in seconds."""

    def __init__(self, *, initial_interval: float, min_interval: float, max_interval: float,
                 initial_count: int = MAX_INITIAL_RTR_ADVERTISEMENTS, min_delay: float = MIN_DELAY_BETWEEN_RAS,
                 rng: random.Random | None = None):
        if not 0 < min_interval <= max_interval:
            raise ValueError(f"need 0 < min_interval ({min_interval}) <= max_interval ({max_interval})")
        if initial_interval <= 0 or min_delay < 0:
            raise ValueError("initial_interval must be > 0 and min_delay >= 0")
        self.initial_interval = initial_interval
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.initial_count = initial_count
        self.min_delay = min_delay
        self.rng = rng or random.Random()
        self.count = 0  # unsolicited RAs since the interface became advertising (or the set changed)
        self.last: float | None = None  # when the last multicast RA went out
        self.next = 0.0  # when the next unsolicited one is due

    def not_before(self, t: float) -> float:
        return t if self.last is None else max(t, self.last + self.min_delay)

    def restart(self, now: float) -> None:
        """The interface became an advertising interface, or what it advertises changed: RA now."""
        self.count = 0
        self.next = self.not_before(now)

    def interval(self) -> float:
        interval = self.rng.uniform(self.min_interval, self.max_interval)
        if self.count < self.initial_count:
            interval = min(interval, self.initial_interval)
        return interval

    def sent(self, now: float, *, solicited: bool = False) -> None:
        """A multicast RA went out; a solicited one only pushes the next one past the rate limit."""
        self.last = now
        if solicited:
            self.next = self.not_before(self.next)
        else:
            self.count += 1
            self.next = now + self.interval()

    def solicited(self, now: float, delay: float) -> float:
        """When a multicast answer to a solicitation received `now` goes out (§6.2.6)."""
        due = now + delay
        if self.last is not None and self.last + self.min_delay > now:
            due = self.last + self.min_delay + delay
        return min(due, self.next)


class Advertiser:
    """Advertises the prefixes given to `update` as routes on `interface` (module docstring: behaviour).

    `preference` and `route_lifetime` go into every Route Information Option; `router_lifetime` > 0 would
    also make this a default router. `unicast_solicited` answers an RS from a known address by unicast
    instead of the usual multicast. `socket_factory(family, type, proto)` creates the sockets (e.g. in
    another network namespace); `rng` makes the jitter reproducible.
    """

    def __init__(self, interface: str, *, initial_interval: float = MAX_INITIAL_RTR_ADVERT_INTERVAL,
                 min_interval: float = 150.0, max_interval: float = 210.0,
                 preference: RoutePreference = RoutePreference.MEDIUM, route_lifetime: int = 1800,
                 router_lifetime: int = 0, initial_count: int = MAX_INITIAL_RTR_ADVERTISEMENTS,
                 min_delay_between_ras: float = MIN_DELAY_BETWEEN_RAS, max_ra_delay: float = MAX_RA_DELAY_TIME,
                 unicast_solicited: bool = False, retry_interval: float = 2.0, check_interval: float = 10.0,
                 socket_factory: SocketFactory = socket.socket, rng: random.Random | None = None):
        if preference == RoutePreference.RESERVED:
            raise ValueError("the reserved preference cannot be advertised")
        if not max_interval < route_lifetime <= 0xFFFFFFFF:
            raise ValueError(f"route_lifetime {route_lifetime} must exceed max_interval {max_interval}")
        if not 0 <= router_lifetime <= 9000:
            raise ValueError(f"router_lifetime {router_lifetime} out of range 0..9000")
        self.interface = interface
        self.preference = RoutePreference(preference)
        self.route_lifetime = route_lifetime
        self.router_lifetime = router_lifetime
        self.max_ra_delay = max_ra_delay
        self.unicast_solicited = unicast_solicited
        self.retry_interval = retry_interval
        self.check_interval = check_interval
        self._factory = socket_factory
        self._rng = rng or random.Random()
        self._schedule = Schedule(initial_interval=initial_interval, min_interval=min_interval,
                                  max_interval=max_interval, initial_count=initial_count,
                                  min_delay=min_delay_between_ras, rng=self._rng)
        self._prefixes: dict[IPv6Network, None] = {}  # ordered set
        self._withdrawn: dict[IPv6Network, None] = {}  # to be sent once with lifetime 0
        self._sock: socket.socket | None = None
        self._ifindex = 0
        self._source: IPv6Address | None = None
        self._usable = False  # the interface was up with a link-local address at the last look
        self._problem: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._solicited_due: float | None = None
        self._solicited_waiting = 0  # RSs the pending multicast answer will answer
        self._unicast_due: dict[IPv6Address, list[float]] = {}  # address -> [due, RSs it answers]
        self._unicast_last: dict[IPv6Address, float] = {}
        self._last_ra: float | None = None
        self.counters = {"ra_sent": 0, "ra_sent_solicited": 0, "rs_received": 0, "rs_answered": 0,
                         "rs_invalid": 0, "errors": 0}

    # --- public API ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin advertising; returns at once even if the interface is not there yet."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"ra-advertiser-{self.interface}")

    def update(self, prefixes: Iterable[IPv6Network | str]) -> None:
        """Advertise exactly `prefixes` from now on; a change goes out promptly."""
        new = dict.fromkeys(IPv6Network(p) for p in prefixes)
        if new.keys() == self._prefixes.keys():
            return
        for gone in self._prefixes.keys() - new.keys():
            self._withdrawn[gone] = None
        for back in new:
            self._withdrawn.pop(back, None)
        self._prefixes = new
        log.info("advertising routes on %s: %s", self.interface, ", ".join(map(str, new)) or "(none)")
        if self._loop is not None:
            self._schedule.restart(self._loop.time())
            self._poke()

    async def stop(self) -> None:
        """Send a final RA withdrawing every route (lifetimes 0), then close."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._sock is not None:
            if self._has_news() and self._check_link():
                final = self._advertisement(final=True)
                if self._send(final, ALL_NODES):
                    log.info("withdrew routes on %s", self.interface)
            self._close()

    def status(self) -> dict[str, Any]:
        now = self._loop.time() if self._loop is not None else time.monotonic()
        if self._task is None:
            state = "stopped"
        elif self._sock is not None and self._usable:
            state = "advertising"
        else:
            state = "waiting"
        next_ra = None
        if state == "advertising":
            due = self._schedule.next if self._solicited_due is None else min(self._schedule.next,
                                                                              self._solicited_due)
            next_ra = round(max(0.0, due - now), 3)
        return {
            "interface": self.interface,
            "state": state,
            "problem": self._problem,
            "ifindex": self._ifindex or None,
            "source": str(self._source) if self._source else None,
            "prefixes": [str(p) for p in self._prefixes],
            "withdrawing": [str(p) for p in self._withdrawn],
            "preference": self.preference.name.lower(),
            "route_lifetime": self.route_lifetime,
            "router_lifetime": self.router_lifetime,
            "last_ra_age": None if self._last_ra is None else round(now - self._last_ra, 3),
            "next_ra_in": next_ra,
            **self.counters,
        }

    # --- the task -----------------------------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that arrives
        # as the event is set (update() right before stop()), and stop() would then wait forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()

    async def _run(self) -> None:
        assert self._wake is not None and self._loop is not None
        while True:
            self._wake.clear()
            try:
                delay = self._step(self._loop.time())
            except Exception:  # a bug must not take the border router down; keep advertising
                self.counters["errors"] += 1
                log.exception("router advertiser on %s failed; retrying", self.interface)
                delay = self.retry_interval
            await self._sleep(delay)

    def _step(self, now: float) -> float:
        """Do what is due at `now`; return how long until something else is."""
        if self._sock is None and not self._open():
            return self.retry_interval
        if not self._check_link():
            return self.retry_interval
        if now >= self._schedule.next or (self._solicited_due is not None and now >= self._solicited_due):
            solicited = now < self._schedule.next
            if not self._has_news():  # nothing to tell hosts: an empty RA would only be noise
                self._schedule.sent(now, solicited=solicited)
                self._solicited_waiting = 0
                self._solicited_due = None
            elif self._send(self._advertisement(), ALL_NODES):
                self._withdrawn.clear()
                self._schedule.sent(now, solicited=solicited)
                self.counters["rs_answered"] += self._solicited_waiting
                if solicited:
                    self.counters["ra_sent_solicited"] += 1
                self._solicited_waiting = 0
                self._solicited_due = None
            else:
                return self.retry_interval
        for addr, (due, waiting) in list(self._unicast_due.items()):
            if now >= due:
                del self._unicast_due[addr]
                if self._has_news() and self._send(self._advertisement(), addr):
                    self._unicast_last[addr] = now
                    self.counters["rs_answered"] += int(waiting)
                    self.counters["ra_sent_solicited"] += 1
        dues = [self._schedule.next, *(due for due, _ in self._unicast_due.values())]
        if self._solicited_due is not None:
            dues.append(self._solicited_due)
        # Look at the link again before long: a vanished interface should not wait for the next RA to show.
        return min(min(dues) - now, self.check_interval)

    def _has_news(self) -> bool:
        return bool(self._prefixes or self._withdrawn or self.router_lifetime)

    # --- link state ---------------------------------------------------------------------------------

    def _report(self, problem: str | None) -> None:
        """Log a change of condition once (a warning while it lasts would flood the journal)."""
        if problem == self._problem:
            return
        if problem is not None:
            log.warning("router advertisements on %s paused: %s", self.interface, problem,
                        extra={"fields": {"RA_INTERFACE": self.interface}})
        elif self._problem is not None:
            log.info("router advertisements on %s resumed from %s", self.interface, self._source)
        self._problem = problem

    def _open(self) -> bool:
        try:
            sock = self._factory(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as exc:
            self.counters["errors"] += 1
            self._report(f"cannot open a raw ICMPv6 socket ({exc.strerror or exc}); needs CAP_NET_RAW")
            return False
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            ifindex = interface_index(sock, self.interface)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter_pass_only(ND_ROUTER_SOLICIT))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                            ALL_ROUTERS.packed + struct.pack("=I", ifindex))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                self._report(f"interface {self.interface} does not exist")
            else:
                self.counters["errors"] += 1
                self._report(f"cannot set up the socket: {exc.strerror or exc}")
            return False
        self._sock = sock
        self._ifindex = ifindex
        self._usable = False
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._readable)
        log.debug("router advertiser socket open on %s (index %d)", self.interface, ifindex)
        return True

    def _close(self) -> None:
        close_reader(self._loop, self._sock)
        self._sock = None
        self._usable = False
        self._source = None
        self._solicited_due = None
        self._unicast_due.clear()

    def _check_link(self) -> bool:
        """Is the interface up with a link-local address? Reopens the socket if it was re-created."""
        assert self._sock is not None
        try:
            ifindex = interface_index(self._sock, self.interface)
            flags = interface_flags(self._sock, self.interface)
        except OSError:
            self._close()
            self._report(f"interface {self.interface} disappeared")
            return False
        if ifindex != self._ifindex:  # deleted and created again: the old binding is stale
            self._close()
            self._report(f"interface {self.interface} was re-created")
            return False
        if not flags & IFF_UP:
            return self._set_unusable(f"interface {self.interface} is down")
        if not flags & IFF_RUNNING:
            return self._set_unusable(f"interface {self.interface} has no carrier")
        source = self._link_local()
        if source is None:
            return self._set_unusable(f"{self.interface} has no usable link-local address yet")
        if not self._usable or source != self._source:
            self._source = source
            self._usable = True
            assert self._loop is not None
            self._schedule.restart(self._loop.time())  # became an advertising interface (again)
            if self._problem is None:
                log.info("router advertisements on %s from %s", self.interface, source)
        self._report(None)
        return True

    def _set_unusable(self, problem: str) -> bool:
        self._usable = False
        self._source = None
        self._report(problem)
        return False

    def _link_local(self) -> IPv6Address | None:
        """The source the kernel picks for ff02::1 on the interface, if it is link-local (RFC 4861 §6.1.2)."""
        try:
            probe = self._factory(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        except OSError:
            return None
        with probe:
            try:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
                probe.connect((str(ALL_NODES), 9, 0, self._ifindex))
                addr = IPv6Address(probe.getsockname()[0].split("%")[0])
            except (OSError, ValueError):
                return None
        return addr if addr.is_link_local else None

    # --- messages -----------------------------------------------------------------------------------

    def _advertisement(self, *, final: bool = False) -> RouterAdvertisement:
        lifetime = 0 if final else self.route_lifetime
        routes = [RouteInformation(p, lifetime, self.preference) for p in self._prefixes]
        routes += [RouteInformation(p, 0, self.preference) for p in self._withdrawn]
        lladdr = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                lladdr = interface_lladdr(self._sock, self.interface)
        return RouterAdvertisement(router_lifetime=0 if final else self.router_lifetime,
                                   router_preference=self.preference, source_lladdr=lladdr, routes=tuple(routes))

    def _send(self, ra: RouterAdvertisement, dst: IPv6Address) -> bool:
        assert self._sock is not None and self._source is not None
        data = build_ra(ra)
        pktinfo = struct.pack("=16sI", self._source.packed, self._ifindex)
        try:
            self._sock.sendmsg([data], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                               0, (str(dst), 0, 0, self._ifindex))
        except OSError as exc:
            self.counters["errors"] += 1
            if exc.errno in _LINK_ERRNOS:
                self._set_unusable(f"sending to {dst} failed: {exc.strerror}")
            else:
                log.warning("router advertisement to %s on %s failed: %s", dst, self.interface, exc)
            return False
        self.counters["ra_sent"] += 1
        self._last_ra = self._loop.time() if self._loop is not None else time.monotonic()
        log.debug("RA to %s on %s: %s", dst, self.interface, ", ".join(
            f"{r.prefix} lifetime {r.lifetime}" for r in ra.routes) or "no routes")
        return True

    def _readable(self) -> None:
        if self._sock is not None:
            receive_nd(self._sock, self._on_message)

    def _on_message(self, msg: RouterAdvertisement | RouterSolicitation | None, source: IPv6Address,
                    hop_limit: int | None) -> None:
        # RFC 4861 §6.1.1: hop limit 255; no Source Link-Layer Address option from the unspecified address.
        if (not isinstance(msg, RouterSolicitation) or hop_limit != 255
                or (source.is_unspecified and msg.source_lladdr is not None)):
            self.counters["rs_invalid"] += 1
            return
        self.counters["rs_received"] += 1
        if not self._usable or self._loop is None:
            return
        now = self._loop.time()
        delay = self._rng.uniform(0.0, self.max_ra_delay)
        if self.unicast_solicited and not source.is_unspecified:
            if source in self._unicast_due:
                self._unicast_due[source][1] += 1  # the pending answer serves this one too
                return
            last = self._unicast_last.get(source)
            due = now + delay
            if last is not None and last + self._schedule.min_delay > now:
                due = last + self._schedule.min_delay + delay
            self._prune_unicast(now)
            self._unicast_due[source] = [due, 1]
        else:
            due = self._schedule.solicited(now, delay)
            self._solicited_due = due if self._solicited_due is None else min(due, self._solicited_due)
            self._solicited_waiting += 1
        self._poke()

    def _prune_unicast(self, now: float) -> None:
        horizon = now - self._schedule.min_delay
        for addr in [a for a, t in self._unicast_last.items() if t < horizon]:
            del self._unicast_last[addr]


__all__ = ["Advertiser", "RoutePreference", "Schedule", "close_reader", "receive_nd"]
