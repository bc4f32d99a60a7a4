"""Fuzz target: Thread network data TLV decoder (THREAD_LEADER_NETWORK_DATA); only NetworkDataError may escape."""

from ncp.netdata import NetworkDataError, parse_network_data


def TestOneInput(data: bytes) -> None:
    try:
        parsed = parse_network_data(data)
    except NetworkDataError:
        return
    repr(parsed)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
