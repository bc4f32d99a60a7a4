"""Fuzz the commissioner's joiner table decoder (GET MESHCOP_COMMISSIONER_JOINERS); only SpinelError may escape."""

from __future__ import annotations

from ncp.commissioning import decode_joiners
from ncp.spinel import SpinelError


def TestOneInput(data: bytes) -> None:
    try:
        rows = decode_joiners(data)
    except SpinelError:
        return
    for row in rows:
        assert isinstance(row.name, str)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
