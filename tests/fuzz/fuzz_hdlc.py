"""Fuzz the HDLC-lite stream decoder: no input may make it raise; good frames must survive noise."""

from __future__ import annotations

from ncp import hdlc


def TestOneInput(data: bytes) -> None:
    dec = hdlc.HdlcDecoder()
    # Feed in uneven chunks so buffering across calls is exercised too.
    step = (data[0] % 7 + 1) if data else 1
    for i in range(0, len(data), step):
        dec.feed(data[i : i + step])
    for frame in dec.feed(hdlc.encode(b"\x80\x06\x00\x00") * 2):
        assert len(frame) >= 1
    c = dec.counters
    assert c.frames >= 1 and c.bytes_in == len(data) + 2 * len(hdlc.encode(b"\x80\x06\x00\x00"))


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
