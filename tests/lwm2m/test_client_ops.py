"""Client behaviour against a LwM2M 1.1 test server: formats, DM operations, attributes, observe, Send."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import cbor2
import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.codecs import ContentFormat, decode, decode_links, encode
from gatewayd.lwm2m.errors import LwM2MError
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.transport import ClientSite

from .aioserver import LwM2MTestServer
from .servers import REGISTRY, device_store

pytestmark = pytest.mark.timeout(60)


async def registered(server: LwM2MTestServer, clients: list, ep: str = "ep-1", **settings) -> LwM2MClient:
    store = device_store(server.uri, lifetime=settings.pop("lifetime", 60))
    store.add_object(4)
    client = LwM2MClient(ep, store, ClientSettings(**settings))
    clients.append(client)
    await client.start()
    await server.wait_until(lambda: ep in server.registrations and client.state == RegistrationState.REGISTERED)
    return client


async def test_register_query_and_object_list(server, clients) -> None:
    await registered(server, clients)
    reg = server.registrations["ep-1"]
    assert reg.query == {"ep": "ep-1", "lt": "60", "lwm2m": "1.1", "b": "U"}
    links = {link.target: link.attributes for link in decode_links(reg.links.encode())}
    assert links["/"] == {"rt": "oma.lwm2m", "ct": "110"}, "SenML JSON, the 1.1 format every server accepts"
    assert "/3/0" in links and "/1/0" in links and "/4" in links
    assert not any(t.startswith("/0") for t in links), "the Security object is never registered"
    assert links["/1"] == {"ver": "1.1"}


@pytest.mark.parametrize(("settings", "root"), [
    ({"lwm2m_version": "1.0"}, None),  # 1.0 has no ct: TLV is its default
    ({"preferred_format": ContentFormat.SENML_CBOR}, {"rt": "oma.lwm2m", "ct": "112"}),
    ({"preferred_format": ContentFormat.LWM2M_JSON}, {"rt": "oma.lwm2m", "ct": "11543"}),
    # TLV goes without ct (the default when none is given): Wakaama refuses a Register that says ct=11542
    ({"preferred_format": ContentFormat.TLV}, None),
])
async def test_registered_content_format(server, clients, settings, root) -> None:
    await registered(server, clients, **settings)
    links = {link.target: link.attributes for link in decode_links(server.registrations["ep-1"].links.encode())}
    assert links.get("/") == root
    resp = await server.op("ep-1", Code.GET, "/3/0")
    expected = settings.get("preferred_format", ContentFormat.TLV if root is None else ContentFormat.SENML_JSON)
    assert int(resp.opt.content_format) == expected, "a Read without Accept answers in the registered format"


async def test_queue_mode_binding(server, clients) -> None:
    await registered(server, clients, "q10", lwm2m_version="1.0", queue_mode=True)
    await registered(server, clients, "q11", queue_mode=True)
    assert server.registrations["q10"].query["b"] == "UQ"
    assert server.registrations["q11"].query["b"] == "U" and "Q" in server.registrations["q11"].query


@pytest.mark.parametrize("accept", [None, ContentFormat.TLV, ContentFormat.OLD_TLV, ContentFormat.SENML_JSON,
                                    ContentFormat.SENML_CBOR, ContentFormat.LWM2M_JSON, ContentFormat.OLD_JSON])
async def test_read_instance_in_every_hierarchical_format(server, clients, accept) -> None:
    client = await registered(server, clients)
    resp = await server.op("ep-1", Code.GET, "/3/0", accept=accept)
    assert resp.code == Code.CONTENT
    cf = int(resp.opt.content_format)
    assert cf == (accept if accept is not None else ContentFormat.SENML_JSON)
    entries = dict(decode(cf, LwM2MPath(3, 0), resp.payload, REGISTRY))
    assert entries[LwM2MPath(3, 0, 0)] == "gatewayd tests"
    assert entries[LwM2MPath(3, 0, 11)] == {0: 0}
    assert entries == dict(client.store.read(LwM2MPath(3, 0)))


async def test_read_levels_and_single_value_formats(server, clients) -> None:
    await registered(server, clients)
    resp = await server.op("ep-1", Code.GET, "/3/0/1")
    assert (resp.code, int(resp.opt.content_format), resp.payload) == (Code.CONTENT, 0, b"model-1")
    resp = await server.op("ep-1", Code.GET, "/3/0/1", accept=ContentFormat.OLD_TEXT)
    assert (int(resp.opt.content_format), resp.payload) == (1541, b"model-1")
    resp = await server.op("ep-1", Code.GET, "/3/0/13", accept=ContentFormat.CBOR)
    assert cbor2.loads(resp.payload) == 1_700_000_000
    resp = await server.op("ep-1", Code.GET, "/3/0/11/0", accept=ContentFormat.SENML_JSON)
    assert json.loads(resp.payload) == [{"bn": "/3/0/11/0", "v": 0}]
    resp = await server.op("ep-1", Code.GET, "/3", accept=ContentFormat.SENML_JSON)
    names = {r.get("n") for r in json.loads(resp.payload)}
    assert "0/0" in names and "0/11/0" in names


@pytest.mark.parametrize(("code", "path", "kwargs", "expected"), [
    (Code.GET, "/3/0/99", {}, Code.NOT_FOUND),
    (Code.GET, "/3/7", {}, Code.NOT_FOUND),
    (Code.GET, "/42", {}, Code.NOT_FOUND),
    (Code.GET, "/not/a/path", {}, Code.NOT_FOUND),
    (Code.GET, "/3/0/4", {}, Code.METHOD_NOT_ALLOWED),  # Reboot is executable, not readable
    (Code.GET, "/0/0", {}, Code.UNAUTHORIZED),  # Security is for the Bootstrap-Server only
    (Code.GET, "/3/0/1", {"accept": 9999}, Code.NOT_ACCEPTABLE),
    (Code.GET, "/3/0", {"accept": ContentFormat.TEXT}, Code.NOT_ACCEPTABLE),
    (Code.PUT, "/3/0/14", {"payload": b"\xff", "content_format": ContentFormat.TLV}, Code.BAD_REQUEST),
    (Code.PUT, "/3/0/14", {"payload": b"+02", "content_format": 4711}, Code.UNSUPPORTED_CONTENT_FORMAT),
    (Code.PUT, "/3/0/0", {"payload": b"x", "content_format": ContentFormat.TEXT}, Code.METHOD_NOT_ALLOWED),
    (Code.POST, "/3/0/0", {}, Code.METHOD_NOT_ALLOWED),
    (Code.DELETE, "/3/0/0", {}, Code.METHOD_NOT_ALLOWED),
    (Code.PUT, "/3/0/13", {"query": ("pmin=abc",)}, Code.BAD_REQUEST),
    (Code.PUT, "/3/0", {"query": ("gt=5",)}, Code.BAD_REQUEST),
])
async def test_errors_map_to_coap_codes(server, clients, code, path, kwargs, expected) -> None:
    await registered(server, clients)
    resp = await server.op("ep-1", code, path, **kwargs)
    assert resp.code == expected, resp.payload


async def test_write_replace_partial_and_execute(server, clients) -> None:
    client = await registered(server, clients)
    store = client.store
    resp = await server.op("ep-1", Code.PUT, "/3/0/14", b"+05", ContentFormat.TEXT)
    assert resp.code == Code.CHANGED and store.get(LwM2MPath(3, 0, 14)) == "+05"
    payload = encode(ContentFormat.SENML_CBOR, LwM2MPath(3, 0), [(LwM2MPath(3, 0, 15), "Europe/Berlin")], REGISTRY)
    resp = await server.op("ep-1", Code.POST, "/3/0", payload, ContentFormat.SENML_CBOR)
    assert resp.code == Code.CHANGED
    assert store.get(LwM2MPath(3, 0, 15)) == "Europe/Berlin" and store.get(LwM2MPath(3, 0, 14)) == "+05"
    payload = encode(ContentFormat.TLV, LwM2MPath(1, 0), [(LwM2MPath(1, 0, 1), 90), (LwM2MPath(1, 0, 6), True),
                                                         (LwM2MPath(1, 0, 7), "U")], REGISTRY)
    resp = await server.op("ep-1", Code.PUT, "/1/0", payload, ContentFormat.TLV)
    assert resp.code == Code.CHANGED and store.get(LwM2MPath(1, 0, 6)) is True
    # a new lifetime goes to the server in an Update
    await server.wait_until(lambda: any(u["query"].get("lt") == "90" for u in server.registrations["ep-1"].updates))

    calls: list[bytes] = []
    store.set_execute_handler(3, 4, lambda path, args: calls.append(args))
    resp = await server.op("ep-1", Code.POST, "/3/0/4", b"0='now',1")
    assert resp.code == Code.CHANGED and calls == [b"0='now',1"]


async def test_create_delete_and_update_with_new_object_list(server, clients) -> None:
    client = await registered(server, clients)
    client.store.add_object(3311)
    client.trigger_update()  # declaring an object is no store change; the gateway says so
    reg = server.registrations["ep-1"]
    await server.wait_until(lambda: any("</3311>" in u["payload"] for u in reg.updates))
    payload = encode(ContentFormat.TLV, LwM2MPath(3311), [(LwM2MPath(3311, 0, 5850), True),
                                                         (LwM2MPath(3311, 0, 5851), 40)], REGISTRY)
    resp = await server.op("ep-1", Code.POST, "/3311", payload, ContentFormat.TLV)
    assert resp.code == Code.CREATED and tuple(resp.opt.location_path) == ("3311", "0")
    assert client.store.get(LwM2MPath(3311, 0, 5851)) == 40
    await server.wait_until(lambda: "</3311/0>" in reg.updates[-1]["payload"])
    resp = await server.op("ep-1", Code.POST, "/3311", b"", ContentFormat.TLV)
    assert resp.code == Code.BAD_REQUEST, "On/Off is mandatory"
    resp = await server.op("ep-1", Code.DELETE, "/3311/0")
    assert resp.code == Code.DELETED and client.store.instance(3311, 0) is None
    await server.wait_until(lambda: "</3311>" in reg.updates[-1]["payload"]
                            and "</3311/0>" not in reg.updates[-1]["payload"])


async def test_write_attributes_and_discover(server, clients) -> None:
    await registered(server, clients)
    resp = await server.op("ep-1", Code.PUT, "/3/0/13", query=("pmin=2", "pmax=30", "st=5"))
    assert resp.code == Code.CHANGED
    resp = await server.op("ep-1", Code.PUT, "/3/0", query=("pmax=60",))
    assert resp.code == Code.CHANGED
    resp = await server.op("ep-1", Code.GET, "/3/0", accept=ContentFormat.LINK_FORMAT)
    assert resp.code == Code.CONTENT
    links = {link.target: link.attributes for link in decode_links(resp.payload)}
    assert links["/3/0"] == {"pmax": "60"}
    assert links["/3/0/13"] == {"pmin": "2", "pmax": "30", "st": "5"}
    assert links["/3/0/11"] == {"dim": "1"}
    # clearing an attribute
    await server.op("ep-1", Code.PUT, "/3/0/13", query=("st",))
    resp = await server.op("ep-1", Code.GET, "/3/0/13", accept=ContentFormat.LINK_FORMAT)
    assert decode_links(resp.payload)[0].attributes == {"pmin": "2", "pmax": "30"}
    # pmax below pmin is refused and nothing changes
    resp = await server.op("ep-1", Code.PUT, "/3/0/13", query=("pmax=1",))
    assert resp.code == Code.BAD_REQUEST


async def test_observe_change_thresholds_and_cancel(server, clients) -> None:
    client = await registered(server, clients)
    store = client.store
    await server.op("ep-1", Code.PUT, "/3/0/10", query=("gt=100", "lt=10"))
    store.set(LwM2MPath(3, 0, 10), 50)
    obs = server.observe("ep-1", "/3/0/10")
    first = await obs.first()
    assert first.code == Code.CONTENT and first.payload == b"50" and first.opt.observe is not None
    store.set(LwM2MPath(3, 0, 10), 60)  # between the thresholds: no notification
    store.set(LwM2MPath(3, 0, 10), 150)  # crosses gt
    note = await obs.next()
    assert note.payload == b"150"
    store.set(LwM2MPath(3, 0, 10), 160)
    store.set(LwM2MPath(3, 0, 10), 5)  # crosses lt (and back under gt)
    note = await obs.next()
    assert note.payload == b"5"
    assert obs.notifications.empty()
    assert len(client.observations) == 1
    # Observe with Observe=1 on the same token ends it (RFC 7641 deregistration)
    obs.cancel()
    await server.op("ep-1", Code.GET, "/3/0/10")  # any message exchange lets the cancel settle
    store.set(LwM2MPath(3, 0, 10), 500)
    await asyncio.sleep(0.2)
    assert obs.notifications.empty()


@pytest.mark.parametrize(("path", "accept"), [
    ("/3/0", ContentFormat.SENML_CBOR), ("/3/0", ContentFormat.TLV), ("/3/0", ContentFormat.LWM2M_JSON),
    ("/3/0/13", ContentFormat.SENML_JSON), ("/3/0/13", ContentFormat.CBOR), ("/3/0/13", ContentFormat.TLV),
])
async def test_notifications_answer_in_the_format_the_observe_accepted(server, clients, path, accept) -> None:
    client = await registered(server, clients)
    obs = server.observe("ep-1", path, accept=accept)
    first = await obs.first()
    assert int(first.opt.content_format) == accept
    client.store.set(LwM2MPath(3, 0, 13), 1_700_000_321)
    note = await obs.next()
    assert int(note.opt.content_format) == accept
    assert dict(decode(accept, LwM2MPath.parse(path), note.payload, REGISTRY))[LwM2MPath(3, 0, 13)] == 1_700_000_321
    obs.cancel()


@pytest.mark.parametrize(("path", "accept"), [("/3/0", ContentFormat.TEXT), ("/3/0", ContentFormat.OPAQUE),
                                              ("/3/0/13", 50)])
async def test_an_observe_in_a_format_the_client_cannot_give_is_not_acceptable(server, clients, path, accept) -> None:
    client = await registered(server, clients)
    obs = server.observe("ep-1", path, accept=accept)
    assert (await obs.first()).code == Code.NOT_ACCEPTABLE
    assert client.observations == [], "no observation is left behind"


async def test_a_server_that_forgets_an_observation_ends_it_at_the_next_confirmable_notification(
        server, clients, monkeypatch) -> None:
    """Cancel by forgetting (RFC 7641 §3.6): the server RSTs the next CON notification; the client stops."""
    monkeypatch.setattr(ClientSite, "confirm_interval", 0.0)  # every notification confirmable
    client = await registered(server, clients)
    obs = server.observe("ep-1", "/3/0/13")
    await obs.first()
    client.store.set(LwM2MPath(3, 0, 13), 1_700_000_001)
    assert (await obs.next()).payload == b"1700000001"
    assert len(client.observations) == 1
    obs.cancel()  # aiocoap acknowledges one more notification, then forgets the token and answers RST
    changes = 0

    def changed_until_ended() -> bool:
        nonlocal changes
        if client.observations:
            changes += 1
            client.store.set(LwM2MPath(3, 0, 13), 1_700_000_001 + changes)
        return not client.observations

    await server.wait_until(changed_until_ended, timeout=5)
    assert changes <= 3, "the observation ends at the first notification after the server forgot it"
    assert client.info()["observations"] == 0


async def test_observe_pmin_pmax_timing(server, clients) -> None:
    client = await registered(server, clients)
    store = client.store
    await server.op("ep-1", Code.PUT, "/3/0/13", query=("pmin=1", "pmax=2"))
    obs = server.observe("ep-1", "/3/0/13")
    await obs.first()
    t0 = time.monotonic()
    store.set(LwM2MPath(3, 0, 13), 1_700_000_001)
    store.set(LwM2MPath(3, 0, 13), 1_700_000_002)
    note = await obs.next()
    waited = time.monotonic() - t0
    assert note.payload == b"1700000002", "changes within pmin are folded into one notification"
    assert 0.8 <= waited <= 1.6, waited
    note = await obs.next(timeout=4)  # nothing changes: pmax forces one
    assert note.payload == b"1700000002"
    assert 1.8 <= time.monotonic() - t0 - waited <= 2.8
    obs.cancel()


async def test_read_and_observe_composite(server, clients) -> None:
    client = await registered(server, clients)
    paths = json.dumps([{"n": "/3/0/0"}, {"n": "/3/0/13"}, {"n": "/1/0/1"}]).encode()
    resp = await server.op("ep-1", Code.FETCH, "/", paths, ContentFormat.SENML_JSON, accept=ContentFormat.SENML_CBOR)
    assert resp.code == Code.CONTENT and int(resp.opt.content_format) == ContentFormat.SENML_CBOR
    got = dict(decode(ContentFormat.SENML_CBOR, LwM2MPath(), resp.payload, REGISTRY))
    assert got == {LwM2MPath(3, 0, 0): "gatewayd tests", LwM2MPath(3, 0, 13): 1_700_000_000,
                   LwM2MPath(1, 0, 1): 60}
    obs = server.observe("ep-1", "/", code=Code.FETCH, payload=paths, content_format=ContentFormat.SENML_JSON)
    first = await obs.first()
    assert first.code == Code.CONTENT
    client.store.set(LwM2MPath(3, 0, 13), 1_700_000_999)
    note = await obs.next()
    got = dict(decode(ContentFormat.SENML_JSON, LwM2MPath(), note.payload, REGISTRY))
    assert got[LwM2MPath(3, 0, 13)] == 1_700_000_999 and got[LwM2MPath(3, 0, 0)] == "gatewayd tests"
    obs.cancel()


async def test_write_composite(server, clients) -> None:
    client = await registered(server, clients)
    payload = encode(ContentFormat.SENML_JSON, LwM2MPath(), [(LwM2MPath(3, 0, 14), "+03"),
                                                            (LwM2MPath(1, 0, 1), 120)], REGISTRY)
    resp = await server.op("ep-1", Code.iPATCH, "/", payload, ContentFormat.SENML_JSON)
    assert resp.code == Code.CHANGED
    assert client.store.get(LwM2MPath(3, 0, 14)) == "+03" and client.store.get(LwM2MPath(1, 0, 1)) == 120


async def test_send(server, clients) -> None:
    client = await registered(server, clients)
    before = time.time()
    resp = await client.send([LwM2MPath(3, 0, 13), LwM2MPath(3, 0, 11)])
    assert resp.code == Code.CHANGED
    (ep, cf, payload), = server.sent
    assert ep == "ep-1" and cf == ContentFormat.SENML_CBOR
    records = cbor2.loads(payload)
    got = dict(decode(ContentFormat.SENML_CBOR, LwM2MPath(), payload, REGISTRY))
    assert got == {LwM2MPath(3, 0, 13): 1_700_000_000, LwM2MPath(3, 0, 11): {0: 0}}
    times = [r.get(6, 0) + r.get(-3, 0) for r in records]
    assert all(before - 1 <= t <= time.time() + 1 for t in times), times


async def test_send_in_lwm2m_cbor_for_a_1_2_registration(server, clients) -> None:
    """Registered as LwM2M 1.2, Send carries LwM2M CBOR (11544) as Reads do; what the server gets decodes
    with the project's 11544 decoder to the store's values."""
    client = await registered(server, clients, lwm2m_version="1.2")
    assert server.registrations["ep-1"].query["lwm2m"] == "1.2"
    client.store.set(LwM2MPath(3, 0, 13), 1_700_000_123)
    resp = await client.send([LwM2MPath(3, 0, 13), LwM2MPath(3, 0, 11), LwM2MPath(3, 0, 0)])
    assert resp.code == Code.CHANGED
    (ep, cf, payload), = server.sent
    assert ep == "ep-1" and cf == ContentFormat.LWM2M_CBOR
    got = dict(decode(ContentFormat.LWM2M_CBOR, LwM2MPath(), payload, REGISTRY))
    assert got == {LwM2MPath(3, 0, 13): 1_700_000_123, LwM2MPath(3, 0, 11): {0: 0},
                   LwM2MPath(3, 0, 0): "gatewayd tests"}
    # a format asked for explicitly still goes
    await client.send([LwM2MPath(3, 0, 13)], ContentFormat.SENML_JSON)
    assert server.sent[-1][1] == ContentFormat.SENML_JSON


async def test_send_is_refused_while_the_server_mutes_it(server, clients) -> None:
    """/1/x/23 Mute Send: false as provisioned; the server writes it true and Send is refused locally
    (nothing reaches /dp), counted; a Server instance without the resource mutes Send too."""
    client = await registered(server, clients)
    assert (await server.op("ep-1", Code.PUT, "/1/0/23", b"1", ContentFormat.TEXT)).code == Code.CHANGED
    with pytest.raises(LwM2MError) as err:
        await client.send([LwM2MPath(3, 0, 13)])
    assert err.value.code == Code.METHOD_NOT_ALLOWED and "muted" in str(err.value)
    assert server.sent == [] and client.counters["sends_muted"] == 1
    assert (await server.op("ep-1", Code.PUT, "/1/0/23", b"0", ContentFormat.TEXT)).code == Code.CHANGED
    assert (await client.send([LwM2MPath(3, 0, 13)])).code == Code.CHANGED
    client.store.instance(1, 0).values.pop(23)  # as a Bootstrap-Server that does not write it leaves it
    with pytest.raises(LwM2MError):
        await client.send([LwM2MPath(3, 0, 13)])
    assert len(server.sent) == 1


async def test_an_update_refused_without_content_format_goes_again_with_it(server, clients, caplog) -> None:
    """A server that answers 4.00 to an Update without Content-Format (Wakaama 2024-07..2025-11): the same
    Update again with 40, and every later one with it, instead of a new Register each time."""
    caplog.set_level(logging.INFO, logger="gatewayd.lwm2m")
    server.update_wants_link_format = True
    client = await registered(server, clients)
    reg = server.registrations["ep-1"]
    for n in (1, 2):
        client.trigger_update()
        await server.wait_until(lambda n=n: len(reg.updates) == n)
    assert [e for e, _ in server.log] == ["register", "update-refused", "update", "update"]
    assert [u["ct"] for u in reg.updates] == [40, 40] and all(u["payload"] == "" for u in reg.updates)
    await server.wait_until(lambda: client.state == RegistrationState.REGISTERED)
    assert client.counters["registers"] == 1 and client.counters["updates"] == 2
    assert sum("sending 40 (link-format) in every Update" in r.getMessage() for r in caplog.records) == 1

    # a server that takes either: no Content-Format without a payload, as LwM2M has it
    server.update_wants_link_format = False
    await client.stop()
    client = await registered(server, clients, "ep-2")
    client.trigger_update()
    await server.wait_until(lambda: len(server.registrations["ep-2"].updates) == 1)
    assert server.registrations["ep-2"].updates[0]["ct"] is None


async def test_send_is_refused_to_a_1_0_registration(server, clients) -> None:
    """Send is LwM2M 1.1's: a client registered as 1.0 refuses it rather than POST /dp to a 1.0 server."""
    client = await registered(server, clients, lwm2m_version="1.0")
    with pytest.raises(LwM2MError) as err:
        await client.send([LwM2MPath(3, 0, 13)])
    assert err.value.code == Code.METHOD_NOT_ALLOWED and "1.0" in str(err.value) and server.sent == []


async def test_updates_before_lifetime_and_for_keepalive(server, clients) -> None:
    await registered(server, clients, "short", lifetime=4, update_margin=2, keepalive=0)
    reg = server.registrations["short"]
    t0 = time.monotonic()
    await server.wait_until(lambda: len(reg.updates) >= 1, timeout=5)
    assert 1.0 <= time.monotonic() - t0 <= 3.5
    assert reg.updates[0]["payload"] == "" and reg.updates[0]["query"] == {}, "nothing changed: a bare Update"
    await registered(server, clients, "nat", lifetime=300, keepalive=0.5)
    reg = server.registrations["nat"]
    await server.wait_until(lambda: len(reg.updates) >= 3, timeout=5)


async def test_registration_update_trigger(server, clients) -> None:
    await registered(server, clients)
    resp = await server.op("ep-1", Code.POST, "/1/0/8")
    assert resp.code == Code.CHANGED
    await server.wait_until(lambda: server.count("update", "ep-1") >= 1, timeout=3)


async def test_a_trigger_during_an_update_is_not_lost(server, clients) -> None:
    """Registration Update Trigger while an Update is in flight (Wakaama: write /1/0/1, then exec /1/0/8)."""
    client = await registered(server, clients, keepalive=0)
    client.trigger_update()
    while client.state != RegistrationState.UPDATING:
        await asyncio.sleep(0)
    client.trigger_update()  # before the first Update is answered
    await server.wait_until(lambda: server.count("update", "ep-1") == 2, timeout=3)


@pytest.mark.parametrize("in_flight", ["register", "update"])
async def test_objects_added_while_the_server_delays_its_answer_are_sent_in_an_update(
        server, clients, in_flight) -> None:
    """An instance added while a Register or Update waits for the server's answer goes out in an Update
    of its own right after it, not with the keep-alive or lifetime Update minutes later."""
    store = device_store(server.uri, lifetime=600)
    client = LwM2MClient("ep-1", store, ClientSettings(keepalive=0))
    clients.append(client)
    if in_flight == "update":
        await client.start()
        await server.wait_until(lambda: client.state == RegistrationState.REGISTERED)
        server.answer_registrations.clear()
        client.trigger_update()
    else:
        server.answer_registrations.clear()
        await client.start()
    await server.wait_until(lambda: server.held == 1)
    store.add_instance(4, 0)  # a device came: its object list changed while the request is in flight
    server.answer_registrations.set()

    def listed() -> bool:
        reg = server.registrations.get("ep-1")
        return reg is not None and any("</4/0>" in u["payload"] for u in reg.updates)

    await server.wait_until(listed)
    reg = server.registrations["ep-1"]
    assert "</4/0>" not in reg.links, "the Register went out before the change"
    assert reg.updates[-1]["query"] == {}, "the lifetime did not change: not the lifetime-driven Update"


async def test_deregister_on_stop(server, clients) -> None:
    client = await registered(server, clients)
    await client.stop()
    assert "ep-1" not in server.registrations and server.count("deregister", "ep-1") == 1
    assert client.state == RegistrationState.DEREGISTERED
