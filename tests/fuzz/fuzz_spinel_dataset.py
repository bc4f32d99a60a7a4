"""Fuzz THREAD_ACTIVE_DATASET decoding (an older NCP's dataset as Spinel properties); only SpinelError may escape."""

from __future__ import annotations

from ncp.spinel import Prop, SpinelError, unpack_prop
from ncp.spinel.dataset import dataset_from_props


def TestOneInput(data: bytes) -> None:
    try:
        dataset = dataset_from_props(unpack_prop(Prop.THREAD_ACTIVE_DATASET, data))
    except SpinelError:
        return
    dataset.with_()  # a Dataset, whatever the NCP sent


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
