"""Cascoda SOM/TLV framing and the RXRDY/RXFAIL state machine, sans-I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp import cascoda
from ncp.cascoda import (
    RXFAIL,
    RXRDY,
    CascodaError,
    CascodaMessage,
    CascodaParser,
    CascodaSession,
    Cmd,
    Incomplete,
    Malformed,
)

DL = Cmd.OT_SERIAL_DOWNLINK


def test_golden_control_messages():
    assert RXRDY.encode() == bytes.fromhex("DE AA 00")
    assert RXFAIL.encode() == bytes.fromhex("DE AB 00")
    assert CascodaMessage(0xB2, b"\x7e\x81").encode() == bytes.fromhex("DE B2 02 7E 81")


def test_reserved_values_are_rejected_when_building():
    with pytest.raises(CascodaError):
        CascodaMessage(0xFF)
    with pytest.raises(CascodaError):
        CascodaMessage(0xB2, bytes(255))


def test_parser_resynchronises_on_bad_som_and_reports_malformed():
    p = CascodaParser()
    events = p.feed(b"\x00\x13garbage" + RXRDY.encode() + b"\xde\xff\x00" + b"\xde\xb3\xff" + RXFAIL.encode(), 0)
    assert events == [RXRDY, Malformed("reserved command 0xff"), Malformed("reserved length 0xff"), RXFAIL]
    assert p.skipped >= 9


def test_parser_reports_incomplete_message_after_200ms():
    p = CascodaParser()
    assert p.feed(b"\xde\xb3\x05\x01\x02", now=10.0) == []
    assert p.tick(10.19) is None
    assert p.tick(10.2) == Incomplete(5)
    # After giving up, the parser is in step again.
    assert p.feed(RXRDY.encode(), now=10.3) == [RXRDY]


messages_st = st.lists(st.builds(CascodaMessage, st.integers(0, 0xFE), st.binary(max_size=254)), min_size=1, max_size=6)


@given(messages_st, st.lists(st.integers(0, 2000), max_size=10))
def test_parser_round_trips_under_arbitrary_chunking(messages, cuts):
    stream = b"".join(m.encode() for m in messages)
    p = CascodaParser()
    out = []
    prev = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        out += p.feed(stream[prev:cut], now=0.0)
        prev = cut
    assert out == messages


@given(st.binary(max_size=600))
def test_parser_never_raises(data):
    p = CascodaParser()
    for e in p.feed(data, 0.0):
        assert isinstance(e, CascodaMessage | Malformed)
    p.tick(1.0)


def test_session_waits_for_rxrdy_before_next_message():
    s = CascodaSession()
    s.send_stream(b"A", now=0.0)
    s.send_stream(b"B", now=0.0)
    assert s.data_to_send() == CascodaMessage(DL, b"A").encode()
    s.tick(0.5)
    assert s.data_to_send() == b""
    s.feed(RXRDY.encode(), now=0.6)
    assert s.data_to_send() == CascodaMessage(DL, b"B").encode()


def test_session_resends_in_full_on_rxfail_and_restarts_timer():
    s = CascodaSession()
    s.send_stream(b"hello", now=0.0)
    first = s.data_to_send()
    s.feed(RXFAIL.encode(), now=0.9)
    assert s.data_to_send() == first
    s.tick(1.5)  # the timer restarted at 0.9, so not yet expired
    assert s.counters.ack_timeouts == 0
    s.tick(1.9)
    assert s.counters.ack_timeouts == 1 and s.counters.resends == 1


def test_session_acknowledges_received_messages_and_delivers_them():
    s = CascodaSession()
    uplink = CascodaMessage(Cmd.OT_SERIAL_UPLINK, b"\x7e\x80")
    assert s.feed(uplink.encode(), now=0.0) == [uplink]
    assert s.data_to_send() == RXRDY.encode()


def test_session_rxfail_for_malformed_and_stalled_input():
    s = CascodaSession()
    s.feed(b"\xde\xff\x00", now=0.0)
    assert s.data_to_send() == RXFAIL.encode()
    s.feed(b"\xde\xb3\x04\x00", now=1.0)
    assert s.next_deadline() == pytest.approx(1.2)
    s.tick(1.2)
    assert s.data_to_send() == RXFAIL.encode()
    assert (s.counters.malformed, s.counters.incomplete, s.counters.rxfail_sent) == (1, 1, 2)


def test_five_missed_rxrdys_mark_link_down_until_anything_arrives():
    s = CascodaSession()
    now = 0.0
    for i in range(5):
        s.send_stream(bytes([i]), now)
        assert s.data_to_send()
        now += 1.0
        s.tick(now)
    assert s.link_down and s.counters.link_down_events == 1
    # While down, messages go out back to back without waiting.
    s.send_stream(b"x", now)
    s.send_stream(b"y", now)
    assert s.data_to_send() == CascodaMessage(DL, b"x").encode() + CascodaMessage(DL, b"y").encode()
    s.feed(RXRDY.encode(), now)
    assert not s.link_down and s.missed_acks == 0
    s.send_stream(b"z", now)
    s.send_stream(b"w", now)
    assert s.data_to_send() == CascodaMessage(DL, b"z").encode()


def test_four_missed_then_an_ack_does_not_mark_link_down():
    s = CascodaSession()
    for i in range(4):
        s.send_stream(b"a", float(i))
        s.tick(float(i) + 1.0)
    s.send_stream(b"b", 5.0)
    s.feed(RXRDY.encode(), 5.1)
    s.send_stream(b"c", 5.2)
    s.tick(6.3)
    assert not s.link_down and s.missed_acks == 1


def test_stream_is_cut_into_254_byte_downlink_chunks():
    s = CascodaSession()
    s.link_down = True  # send without waiting, to see all chunks at once
    data = bytes(range(256)) * 2 + b"tail"
    s.send_stream(data, 0.0)
    events = CascodaParser().feed(s.data_to_send(), 0.0)
    assert [len(e.payload) for e in events] == [254, 254, 8]
    assert b"".join(e.payload for e in events) == data


def test_evbme_payloads():
    assert cascoda.get_request(0x80).encode() == bytes.fromhex("DE 5D 01 80")
    assert cascoda.set_request(0x00, b"\x05").encode() == bytes.fromhex("DE 5F 03 00 01 05")
    c = cascoda.parse_get_confirm(b"\x00\x84\x08" + bytes(range(8)))
    assert (c.status, c.attribute, c.value) == (0, 0x84, bytes(range(8)))
    with pytest.raises(CascodaError):
        cascoda.parse_get_confirm(b"\x00\x84\x08\x01")
    assert cascoda.message_text(b"Role: leader\n\0junk") == "Role: leader"
