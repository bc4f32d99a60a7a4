"""Fuzz target: the simulator's shared-radio announcement decoder (ncp/sim/radio.py); only RadioError may escape."""

from ncp.sim.radio import RadioError, decode_announcement


def TestOneInput(data: bytes) -> None:
    try:
        decoded = decode_announcement(data)
    except RadioError:
        return
    repr(decoded)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
