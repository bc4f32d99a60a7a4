"""Fuzz target: arbitrary bytes into the Router Advertisement/Solicitation parser.

Only RaError may escape parse(). Whatever parses must encode again and decode to the same message
(the encoder writes canonically what parse() normalises, e.g. a preference RFC 4191 says to ignore),
so the two directions cannot drift apart.
"""

from __future__ import annotations

from gatewayd.border.ra import RaError, RouterAdvertisement, build_ra, build_rs, parse


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
    try:
        parse(data, src=data[8:24].ljust(16, b"\0"), dst=bytes(16))
    except RaError:
        pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
