"""Fuzz the Spinel frame decoder and the format-string unpacker; only SpinelError may escape."""

from __future__ import annotations

from ncp.spinel import Prop, SpinelError, SpinelFrame, unpack, unpack_prop

_PROPS = [p for p in Prop if p.fmt]
_FORMATS = ["A(t(6CbCbSC))", "t(A(t(Ud)))D", "iiUdE6", "A(i)", "XxLlSsCcb"]


def TestOneInput(data: bytes) -> None:
    try:
        frame = SpinelFrame.decode(data)
        assert SpinelFrame.decode(frame.encode()) == frame
    except SpinelError:
        pass
    if data:
        prop = _PROPS[data[0] % len(_PROPS)]
        for element in (False, True):
            try:
                unpack_prop(prop, data[1:], element=element)
            except SpinelError:
                pass
        try:
            unpack(_FORMATS[data[0] % len(_FORMATS)], data[1:])
        except SpinelError:
            pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
