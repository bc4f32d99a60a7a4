"""The NCP's own border agent, reachable from the LAN: a host UDP port relayed through Spinel's UDP forwarding.

OpenThread's border agent (the DTLS server an external commissioner petitions through) runs inside an
OpenThread NCP since 2024, on a port of the NCP's own IPv6 stack (``BORDER_AGENT_MESHCOP_SERVICE_STATE``
says which). Nothing on the LAN can address that stack: the host owns the mesh addresses (wpan0), so a
datagram to them ends in the host's kernel. ``SPINEL_PROP_THREAD_UDP_FORWARD_STREAM`` (``dS6S``: payload,
remote port, remote address, the NCP socket's port) bridges it, as otbr-agent's NCP mode does: what this
relay receives on its host port goes to the NCP's socket as if from the LAN peer itself, and what that
socket sends to a peer off the mesh comes back pushed, to be sent on from the same host port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from dataclasses import asdict, dataclass
from typing import Any

from ncp.client import NcpClient, NcpError, PropertyChanged
from ncp.spinel import Prop

log = logging.getLogger("gatewayd.border_agent")

CAP_THREAD_UDP_FORWARD = 1026  # SPINEL_CAP_THREAD_UDP_FORWARD
MAX_IN_FLIGHT = 32  # datagrams on their way to the NCP; more are dropped (and counted), as a full socket would


@dataclass
class RelayCounters:
    to_ncp: int = 0
    from_ncp: int = 0
    dropped: int = 0  # the NCP refused a datagram, or too many were in flight


class AgentRelay(asyncio.DatagramProtocol):
    """One host UDP socket (IPv6 and IPv4) on the LAN interface ↔ the NCP border agent's port, through
    ``client``. Bound to that interface only: the agent answers PSKc handshakes, which belong on the LAN,
    not on an uplink to the Internet."""

    def __init__(self, client: NcpClient, ncp_port: int, interface: str, scope_index: int):
        self.client = client
        self.ncp_port = ncp_port
        self.interface = interface
        self.scope_index = scope_index  # for link-local peers on the LAN interface
        self.port = 0
        self.counters = RelayCounters()
        self._transport: asyncio.DatagramTransport | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def open(self) -> int:
        """Listen on the NCP's port number when the host has it free, else on any; the port listened on."""
        for port in (self.ncp_port, 0):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
                sock.bind(("::", port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE and port:
                    continue
                raise
            break
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)
        self._transport = transport  # type: ignore[assignment]
        self.port = sock.getsockname()[1]
        self.client.add_event_handler(self.on_event)
        log.info("the NCP's border agent (port %d) is reachable on %s at UDP port %d", self.ncp_port,
                 self.interface, self.port)
        return self.port

    async def close(self) -> None:
        self.client.remove_event_handler(self.on_event)
        for task in list(self._in_flight):
            task.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # ---- LAN → NCP -------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self.counters.dropped += 1
            return
        peer = ipaddress.IPv6Address(str(addr[0]).split("%")[0])
        task = asyncio.create_task(self._to_ncp(data, peer, int(addr[1])))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _to_ncp(self, data: bytes, peer: ipaddress.IPv6Address, port: int) -> None:
        try:
            await self.client.set(Prop.THREAD_UDP_FORWARD_STREAM, (data, port, peer, self.ncp_port))
        except (NcpError, TimeoutError) as exc:
            self.counters.dropped += 1
            log.debug("datagram from [%s]:%d not handed to the NCP: %s", peer, port, exc)
            return
        self.counters.to_ncp += 1

    # ---- NCP → LAN -------------------------------------------------------------------------------
    def on_event(self, event: object) -> None:
        if not (isinstance(event, PropertyChanged) and event.prop == Prop.THREAD_UDP_FORWARD_STREAM):
            return
        value = event.value
        if not (isinstance(value, tuple) and len(value) == 4) or value[3] != self.ncp_port or self._transport is None:
            return
        payload, port, peer, _ = value
        scope = self.scope_index if peer.is_link_local else 0
        with contextlib.suppress(OSError):  # an unreachable peer: DTLS retransmits
            self._transport.sendto(bytes(payload), (str(peer), port, 0, scope))
            self.counters.from_ncp += 1

    def error_received(self, exc: Exception) -> None:
        log.debug("border agent relay: %s", exc)

    def status(self) -> dict[str, Any]:
        return {"port": self.port, "ncp_port": self.ncp_port, **asdict(self.counters)}
