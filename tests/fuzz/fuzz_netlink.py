"""Fuzz target: the rtnetlink codec (common/netlink.py) on arbitrary datagrams.

Every message found is read as a link, a route and an error as well, whatever its type, so the family
header and attribute parsers see every shape of input; only NetlinkDecodeError may come out.
"""

from __future__ import annotations

from common.netlink import NetlinkDecodeError, decode, decode_attrs, decode_link, decode_route, error_of


def TestOneInput(data: bytes) -> None:
    try:
        messages = decode(data)
    except NetlinkDecodeError:
        return
    for msg in messages:
        for read in (decode_link, decode_route, error_of):
            try:
                read(msg)
            except NetlinkDecodeError:
                pass
        try:
            decode_attrs(msg.payload)
        except NetlinkDecodeError:
            pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
