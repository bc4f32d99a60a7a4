"""Fuzz the Cascoda stream parser, session and EVBME payload decoders; only CascodaError may escape."""

from __future__ import annotations

from ncp import cascoda


def TestOneInput(data: bytes) -> None:
    session = cascoda.CascodaSession()
    session.send_stream(b"\x7e\x81\x02\x01\xc5\xb2\x7e", 0.0)
    now = 0.0
    step = (data[0] % 5 + 1) if data else 1
    for i in range(0, len(data), step):
        now += 0.05
        for message in session.feed(data[i : i + step], now):
            assert message.cmd != cascoda.RESERVED
        session.tick(now)
    session.tick(now + 5.0)
    session.data_to_send()
    for parse in (cascoda.parse_get_confirm, cascoda.parse_set_confirm):
        try:
            parse(data)
        except cascoda.CascodaError:
            pass
    cascoda.message_text(data)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
