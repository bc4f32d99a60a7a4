"""The REST API's pieces without a daemon: dataset JSON both ways, listen addresses, the [rest] config."""

from __future__ import annotations

import subprocess

import pytest
from python_otbr_api.models import ActiveDataSet

from gatewayd.config import ConfigError, parse
from gatewayd.rest.dataset_json import BadDataset, dataset_from_json, dataset_json, merge
from gatewayd.rest.listen import is_loopback, parse_listen
from ncp.meshcop import Dataset
from tests.conftest import PYTHON, ROOT


def camel(data):
    """What python-otbr-api makes of otbr-agent's PascalCase keys."""
    if not isinstance(data, dict):
        return data
    return {("pskc" if k == "PSKc" else k[0].lower() + k[1:]): camel(v) for k, v in data.items()}


def test_dataset_json_round_trip_through_python_otbr_api():
    d = Dataset.generate(name="round-trip", channel=21)
    shown = dataset_json(d)
    assert shown["NetworkKey"] == d.network_key.hex().upper() and shown["ChannelMask"] == 0x07FFF800
    parsed = ActiveDataSet.from_json(camel(shown))
    assert parsed.network_name == "round-trip" and parsed.channel == 21
    # what python-otbr-api sends back, in either spelling, makes the same dataset
    assert merge(Dataset(), dataset_from_json(shown, d)) == d.with_(channel_page=0)
    camel_update = {"networkName": "round-trip", "channel": 21, "securityPolicy": {"rotationTime": 672}}
    assert merge(d, dataset_from_json(camel_update, d)) == d


def test_dataset_json_partial_update_and_refusals():
    d = Dataset.generate(channel=15)
    updated = merge(d, dataset_from_json({"Channel": 20, "ActiveTimestamp": {"Seconds": 7}}, d))
    assert (updated.channel, updated.active_timestamp.seconds, updated.network_key) == (20, 7, d.network_key)
    policy = merge(d, dataset_from_json({"SecurityPolicy": {"Routers": False}}, d)).security_policy
    assert not policy.routers_enabled and policy.rotation_time == d.security_policy.rotation_time
    for bad in ({"Channel": 99}, {"NetworkKey": "zz"}, {"PanId": "1"}, {"MeshLocalPrefix": "fd00::/48"}, [1]):
        with pytest.raises(BadDataset):
            dataset_from_json(bad, d)


def test_listen_addresses():
    assert parse_listen("127.0.0.1:8081") == ("127.0.0.1", 8081)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen("::") == ("::", 8081) and parse_listen("0.0.0.0") == ("0.0.0.0", 8081)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.2")
    for bad in ("localhost:8081", "1.2.3.4:0", "[::1"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_config_wants_a_token_off_loopback():
    assert not parse("[rest]\nenabled = true\n").root.rest.token
    with pytest.raises(ConfigError, match="token"):
        parse('[rest]\nenabled = true\nlisten = ["0.0.0.0:8081"]\n')
    config = parse('[rest]\nenabled = true\nlisten = ["0.0.0.0:8081"]\ntoken = "tok-123"\n')
    assert config.rest.token.reveal() == "tok-123" and "tok-123" not in repr(config.rest)
    with pytest.raises(ConfigError, match="listen"):
        parse('[rest]\nlisten = ["lan:8081"]\n')


def test_idle_daemon_does_not_import_aiohttp():
    code = ("import sys\nfrom gatewayd.config import parse\nfrom gatewayd import components\n"
            "config = parse('')\nbuilt = {}\nassert components.rest(config, built) is None\n"
            "print('aiohttp' in sys.modules)\n")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


async def test_the_api_without_aiohttp_installed_fails_to_start_saying_what_to_install(monkeypatch) -> None:
    """The .deb only Recommends aiohttp: a daemon with [rest] on but no aiohttp keeps running without it."""
    import sys

    from gatewayd import components
    from gatewayd.config.loader import parse

    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp → ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "gatewayd.rest.component", raising=False)
    component = components.rest(parse("[rest]\nenabled = true\n"), {})
    assert component is not None and component.name == "rest"
    with pytest.raises(RuntimeError, match="apt install python3-aiohttp"):
        await component.start()


async def test_only_secret_free_reads_are_open_to_other_origins() -> None:
    """A web page opened on the Pi must not read the network key from the loopback API, nor change it."""
    from aiohttp.test_utils import TestClient, TestServer

    from gatewayd.rest.api import RestApi

    class FakeNode:
        async def role(self) -> str:
            return "leader"

        async def active_tlvs(self) -> bytes:
            return Dataset.generate().to_tlvs()

    client = TestClient(TestServer(RestApi(FakeNode(), trusted=True, token=b"").application()))  # type: ignore[arg-type]
    await client.start_server()
    try:
        state = await client.get("/node/state", headers={"Origin": "http://evil.example"})
        assert state.status == 200 and state.headers.get("Access-Control-Allow-Origin") == "*"
        active = await client.get("/node/dataset/active", headers={"Origin": "http://evil.example"})
        assert active.status == 200 and "Access-Control-Allow-Origin" not in active.headers
        preflight = await client.options("/node/dataset/active", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
        assert "Access-Control-Allow-Origin" not in preflight.headers
        assert "PUT" not in preflight.headers.get("Access-Control-Allow-Methods", "")
    finally:
        await client.close()


async def test_a_body_that_is_not_text_is_a_400_not_a_crash() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from gatewayd.rest.api import RestApi

    class FakeNode:
        async def active_dataset(self) -> Dataset:
            return Dataset.generate()

    client = TestClient(TestServer(RestApi(FakeNode(), trusted=True, token=b"").application()))  # type: ignore[arg-type]
    await client.start_server()
    try:
        for content_type in ("application/json", "text/plain"):
            r = await client.put("/node/dataset/active", data=b"\xff\xfe", headers={"Content-Type": content_type})
            assert r.status == 400 and "UTF-8" in (await r.json())["detail"]
    finally:
        await client.close()
