"""``/node/dataset/pending`` without a daemon: otbr-agent's pending dataset JSON both ways, and what a malformed
one is answered (400, never a 500)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.rest.api import RestApi
from gatewayd.rest.dataset_json import BadDataset, dataset_json, pending_dataset_json, pending_from_json
from ncp.meshcop import Dataset, Timestamp

ACTIVE = Dataset.generate(name="units", channel=15, rng=random.Random(4), timestamp=Timestamp(7))


def test_pending_json_round_trips_as_otbr_agent_writes_it():
    pending = ACTIVE.with_(channel=20, active_timestamp=Timestamp(8), pending_timestamp=Timestamp(9),
                           delay_timer=30_000)
    body = pending_dataset_json(pending)
    assert body["Delay"] == 30_000 and body["PendingTimestamp"] == {"Seconds": 9, "Ticks": 0, "Authoritative": False}
    assert body["ActiveDataset"]["Channel"] == 20 and "PendingTimestamp" not in body["ActiveDataset"]
    assert pending_from_json(json.loads(json.dumps(body)), ACTIVE) == pending


def test_python_otbr_api_s_camel_case_and_hex_active_datasets_are_read():
    camel = {"activeDataset": {"channel": 22, "activeTimestamp": {"seconds": 8}}, "delay": 1000}
    update = pending_from_json(camel, ACTIVE)
    assert (update.channel, update.active_timestamp, update.delay_timer) == (22, Timestamp(8), 1000)
    assert update.pending_timestamp is None, "gatewayd adds one newer than the last"
    as_hex = pending_from_json({"ActiveDataset": ACTIVE.hex(), "Delay": 0}, None)
    assert as_hex.as_active == ACTIVE and as_hex.delay_timer == 0


@pytest.mark.parametrize(("body", "error"), [
    ({"ActiveDataset": {"Channel": 20}}, "Delay: .* required"),
    ({"ActiveDataset": {"Channel": 20}, "Delay": "soon"}, "Delay: wrong type"),
    ({"ActiveDataset": {"Channel": 20}, "Delay": True}, "Delay: wrong type"),
    ({"Delay": 1000}, "ActiveDataset: expected"),
    ({"ActiveDataset": 5, "Delay": 1000}, "ActiveDataset: expected"),
    ({"ActiveDataset": "zz", "Delay": 1000}, "ActiveDataset: not hex"),
    ({"ActiveDataset": "3304000000", "Delay": 1000}, "ActiveDataset: .*runs past|ActiveDataset: .*timestamp"),
    ({"ActiveDataset": {"Channel": 30}, "Delay": 1000}, "Channel: 11..26"),
    ({"ActiveDataset": {}, "PendingTimestamp": {"Seconds": "x"}, "Delay": 1000}, "Seconds: wrong type"),
    ([1, 2], "expected a JSON object"),
])
def test_malformed_pending_datasets_are_bad_requests(body: Any, error: str):
    with pytest.raises(BadDataset, match=error):
        pending_from_json(body, ACTIVE)


def test_a_hex_active_dataset_with_pending_tlvs_is_refused():
    pending = ACTIVE.with_(pending_timestamp=Timestamp(1), delay_timer=5)
    with pytest.raises(BadDataset, match="no pending timestamp or delay"):
        pending_from_json({"ActiveDataset": pending.hex(), "Delay": 1000}, ACTIVE)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["ActiveDataset", "Delay", "PendingTimestamp", "Channel", "Seconds",
                                         "NetworkKey", "activeDataset"]), inner, max_size=4), max_leaves=12))
def test_any_json_is_a_dataset_or_bad_dataset(body: Any):
    try:
        pending_from_json(body, ACTIVE)
    except BadDataset:
        pass


class FakeNode:
    """The Thread side as the REST API sees it, with a pending dataset slot."""

    def __init__(self) -> None:
        self.pending: Dataset | None = None
        self.cleared = 0

    async def active_dataset(self) -> Dataset:
        return ACTIVE

    async def pending_dataset(self) -> Dataset | None:
        return self.pending

    async def set_pending_dataset(self, dataset: Dataset) -> Dataset:
        self.pending = dataset
        return dataset

    async def clear_pending_dataset(self) -> None:
        self.pending = None
        self.cleared += 1


async def test_the_pending_routes_answer_as_otbr_agent():
    node = FakeNode()
    client = TestClient(TestServer(RestApi(node, trusted=True, token=b"").application()))  # type: ignore[arg-type]
    await client.start_server()
    try:
        assert (await client.get("/node/dataset/pending")).status == 204
        body = {"ActiveDataset": {**dataset_json(ACTIVE), "Channel": 21,
                                  "ActiveTimestamp": {"Seconds": 8, "Ticks": 0, "Authoritative": False}},
                "Delay": 60_000}
        put = await client.put("/node/dataset/pending", json=body, headers={"If-None-Match": "*"})
        assert put.status == 201, await put.text()
        assert node.pending is not None and node.pending.channel == 21
        assert node.pending.network_key == ACTIVE.network_key, "the active dataset's, updated"
        text = await client.get("/node/dataset/pending", headers={"Accept": "text/plain"})
        assert text.headers["Content-Type"] == "text/plain"
        assert bytes.fromhex(await text.text()) == node.pending.to_tlvs()
        shown = await (await client.get("/node/dataset/pending")).json()
        assert shown["ActiveDataset"]["Channel"] == 21 and shown["Delay"] == 60_000

        again = await client.put("/node/dataset/pending", json=body, headers={"If-None-Match": "*"})
        assert again.status == 412 and (await again.json())["ErrorCode"] == 412
        partial = await client.put("/node/dataset/pending", data="340400001388",  # a delay of 5 s, hex TLVs
                                   headers={"Content-Type": "text/plain"})
        assert partial.status == 200 and node.pending.delay_timer == 5000 and node.pending.channel == 21

        for data, ctype in (("{", "application/json"), (json.dumps({"ActiveDataset": {}}), "application/json"),
                            ("zz", "text/plain"), ("3404000013", "text/plain")):
            bad = await client.put("/node/dataset/pending", data=data, headers={"Content-Type": ctype})
            assert bad.status == 400, (data, bad.status)
            assert (await bad.json())["ErrorCode"] == 400

        assert (await client.delete("/node/dataset/pending")).status == 200 and node.cleared == 1
        assert (await client.get("/node/dataset/pending")).status == 204
    finally:
        await client.close()
