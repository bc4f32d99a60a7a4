"""A LAN router's Router Advertisements, for what Debian's radvd (2.19) cannot send: the PREF64 option
(RFC 8781). Run inside a namespace: ``python -m devtools.testbed.ra_sender IFACE SOURCE [options]``.

Sends an RA to ff02::1 from the link-local SOURCE every --interval seconds and on each Router
Solicitation (SOURCE is not added to IFACE: a router daemon on the same interface, such as radvd, would
pick it as its own source), prints "ready" after the first, and on SIGTERM sends one more with every
lifetime 0, as a router that stops advertising does (RFC 4861 §6.2.5).
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import struct
import sys
import threading
import time
from ipaddress import IPv6Address, IPv6Network

from gatewayd.border.advertiser import ICMP6_FILTER, icmp6_filter_pass_only
from gatewayd.border.ra import (
    ND_ROUTER_SOLICIT,
    Pref64,
    PrefixInformation,
    RouteInformation,
    RouterAdvertisement,
    build_ra,
)

IPV6_TRANSPARENT = 75  # <linux/in6.h>


def advertisement(args: argparse.Namespace, final: bool = False) -> RouterAdvertisement:
    life = 0 if final else args.lifetime
    return RouterAdvertisement(
        router_lifetime=0 if final else args.router_lifetime,
        prefixes=tuple(PrefixInformation(IPv6Network(p), valid_lifetime=life, preferred_lifetime=0)
                       for p in args.prefix),
        routes=tuple(RouteInformation(IPv6Network(r), life) for r in args.route),
        pref64=tuple(Pref64(IPv6Network(p), life - life % 8) for p in args.pref64))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("interface")
    p.add_argument("source", type=IPv6Address)
    p.add_argument("--pref64", action="append", default=[])
    p.add_argument("--prefix", action="append", default=[], help="on-link prefix (PIO, L and A set)")
    p.add_argument("--route", action="append", default=[], help="route (RIO)")
    p.add_argument("--router-lifetime", type=int, default=0)
    p.add_argument("--lifetime", type=int, default=600)
    p.add_argument("--interval", type=float, default=2.0)
    args = p.parse_args()

    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)  # a source the interface does not hold
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.interface.encode())
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    index = socket.if_nametoindex(args.interface)
    pktinfo = struct.pack("=16sI", args.source.packed, index)

    def send(ra: RouterAdvertisement) -> None:
        sock.sendmsg([build_ra(ra)], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0,
                       ("ff02::1", 0, 0, index))

    # Router Solicitations are answered at once (as a router does, RFC 4861 §6.2.6, without its random delay)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, "ff02::2")
                    + struct.pack("=I", index))
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter_pass_only(ND_ROUTER_SOLICIT))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for _ in range(50):  # the interface may have just come up (no route to ff02::1 on it yet)
        try:
            send(advertisement(args))
            break
        except OSError:
            time.sleep(0.1)
    print("ready", flush=True)
    due = time.monotonic() + args.interval
    while not stop.is_set():
        ready, _, _ = select.select([sock], [], [], max(0.0, min(due - time.monotonic(), 0.2)))
        if ready:
            sock.recv(2048)
            send(advertisement(args))
        if time.monotonic() >= due:
            send(advertisement(args))
            due = time.monotonic() + args.interval
    send(advertisement(args, final=True))
    sys.exit(0)


if __name__ == "__main__":
    main()
