"""The daemon's LwM2M component: the gateway's own client registers, answers, shows in gatewayctl."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from aiocoap.numbers.codes import Code

from gatewayd import __version__
from gatewayd.components import lwm2m as lwm2m_factory
from gatewayd.config.loader import parse
from gatewayd.control import CommandError, Request
from gatewayd.lwm2m import component as component_module
from gatewayd.lwm2m.codecs import ContentFormat, decode
from gatewayd.lwm2m.component import LwM2MComponent
from gatewayd.lwm2m.gateway import split_ncp_version
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.ncp.component import NcpComponent

from .dtls_server import DtlsLwM2MServer
from .servers import REGISTRY, free_udp_port

pytestmark = pytest.mark.timeout(60)
NCP_INFO = {"ncp_version": "OPENTHREAD/1.3.0; CASCODA-CA8211; Jan  1 2024", "hwaddr": "18b4300000000042"}


def config(tmp_path, uri: str, extra: str = ""):
    return parse(f"""
[daemon]
state_dir = "{tmp_path}"
[lwm2m]
enabled = true
keepalive = 0
[lwm2m.server]
uri = "{uri}"
lifetime = 60
{extra}
""", base_dir=tmp_path)


async def test_factory_is_off_unless_enabled(tmp_path) -> None:
    assert lwm2m_factory(parse(f'[daemon]\nstate_dir = "{tmp_path}"\n'), {}) is None


async def test_gateway_client_registers_and_reports_ncp_identity(server, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="gatewayd.lwm2m")
    cfg = config(tmp_path, server.uri)
    ncp = NcpComponent(cfg)
    ncp.client = SimpleNamespace(info=NCP_INFO)  # type: ignore[assignment]  # identity is all it reads
    comp = lwm2m_factory(cfg, {"ncp": ncp})
    assert isinstance(comp, LwM2MComponent)
    await comp.start()
    ep = "urn:dev:ops:gatewayd-18b4300000000042"
    try:
        await server.wait_until(lambda: ep in server.registrations)
        resp = await server.op(ep, Code.GET, "/3/0", accept=ContentFormat.SENML_JSON)
        dev = dict(decode(ContentFormat.SENML_JSON, LwM2MPath(3, 0), resp.payload, REGISTRY))
        assert dev[LwM2MPath(3, 0, 0)] == "OPENTHREAD" and dev[LwM2MPath(3, 0, 1)] == "CASCODA-CA8211"
        assert dev[LwM2MPath(3, 0, 2)] == "18b4300000000042" and dev[LwM2MPath(3, 0, 3)].startswith("OPENTHREAD/1.3.0")
        assert dev[LwM2MPath(3, 0, 21)] > dev[LwM2MPath(3, 0, 10)] > 0
        resp = await server.op(ep, Code.GET, "/4/0/0")
        assert resp.payload == b"41"

        await asyncio.sleep(0.05)
        rows = await comp._cmd_clients(Request([]))
        assert rows[0]["endpoint"] == ep and rows[0]["state"] == "registered"
        shown = await comp._cmd_show(Request([ep]))
        assert shown["server"] == server.uri and "/3/0" in shown["objects"] and shown["registers"] == 1
        with pytest.raises(CommandError):
            await comp._cmd_show(Request(["nope"]))
        obs = server.observe(ep, "/3/0/13")
        await obs.first()
        rows = await comp._cmd_observations(Request([]))
        assert rows and rows[0]["paths"] == "/3/0/13"
        note = await obs.next(timeout=3)  # the current time ticks
        assert int(note.payload) > 1_700_000_000
        obs.cancel()
        assert comp.status_line() == "LwM2M 1/1 registered"
    finally:
        await comp.stop()
    assert server.count("deregister", ep) == 1
    fields = [r.fields for r in caplog.records if hasattr(r, "fields") and "LWM2M_STATE" in r.fields]
    assert [f["LWM2M_STATE"] for f in fields] == ["registering", "registered", "deregistered"]
    assert all(f["LWM2M_ENDPOINT"] == ep and f["LWM2M_SERVER"] == server.uri for f in fields)


async def test_reboot_requests_a_restart(server, tmp_path) -> None:
    restarted = asyncio.Event()
    comp = lwm2m_factory(config(tmp_path, server.uri, '[lwm2m.gateway]\nendpoint = "gw"'), {})
    comp._on_restart = lambda reason: restarted.set()  # what the daemon's supervisor installs
    await comp.start()
    try:
        await server.wait_until(lambda: "gw" in server.registrations)
        resp = await server.op("gw", Code.POST, "/3/0/4")
        assert resp.code == Code.CHANGED and not restarted.is_set(), "answered before restarting"
        await asyncio.wait_for(restarted.wait(), 3)
    finally:
        await comp.stop()


async def test_send_command_pushes_current_values_and_refuses_what_it_cannot_send(server, tmp_path,
                                                                                  monkeypatch) -> None:
    """gatewayctl lwm2m send: the values the server gets are the store's now, in the format asked for or the
    client's own; each refusal says why and sends nothing."""
    comp = lwm2m_factory(config(tmp_path, server.uri, '[lwm2m.gateway]\nendpoint = "gw"'), {})
    await comp.start()
    try:
        await server.wait_until(lambda: "gw" in server.registrations)
        await asyncio.sleep(0.05)
        client = comp.engine.clients["gw"]
        client.store.set(LwM2MPath(3, 0, 13), 1_700_000_321)
        out = await comp._cmd_send(Request(["gw", "/3/0/13", "3/0/19"]))
        assert out == {"endpoint": "gw", "paths": ["/3/0/13", "/3/0/19"], "format": "senml-cbor", "code": "2.04"}
        (ep, cf, payload), = server.sent
        got = dict(decode(ContentFormat.SENML_CBOR, LwM2MPath(), payload, REGISTRY))
        assert ep == "gw" and cf == ContentFormat.SENML_CBOR
        assert got == {LwM2MPath(3, 0, 13): 1_700_000_321, LwM2MPath(3, 0, 19): __version__}
        out = await comp._cmd_send(Request(["gw", "/3/0/13", "--format", "senml-json"]))
        assert out["format"] == "senml-json" and server.sent[-1][1] == ContentFormat.SENML_JSON

        for args, why in ((["gw"], "usage"), (["gw", "/3/x"], "a path is"), (["gw", "/"], "not the root"),
                          (["gw", "/3/0/13", "--format", "tlv"], "expected one of"),
                          (["nope", "/3/0/13"], "no LwM2M client"), (["gw", "/77/0/1"], "not sent"),
                          (["gw", "/3/0/4"], "not sent"),
                          (["gw", "/3/0/13", "--format"], "needs a value")):
            with pytest.raises(CommandError, match=why):
                await comp._cmd_send(Request(args))
        assert (await server.op("gw", Code.PUT, "/1/0/23", b"1", ContentFormat.TEXT)).code == Code.CHANGED
        with pytest.raises(CommandError, match="muted"):
            await comp._cmd_send(Request(["gw", "/3/0/13"]))
        assert len(server.sent) == 2, "nothing went out after the first two"
        assert (await server.op("gw", Code.PUT, "/1/0/23", b"0", ContentFormat.TEXT)).code == Code.CHANGED

        # a server that no longer answers: a refusal within the bound, not a failed command
        monkeypatch.setattr(component_module, "SEND_TIMEOUT", 0.5)
        held = asyncio.Event()
        server.hold = lambda request: held.wait()  # type: ignore[method-assign]  # /dp unanswered too
        with pytest.raises(CommandError, match="not sent: no answer from"):
            await comp._cmd_send(Request(["gw", "/3/0/13"]))
        held.set()
    finally:
        await comp.stop()


def test_split_ncp_version() -> None:
    assert split_ncp_version("OPENTHREAD/20191113-00534-gc6a258e3; SIMULATION; Apr  4 2020 12:00:00") == (
        "OPENTHREAD", "SIMULATION")
    assert split_ncp_version("") == ("", "")


async def test_psk_command_shows_identities_and_masks_keys_unless_root_asks(tmp_path) -> None:
    port = free_udp_port()
    identity, key = b"gw-psk-identity", b"gw-psk-key-0042"
    srv = DtlsLwM2MServer(port, {identity: key})
    await srv.start()
    uri = f"coaps://127.0.0.1:{port}"
    comp = lwm2m_factory(config(tmp_path, uri, f'psk_identity = "{identity.decode()}"\npsk_key = "{key.hex()}"\n'
                                                '[lwm2m.gateway]\nendpoint = "gw"'), {})
    await comp.start()
    try:
        await srv.wait_event(lambda e: e.get("event") == "register" and e["ep"] == "gw", timeout=20)
        rows = await comp._cmd_psk(Request(["gw"], uid=0))
        assert rows == [{"endpoint": "gw", "server": uri, "bootstrap": False, "security": "psk",
                         "identity": identity.decode(),
                         "key": "********"}]
        with pytest.raises(CommandError, match="root"):
            await comp._cmd_psk(Request(["gw", "--show-secrets"], uid=1000))
        rows = await comp._cmd_psk(Request(["gw", "--show-secrets"], uid=0))
        assert rows[0]["key"] == key.hex()
        with pytest.raises(CommandError, match="no LwM2M client"):
            await comp._cmd_psk(Request(["nope"]))
    finally:
        await comp.stop()
        await srv.stop()
