"""Cost of the NCP codec per STREAM_NET frame, against the frame's time on a 1 Mbaud wire.

For 127- and 1280-byte IPv6 packets: encode (Spinel SET STREAM_NET + HDLC-lite) and decode (HDLC
deframing + FCS + Spinel frame + dD value), frames per second and CPU µs per frame.  The cost is shown as
a percentage of the frame's wire time at 1,000,000 baud (10 bits a byte; target ≤ 2 %), and as a ratio
against a reference measured in the same run: zlib.crc32 over the same wire bytes, a C-speed floor for
anything that must look at every byte.
"""

from __future__ import annotations

import os
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ncp import hdlc
from ncp.spinel import Command, Prop, SpinelFrame, pack_prop, unpack_prop

BAUD = 1_000_000
BITS_PER_BYTE = 10
TARGET_PERCENT = 2.0


def cpu_per_call(fn, min_time: float = 0.5) -> float:
    """CPU seconds per call of ``fn``, best of three runs."""
    n = 1
    while True:
        t0 = time.process_time()
        for _ in range(n):
            fn()
        dt = time.process_time() - t0
        if dt >= min_time / 5:
            break
        n *= 4
    best = dt / n
    for _ in range(2):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n)
    return best


def bench(size: int) -> tuple[float, float, float, int]:
    # Worst case for escaping would be all 0x7E; use a realistic mix with some bytes that need escaping.
    packet = bytes((i * 37 + 11) % 256 for i in range(size))
    dec = hdlc.HdlcDecoder()

    def encode() -> bytes:
        frame = SpinelFrame(0, 0, Command.PROP_VALUE_SET, Prop.STREAM_NET, pack_prop(Prop.STREAM_NET, (packet, b"")))
        return hdlc.encode(frame.encode())

    wire = encode()

    def decode() -> bytes:
        (payload,) = dec.feed(wire)
        frame = SpinelFrame.decode(payload)
        data, _meta = unpack_prop(frame.prop, frame.value)
        return data

    assert decode() == packet
    t_enc = cpu_per_call(encode)
    t_dec = cpu_per_call(decode)
    t_ref = cpu_per_call(lambda: zlib.crc32(wire))
    return t_enc, t_dec, t_ref, len(wire)


def main() -> None:
    print(f"NCP codec cost per STREAM_NET frame (Python {sys.version.split()[0]}), wire at {BAUD} baud")
    print(f"{'packet':>7} {'wire B':>7} {'enc µs':>8} {'dec µs':>8} {'frames/s':>10} {'% of wire':>9} {'vs crc32':>9}")
    ok = True
    for size in (127, 1280):
        t_enc, t_dec, t_ref, wire_len = bench(size)
        per_frame = t_enc + t_dec
        wire_time = wire_len * BITS_PER_BYTE / BAUD
        percent = 100 * per_frame / wire_time
        ok &= percent <= TARGET_PERCENT
        print(
            f"{size:>7} {wire_len:>7} {t_enc * 1e6:>8.1f} {t_dec * 1e6:>8.1f} {1 / per_frame:>10.0f} "
            f"{percent:>8.2f}% {per_frame / t_ref:>8.0f}x"
        )
    print(f"target: encode+decode ≤ {TARGET_PERCENT} % of wire time: {'met' if ok else 'NOT met'}")
    print("reference: zlib.crc32 over the same wire bytes, measured in this run")


if __name__ == "__main__":
    main()
