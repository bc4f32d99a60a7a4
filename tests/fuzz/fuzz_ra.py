"""Fuzz target: arbitrary bytes into the Router Advertisement/Solicitation parser.

Only RaError may escape parse(). Whatever parses must encode again and decode to the same message
(the encoder writes canonically what parse() normalises, e.g. a preference RFC 4191 says to ignore),
so the two directions cannot drift apart. A parsed RA is also learnt (gatewayd.border.infra), which must
neither raise nor keep anything past its lifetime.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from gatewayd.border.infra import InfraState, RaTracker
from gatewayd.border.ra import INFINITY, RaError, RouterAdvertisement, build_ra, build_rs, parse


def TestOneInput(data: bytes) -> None:
    _check(data)
    if data:  # also as an RA/RS header, so random bytes reach the option parser
        _check(bytes((134 if data[0] & 1 else 133, 0)) + data[1:])


def _check(data: bytes) -> None:
    try:
        msg = parse(data)
    except RaError:
        return
    again = build_ra(msg) if isinstance(msg, RouterAdvertisement) else build_rs(msg)
    assert parse(again) == msg
    if isinstance(msg, RouterAdvertisement):
        _learn(msg)
    try:
        parse(data, src=data[8:24].ljust(16, b"\0"), dst=bytes(16))
    except RaError:
        pass


def _learn(ra: RouterAdvertisement) -> None:
    tracker = RaTracker()
    tracker.receive(IPv6Address("fe80::1"), ra, now=0.0)
    longest = max([ra.router_lifetime, *(p.valid_lifetime for p in ra.prefixes), *(r.lifetime for r in ra.routes),
                   *(p.lifetime for p in ra.pref64)], default=0)
    if longest != INFINITY:
        assert tracker.expire(longest + 1.0) == InfraState()


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
