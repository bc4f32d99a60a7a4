"""Home Assistant's channel change: python-otbr-api's pending dataset calls against gatewayd on the simulated
NCP, with the results gatewayctl shows; the node keeps its role and the daemon's view moves with it."""

from __future__ import annotations

import json

import pytest
import python_otbr_api
from prometheus_client.parser import text_string_to_metric_families
from python_otbr_api import ActiveDataSet, PendingDataSet

from ncp.meshcop import Dataset, Timestamp
from tests.conftest import wait_until
from tests.rest.test_otbr_api import PORT, ctl, otbr_call, raw, role, shown_tlvs
from tests.thread.conftest import Topology

pytestmark = [pytest.mark.root, pytest.mark.slow]


def metric(topo: Topology, name: str, **labels: str) -> float | None:
    text = raw(topo, "GET", "/metrics")[2]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_set_channel_and_the_pending_dataset_calls(topo: Topology):
    gw = topo.start_daemon(f'[rest]\nenabled = true\nlisten = ["127.0.0.1:{PORT}"]\n')
    role(gw, "leader")
    wait_until(lambda: "REST API on" in gw.output(), what="the REST API listening")
    before = Dataset.from_tlvs(shown_tlvs(gw))
    assert before.channel == 15
    assert otbr_call(topo, lambda api: api.get_pending_dataset_tlvs()) is None
    assert raw(topo, "GET", "/node/dataset/pending")[0] == 204
    assert ctl(gw, "dataset", "pending") is None

    # Home Assistant's channel change, with a delay a test can wait for
    otbr_call(topo, lambda api: api.set_channel(20, delay=4000))
    tlvs = otbr_call(topo, lambda api: api.get_pending_dataset_tlvs())
    pending = Dataset.from_tlvs(tlvs)
    shown = Dataset.from_hex(ctl(gw, "dataset", "pending", "-x", "--show-secrets"))
    assert pending.with_(delay_timer=None) == shown.with_(delay_timer=None), "what gatewayctl shows"
    assert pending.channel == 20 and 0 < shown.delay_timer <= pending.delay_timer <= 4000
    assert pending.as_active.with_(channel=15, active_timestamp=before.active_timestamp) == before
    assert pending.active_timestamp.seconds == before.active_timestamp.seconds + 1
    as_json = json.loads(raw(topo, "GET", "/node/dataset/pending")[2])
    assert as_json["ActiveDataset"]["Channel"] == 20 and as_json["Delay"] <= 4000
    assert as_json["PendingTimestamp"]["Seconds"] == pending.pending_timestamp.seconds
    masked = ctl(gw, "dataset", "pending")
    assert masked["channel"] == 20 and before.network_key.hex() not in json.dumps(masked)

    # one pending dataset at a time, refused before and by the server (If-None-Match)
    with pytest.raises(python_otbr_api.PendingDatasetConflictError):
        otbr_call(topo, lambda api: api.set_channel(21, delay=4000))
    body = json.dumps({"ActiveDataset": {"Channel": 22}, "Delay": 1000})
    status, _, _ = raw(topo, "PUT", "/node/dataset/pending", {"Content-Type": "application/json",
                                                               "If-None-Match": "*"}, body)
    assert status == 412

    # the delay passes: the network is on channel 20, the node still leads, the daemon shows it everywhere
    state = wait_until(lambda: (s := ctl(gw, "state"))["channel"] == 20 and s, timeout=20, what="channel 20")
    assert state["role"] == "leader"
    assert ctl(gw, "status")["components"]["thread"]["channel"] == 20
    assert metric(topo, "gatewayd_thread_channel") == 20
    assert metric(topo, "gatewayd_thread_role", role="leader") == 1
    assert metric(topo, "gatewayd_component_state", component="thread", state="running") == 1
    assert json.loads(raw(topo, "GET", "/status.json")[2])["thread"]["channel"] == 20
    assert otbr_call(topo, lambda api: api.get_active_dataset()).channel == 20
    assert otbr_call(topo, lambda api: api.get_pending_dataset_tlvs()) is None
    assert Dataset.from_hex((topo.tmp / "state" / "dataset.hex").read_text()).channel == 20, "kept for a restart"
    assert any(p["local"] for p in ctl(gw, "netdata", "show")["prefixes"]), "network data kept"

    # what the NCP would never take is refused, with the reason (python-otbr-api: rejected)
    stale = PendingDataSet(active_dataset=ActiveDataSet(channel=22), delay=1000)  # active timestamp not newer
    with pytest.raises(python_otbr_api.PendingDatasetRejectedError, match="active timestamp must be newer"):
        otbr_call(topo, lambda api: api.create_pending_dataset(stale))
    for bad in ({"ActiveDataset": {"Channel": 22}}, {"ActiveDataset": {"Channel": 9}, "Delay": 1000},
                {"ActiveDataset": {"Channel": 22}, "Delay": -1}, {"ActiveDataset": "0e08zz", "Delay": 1000}):
        status, _, text = raw(topo, "PUT", "/node/dataset/pending", {"Content-Type": "application/json"},
                              json.dumps(bad))
        assert status == 400 and json.loads(text)["ErrorCode"] == 400, (bad, status, text)
    status, _, _ = raw(topo, "PUT", "/node/dataset/pending", {"Content-Type": "text/plain"}, "not-hex")
    assert status == 400
    assert otbr_call(topo, lambda api: api.get_pending_dataset_tlvs()) is None, "nothing was set"

    # hex TLVs in, then deleted before the delay passes: the channel stays
    moved = Dataset.from_tlvs(shown_tlvs(gw))
    hexed = moved.with_(channel=25, active_timestamp=Timestamp(moved.active_timestamp.seconds + 1),
                        delay_timer=600_000)
    otbr_call(topo, lambda api: api.set_pending_dataset_tlvs(hexed.to_tlvs()))
    assert ctl(gw, "dataset", "pending")["channel"] == 25
    otbr_call(topo, lambda api: api.delete_pending_dataset())
    assert ctl(gw, "dataset", "pending") is None and ctl(gw, "state")["channel"] == 20

    log = gw.output().lower()
    for ds in (before, pending, hexed):
        for secret in (ds.network_key.hex(), ds.pskc.hex(), ds.to_tlvs().hex()):
            assert secret not in log, "secrets never reach the log"
