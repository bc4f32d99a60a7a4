"""Fuzz target: arbitrary bytes into both sides of the NAT64 translator.

The translator never raises: every bad packet is a counted drop. Inputs are also wrapped in valid IPv6
and IPv4 headers aimed at the prefix and pool, so the fuzzer reaches the transport and ICMP code.
"""

from __future__ import annotations

import struct

from nat64.packets import build_ipv4, build_ipv6
from nat64.state import Caps
from nat64.translator import Nat64

_HOST = bytes.fromhex("fd000db8000000000000000000000001")
_SERVER6 = bytes.fromhex("20010db8006400000000000064400a0a")  # 100.64.10.10 under the prefix
_SERVER4 = bytes([100, 64, 10, 10])
_POOL = bytes([192, 0, 2, 1])


def TestOneInput(data: bytes) -> None:
    nat = Nat64("2001:db8:64::/96", ["192.0.2.1"], caps=Caps(max_sessions=8, max_sessions_per_source=4))
    nat_wkp = Nat64("64:ff9b::/96", ["192.0.2.1"])
    mode = data[0] % 4 if data else 0
    body = data[1:]
    now = 0.0
    for chunk in (body[: len(body) // 2], body[len(body) // 2 :], body):
        for n in (nat, nat_wkp):
            n.from_v6(chunk, now)
            n.from_v4(chunk, now)
        if len(chunk) >= 1:
            nh = (6, 17, 58, 44)[chunk[0] % 4] if mode else chunk[0]
            n6 = build_ipv6(_HOST, _SERVER6, nh, chunk[1:], hop_limit=64)
            n4 = build_ipv4(_SERVER4, _POOL, (6, 17, 1)[chunk[0] % 3], chunk[1:])
            for _ in range(2):  # twice: the second pass meets existing sessions
                nat.from_v6(n6, now)
                nat.from_v4(n4, now)
            if len(chunk) >= 5:  # make the IPv4 side hit the session the IPv6 side just created
                port = struct.unpack_from("!H", chunk, 1)[0]
                n4b = build_ipv4(_SERVER4, _POOL, 17, chunk[3:5] + port.to_bytes(2, "big") + chunk[5:])
                nat.from_v4(n4b, now)
        now += 100.0
        nat.expire(now)
    for n in (nat, nat_wkp):
        assert n.counters.dropped["internal_error"] == 0


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
