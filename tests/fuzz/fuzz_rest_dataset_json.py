"""Fuzz the REST API's dataset bodies (PUT /node/dataset/active and /pending, JSON from any client): only
BadDataset may escape, and what is read merges into a dataset that encodes or is refused as BadDataset."""

from __future__ import annotations

import json
import random

from gatewayd.rest.dataset_json import BadDataset, dataset_from_json, merge, pending_from_json
from ncp.meshcop import Dataset

BASE = Dataset.generate(rng=random.Random(1))


def TestOneInput(data: bytes) -> None:
    try:
        body = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:  # not JSON: the API answers 400 before these run
        return
    for parse in (dataset_from_json, pending_from_json):
        try:
            merge(BASE, parse(body, BASE)).to_tlvs()
        except BadDataset:
            pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
