"""DTLS (certificates or raw public keys) in front of a plain-UDP test LwM2M server, for end-to-end tests.

No LwM2M server on this machine speaks DTLS with certificates or raw public keys (Wakaama's lwm2mserver
here has no DTLS at all), so this puts a GnuTLS server session (gatewayd.lwm2m.dtls_pki.ClientSession in
its server role) per client in front of aioserver.LwM2MTestServer: each client gets a loopback socket of
its own towards the LwM2M server, which therefore sees, and sends its requests to, one address per client.
The handshakes themselves are checked against libcoap's servers in test_dtls_pki.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gatewayd.lwm2m.dtls_pki import ClientSession, HandshakeError, PkiSecurity


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)


class _Peer:
    def __init__(self, front: DtlsFront, addr: Any) -> None:
        self.front, self.addr = front, addr
        self.session = ClientSession(front.security, lambda d: front.outer.sendto(d, addr), server=True)
        self.inner: asyncio.DatagramTransport | None = None

    def datagram(self, data: bytes) -> None:
        self.session.feed(data)
        if not self.session.established:
            try:
                self.session.handshake()
            except HandshakeError as exc:
                self.front.failures.append(str(exc))
                self.front.peers.pop(self.addr, None)
                return
            if self.session.established:
                self.front.clients.append(self.session.peer_certificates()[0])
            return
        for plaintext in self.session.receive():
            if self.inner is not None:
                self.inner.sendto(plaintext)

    def reply(self, data: bytes, _addr: Any) -> None:
        if self.session.established:
            self.session.send(data)


class DtlsFront:
    """Listens on 127.0.0.1:``port`` for DTLS and relays each client's CoAP to ``backend`` (host, port)."""

    def __init__(self, port: int, security: PkiSecurity, backend: tuple[str, int]) -> None:
        self.port, self.security, self.backend = port, security, backend
        self.peers: dict[Any, _Peer] = {}
        self.failures: list[str] = []
        #: what each client authenticated with, in handshake order: its certificate (DER) or raw public key
        self.clients: list[bytes] = []
        self.outer: Any = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.outer, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._datagram),
                                                            local_addr=("127.0.0.1", self.port))

    def _datagram(self, data: bytes, addr: Any) -> None:
        peer = self.peers.get(addr)
        if peer is None:
            peer = self.peers[addr] = _Peer(self, addr)
            asyncio.get_running_loop().create_task(self._connect(peer))
        peer.datagram(data)

    async def _connect(self, peer: _Peer) -> None:
        loop = asyncio.get_running_loop()
        peer.inner, _ = await loop.create_datagram_endpoint(lambda: _Udp(peer.reply), remote_addr=self.backend)

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.session.close()
            if peer.inner is not None:
                peer.inner.close()
        self.peers.clear()
        if self.outer is not None:
            self.outer.close()
