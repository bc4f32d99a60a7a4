"""HDLC-lite framing: golden vectors from a real NCP, round trips under arbitrary chunking, drops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ncp import hdlc

GOLDEN = [
    # (spinel frame, wire bytes)
    ("81 02 01", "7e 81 02 01 c5 b2 7e"),  # GET PROTOCOL_VERSION, TID 1
    ("81 06 01 04 03", "7e 81 06 01 04 03 db 0a 7e"),  # IS PROTOCOL_VERSION 4.3
    ("80 06 00 70", "7e 80 06 00 70 ee 74 7e"),  # IS LAST_STATUS RESET_POWER_ON
]


def test_golden_encode_and_decode():
    for frame_hex, wire_hex in GOLDEN:
        frame, wire = bytes.fromhex(frame_hex), bytes.fromhex(wire_hex)
        assert hdlc.encode(frame) == wire
        dec = hdlc.HdlcDecoder()
        assert dec.feed(wire) == [frame]
        assert dec.counters.frames == 1


def test_fcs_residue_over_data_and_fcs_is_good():
    wire = hdlc.encode(b"\x81\x02\x01")
    assert hdlc.fcs16(wire[1:-1]) == hdlc.FCS_GOOD


def test_sender_escapes_the_special_bytes():
    body = bytes([0x7E, 0x7D, 0x11, 0x13, 0xF8, 0x42])
    wire = hdlc.encode(body)
    inner = wire[1:-1]
    for special in (0x7E, 0x11, 0x13, 0xF8):
        assert special not in inner
    assert inner.startswith(bytes([0x7D, 0x5E, 0x7D, 0x5D, 0x7D, 0x31, 0x7D, 0x33, 0x7D, 0xD8, 0x42]))


def test_decoder_accepts_any_escaped_byte():
    # 0x42 escaped needlessly (as 7D 62) must still decode to 0x42.
    plain = hdlc.encode(b"\x80\x06\x42")
    needless = plain.replace(b"\x42", b"\x7d\x62")
    assert hdlc.HdlcDecoder().feed(needless) == [b"\x80\x06\x42"]


def test_bad_fcs_is_dropped_and_counted_then_stream_recovers():
    good = hdlc.encode(b"\x81\x02\x01")
    bad = bytearray(good)
    bad[2] ^= 0x01
    dec = hdlc.HdlcDecoder()
    assert dec.feed(bytes(bad) + good) == [b"\x81\x02\x01"]
    assert dec.counters.bad_fcs == 1
    assert dec.counters.frames == 1


def test_oversize_frame_is_dropped_and_counted():
    dec = hdlc.HdlcDecoder()
    big = bytes([0x80, 0x06]) + bytes(hdlc.MAX_FRAME_SIZE)  # 1302 bytes of Spinel
    ok = bytes([0x80, 0x06]) + bytes(hdlc.MAX_FRAME_SIZE - 2)  # exactly the limit
    assert dec.feed(hdlc.encode(big) + hdlc.encode(ok)) == [ok]
    assert dec.counters.oversize == 1


def test_unbounded_garbage_without_flags_is_dropped_without_growing():
    dec = hdlc.HdlcDecoder()
    dec.feed(b"\x7e")
    for _ in range(100):
        assert dec.feed(b"\x55" * 1000) == []
    assert len(dec._buf) <= 2 * (hdlc.MAX_FRAME_SIZE + 2)
    assert dec.counters.oversize == 1
    assert dec.feed(hdlc.encode(b"\x80\x00")) == [b"\x80\x00"]


def test_bytes_before_first_flag_and_short_frames_are_garbage():
    dec = hdlc.HdlcDecoder()
    frames = dec.feed(b"noise" + hdlc.encode(b"\x80\x00") + b"\x7e\x01\x7e\x7e\x7d\x7e")
    assert frames == [b"\x80\x00"]
    assert dec.counters.garbage == 3  # leading noise, 1-byte frame, dangling escape


frames_st = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


@given(frames=frames_st, cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20))
@settings(max_examples=200)
def test_round_trip_under_arbitrary_chunking(frames, cuts):
    stream = b"".join(hdlc.encode(f) for f in frames)
    dec = hdlc.HdlcDecoder()
    out = []
    prev = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        out += dec.feed(stream[prev:cut])
        prev = cut
    assert out == frames
    assert dec.counters.frames == len(frames)
    assert dec.counters.bad_fcs == dec.counters.oversize == dec.counters.garbage == 0


@given(st.binary(max_size=3000), st.binary(min_size=1, max_size=50))
def test_decoder_never_raises_and_recovers_after_noise(noise, frame):
    dec = hdlc.HdlcDecoder()
    dec.feed(noise)
    # A flag ends whatever partial frame the noise left; the next frame then decodes.
    out = dec.feed(hdlc.encode(frame))
    assert out[-1:] == [frame] or dec.counters.bad_fcs + dec.counters.garbage + dec.counters.oversize > 0
    assert dec.feed(hdlc.encode(frame)) == [frame]


@given(st.binary(max_size=3000).map(lambda b: b.replace(b"\x7f", b"\x7e")))
def test_every_segment_between_flags_is_delivered_or_counted(noise):
    dec = hdlc.HdlcDecoder()
    delivered = dec.feed(noise)
    segments = noise.split(b"\x7e")
    expected = 1 if segments[0] else 0
    if len(segments) > 1:
        expected += sum(1 for s in segments[1:-1] if s)
        expected += 1 if len(segments[-1]) > 2 * (hdlc.MAX_FRAME_SIZE + 2) else 0
    c = dec.counters
    assert len(delivered) + c.bad_fcs + c.garbage + c.oversize == expected
    assert c.frames == len(delivered)
    assert c.bytes_in == len(noise)
