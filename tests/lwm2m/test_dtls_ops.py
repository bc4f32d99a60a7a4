"""LwM2M over DTLS-PSK end to end: Register, then the server's Read/Write/Execute/Observe on that session.

The server (tests/lwm2m/dtls_server.py) runs in its own process and reaches the client only over the
DTLS session the client opened, as a server behind the client's NAT binding would.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.codecs import ContentFormat
from gatewayd.lwm2m.paths import LwM2MPath

from .dtls_server import DtlsLwM2MServer
from .servers import device_store, free_udp_port, wait_state

pytestmark = pytest.mark.timeout(90)
KEY = b"dtls-ops-psk-91c3"
IDENTITY = b"dtls-ops-identity-5d"


@pytest.fixture
async def dtls_server():
    srv = DtlsLwM2MServer(free_udp_port(), {IDENTITY: KEY})
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def registered_client(srv: DtlsLwM2MServer, clients: list[LwM2MClient], ep: str,
                            settings: ClientSettings | None = None) -> LwM2MClient:
    store = device_store(srv.uri, identity=IDENTITY, key=KEY)
    client = LwM2MClient(ep, store, settings or ClientSettings(keepalive=0, request_timeout=5, backoff_initial=30))
    clients.append(client)
    await client.start()
    await srv.wait_event(lambda e: e.get("event") == "register" and e["ep"] == ep)
    await wait_state(client, RegistrationState.REGISTERED, timeout=5)
    return client


async def test_register_read_write_execute_observe_over_dtls_psk(dtls_server, clients, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    srv = dtls_server
    client = await registered_client(srv, clients, "dtls-dm")
    reg = await srv.wait_event(lambda e: e.get("event") == "register")
    assert reg["query"]["ep"] == "dtls-dm" and "</3/0>" in reg["links"]
    assert client.state == RegistrationState.REGISTERED
    assert type(client.transport.session).__name__ == "DTLSClientConnection"

    # Read
    resp = await srv.request("dtls-dm", "GET", "/3/0/0")
    assert (resp["code"], resp["payload"]) == ("2.05", b"gatewayd tests")
    resp = await srv.request("dtls-dm", "GET", "/3/0", accept=ContentFormat.SENML_JSON)
    assert resp["code"] == "2.05" and resp["cf"] == ContentFormat.SENML_JSON and b"model-1" in resp["payload"]

    # Write
    resp = await srv.request("dtls-dm", "PUT", "/3/0/15", b"Europe/Berlin", cf=ContentFormat.TEXT)
    assert resp["code"] == "2.04"
    assert client.store.get(LwM2MPath(3, 0, 15)) == "Europe/Berlin"
    resp = await srv.request("dtls-dm", "PUT", "/3/0/1", b"x", cf=ContentFormat.TEXT)
    assert resp["code"] == "4.05", "a read-only resource refuses the Write"

    # Execute
    calls: list[bytes] = []
    client.store.set_execute_handler(3, 4, lambda path, args: calls.append(args))
    resp = await srv.request("dtls-dm", "POST", "/3/0/4")
    assert resp["code"] == "2.04" and calls == [b""]

    # Observe, then a change on the client's side is notified over the same session
    resp = await srv.request("dtls-dm", "GET", "/3/0/15", observe=True)
    assert resp["code"] == "2.05" and resp["observe"] is not None and resp["payload"] == b"Europe/Berlin"
    client.store.set(LwM2MPath(3, 0, 15), "Asia/Tokyo")
    note = await srv.wait_event(lambda e: e.get("event") == "notify" and e["ep"] == "dtls-dm")
    assert bytes.fromhex(note["payload"]) == b"Asia/Tokyo" and note["seq"] > resp["observe"]
    assert client.counters["notifications"] == 1

    # Update and Deregister ride the same session too
    client.trigger_update()
    await srv.wait_event(lambda e: e.get("event") == "update" and e["ep"] == "dtls-dm")
    await client.stop()
    clients.remove(client)
    await srv.wait_event(lambda e: e.get("event") == "deregister" and e["ep"] == "dtls-dm")

    logged = caplog.text + "".join(repr(r.args) + repr(r.__dict__.get("fields")) for r in caplog.records)
    for secret in (KEY, IDENTITY):
        assert secret.decode() not in logged and secret.hex() not in logged
    assert KEY.decode() not in repr(client.transport) and KEY.decode() not in repr(client.server)


async def test_the_kept_session_is_what_lets_the_server_reach_the_client(dtls_server, clients) -> None:
    srv = dtls_server
    client = await registered_client(srv, clients, "dtls-ref")
    # without the registration's reference the weakly pooled DTLS session is collected right after
    # Register: its socket closes and the server's requests go unanswered (what keep_session prevents)
    client.transport.session = None
    gc.collect()
    resp = await srv.request("dtls-ref", "GET", "/3/0/0", timeout=2)
    assert resp.get("error") == "timeout"


async def test_session_survives_while_registered(dtls_server, clients) -> None:
    srv = dtls_server
    client = await registered_client(srv, clients, "dtls-keep")
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0.1)
    resp = await srv.request("dtls-keep", "GET", "/3/0/2")
    assert (resp["code"], resp["payload"]) == ("2.05", b"0011223344556677")
    assert not [e for e in srv.events if e.get("event") == "alert"]
    assert client.state == RegistrationState.REGISTERED


class _FailingOnce:
    """Stands in for a session's DTLS socket and fails the next datagram the way DTLSSocket does when
    one of its callbacks raised (a SystemError chained to the callback's exception)."""

    def __init__(self, real) -> None:
        self.real = real
        self.armed = True

    def handleMessage(self, session, data):  # DTLSSocket's name
        if self.armed:
            self.armed = False
            try:
                raise asyncio.InvalidStateError("invalid state")
            except asyncio.InvalidStateError as exc:
                raise SystemError("handleMessage returned a result with an exception set") from exc
        return self.real.handleMessage(session, data)

    def __getattr__(self, name):
        return getattr(self.real, name)


async def test_a_dtls_stack_fault_is_contained_counted_and_survived(dtls_server, clients, caplog) -> None:
    from gatewayd.lwm2m.transport import dtls_faults

    caplog.set_level(logging.DEBUG)
    srv = dtls_server
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        client = await registered_client(srv, clients, "dtls-fault")
        before = dtls_faults["SystemError<InvalidStateError>"]
        session = client.transport.session
        session._dtls_socket = _FailingOnce(session._dtls_socket)
        # the server's Read hits the fault; its CoAP retransmission a second later gets through
        resp = await srv.request("dtls-fault", "GET", "/3/0/0", timeout=6)
        assert (resp["code"], resp["payload"]) == ("2.05", b"gatewayd tests")
        assert client.counters["dtls_faults"] == 1 and client.transport.faults == 1
        assert dtls_faults["SystemError<InvalidStateError>"] == before + 1
        assert client.state == RegistrationState.REGISTERED
        client.trigger_update()
        await srv.wait_event(lambda e: e.get("event") == "update" and e["ep"] == "dtls-fault")
    finally:
        loop.set_exception_handler(previous)
    assert unhandled == [], "nothing reached the event loop"
    assert "DTLS stack fault on coaps://127.0.0.1" in caplog.text
    logged = caplog.text + "".join(repr(r.args) + repr(r.__dict__.get("fields")) for r in caplog.records)
    for secret in (KEY, IDENTITY):
        assert secret.decode() not in logged and secret.hex() not in logged


async def test_an_unexpected_error_quoting_the_psk_is_logged_without_it(dtls_server, clients, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    srv = dtls_server
    store = device_store(srv.uri, identity=IDENTITY, key=KEY)
    client = LwM2MClient("dtls-oops", store, ClientSettings(keepalive=0, request_timeout=5, backoff_initial=0.2,
                                                            backoff_max=0.2))
    clients.append(client)
    real = client._use_server
    calls = []

    async def failing_once(account):
        calls.append(account)
        if len(calls) == 1:
            raise KeyError(IDENTITY + b" / " + KEY)  # as a lookup in a PSK store would
        return await real(account)

    client._use_server = failing_once
    await client.start()
    await srv.wait_event(lambda e: e.get("event") == "register" and e["ep"] == "dtls-oops")
    assert client.counters["errors"] == 1
    assert "unexpected KeyError in the registration task" in caplog.text
    logged = caplog.text + "".join(repr(r.args) + repr(r.__dict__.get("fields")) for r in caplog.records)
    logged += repr(client.info()) + repr(client.transport) + repr(client.server)
    for secret in (KEY, IDENTITY):
        assert secret.decode() not in logged and secret.hex() not in logged and repr(secret) not in logged
