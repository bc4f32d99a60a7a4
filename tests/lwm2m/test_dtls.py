"""DTLS-PSK: handshake and Register against libcoap's coap-server-openssl; PSKs never reach the logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess

import pytest

from gatewayd.lwm2m.bootstrap import lwm2m_server
from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.transport import Security

from .servers import device_store, free_udp_port

SERVER = shutil.which("coap-server-openssl")
pytestmark = [
    pytest.mark.skipif(SERVER is None, reason="coap-server-openssl (libcoap3-bin) is not installed"),
    pytest.mark.timeout(60),
]
KEY = b"sekrit-psk-4f2a"
IDENTITY = b"gw-identity-77"


@pytest.fixture
def coap_server():
    port = free_udp_port()
    proc = subprocess.Popen([SERVER, "-A", "127.0.0.1", "-p", str(port), "-k", KEY.decode(), "-v", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port + 1  # coaps listens one above the plain port
    finally:
        proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(5)


async def wait_for(predicate, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_handshake_and_register_over_dtls_psk(coap_server: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await asyncio.sleep(0.3)  # let the server bind
    store = device_store(f"coaps://127.0.0.1:{coap_server}", identity=IDENTITY, key=KEY)
    client = LwM2MClient("dtls-ep", store, ClientSettings(backoff_initial=30, request_timeout=5))
    await client.start()
    try:
        # a plain CoAP server, not a LwM2M one: it answers Register 4.04, which proves the DTLS session carried it
        await wait_for(lambda: "rejected" in client.last_error)
        assert "Register rejected with 4.04" in client.last_error
        assert client.state == RegistrationState.FAILED
        assert type(client.transport.session).__name__ == "DTLSClientConnection"
    finally:
        await client.stop()
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in (KEY, IDENTITY):
        assert secret.decode() not in logged and secret.hex() not in logged
    account = lwm2m_server(store)
    assert KEY.decode() not in repr(account) and KEY.decode() not in repr(Security(IDENTITY, KEY))


async def test_wrong_psk_gets_no_answer(coap_server: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await asyncio.sleep(0.3)
    wrong = b"not-the-key"
    store = device_store(f"coaps://127.0.0.1:{coap_server}", identity=IDENTITY, key=wrong)
    client = LwM2MClient("dtls-bad", store, ClientSettings(backoff_initial=30, request_timeout=2))
    await client.start()
    try:
        await wait_for(lambda: client.state == RegistrationState.FAILED)
        assert "no answer" in client.last_error
    finally:
        await client.stop()
    assert wrong.decode() not in caplog.text
