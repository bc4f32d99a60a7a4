"""LwM2M over CoAP over TCP and TLS (RFC 8323): registration, the server's requests on the client's
connection, keep-alive by Ping/Pong instead of Updates, reconnecting when a Ping goes unanswered.

Peers: aiocoap's own TCP/TLS server transports as the LwM2M server (in-process), and libcoap's
coap-server-openssl (Debian libcoap3-bin) as a third-party RFC 8323 implementation for Ping/Pong and TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap import interfaces
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.bootstrap import factory_bootstrap
from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.codecs import ContentFormat, decode
from gatewayd.lwm2m.paths import LwM2MPath
from gatewayd.lwm2m.tcp import check_certificate, is_reliable
from gatewayd.lwm2m.transport import ClientTransport, TransportError

from .servers import REGISTRY, device_store, until, wait_state

pytestmark = pytest.mark.timeout(60)


def free_tcp_port() -> int:
    """A port free on loopback now, with the one above it free too (TLS listens there); free for UDP as
    well, since coap-server binds CoAP and DTLS on the same two numbers."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with contextlib.ExitStack() as held:
            try:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    for number in (port, port + 1):
                        held.enter_context(socket.socket(socket.AF_INET, kind)).bind(("127.0.0.1", number))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port pair")


class TcpLwM2MServer(interfaces.Resource):
    """A LwM2M server on aiocoap's tcpserver/tlsserver: records Register/Update, keeps each client's
    connection (a TCP client has no URI to be reached at) and sends requests down it."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.ctx: aiocoap.Context | None = None
        self.log: list[tuple[str, dict[str, str]]] = []
        self.remotes: dict[str, Any] = {}

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    async def render_to_pipe(self, pipe: Any) -> None:
        await self._render_to_pipe(pipe)

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        query = dict(q.partition("=")[::2] for q in request.opt.uri_query)
        if request.code == Code.POST and path == ("rd",):
            self.log.append(("register", query))
            self.remotes[query["ep"]] = request.remote
            msg = aiocoap.Message(code=Code.CREATED)
            msg.opt.location_path = ("rd", "1")
            return msg
        if request.code == Code.POST and path == ("rd", "1"):
            self.log.append(("update", query))
            self.remotes["ep-1"] = request.remote
            return aiocoap.Message(code=Code.CHANGED)
        if request.code == Code.DELETE and path == ("rd", "1"):
            self.log.append(("deregister", query))
            return aiocoap.Message(code=Code.DELETED)
        return aiocoap.Message(code=Code.NOT_FOUND)

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        self.ctx = await aiocoap.Context.create_server_context(
            self, bind=("127.0.0.1", self.port), transports=["tlsserver" if tls else "tcpserver"], _ssl_context=tls)

    async def stop(self) -> None:
        if self.ctx is not None:
            # aiocoap 0.4.17's TLS server fails to release a connection whose handshake it refused
            # (AttributeError from its repr); the listening socket is closed by then
            with contextlib.suppress(AttributeError):
                await self.ctx.shutdown()

    async def request(self, ep: str, code: Code, path: str, accept: int | None = None) -> aiocoap.Message:
        assert self.ctx is not None
        msg = aiocoap.Message(code=code)
        msg.remote = self.remotes[ep]
        msg.opt.uri_path = [p for p in path.split("/") if p]
        if accept is not None:
            msg.opt.accept = accept
        return await asyncio.wait_for(self.ctx.request(msg).response, 5)

    def events(self, kind: str) -> int:
        return sum(1 for k, _ in self.log if k == kind)



@pytest.fixture
async def tcp_server():
    srv = TcpLwM2MServer(free_tcp_port())
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


async def start_client(clients: list, uri: str, **settings: Any) -> LwM2MClient:
    store = device_store(None)
    factory_bootstrap(store, uri, lifetime=settings.pop("lifetime", 300),
                      server_certificate=settings.pop("server_certificate", b""))
    client = LwM2MClient("ep-1", store, ClientSettings(**settings))
    clients.append(client)
    await client.start()
    return client


def test_schemes():
    assert is_reliable("coap+tcp://h:5683") and is_reliable("COAPS+TCP://h") and not is_reliable("coap://h")
    with pytest.raises(ValueError, match="coap\\+tcp"):
        ClientTransport("coap+ws://h", None)


async def test_registers_over_tcp_and_answers_the_servers_requests_on_that_connection(tcp_server, clients):
    client = await start_client(clients, f"coap+tcp://127.0.0.1:{tcp_server.port}")
    await wait_state(client, RegistrationState.REGISTERED)
    assert tcp_server.log[0][1]["ep"] == "ep-1"
    resp = await tcp_server.request("ep-1", Code.GET, "/3/0/0")
    assert resp.code == Code.CONTENT and resp.payload == b"gatewayd tests"
    resp = await tcp_server.request("ep-1", Code.GET, "/3/0", accept=ContentFormat.SENML_JSON)
    assert dict(decode(ContentFormat.SENML_JSON, LwM2MPath(3, 0), resp.payload, REGISTRY))[LwM2MPath(3, 0, 1)] \
        == "model-1"


async def test_keepalive_is_pings_not_updates(tcp_server, clients):
    client = await start_client(clients, f"coap+tcp://127.0.0.1:{tcp_server.port}", keepalive=0.2)
    await wait_state(client, RegistrationState.REGISTERED)

    await until(lambda: client.counters["pings"] >= 3)
    assert tcp_server.events("update") == 0, "over TCP the connection is kept alive by Ping, not by Update"
    assert client.counters["ping_failures"] == 0


async def test_an_unanswered_ping_reconnects_and_updates(tcp_server, clients):
    client = await start_client(clients, f"coap+tcp://127.0.0.1:{tcp_server.port}", keepalive=0.3,
                                request_timeout=1.0, backoff_initial=0.1)
    await wait_state(client, RegistrationState.REGISTERED)
    first = tcp_server.remotes["ep-1"]
    # the server's side stops reading: Pings go unanswered though the connection stays up
    first._transport.pause_reading()
    await until(lambda: tcp_server.events("update") >= 1)
    assert client.counters["ping_failures"] >= 1
    assert tcp_server.remotes["ep-1"] is not first, "the Update came on a new connection"
    resp = await tcp_server.request("ep-1", Code.GET, "/3/0/0")
    assert resp.payload == b"gatewayd tests"


async def test_tls_checks_the_server_certificate(certificate, clients):
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    tls.set_alpn_protocols(["coap"])
    srv = TcpLwM2MServer(free_tcp_port())
    await srv.start(tls)
    try:
        uri = f"coaps+tcp://127.0.0.1:{srv.port + 1}"
        client = await start_client(clients, uri, server_certificate=cert.read_bytes())
        await wait_state(client, RegistrationState.REGISTERED)
        resp = await srv.request("ep-1", Code.GET, "/3/0/0")
        assert resp.payload == b"gatewayd tests"
        # a server whose certificate is not the one trusted gets no registration
        other = LwM2MClient("ep-2", device_store(None), ClientSettings(request_timeout=3))
        factory_bootstrap(other.store, uri)  # the system's trust store: no self-signed certificate in it
        clients.append(other)
        await other.start()

        await until(lambda: "certificate" in other.last_error)
        assert other.state == RegistrationState.FAILED
    finally:
        for c in clients:
            await c.stop()
        clients.clear()
        await srv.stop()


def test_server_certificate_must_load(certificate):
    check_certificate(certificate[0].read_bytes())
    with pytest.raises((ValueError, ssl.SSLError)):
        check_certificate(b"not a certificate")


# --- libcoap's coap-server-openssl as the RFC 8323 peer ------------------------------------------

LIBCOAP = shutil.which("coap-server-openssl")


@pytest.fixture
def libcoap_server(certificate):
    if LIBCOAP is None:
        pytest.skip("coap-server-openssl (Debian libcoap3-bin) is not installed")
    cert, key = certificate
    for _attempt in range(3):  # a port taken between our check and its bind makes it exit: pick another
        port = free_tcp_port()
        proc = subprocess.Popen([LIBCOAP, "-A", "127.0.0.1", "-p", str(port), "-c", str(cert), "-j", str(key),
                                 "-v", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port + 1)) == 0 or proc.poll() is not None:
                    break
            time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("coap-server-openssl exited at start three times")
    try:
        yield port, cert
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("tls", [False, True], ids=["coap+tcp", "coaps+tcp"])
async def test_libcoap_answers_our_ping(libcoap_server, tls):
    port, cert = libcoap_server
    uri = f"coaps+tcp://127.0.0.1:{port + 1}" if tls else f"coap+tcp://127.0.0.1:{port}"
    transport = ClientTransport(uri, None, timeout=5, server_certificate=cert.read_bytes() if tls else b"")
    try:
        with pytest.raises(TransportError):
            await transport.ping()  # nothing to ping before a request opened the connection
        resp = await transport.request(Code.GET, (".well-known", "core"), keep_session=True)
        assert resp.ok and b"</time>" in resp.payload
        rtt = await transport.ping()
        assert rtt >= 0
        # a Register to a CoAP server that is no LwM2M server is answered, over the same connection
        reg = await transport.request(Code.POST, ("rd",), ("ep=x",), b"</3/0>", ContentFormat.LINK_FORMAT)
        assert not reg.ok
    finally:
        await transport.close()


async def test_a_connection_the_server_closes_is_opened_again_at_once(tcp_server, clients):
    # no keep-alive Pings: only the loss itself can bring the client back before the lifetime ends
    client = await start_client(clients, f"coap+tcp://127.0.0.1:{tcp_server.port}", keepalive=0,
                                backoff_initial=0.1)
    await wait_state(client, RegistrationState.REGISTERED)
    first = tcp_server.remotes["ep-1"]
    first._transport.close()
    await until(lambda: tcp_server.events("update") >= 1)
    assert tcp_server.remotes["ep-1"] is not first and client.counters["connections_lost"] == 1
    resp = await tcp_server.request("ep-1", Code.GET, "/3/0/0")
    assert resp.payload == b"gatewayd tests"
    assert client.transport.local_port == tcp_server.remotes["ep-1"]._remote_hostinfo[1]
