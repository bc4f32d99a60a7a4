"""Builtin NAT64 backend: the :class:`~nat64.translator.Nat64` core on one TUN device.

Both the NAT64 prefix and the IPv4 pool are routed into the TUN; packets read from it are told apart by
their version nibble and the translated ones are written back to it, so the kernel routes them on. The
runner does not install routes: :func:`required_routes` says what the daemon must add and
:func:`install_routes` / :func:`remove_routes` do it over rtnetlink. :func:`install_masquerade` adds an
optional nftables masquerade of the pool on the uplink, in its own table so it goes away cleanly.

Run it by hand (or from tests) as ``python -m nat64.backends.builtin --prefix P --pool A``; it reads
``status``, ``mappings`` and ``counters`` lines on stdin and answers each with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from common.aio import cancel_and_wait
from common.tun import open_tun
from nat64.fastpath import MAX_PACKET
from nat64.state import Caps, Timeouts
from nat64.translator import Nat64

__all__ = [
    "NFT_TABLE",
    "BuiltinNat64",
    "Route",
    "install_masquerade",
    "install_routes",
    "masquerade_ruleset",
    "open_tun",
    "remove_masquerade",
    "remove_routes",
    "required_routes",
]

log = logging.getLogger(__name__)

NFT_TABLE = "gatewayd_nat64"
_BUDGET = 64  # packets the datapath translates between looks at requests and expiry


def _read_one(fd: int, now: float, budget: int) -> tuple[int, int, bytes | None, bool]:
    """The pump of a core without a fast path: every packet goes to the full translation."""
    try:
        pkt = os.read(fd, MAX_PACKET + 1)
    except BlockingIOError:
        return 0, 0, None, True
    return 0, 0, pkt or None, not pkt


@dataclass(frozen=True, slots=True)
class Route:
    dst: str  # network in CIDR form
    ifname: str

    @property
    def family(self) -> int:
        return 6 if ":" in self.dst else 4


def required_routes(prefix: str, pool: Iterable[str] | str, ifname: str = "nat64") -> list[Route]:
    """Routes the daemon must add so the kernel hands NAT64 traffic to the TUN."""
    pools = [pool] if isinstance(pool, str) else list(pool)
    routes = [Route(str(IPv6Network(prefix)), ifname)]
    routes += [Route(str(IPv4Network(p)), ifname) for p in pools]
    return routes


def install_routes(routes: Iterable[Route], *, link_up: bool = True) -> None:
    """Bring the TUN up and add the routes (idempotent: existing routes are replaced).

    Blocking, like the other helpers here (nft runs as a program): from asyncio code call it with
    ``await asyncio.to_thread(install_routes, routes)``.
    """
    from common.netlink import Rtnl

    with Rtnl() as rt:
        for r in routes:
            link = rt.link(name=r.ifname)
            if link is None:
                raise OSError(f"no interface {r.ifname}")
            if link_up:
                rt.set_link(link.index, up=True)
            rt.replace_route(r.dst, link.index)


def remove_routes(routes: Iterable[Route]) -> None:
    """Remove routes added by :func:`install_routes`; missing ones are ignored."""
    from common.netlink import NetlinkError, Rtnl

    with Rtnl() as rt:
        for r in routes:
            link = rt.link(name=r.ifname)
            if link is None:
                continue
            with contextlib.suppress(NetlinkError):
                rt.delete_route(r.dst, link.index)


def masquerade_ruleset(pool: Iterable[str] | str, uplink: str) -> str:
    """nftables ruleset masquerading traffic from the pool out of ``uplink`` (multi-line form)."""
    pools = [pool] if isinstance(pool, str) else list(pool)
    saddr = ", ".join(str(IPv4Network(p)) for p in pools)
    return (
        f"table ip {NFT_TABLE} {{\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f'        oifname "{uplink}" ip saddr {{ {saddr} }} masquerade\n'
        "    }\n"
        "}\n"
    )


def install_masquerade(pool: Iterable[str] | str, uplink: str) -> None:
    remove_masquerade()
    subprocess.run(["nft", "-f", "-"], input=masquerade_ruleset(pool, uplink), text=True, check=True,
                   capture_output=True)


def remove_masquerade() -> None:
    subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True, check=False)


class BuiltinNat64:
    """Runs the :class:`~nat64.translator.Nat64` core on a TUN: read, translate, write back, expire.

    ``io="thread"`` (the default) gives the datapath a thread of its own that waits on the TUN and
    translates what it finds in batches of up to 64 packets (:meth:`nat64.fastpath.FastPath.pump`, native
    where built), then runs expiry: at tens of thousands of packets per second the per-packet cost of an
    event-loop callback is as large as the translation itself. The core's state is then only touched by
    that thread: the readers here (:meth:`status`, :meth:`mappings`, :meth:`counters`) hand their work to
    it and wait for the answer (it looks for such requests between batches and is woken for them when
    idle), which costs the datapath less than taking a lock per packet. ``io="asyncio"`` reads the TUN
    from the event loop instead, draining it in each callback (kept for comparison, and for hosts where
    threads are unwelcome).
    """

    def __init__(self, nat: Nat64, ifname: str = "nat64", *, expire_interval: float = 1.0,
                 clock=time.monotonic, io: str = "thread") -> None:
        if io not in ("thread", "asyncio"):
            raise ValueError(f"io must be 'thread' or 'asyncio', not {io!r}")
        self.nat = nat
        self.ifname = ifname
        self.expire_interval = expire_interval
        self.io = io
        self._clock = clock
        self._fd: int | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None
        self._stopping = False
        self._state = asyncio.Event()  # io="asyncio": something can expire
        self._requests: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        # Reads and translates what the fast path takes, natively where built (nat64.fastpath.FastPath.pump).
        self._pump = nat.fast.pump if nat.fast is not None else _read_one
        self.rx_packets = 0
        self.tx_packets = 0
        self.write_errors = 0
        self.thread_id: int | None = None
        self.started_at: float | None = None

    @property
    def running(self) -> bool:
        return self._fd is not None

    async def start(self) -> None:
        if self._fd is not None:
            return
        self._fd = open_tun(self.ifname)
        os.set_blocking(self._fd, False)  # the datapath thread must not sleep in read(): it polls
        self._stopping = False
        self.started_at = self._clock()
        if self.io == "thread":
            self._wake = os.pipe()
            os.set_blocking(self._wake[0], False)
            self._thread = threading.Thread(target=self._run, name=f"nat64-{self.ifname}", daemon=True)
            self._thread.start()
        else:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._fd, self._on_readable)
            self._task = asyncio.create_task(self._expiry(), name="nat64-expiry")
        fast = self.nat.fast
        impl = "off" if fast is None else "native" if fast.native else "python"
        log.info("NAT64 running on %s for %s (fast path: %s)", self.ifname, self.nat.prefix.network, impl,
                 extra={"fields": {"NAT64_FAST_PATH": impl}})
        if impl == "python":
            log.warning("NAT64 fast path is the Python fallback (nat64/_fastpath.c was not built): install gcc "
                        "and the Python headers and reinstall gatewayd to cut its CPU per packet")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._thread is not None:
            assert self._wake is not None
            os.write(self._wake[1], b"x")
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        if self._fd is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
                self._loop = None
            os.close(self._fd)
            self._fd = None

    def _pumped(self, fd: int, now: float, budget: int, *wait: float) -> bool:
        """Translate up to ``budget`` packets from the TUN (in the thread that owns the core); drained?

        ``wait`` is ``(wake fd, deadline)`` for a pump that waits on an empty TUN itself
        (:meth:`nat64.fastpath.FastPath.pump`); ``now`` is then stale for a packet read after a wait.
        """
        translated, errors, slow, drained = self._pump(fd, now, budget, *wait)
        self.rx_packets += translated
        self.tx_packets += translated - errors
        self.write_errors += errors
        if slow is not None:
            self.rx_packets += 1
            nat = self.nat
            if wait:
                now = self._clock()
            version = slow[0] >> 4
            if version == 6:
                outs = [o.packet for o in nat.slow_from_v6(slow, now)]
            elif version == 4:
                outs = [o.packet for o in nat.slow_from_v4(slow, now)]
            else:
                nat.counters.drop("bad_ip_version")
                outs = []
            for out in outs:
                try:
                    os.write(fd, out)
                    self.tx_packets += 1
                except OSError:
                    self.write_errors += 1
        return drained

    def _call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` run by the thread that owns the core (the datapath thread while it runs)."""
        thread = self._thread
        if thread is None or not thread.is_alive() or threading.current_thread() is thread:
            return fn()
        assert self._wake is not None
        fut: Future = Future()
        self._requests.append((fn, fut))
        with contextlib.suppress(OSError):
            os.write(self._wake[1], b"\0")
        while True:
            try:
                return fut.result(timeout=0.1)
            except FutureTimeout:
                if not thread.is_alive() and not fut.done():
                    return fn()  # the thread has gone: nothing else touches the core now

    def _serve_requests(self) -> None:
        requests = self._requests
        while requests:
            fn, fut = requests.popleft()
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller, who raises it
                fut.set_exception(exc)

    def _run(self) -> None:
        """The datapath thread: translate what the TUN has, wait when it is empty, expire when due.

        With the fast path, the pump itself waits on the empty TUN (and the wake pipe, until the next
        expiry), so a packet arriving at an idle translator is read and translated without going
        through this loop: its per-iteration interpreter work (expiry bookkeeping, the poll object, the
        result tuple) was most of the latency the datapath added to a lone packet. It comes back here
        after 64 packets read without a wait, a packet for the full path, a request or stop, or when
        expiry is due. The native pump runs without the GIL meanwhile, so the event loop holding it
        never delays a packet, and the pump counts on its own copies of the core's figures: every other
        thread's request comes here (:meth:`_call`), after the pump has written them back.
        """
        fd = self._fd
        assert fd is not None and self._wake is not None
        self.thread_id = threading.get_native_id()
        wake = self._wake[0]
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(wake, select.POLLIN)
        nat, clock, pumped, requests = self.nat, self._clock, self._pumped, self._requests
        # The pump's waits read time.monotonic(): with another clock (tests) this loop waits instead.
        pump_waits = nat.fast is not None and clock is time.monotonic
        interval = self.expire_interval
        last_expiry = clock()
        try:
            while not self._stopping:
                now = clock()
                due = nat.next_expiry() if nat.expiring() else None
                if due is not None and now >= max(due, last_expiry + interval):
                    nat.expire(now)
                    last_expiry = now
                    due = nat.next_expiry() if nat.expiring() else None
                # idle: sleep until a packet, a request, or the next expiry; forever without state
                wake_at = None if due is None else max(due, last_expiry + interval)
                try:
                    if pump_waits:
                        pumped(fd, now, _BUDGET, wake, -1.0 if wake_at is None else wake_at)
                    elif pumped(fd, now, _BUDGET):
                        events = poller.poll(None if wake_at is None else max(1, int((wake_at - now) * 1000) + 1))
                        if any(f == wake for f, _ in events):
                            with contextlib.suppress(BlockingIOError):
                                os.read(wake, 4096)
                except OSError as exc:
                    log.warning("TUN read failed: %s", exc)
                    time.sleep(0.1)
                if requests:
                    self._serve_requests()
        finally:
            self._serve_requests()

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is not None:
            try:  # bounded, so expiry and other tasks still get the loop
                self._pumped(fd, self._clock(), 4 * _BUDGET)
            except OSError as exc:
                log.warning("TUN read failed: %s", exc)
            if self.nat.expiring():
                self._state.set()

    async def _expiry(self) -> None:
        while True:
            if not self.nat.expiring():
                self._state.clear()
                await self._state.wait()  # set by _on_readable once something can expire
            await asyncio.sleep(self.expire_interval)
            self.nat.expire(self._clock())

    def status(self) -> dict:
        core = self._call(self.nat.status)
        return {
            "backend": "builtin",
            "interface": self.ifname,
            "io": self.io,
            "running": self.running,
            "uptime": round(self._clock() - self.started_at, 3) if self.started_at is not None else None,
            "rx_packets": self.rx_packets,
            "tx_packets": self.tx_packets,
            "write_errors": self.write_errors,
            "thread_id": self.thread_id,  # the datapath thread's (top -H, perf -t), io="thread"
            **core,
        }

    def mappings(self) -> list[dict]:
        return self._call(lambda: self.nat.mappings(self._clock()))

    def set_limits(self, timeouts: Timeouts, caps: Caps) -> None:
        """New session timeouts and caps (a reload), applied by the thread that owns the core: the native
        pump works on a copy of the timeouts while it runs, and writes back what it counted first."""

        def apply() -> None:
            self.nat.table.timeouts = timeouts
            self.nat.table.caps = caps

        self._call(apply)

    def counters(self) -> dict:
        return self._call(lambda: self.nat.counters.as_dict())


# --- command line runner (used by tests and for running the translator without the daemon) ---------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    d = Timeouts()
    c = Caps()
    p = argparse.ArgumentParser(prog="python -m nat64.backends.builtin", description=__doc__.split("\n")[0])
    p.add_argument("--prefix", default="64:ff9b::/96")
    p.add_argument("--pool", action="append", required=True, help="IPv4 pool address or network (repeatable)")
    p.add_argument("--tun", default="nat64")
    p.add_argument("--install-routes", action="store_true", help="bring the TUN up and route prefix and pool")
    p.add_argument("--masquerade", metavar="UPLINK", help="nftables masquerade of the pool out of UPLINK")
    p.add_argument("--ipv6-mtu", type=int, default=1280)
    p.add_argument("--ipv4-mtu", type=int, default=1500)
    p.add_argument("--udp-timeout", type=float, default=d.udp)
    p.add_argument("--tcp-est-timeout", type=float, default=d.tcp_established)
    p.add_argument("--tcp-trans-timeout", type=float, default=d.tcp_transitory)
    p.add_argument("--icmp-timeout", type=float, default=d.icmp)
    p.add_argument("--max-sessions", type=int, default=c.max_sessions)
    p.add_argument("--max-sessions-per-source", type=int, default=c.max_sessions_per_source)
    p.add_argument("--expire-interval", type=float, default=1.0)
    p.add_argument("--endpoint-independent-filtering", action="store_true")
    p.add_argument("--io", choices=("thread", "asyncio"), default="thread",
                   help="datapath in its own thread (default) or in the event loop")
    p.add_argument("--no-fast-path", action="store_true", help="translate every packet the full way")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    timeouts = Timeouts(udp=args.udp_timeout, tcp_established=args.tcp_est_timeout,
                        tcp_transitory=args.tcp_trans_timeout, icmp=args.icmp_timeout)
    caps = Caps(max_sessions=args.max_sessions, max_sessions_per_source=args.max_sessions_per_source)
    nat = Nat64(args.prefix, args.pool, timeouts, caps, ipv6_mtu=args.ipv6_mtu, ipv4_mtu=args.ipv4_mtu,
                endpoint_independent_filtering=args.endpoint_independent_filtering, fast_path=not args.no_fast_path)
    runner = BuiltinNat64(nat, args.tun, expire_interval=args.expire_interval, io=args.io)
    await runner.start()
    routes = required_routes(args.prefix, args.pool, args.tun)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:  # SIGTERM unwinds through the finally below, removing routes and nft table
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        if args.install_routes:
            await asyncio.to_thread(install_routes, routes)
        if args.masquerade:
            await asyncio.to_thread(install_masquerade, args.pool, args.masquerade)
        print(json.dumps({"ready": True, **runner.status()}), flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            cmd = line.decode(errors="replace").strip()
            if cmd == "status":
                reply: object = runner.status()
            elif cmd == "mappings":
                reply = runner.mappings()
            elif cmd == "counters":
                reply = runner.counters()
            elif cmd in ("quit", "exit"):
                break
            else:
                reply = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(reply), flush=True)
    finally:
        if args.masquerade:
            await asyncio.to_thread(remove_masquerade)
        if args.install_routes:
            await asyncio.to_thread(remove_routes, routes)
        await runner.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    args = _parse(argv)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
