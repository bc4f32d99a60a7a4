"""Border agent discovery: the ``_meshcop._udp`` service on the LAN, over mDNS, as otbr-agent publishes it.

Commissioner apps and Home Assistant find Thread border routers by browsing ``_meshcop._udp`` and read
the network from its TXT record (ncp.border_agent): network name, extended PAN ID, the border router's
extended address, its border agent id (the REST API's ``ba-id``), role and state. The record follows
the network: it is re-announced when the role, the active dataset, the partition or the NCP's own
border agent changes, and withdrawn with goodbye packets (TTL 0) when the component stops.

The port: an OpenThread NCP since 2024 runs a border agent of its own and says so in
``BORDER_AGENT_MESHCOP_SERVICE_STATE`` (its UDP port and TXT data), on the NCP's Thread-side stack. When the
NCP also forwards UDP to the host, :mod:`gatewayd.border.agent_relay` makes that port reachable from the LAN
and the record points at the relay, with the connection mode the NCP's agent offers (PSKc). Otherwise,
as otbr-agent does while its border agent is not running, the record carries port 49152 and a state
bitmap whose connection mode is "disabled": commissioners see the network but do not try a DTLS session
that cannot succeed.

python-zeroconf answers the queries (no responder of our own); it is imported only when this component
starts, so a daemon with ``[border] meshcop_mdns = false`` does not carry it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.aio import cancel_all
from common.netlink import IFADDRMSG, NETLINK_ROUTE, RTM_DELADDR, RTM_NEWADDR, NetlinkDecodeError, decode
from gatewayd.border.agent_relay import CAP_THREAD_UDP_FORWARD, AgentRelay
from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import Request
from gatewayd.thread.state import ThreadState
from ncp.border_agent import (
    DUMMY_PORT,
    SERVICE_TYPE,
    BorderAgentState,
    ConnMode,
    MeshCoPService,
    StateBitmap,
    TxtError,
    encode_txt,
)
from ncp.client import Connected, NcpClient, NcpError, NcpStatusError, PropertyChanged, Reset
from ncp.spinel import NetRole, Prop

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from gatewayd.ncp.component import NcpComponent
    from gatewayd.thread.view import ThreadView

log = logging.getLogger("gatewayd.border_agent")

# OpenThread 28f30b3ce (2023), and NCPs that do not say, speak Thread 1.3; since 2024 the NCP tells its own.
DEFAULT_THREAD_VERSION = "1.3.0"
ATTACHED = (NetRole.CHILD, NetRole.ROUTER, NetRole.LEADER)
RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x10, 0x100  # linux/rtnetlink.h multicast groups
# NCP pushes after which the record may read differently.
_FOLLOWED = frozenset({Prop.NET_PARTITION_ID, Prop.MAC_15_4_LADDR, Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE})


@dataclass(frozen=True)
class Facts:
    """What the record is made of, gathered from the Thread view, the NCP and the configuration."""

    agent_id: bytes
    ext_address: bytes
    role: int | None
    network_name: str | None = None
    extended_pan_id: bytes | None = None
    active_timestamp: Any = None  # ncp.meshcop.Timestamp
    partition_id: int | None = None
    omr_prefix: ipaddress.IPv6Network | None = None
    ncp_agent: BorderAgentState | None = None  # the NCP's own border agent, when it reports one
    relay_port: int | None = None  # the host port relayed to the NCP's border agent, when there is one
    vendor_name: str = ""
    model_name: str = ""


def compose(facts: Facts) -> tuple[MeshCoPService, int]:
    """The TXT values and the SRV port, as otbr-agent makes them: the relayed port and the connection mode
    the NCP's border agent offers, or port 49152 with connections disabled when nothing is relayed."""
    attached = facts.role in ATTACHED
    ncp = facts.ncp_agent.service if facts.ncp_agent is not None else None
    conn_mode = ConnMode.DISABLED
    if facts.relay_port:
        conn_mode = ncp.state.conn_mode if ncp is not None and ncp.state is not None else ConnMode.PSKC
    service = MeshCoPService(
        agent_id=facts.agent_id,
        thread_version=(ncp.thread_version if ncp is not None and ncp.thread_version else DEFAULT_THREAD_VERSION),
        state=StateBitmap.for_role(facts.role, conn_mode),
        network_name=facts.network_name,
        extended_pan_id=facts.extended_pan_id,
        ext_address=facts.ext_address,
        active_timestamp=facts.active_timestamp if attached else None,
        partition_id=facts.partition_id if attached else None,
        omr_prefix=facts.omr_prefix if attached else None,
        vendor_name=facts.vendor_name or None,
        model_name=facts.model_name or None,
    )
    return service, facts.relay_port or DUMMY_PORT


def instance_name(vendor: str, model: str, ext_address: bytes) -> str:
    """otbr-agent's "OpenThread BorderRouter #C3A2": the last two bytes of the extended address tell two
    border routers of one make apart."""
    base = " ".join(p for p in (vendor, model) if p) or "gatewayd"
    return f"{base} #{ext_address[-2:].hex().upper()}"


def host_label(ext_address: bytes) -> str:
    """The mDNS host name the service points at: the machine's name made unique per border router, so it
    never competes with the host's own ``<hostname>.local`` that Avahi may be answering for."""
    name = socket.gethostname().split(".")[0] or "gatewayd"
    return f"{name}-thread-{ext_address[-2:].hex()}"


def interface_addresses(name: str) -> list[str]:
    """The LAN interface's addresses for the host's A/AAAA records: IPv4 and routable IPv6, or the IPv6
    link-local ones when it has no other."""
    import ifaddr  # python-zeroconf's dependency

    ips = [ip.ip for adapter in ifaddr.get_adapters() if adapter.name == name for ip in adapter.ips]
    v4 = [ip for ip in ips if isinstance(ip, str)]
    v6 = [ipaddress.IPv6Address(ip[0].split("%")[0]) for ip in ips if isinstance(ip, tuple)]
    routable = [str(a) for a in v6 if not a.is_link_local]
    return v4 + (routable or [str(a) for a in v6])


class BorderAgent(Component):
    name = "border_agent"

    def __init__(self, config: Config, thread: ThreadView | None, ncp: NcpComponent | None):
        super().__init__(config)
        self.thread = thread
        self.ncp = ncp
        self.agent_id = b""
        self.service: MeshCoPService | None = None
        self.port = DUMMY_PORT
        self.updates = 0
        self.ncp_agent: BorderAgentState | None = None  # the NCP's own border agent, as it last said
        self.relay: AgentRelay | None = None
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._client: NcpClient | None = None
        self._ncp_agent_supported: bool | None = None
        self._unsubscribe: Any = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._published: tuple[object, ...] = ()
        self._requested: tuple[str, str] | None = None  # the service and host names asked for
        self._netlink: socket.socket | None = None  # the kernel's address changes, for the A/AAAA records
        self._index = 0

    async def start(self) -> None:
        client = self.ncp.client if self.ncp is not None else None
        if client is None or not self.ncp.running:  # type: ignore[union-attr]
            raise NcpError("the NCP is not connected yet")
        infra = self.config.border.infra_interface
        try:
            index = socket.if_nametoindex(infra)
        except OSError:
            raise RuntimeError(f"no interface {infra} ([border] infra_interface) to publish _meshcop._udp on") \
                from None
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        self.agent_id = ThreadState(self.config.daemon.state_dir).border_agent_id()
        v4 = [a for a in interface_addresses(infra) if ":" not in a]
        self._zc = AsyncZeroconf(interfaces=[*v4, index], ip_version=IPVersion.All)
        self._watch_addresses(index)
        self._client = client
        client.add_event_handler(self._on_event)
        if self.thread is not None:
            self._unsubscribe = self.thread.on_change(self.schedule)
        self.schedule()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._client is not None:
            self._client.remove_event_handler(self._on_event)
            self._client = None
        if self._netlink is not None:
            asyncio.get_running_loop().remove_reader(self._netlink.fileno())
            self._netlink.close()
            self._netlink = None
        await cancel_all(self._task)
        self._task = None
        if self.relay is not None:
            await self.relay.close()
            self.relay = None
        zc, self._zc = self._zc, None
        if zc is not None:
            if self._info is not None:
                try:
                    await asyncio.wait_for(await zc.async_unregister_service(self._info), 3)  # goodbye, TTL 0
                    log.info("_meshcop._udp withdrawn: %s", self._info.name)
                except (TimeoutError, OSError) as exc:
                    log.warning("could not say goodbye for _meshcop._udp: %s", exc)
            await zc.async_close()
        self._info = None
        self.service = None
        self._published = ()
        self._requested = None

    # ---- following the network ---------------------------------------------------------------
    def _watch_addresses(self, index: int) -> None:
        """The LAN interface's addresses come and go (DHCP, SLAAC): hear the kernel say so, rather than poll."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                             NETLINK_ROUTE)
        sock.bind((0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        self._netlink, self._index = sock, index
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_netlink)

    def _on_netlink(self) -> None:
        assert self._netlink is not None
        try:
            data = self._netlink.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # ENOBUFS: changes were lost, so look again
            self.schedule()
            return
        try:
            messages = decode(data)
        except NetlinkDecodeError:
            return
        if any(m.type in (RTM_NEWADDR, RTM_DELADDR) and len(m.payload) >= IFADDRMSG.size
               and IFADDRMSG.unpack_from(m.payload)[4] == self._index for m in messages):
            self.schedule()

    def _on_event(self, event: object) -> None:
        if isinstance(event, Connected | Reset) or (isinstance(event, PropertyChanged) and event.prop in _FOLLOWED):
            self.schedule()

    def schedule(self) -> None:
        """Something the record shows may have changed: read everything again once the current pass ends."""
        self._dirty = True
        if self._zc is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._follow(), name="border-agent")

    async def _follow(self) -> None:
        while self._dirty and self._zc is not None:
            self._dirty = False
            try:
                await self._publish(await self._facts())
            except (NcpError, TimeoutError) as exc:  # an NCP resetting: its recovery is a change that follows
                log.info("_meshcop._udp not updated (%s); retried on the next network change", exc)
            except (OSError, TxtError) as exc:
                log.warning("_meshcop._udp not updated (%s); retried on the next network change", exc)
            except Exception:
                log.exception("_meshcop._udp not updated; retried on the next network change")

    async def _facts(self) -> Facts:
        client = self._client
        assert client is not None
        thread = self.thread
        role = thread.role if thread is not None else None
        dataset = thread.dataset_summary if thread is not None else None
        ext_address = bytes(await client.get(Prop.MAC_15_4_LADDR))
        partition_id = await client.get(Prop.NET_PARTITION_ID) if role in ATTACHED else None
        border = self.config.border
        ncp_agent = await self._ncp_agent(client)
        return Facts(
            agent_id=self.agent_id, ext_address=ext_address, role=role,
            network_name=dataset.network_name if dataset else None,
            extended_pan_id=dataset.extended_pan_id if dataset else None,
            active_timestamp=dataset.active_timestamp if dataset else None,
            partition_id=partition_id if isinstance(partition_id, int) else None,
            omr_prefix=thread.omr_prefix if thread is not None else None,
            ncp_agent=ncp_agent, relay_port=await self._follow_relay(client, ncp_agent),
            vendor_name=border.vendor_name, model_name=border.model_name)

    async def _follow_relay(self, client: NcpClient, agent: BorderAgentState | None) -> int | None:
        """A relay to the NCP's border agent while it runs and the NCP forwards UDP; its host port."""
        caps = client.info.get("caps") or ()
        want = agent.port if agent is not None and agent.running and CAP_THREAD_UDP_FORWARD in caps else 0
        if self.relay is not None and self.relay.ncp_port != want:
            await self.relay.close()
            self.relay = None
        if want and self.relay is None:
            relay = AgentRelay(client, want, self.config.border.infra_interface, self._index)
            await relay.open()
            self.relay = relay
        return self.relay.port if self.relay is not None else None

    async def _ncp_agent(self, client: NcpClient) -> BorderAgentState | None:
        """The NCP's own border agent (OpenThread since 2024), None when its firmware has none."""
        if self._ncp_agent_supported is False:
            return None
        try:
            value = await client.get(Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE)
        except NcpStatusError as exc:
            if not exc.unsupported:
                raise
            self._ncp_agent_supported = False
            client.features["border_agent"] = "none"
            log.info("the NCP has no border agent (no BORDER_AGENT_MESHCOP_SERVICE_STATE): _meshcop._udp "
                     "tells Thread %s", DEFAULT_THREAD_VERSION)
            return None
        try:
            state = BorderAgentState.from_spinel(value)
        except TxtError as exc:
            client.degrade("border agent state", f"undecodable BORDER_AGENT_MESHCOP_SERVICE_STATE: {exc}")
            self._ncp_agent_supported = False
            return None
        self._ncp_agent_supported = True
        client.features["border_agent"] = "BORDER_AGENT_MESHCOP_SERVICE_STATE"
        self.ncp_agent = state
        return state

    async def _publish(self, facts: Facts) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        service, port = compose(facts)
        border = self.config.border
        name = f"{instance_name(border.vendor_name, border.model_name, facts.ext_address)}.{SERVICE_TYPE}"
        server = f"{host_label(facts.ext_address)}.local."
        addresses = interface_addresses(border.infra_interface)
        published = (service, port, tuple(addresses))
        zc, old = self._zc, self._info
        assert zc is not None
        if old is not None and self._requested == (name, server):
            if published == self._published:
                return
            # the name probing settled on (python-zeroconf renames on a conflict) stays
            info = AsyncServiceInfo(SERVICE_TYPE, old.name, port=port, properties=encode_txt(service.to_txt()),
                                    server=server, parsed_addresses=addresses)
            what = self.service.changed_keys(service) if self.service is not None else []
            self._info, self.service, self.port, self._published = info, service, port, published
            self.updates += 1
            await (await zc.async_update_service(info))
            log.info("_meshcop._udp updated (%s)", ", ".join(what) or "addresses",
                     extra={"fields": {"MESHCOP_SERVICE": info.name}})
        else:
            info = AsyncServiceInfo(SERVICE_TYPE, name, port=port, properties=encode_txt(service.to_txt()),
                                    server=server, parsed_addresses=addresses)
            if old is not None:
                self._info = None
                await (await zc.async_unregister_service(old))
            announced = await zc.async_register_service(info, allow_name_change=True)  # after probing
            self._info, self.service, self.port, self._published = info, service, port, published
            self._requested = (name, server)
            log.info("_meshcop._udp published on %s: %s port %d", border.infra_interface, info.name, port,
                     extra={"fields": {"MESHCOP_SERVICE": info.name}})
            await announced
        self.changed()

    # ---- gatewayctl ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"service": self._info.name if self._info is not None else None, "port": self.port,
                "updates": self.updates}

    def commands(self) -> list[Command]:
        return [Command("ba", self._cmd_ba, "the border agent's _meshcop._udp record on the LAN: id, name, "
                                            "port and TXT values")]

    async def _cmd_ba(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        out: dict[str, Any] = {"id": self.agent_id.hex(), "service": None, "interface":
                               self.config.border.infra_interface}
        if self._info is None or self.service is None:
            return out
        out.update(service=self._info.name, host=self._info.server, port=self.port,
                   addresses=self._info.parsed_addresses(), txt=txt_values(self.service))
        if self.ncp_agent is not None:  # what the NCP would publish itself (OpenThread since 2024)
            out["ncp_agent"] = {"running": self.ncp_agent.running, "port": self.ncp_agent.port,
                                "txt": txt_values(self.ncp_agent.service)}
        if self.relay is not None:
            out["relay"] = self.relay.status()
        return out


def txt_values(service: MeshCoPService) -> dict[str, str]:
    """The TXT entries as text (binary values in hex), for gatewayctl and the tests."""
    out: dict[str, str] = {}
    for key, value in service.to_txt():
        if value is None:
            out[key] = ""
        elif key in ("rv", "tv", "nn", "dn", "vn", "mn"):
            out[key] = value.decode()
        else:
            out[key] = value.hex()
    return out
