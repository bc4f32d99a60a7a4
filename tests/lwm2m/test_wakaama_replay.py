"""What Eclipse Wakaama's servers sent to gatewayd's client, replayed through the client without Wakaama.

``data/wakaama.txt`` holds the messages ``lwm2mserver`` and ``bootstrap_server`` sent in a recorded run
(``python -m tests.interop.wakaama record``; tests/interop/test_wakaama.py runs the real programs): the
answers to Register/Update/Deregister, and every request with the options Wakaama chose (Accept, Observe,
Content-Format). Each request goes through the gateway client's request handling as it came off the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.bootstrap import check_bootstrap_finish, factory_bootstrap, lwm2m_server, server_accounts
from gatewayd.lwm2m.client import ClientSettings, LwM2MClient
from gatewayd.lwm2m.client.state import Registration
from gatewayd.lwm2m.codecs import ContentFormat, decode, decode_links
from gatewayd.lwm2m.gateway import GatewayDevice
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.transport import Response, op_request

from .servers import REGISTRY

DATA = Path(__file__).with_name("data") / "wakaama.txt"
#: the same scenarios against Wakaama a30c1e6 (2025-04), which wants Content-Format 40 on every Update
DATA_2025_04 = DATA.with_name("wakaama-2025-04.txt")
pytestmark = pytest.mark.timeout(30)


@dataclass
class Session:
    title: str
    messages: list[tuple[str, aiocoap.Message]] = field(default_factory=list)

    def requests(self, sender: str) -> list[tuple[str, aiocoap.Message]]:
        return [(n, m) for n, m in self.messages if n.startswith(f"{sender}:") and m.code.is_request()]

    def answers(self, sender: str) -> list[tuple[str, aiocoap.Message]]:
        return [(n, m) for n, m in self.messages if n.startswith(f"{sender}:") and m.code.is_response()]


def load_sessions(data: Path = DATA) -> dict[str, Session]:
    """``## title`` starts a session; ``# note`` then a hex line is one message."""
    sessions: dict[str, Session] = {}
    current: Session | None = None
    note = ""
    for line in data.read_text().splitlines():
        if line.startswith("## "):
            current = sessions.setdefault(line[3:], Session(line[3:]))
        elif line.startswith("# "):
            note = line[2:]
        elif line.strip() and current is not None:
            current.messages.append((note, aiocoap.Message.decode(bytes.fromhex(line))))
    return sessions


SESSIONS = load_sessions()
DM = {"1.1": SESSIONS["lwm2mserver, client registered with lwm2m=1.1"],
      "1.0": SESSIONS["lwm2mserver, client registered with lwm2m=1.0"]}
BOOTSTRAP = SESSIONS["bootstrap_server, then lwm2mserver (client lwm2m=1.1)"]


def gateway_client(version: str, uri: str = "coap://127.0.0.1:5683", bootstrap: bool = False) -> LwM2MClient:
    """The gateway's own client as the daemon makes it (not started: nothing goes on the network)."""
    device = GatewayDevice(REGISTRY, manufacturer="gatewayd interop", addresses=lambda: ["192.0.2.1"])
    factory_bootstrap(device.store, uri, bootstrap=bootstrap, lifetime=120)
    return LwM2MClient("gw-wakaama", device.store, ClientSettings(lwm2m_version=version))


async def answer(client: LwM2MClient, request: aiocoap.Message) -> aiocoap.Message:
    """The client's answer to one request off the wire, through the site the server's requests reach."""
    return await client.site.render(request)


def path_of(msg: aiocoap.Message) -> LwM2MPath:
    return LwM2MPath.parse("/" + "/".join(msg.opt.uri_path))


def test_the_recording_has_what_the_tests_rely_on() -> None:
    assert set(SESSIONS) == {*(s.title for s in DM.values()), BOOTSTRAP.title}
    for session in (*DM.values(), BOOTSTRAP):
        assert session.requests("lwm2mserver"), f"{session.title}: no request recorded"


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_wakaama_accepted_the_registration(version) -> None:
    """2.01 with a location for the Register, 2.04 for each Update, 2.02 for the Deregister."""
    answers = DM[version].answers("lwm2mserver")
    register = next(m for note, m in answers if "answering POST /rd?" in note)
    assert register.code == Code.CREATED and register.opt.location_path[0] == "rd"
    assert f"lwm2m={version}" in next(n for n, _ in answers if "answering POST /rd?" in n)
    updates = [m for note, m in answers if "answering POST /rd/" in note]
    assert updates and all(m.code == Code.CHANGED for m in updates)
    assert any(m.code == Code.DELETED for note, m in answers if "answering DELETE /rd/" in note)


@pytest.mark.parametrize(("version", "accept"), [("1.1", ContentFormat.SENML_JSON), ("1.0", ContentFormat.TLV)])
def test_wakaama_reads_in_the_format_the_client_registered(version, accept) -> None:
    """ct=110 on the root link (1.1) makes Wakaama ask for SenML JSON; no ct (1.0) for TLV."""
    reads = [m for _, m in DM[version].requests("lwm2mserver")
             if m.code == Code.GET and m.opt.accept != ContentFormat.LINK_FORMAT and m.opt.observe != 1]
    assert len(reads) >= 5
    assert {int(m.opt.accept) for m in reads} == {accept}


@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_every_request_of_lwm2mserver_gets_the_answer_it_asked_for(version) -> None:
    client = gateway_client(version)
    store = client.store
    observed: list[tuple[aiocoap.Message, object]] = []
    try:
        for note, msg in DM[version].requests("lwm2mserver"):
            resp = await answer(client, msg)
            assert resp.code.is_successful(), f"{note}: {resp.code} {resp.payload!r}"
            path = path_of(msg)
            if msg.code == Code.GET and msg.opt.accept == ContentFormat.LINK_FORMAT:  # disc
                targets = {link.target for link in decode_links(resp.payload)}
                assert {"/3/0", "/3/0/0", "/3/0/13", "/3/0/14"} <= targets, note
            elif msg.code == Code.GET and msg.opt.observe == 1:  # cancel: Wakaama sends no Accept
                assert resp.opt.content_format == ContentFormat.TEXT and int(resp.payload) > 1_700_000_000, note
            elif msg.code == Code.GET:  # read, observe
                cf = int(msg.opt.accept)
                assert resp.opt.content_format == cf, note
                assert dict(decode(cf, path, resp.payload, REGISTRY)) == dict(store.read(path)), note
                if msg.opt.observe == 0:
                    observed.append((msg, client.site.observe(op_request(msg), None, lambda: None)))
            elif msg.code == Code.PUT and msg.payload:  # write
                written = dict(decode(int(msg.opt.content_format), path, msg.payload, REGISTRY))
                assert store.get(path) == written[path], note
            elif msg.code == Code.PUT:  # time: Write-Attributes
                assert client.ops.attributes.at(path) == {"pmin": 1, "pmax": 5}, note
        assert store.get(LwM2MPath(3, 0, 14)) == "+02" and store.get(LwM2MPath(1, 0, 1)) == 90
        assert [(path_of(m), cancel is not None) for m, cancel in observed] == [(LwM2MPath(3, 0, 13), True)]
    finally:
        for _, cancel in observed:
            if callable(cancel):
                cancel()
        await client.stop(deregister=False)


@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_notifications_of_wakaamas_observe_come_in_its_accept(version) -> None:
    client = gateway_client(version)
    observe = next(m for _, m in DM[version].requests("lwm2mserver") if m.opt.observe == 0)
    due = asyncio.Event()
    cancel = client.site.observe(op_request(observe), None, due.set)
    try:
        assert cancel is not None, "the observation was accepted"
        client.store.set(LwM2MPath(3, 0, 13), 1_800_000_000)
        await asyncio.wait_for(due.wait(), 5)
        note = await answer(client, observe)  # what the site sends when the notification is due
        assert note.opt.content_format == observe.opt.accept
        assert dict(decode(int(observe.opt.accept), LwM2MPath(3, 0, 13), note.payload, REGISTRY)) == {
            LwM2MPath(3, 0, 13): 1_800_000_000}
    finally:
        if cancel is not None:
            cancel()
        await client.stop(deregister=False)


async def test_bootstrap_server_writes_the_account_the_client_then_registers_with() -> None:
    bs_uri = "coap://127.0.0.1:5783"
    client = gateway_client("1.1", bs_uri, bootstrap=True)
    store = client.store
    requests = BOOTSTRAP.requests("bootstrap_server")
    assert requests[-1][1].code == Code.POST and requests[-1][1].opt.uri_path == ("bs",), "Bootstrap-Finish last"
    try:
        for note, msg in requests[:-1]:
            resp = client.ops.handle(op_request(msg), bootstrap=True)
            assert resp.ok, f"{note}: {resp.code:#x} {resp.payload!r}"
        check_bootstrap_finish(store)  # what Bootstrap-Finish checks before it is answered 2.04
        written = json.loads(next(m.payload for _, m in requests if m.opt.uri_path == ("0", "1")))
        account = lwm2m_server(store)
        assert account is not None and account.uri == next(r["vs"] for r in written if r.get("n") == "0")
        assert account.lifetime == 120
        assert any(a.bootstrap and a.uri == bs_uri for a in server_accounts(store)), "the Bootstrap-Server stays"
        # then lwm2mserver reads the Server object the Bootstrap-Server wrote
        (note, read), = BOOTSTRAP.requests("lwm2mserver")
        resp = await answer(client, read)
        assert resp.code == Code.CONTENT and resp.opt.content_format == ContentFormat.SENML_JSON, note
        values = dict(decode(ContentFormat.SENML_JSON, path_of(read), resp.payload, REGISTRY))
        assert values[LwM2MPath(1, 1, 1)] == 120
    finally:
        await client.stop(deregister=False)


class RecordedUpdates:
    """A transport answering Updates as Wakaama a30c1e6 did in the recording: by whether the Update
    carried Content-Format 40, with the very messages it sent."""

    reliable = False

    def __init__(self, session: Session) -> None:
        answers = session.answers("lwm2mserver")
        self.refused = next(m for n, m in answers if "answering POST /rd/0?lt=90" in n and "Content-Format" not in n)
        self.taken = next(m for n, m in answers if "answering POST /rd/0?lt=90 Content-Format=40" in n)
        self.sent: list[int | None] = []

    async def request(self, method, path, query=(), payload=b"", content_format=None, **_) -> Response:
        assert method == Code.POST and path == ("rd", "0") and payload == b""
        self.sent.append(content_format)
        msg = self.taken if content_format == ContentFormat.LINK_FORMAT else self.refused
        return Response(int(msg.code), bytes(msg.payload))


def test_wakaama_2025_04_refused_an_update_without_content_format_and_took_it_with() -> None:
    """What that server did: 4.00 to the Update of a new lifetime, 2.04 to the same Update with 40, and
    no second Register (the client went on with its registration)."""
    for session in load_sessions(DATA_2025_04).values():
        answers = session.answers("lwm2mserver")
        if not any("answering POST /rd/" in n for n, _ in answers):
            continue
        updates = [(n, m.code) for n, m in answers if "answering POST /rd/" in n]
        assert updates[0][1] == Code.BAD_REQUEST and "Content-Format" not in updates[0][0], session.title
        assert all(code == Code.CHANGED and "Content-Format=40" in n for n, code in updates[1:]), session.title
        assert sum("answering POST /rd?" in n for n, _ in answers) == 1, f"{session.title}: registered again"


async def test_the_client_updates_through_wakaama_2025_04s_answers() -> None:
    """The client against that server's recorded answers: the refused Update goes again with 40 and is
    taken; the next one carries 40 from the start."""
    session = load_sessions(DATA_2025_04)["lwm2mserver, client registered with lwm2m=1.1"]
    client = gateway_client("1.1")
    transport = client.transport = RecordedUpdates(session)  # type: ignore[assignment]
    client.registration = Registration("coap://127.0.0.1:5683", ("rd", "0"), 120, time.time() + 120,
                                       client._object_links())
    try:
        for _ in range(2):
            client._lifetime_changed = True
            await client._update()
        assert transport.sent == [None, ContentFormat.LINK_FORMAT, ContentFormat.LINK_FORMAT]
        assert client.counters["updates"] == 2 and client.registration is not None
    finally:
        client.transport = None
        await client.stop(deregister=False)
