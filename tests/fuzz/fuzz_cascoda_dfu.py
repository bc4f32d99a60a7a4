"""Fuzz the EVBME DFU sub-command decoder and the simulator's flash behind it; only DfuError may escape."""

from __future__ import annotations

from ncp import cascoda_dfu
from ncp.sim.dfu import SimFirmware


def TestOneInput(data: bytes) -> None:
    firmware = SimFirmware()
    for i in range(0, len(data), 64):
        try:
            command = cascoda_dfu.decode(data[i : i + 64])
        except cascoda_dfu.DfuError:
            continue
        status, _ = firmware.handle(command)
        assert 0 <= status.status <= 255
        cascoda_dfu.encode(command)
    try:
        cascoda_dfu.check_image(data)
    except cascoda_dfu.ImageError:
        pass
    cascoda_dfu.image_version(data)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
