"""CoAP over TCP and TLS (RFC 8323) for LwM2M servers that use it: URI schemes, keep-alive Ping/Pong.

Over UDP the client sends an Update every ``keepalive`` seconds so the NAT binding the server reaches it
through never idles out. A TCP connection carries the server's requests for as long as it is open, so
instead the client checks the connection with a Ping (7.02) signal, which the peer answers with a
Pong (7.03; RFC 8323 §5.4); an unanswered Ping means the connection is gone and the client
connects and Updates again. aiocoap (``tcpclient``/``tlsclient``) frames the messages, exchanges the
CSM and answers the peer's Pings; sending a Ping and hearing its Pong is done here, on the connection
object aiocoap hands back as a response's ``remote``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import Any

import aiocoap
from aiocoap.credentials import TLSCert
from aiocoap.numbers.codes import PING, PONG

#: URI scheme → aiocoap client transport
TRANSPORTS = {"coap": "udp6", "coaps": "tinydtls", "coap+tcp": "tcpclient", "coaps+tcp": "tlsclient"}
RELIABLE_SCHEMES = frozenset({"coap+tcp", "coaps+tcp"})


def is_reliable(uri: str) -> bool:
    """True for a ``coap+tcp://`` or ``coaps+tcp://`` URI."""
    return uri.partition("://")[0].lower() in RELIABLE_SCHEMES


class ServerCertificate(TLSCert):
    """Trust for a ``coaps+tcp://`` server: its certificate (or its CA's), PEM or DER, from the
    Security object's Server Public Key resource; aiocoap's TLSCert only takes a file name."""

    def __init__(self, certificate: bytes) -> None:
        super().__init__("")
        self.certificate = bytes(certificate)

    def as_ssl_params(self) -> dict[str, Any]:
        data: str | bytes = self.certificate
        if self.certificate.lstrip().startswith(b"-----BEGIN"):
            data = self.certificate.decode("ascii", "replace")
        return {"cadata": data}


def check_certificate(certificate: bytes) -> None:
    """ValueError unless ``certificate`` loads as a trust anchor (PEM or DER)."""
    ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, **ServerCertificate(certificate).as_ssl_params())
    if not ctx.get_ca_certs():
        raise ValueError("no certificate in the server certificate data")


class PingFailed(Exception):
    """No Pong came back in time: the connection is gone."""


async def ping(connection: Any, timeout: float) -> float:
    """Send a Ping on an RFC 8323 connection and wait for its Pong; returns the round trip in seconds."""
    send = getattr(connection, "_send_message", None)
    if send is None or closed(connection):
        raise PingFailed("the TCP connection is closed")
    loop = asyncio.get_running_loop()
    token = os.urandom(4)
    pong: asyncio.Future[None] = loop.create_future()
    original = connection._process_signaling

    def process_signaling(msg: aiocoap.Message) -> Any:
        # libcoap 4.3.1 answers every Ping with an empty-token Pong (and Custody); aiocoap echoes the token
        if msg.code == PONG and msg.token in (token, b"") and not pong.done():
            pong.set_result(None)
        return original(msg)

    connection._process_signaling = process_signaling
    started = loop.time()
    try:
        msg = aiocoap.Message(code=PING)
        msg.token = token
        send(msg)
        await asyncio.wait_for(pong, timeout)
    except TimeoutError:
        raise PingFailed(f"no Pong in {timeout:g} s") from None
    except (OSError, AssertionError, AttributeError) as exc:  # the transport went away under us
        raise PingFailed(f"cannot ping: {type(exc).__name__}") from None
    finally:
        # the instance attribute shadowed the class's method; dropping it restores that
        connection.__dict__.pop("_process_signaling", None)
    return loop.time() - started


def closed(connection: Any) -> bool:
    """True once an RFC 8323 connection's socket is closed or closing."""
    transport = getattr(connection, "_transport", None)
    return transport is None or transport.is_closing()


def on_close(connection: Any, callback: Any) -> None:
    """Call ``callback()`` once when ``connection`` is lost (the server closed it, Release/Abort, a reset):
    the server cannot reach the client until it connects again, so it should not wait for the next Ping."""
    original = connection.connection_lost
    if getattr(original, "_gatewayd_on_close", False):
        return

    def connection_lost(exc: BaseException | None) -> None:
        try:
            return original(exc)
        finally:
            callback()

    connection_lost._gatewayd_on_close = True  # type: ignore[attr-defined]
    connection.connection_lost = connection_lost
