"""python-otbr-api (what Home Assistant's OpenThread Border Router integration uses) against gatewayd on the
simulated NCP: every call it offers, with the results gatewayctl shows."""

from __future__ import annotations

import json

import aiohttp
import pytest
import python_otbr_api
from python_otbr_api import OTBR, ActiveDataSet

from ncp.meshcop import Dataset
from tests.conftest import wait_until
from tests.rest.conftest import in_netns
from tests.thread.conftest import Topology

pytestmark = [pytest.mark.root, pytest.mark.slow]
PORT = 8081


def ctl(gw, *words: str):
    return json.loads(gw.ctl("--json", *words).stdout)


def role(gw, wanted: str, timeout: float = 20) -> dict:
    return wait_until(lambda: (s := ctl(gw, "state"))["role"] == wanted and s, timeout=timeout, what=wanted)


def shown_tlvs(gw) -> bytes:
    return bytes.fromhex(ctl(gw, "dataset", "active", "-x", "--show-secrets"))


def otbr_call(topo: Topology, call, url: str = f"http://127.0.0.1:{PORT}", headers: dict | None = None):
    async def run():
        async with aiohttp.ClientSession(headers=headers) as session:
            return await call(OTBR(url, session, timeout=20))

    return in_netns(topo.br, run)


def raw(topo: Topology, method: str, path: str, headers: dict | None = None, body: str | None = None,
        url: str = f"http://127.0.0.1:{PORT}") -> tuple[int, str, str]:
    async def run():
        async with aiohttp.ClientSession() as session, session.request(
                method, url + path, headers=headers or {}, data=body) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()

    return in_netns(topo.br, run)


def test_every_python_otbr_api_call(topo: Topology):
    gw = topo.start_daemon(f'[rest]\nenabled = true\nlisten = ["127.0.0.1:{PORT}"]\n')
    role(gw, "leader")
    wait_until(lambda: "REST API on" in gw.output(), what="the REST API listening")
    secrets: set[bytes] = set()

    # reads: what gatewayctl shows
    tlvs = otbr_call(topo, lambda api: api.get_active_dataset_tlvs())
    assert tlvs == shown_tlvs(gw)
    secrets.add(tlvs)
    active = otbr_call(topo, lambda api: api.get_active_dataset())
    shown = ctl(gw, "dataset", "active")
    assert active.network_name == shown["network_name"] and active.channel == shown["channel"]
    assert active.pan_id == int(shown["pan_id"], 16)
    assert active.extended_pan_id.lower() == shown["ext_pan_id"]
    assert active.mesh_local_prefix == shown["mesh_local_prefix"]
    assert active.channel_mask == int(shown["channel_mask"], 16)
    assert active.active_timestamp.seconds == shown["active_timestamp"]
    assert active.security_policy.rotation_time == shown["security_policy"]
    assert bytes.fromhex(active.network_key) == Dataset.from_tlvs(tlvs).network_key
    assert bytes.fromhex(active.psk_c) == Dataset.from_tlvs(tlvs).pskc
    assert raw(topo, "GET", "/node/state")[2] == '"leader"'
    assert otbr_call(topo, lambda api: api.get_pending_dataset_tlvs()) is None  # no channel change on its way

    ba_id = otbr_call(topo, lambda api: api.get_border_agent_id())
    assert len(ba_id) == 16 and otbr_call(topo, lambda api: api.get_border_agent_id()) == ba_id
    ext = otbr_call(topo, lambda api: api.get_extended_address())
    assert len(ext) == 8
    version = otbr_call(topo, lambda api: api.get_coprocessor_version())
    assert version and version == ctl(gw, "status")["components"]["ncp"]["version"]
    node = json.loads(raw(topo, "GET", "/node")[2])
    assert node["State"] == "leader" and node["NetworkName"] == shown["network_name"]
    assert node["BaId"] == ba_id.hex().upper() and node["ExtAddress"] == ext.hex().upper()

    # what gatewayd does not offer, answered the way python-otbr-api understands as "not supported"
    assert otbr_call(topo, lambda api: api.get_api_version()) is None
    with pytest.raises(python_otbr_api.EphemeralKeyNotSupportedError):
        otbr_call(topo, lambda api: api.get_ephemeral_key_enabled())
    with pytest.raises(python_otbr_api.OTBRError, match="405"):
        otbr_call(topo, lambda api: api.delete_active_dataset())  # otbr-agent has no DELETE either
    # the channel change and the pending dataset calls: tests/rest/test_otbr_pending.py

    # the active dataset changes only while Thread is off, as on otbr-agent
    with pytest.raises(python_otbr_api.ThreadNetworkActiveError):
        otbr_call(topo, lambda api: api.create_active_dataset(ActiveDataSet(network_name="ha-thread")))
    otbr_call(topo, lambda api: api.set_enabled(False))
    role(gw, "disabled")
    assert raw(topo, "GET", "/node/state")[2] == '"disabled"'
    otbr_call(topo, lambda api: api.create_active_dataset(ActiveDataSet(network_name="ha-thread", channel=20)))
    otbr_call(topo, lambda api: api.set_enabled(True))
    state = role(gw, "leader")
    assert (state["network_name"], state["channel"]) == ("ha-thread", 20)
    updated = shown_tlvs(gw)
    secrets.add(updated)
    assert Dataset.from_tlvs(updated).network_key == Dataset.from_tlvs(tlvs).network_key  # an update, not new
    assert otbr_call(topo, lambda api: api.get_active_dataset_tlvs()) == updated

    # hex TLVs in
    new = Dataset.generate(name="tlv-net", channel=25)
    secrets.add(new.to_tlvs())
    with pytest.raises(python_otbr_api.ThreadNetworkActiveError):
        otbr_call(topo, lambda api: api.set_active_dataset_tlvs(new.to_tlvs()))
    otbr_call(topo, lambda api: api.set_enabled(False))
    otbr_call(topo, lambda api: api.set_active_dataset_tlvs(new.to_tlvs()))
    otbr_call(topo, lambda api: api.set_enabled(True))
    role(gw, "leader")
    assert shown_tlvs(gw) == new.to_tlvs()
    assert (topo.tmp / "state" / "dataset.hex").read_text().strip() == new.hex(), "kept for a restart"

    # factory reset: no dataset until Home Assistant makes one (201: created)
    otbr_call(topo, lambda api: api.factory_reset())
    assert otbr_call(topo, lambda api: api.get_active_dataset()) is None
    assert raw(topo, "GET", "/node/dataset/active")[0] == 204
    assert not (topo.tmp / "state" / "dataset.hex").exists()
    status, _, _ = raw(topo, "PUT", "/node/dataset/active", {"Content-Type": "application/json"},
                       json.dumps({"NetworkName": "after-reset"}))
    assert status == 201
    otbr_call(topo, lambda api: api.set_enabled(True))
    state = role(gw, "leader")
    assert state["network_name"] == "after-reset"
    fresh = shown_tlvs(gw)
    secrets.add(fresh)
    assert Dataset.from_tlvs(fresh).is_complete and Dataset.from_tlvs(fresh).network_key != new.network_key

    # content types and errors as otbr-agent's
    status, ctype, text = raw(topo, "GET", "/node/dataset/active", {"Accept": "text/plain"})
    assert (status, ctype, bytes.fromhex(text)) == (200, "text/plain", fresh)
    assert raw(topo, "GET", "/node/dataset/active")[1] == "application/json"
    status, _, text = raw(topo, "PUT", "/node/state", {"Content-Type": "application/json"}, '"sideways"')
    assert status == 400 and json.loads(text)["ErrorCode"] == 400
    assert raw(topo, "POST", "/node/state")[0] == 405
    assert raw(topo, "GET", "/api/actions")[0] == 404  # so python-otbr-api speaks PascalCase

    log = gw.output()
    for tlv in secrets:
        ds = Dataset.from_tlvs(tlv)
        for secret in (tlv.hex(), ds.network_key.hex(), ds.pskc.hex()):
            assert secret not in log.lower(), "secrets never reach the log"


def test_non_loopback_listener_wants_the_token(topo: Topology):
    token = "s3cret-t0ken-for-tests"
    (topo.tmp / "rest-token").write_text(token + "\n")
    gw = topo.start_daemon(f'[rest]\nenabled = true\nlisten = ["0.0.0.0:{PORT}"]\n'
                           f'token_file = "{topo.tmp}/rest-token"\n')
    role(gw, "leader")
    wait_until(lambda: "REST API on" in gw.output(), what="the REST API listening")

    # what reveals nothing and changes nothing is open, as on otbr-agent
    assert raw(topo, "GET", "/node/state")[0] == 200
    assert otbr_call(topo, lambda api: api.get_border_agent_id())
    # the dataset (it holds the network key) and every change need the token
    for method, path, body in (("GET", "/node/dataset/active", None), ("GET", "/node/dataset/pending", None),
                               ("PUT", "/node/state", '"disable"'), ("PUT", "/node/dataset/active", "{}"),
                               ("PUT", "/node/dataset/pending", "{}"), ("DELETE", "/node/dataset/pending", None),
                               ("DELETE", "/node", None)):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
            status, _, text = raw(topo, method, path, {"Content-Type": "application/json", **headers}, body)
            assert status == 401, (method, path, headers, status)
            assert "NetworkKey" not in text
    with pytest.raises(python_otbr_api.OTBRError, match="401"):
        otbr_call(topo, lambda api: api.get_active_dataset_tlvs())
    with pytest.raises(python_otbr_api.OTBRError, match="401"):
        otbr_call(topo, lambda api: api.factory_reset())
    assert ctl(gw, "state")["role"] == "leader", "nothing changed"

    authorised = {"Authorization": f"Bearer {token}"}
    assert otbr_call(topo, lambda api: api.get_active_dataset_tlvs(), headers=authorised) == shown_tlvs(gw)
    otbr_call(topo, lambda api: api.set_enabled(False), headers=authorised)
    role(gw, "disabled")
    assert token not in gw.output()
