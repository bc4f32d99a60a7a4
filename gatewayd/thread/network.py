"""The Thread network component: form or join, follow the role, run wpan0, publish
network data, and heal after NCP resets and link losses without a daemon restart."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from common.aio import cancel_all
from common.netlink import Rtnl
from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import CommandError, Request, ncp_refusal
from gatewayd.ncp.component import NcpComponent
from gatewayd.secrets import MASK
from gatewayd.thread.hold import HOLD_MAX_S, MplSequences, RecoveryHold
from gatewayd.thread.netdata import ROUTE_FLAG_NAT64, ExternalRoute, NetdataPublisher, OnMeshPrefix
from gatewayd.thread.routing import LanLearned, MeshData, Preference, RoutingManager, preference_of
from gatewayd.thread.state import ThreadState
from gatewayd.thread.view import DatasetSummary, Subscribers, Unsubscribe
from gatewayd.thread.wpan import WpanInterface
from ncp.client import (
    Connected,
    LinkLost,
    NcpClient,
    NcpError,
    NcpStatusError,
    NcpUndecodable,
    PropertyChanged,
    PropertyInserted,
    PropertyRemoved,
    Reset,
)
from ncp.meshcop import MAX_DELAY_TIMER_MS, Dataset, Timestamp
from ncp.netdata import NetworkDataError, parse_network_data
from ncp.spinel import NetRole, Prop, SpinelError
from ncp.spinel.dataset import dataset_from_props, dataset_to_props
from ncp.spinel.tables import AddressEntry, ChildEntry, OnMeshNet

log = logging.getLogger("gatewayd.thread")

ATTACHED = (NetRole.CHILD, NetRole.ROUTER, NetRole.LEADER)
MONITOR_INTERVAL = 5.0
RESET_WINDOW_DECAY = 15.0  # one unexpected reset forgiven every 15 s
RESET_ALLOWANCE = 4
ATTACH_TIMEOUT = 30.0
PENDING_GRACE = 1.0  # after a pending dataset's delay, before its active dataset is read back from the NCP
DEFAULT_CHANNEL_DELAY_MS = 300_000  # python-otbr-api's and OpenThread's advice: 5 minutes for sleepy nodes
REATTACH_GRACE = 1.0  # how long a restarted former leader may re-attach by itself before it is told to lead
RLOC16_CHILD_BITS = 0x1FF  # an RLOC16 whose child id is 0 is a router's
RLOC_IID_PREFIX = bytes.fromhex("000000fffe00")  # 0000:00ff:fe00:xxxx, an RLOC's or ALOC's interface identifier
NO_NEXT_HEADER = 59
MPL_FILLER_GROUP = ipaddress.IPv6Address("ff03::fc")  # realm-local all MPL forwarders


class ResetThrottle:
    """Runaway-reset guard: more than 4 unexpected resets in a window that decays by one
    every 15 s makes the next recovery wait (n-4)²/2 seconds."""

    def __init__(self, clock: Any = time.monotonic):
        self.clock = clock
        self.count = 0.0
        self.last = clock()

    def record(self) -> float:
        now = self.clock()
        self.count = max(0.0, self.count - (now - self.last) / RESET_WINDOW_DECAY) + 1
        self.last = now
        excess = self.count - RESET_ALLOWANCE
        return excess * excess / 2 if excess > 0 else 0.0


# Ways to hand an NCP the active dataset, newest first: OpenThread since 2024 takes the MeshCoP TLVs;
# older OpenThread (and Cascoda's Chili2 firmware lineage) only the dataset as Spinel properties.
DATASET_PROPS = (Prop.THREAD_ACTIVE_DATASET_TLVS, Prop.THREAD_ACTIVE_DATASET)
# The same two ways for the pending dataset (OpenThread 2023 has only THREAD_PENDING_DATASET).
PENDING_DATASET_PROPS = (Prop.THREAD_PENDING_DATASET_TLVS, Prop.THREAD_PENDING_DATASET)
_FEATURE = {DATASET_PROPS: "dataset", PENDING_DATASET_PROPS: "pending dataset"}
_TLVS = (Prop.THREAD_ACTIVE_DATASET_TLVS, Prop.THREAD_PENDING_DATASET_TLVS)


def _ways(client: NcpClient, props: tuple[Prop, Prop]) -> list[Prop]:
    """``props`` with the one this NCP is known to take first."""
    known = client.features.get(_FEATURE[props])
    return sorted(props, key=lambda p: p.name != known)


def _learnt(client: NcpClient, props: tuple[Prop, Prop], prop: Prop) -> None:
    feature = _FEATURE[props]
    if client.features.get(feature) != prop.name:
        client.features[feature] = prop.name
        what = "active dataset" if feature == "dataset" else feature
        log.info("NCP takes the %s as %s", what, prop.name, extra={"fields": {"NCP_DATASET_PROP": prop.name}})


async def write_dataset(client: NcpClient, dataset: Dataset | None, props: tuple[Prop, Prop] = DATASET_PROPS) -> None:
    """Give the NCP its active (or, with PENDING_DATASET_PROPS, pending) dataset the way its firmware takes it,
    and remember that way; None clears it (an empty dataset: OpenThread deletes the stored one)."""
    for prop in _ways(client, props):
        if prop in _TLVS:
            value: Any = dataset.to_tlvs() if dataset is not None else b""
        else:
            value = dataset_to_props(dataset) if dataset is not None else []
        try:
            await client.set(prop, value)
        except NcpStatusError as exc:
            if not exc.unsupported:
                raise
            log.info("NCP does not take %s (%s); trying the older way", prop.name, exc)
            continue
        _learnt(client, props, prop)
        return
    raise NcpError(f"the NCP takes the {_FEATURE[props]} neither as {props[0].name} nor as {props[1].name}: "
                   "flash an OpenThread NCP firmware (ot-ncp-ftd)")


async def set_active_dataset(client: NcpClient, dataset: Dataset) -> None:
    """Give the NCP its active dataset the way its firmware takes it, and remember that way."""
    await write_dataset(client, dataset, DATASET_PROPS)


async def read_dataset(client: NcpClient, props: tuple[Prop, Prop] = DATASET_PROPS) -> Dataset | None:
    """The NCP's active (or pending) dataset, secrets included; None when it holds none.

    An older NCP sends it as Spinel properties, without timestamp ticks and unknown TLVs."""
    for prop in _ways(client, props):
        try:
            value = await client.get(prop)
        except NcpStatusError as exc:
            if not exc.unsupported:
                raise
            continue
        _learnt(client, props, prop)
        try:
            if isinstance(value, bytes | bytearray) and prop not in _TLVS:
                raise SpinelError("not an array of properties")
            if not value:
                return None
            return Dataset.from_tlvs(bytes(value)) if prop in _TLVS else dataset_from_props(value)
        except ValueError as exc:  # MeshCoPError, SpinelError: neither shows the secret bytes
            raise NcpUndecodable(f"{prop.name}: {exc}") from None
    raise NcpError(f"the NCP serves the {_FEATURE[props]} neither as {props[0].name} nor as {props[1].name}")


async def optional(client: NcpClient, feature: str, request: Any) -> Any:
    """The result of ``request``, or None with ``feature`` marked degraded when this NCP cannot serve it.

    An NCP that lacks a property, or encodes it in a way this driver does not know, costs the one feature
    that needs it, never the component.
    """
    try:
        return await request
    except NcpUndecodable as exc:
        client.degrade(feature, str(exc))
    except NcpStatusError as exc:
        if not exc.unsupported:
            raise
        client.degrade(feature, str(exc))
    return None


# Pushed properties this component follows, with the feature each one feeds.
_FOLLOWED = {Prop.NET_ROLE: "role", Prop.IPV6_ADDRESS_TABLE: "wpan0 addresses",
             Prop.THREAD_ON_MESH_NETS: "on-mesh routes", Prop.THREAD_CHILD_TABLE: "child count"}


def role_name(role: int | None) -> str:
    try:
        return NetRole(role).name.lower() if role is not None else "unknown"
    except ValueError:
        return f"role {role}"


class ThreadUnavailable(CommandError):
    """The Thread network is not running, so it cannot be asked anything (the REST API answers 503)."""


class ThreadRefused(CommandError):
    """The network's state or the configuration refuses the change (the REST API answers 409)."""


NO_DATASET = "no active dataset: set one first (gatewayctl dataset set HEX, or PUT /node/dataset/active)"


class ThreadNetwork(Component):
    """The Thread component; also the :class:`gatewayd.thread.view.ThreadView` its dependents read."""

    name = "thread"

    def __init__(self, config: Config, ncp: NcpComponent):
        super().__init__(config)
        self.ncp = ncp
        self.state = ThreadState(config.daemon.state_dir)
        self.dataset: Dataset | None = None
        self.role: int | None = None
        self.local_omr_prefix: ipaddress.IPv6Network | None = None  # ours; omr_prefix is the mesh's favoured one
        self.routing = RoutingManager()  # what of ours and of the LAN's the mesh gets (several border routers)
        self.dns_address: ipaddress.IPv6Address | None = None  # DNS64 for the mesh, routed to the host
        self.on_mesh: set[ipaddress.IPv6Network] = set()
        self.child_table: dict[bytes, ChildEntry] = {}  # followed from the NCP's pushes
        self.hold = RecoveryHold()  # host → mesh unicast while a restarted NCP restores its children
        self._hold_timer: asyncio.TimerHandle | None = None
        self.mpl = MplSequences()  # MPL sequence numbers a restarted NCP must skip (see gatewayd.thread.hold)
        self.wpan: WpanInterface | None = None
        self.netdata: NetdataPublisher | None = None
        self.throttle = ResetThrottle()
        self.recoveries = 0
        self.last_recovery_s: float | None = None
        self._client: NcpClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._pending_watch: asyncio.Task[None] | None = None
        # a channel change in flight, set through this daemon: (new channel, time.monotonic() it is due)
        self._pending_due: tuple[int | None, float] | None = None
        self._led = False  # the NCP's last attached role was leader
        self._monitor: asyncio.Task[None] | None = None
        self._groups: set[ipaddress.IPv6Address] = set()
        self._upstream_default = False
        self._attached = asyncio.Event()
        self._subscribers = Subscribers()
        self._evaluation: asyncio.Future[None] | None = None
        self._evaluate_again = False
        self._publishing = asyncio.Lock()
        self._seen: tuple[object, ...] | None = None  # the view's state when subscribers last heard

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        client = self.ncp.client
        if client is None or not self.ncp.running:
            raise NcpError("the NCP is not connected yet")
        self._client = client
        self.dataset = self._load_or_create_dataset()
        self.local_omr_prefix = self._omr_prefix()
        self.dns_address = self._dns_address()
        self.routing.set_local(
            omr_prefix=self.local_omr_prefix,
            # OpenThread publishes its generated ULA prefix at low preference, so a configured (or another
            # router's infrastructure-derived) prefix wins over it.
            omr_preference=Preference.MEDIUM if self.config.border.omr_prefix is not None else Preference.LOW,
            nat64_prefix=(self.config.nat64.prefix if self.config.nat64.enabled
                          and self.config.nat64.infrastructure != "only" else None),
            dns_route=ipaddress.IPv6Network(f"{self.dns_address}/64", strict=False) if self.dns_address else None)
        self.netdata = NetdataPublisher(client)
        self.wpan = WpanInterface(self.config.thread.interface, self._to_mesh)
        await self.wpan.open()
        self.changed()
        client.on_packet = lambda packet: self.wpan.deliver(packet.data) if self.wpan else None
        client.add_event_handler(self._on_event)
        try:
            if self.dataset is None and self.config.thread.joiner_pskd:
                await self._join()
            await self._bring_up()
        except BaseException:
            await self.stop()
            raise
        if self.role not in ATTACHED and self._led:
            self._spawn(self._reattach_safely())
        self._monitor = asyncio.create_task(self._monitor_loop(), name="thread-monitor")

    async def stop(self) -> None:
        await cancel_all(self._monitor, self._recovery, self._evaluation, *self._tasks)
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        self.hold.release()
        self._monitor = self._recovery = self._pending_watch = None
        client = self._client
        if client is not None:
            client.remove_event_handler(self._on_event)
            client.on_packet = None
            if self.netdata is not None and self.ncp.running:
                try:
                    await asyncio.wait_for(self.netdata.withdraw(), 2)
                    log.info("network data withdrawn")
                except (NcpError, TimeoutError, OSError) as exc:
                    log.warning("could not withdraw network data: %s", exc)
        if self.wpan is not None:
            self.wpan.close()
            self.wpan = None
        self._client = None
        self.role = None
        self.changed()

    # ---- dataset -------------------------------------------------------------------------------
    def _load_or_create_dataset(self) -> Dataset | None:
        configured = self.config.thread.dataset.reveal()
        if configured:
            dataset = Dataset.from_tlvs(configured)
            if not dataset.is_complete:
                raise ValueError("thread.dataset is not a complete active dataset (ot-ctl dataset active -x)")
            log.info("joining network %s from the configured dataset", dataset.network_name)
            return dataset
        stored = self.state.load_dataset()
        if stored is not None:
            log.info("rejoining network %s (channel %s) from %s", stored.network_name, stored.channel,
                     self.state.dataset_path)
            return stored
        if self.config.thread.joiner_pskd:
            log.info("no dataset yet: joining a network with [thread] joiner_pskd instead of forming one")
            return None
        name = self.config.thread.network_name or None
        dataset = Dataset.generate(name=name, channel=self.config.thread.channel)
        self.state.save_dataset(dataset)
        log.info("formed new network %s on channel %d; dataset kept in %s", dataset.network_name,
                 dataset.channel, self.state.dataset_path)
        return dataset

    async def _join(self) -> None:
        """``[thread] joiner_pskd``: the NCP joins an existing network; its dataset is then kept like a formed one,
        so a restart rejoins without joining again (a failed join fails the component, which is retried)."""
        from gatewayd.thread.joiner import join

        secret = self.config.thread.joiner_pskd.reveal()
        pskd = secret.decode() if isinstance(secret, bytes) else str(secret)
        dataset = await join(self._require_client(), pskd, read_dataset)
        self.state.save_dataset(dataset)
        self.dataset = dataset
        self.changed()
        log.info("joined network %s (channel %s) as a joiner; dataset kept in %s", dataset.network_name,
                 dataset.channel, self.state.dataset_path)

    def _omr_prefix(self) -> ipaddress.IPv6Network:
        configured = self.config.border.omr_prefix
        if configured is not None:
            return configured
        ula = self.state.ula_prefix()
        return next(ula.subnets(new_prefix=64))

    def _dns_address(self) -> ipaddress.IPv6Address | None:
        """Where mesh devices reach the host's DNS64: an address no NCP owns (an NCP with a DNS-SD
        server answers port 53 on its own addresses itself), in a /64 published as an off-mesh route."""
        if not self.config.dns64.enabled:
            return None
        configured = self.config.dns64.mesh_address
        if configured:
            return ipaddress.IPv6Address(configured)
        ula = self.state.ula_prefix()
        return ipaddress.IPv6Address(int(ula.network_address) | 0x53 << 64 | 0x53)

    def _host_addresses(self) -> set[ipaddress.IPv6Interface]:
        """wpan0 addresses of the host's own besides the NCP's table."""
        return {ipaddress.IPv6Interface(f"{self.dns_address}/128")} if self.dns_address else set()

    # ---- bringing the NCP up -------------------------------------------------------------------
    async def _bring_up(self) -> None:
        client = self._require_client()
        if self.dataset is None:
            raise ThreadRefused(NO_DATASET)
        if not self.dataset_configured:
            await self._adopt_stored(client)
        await set_active_dataset(client, self.dataset)
        await client.set(Prop.NET_IF_UP, True)
        await client.set(Prop.NET_STACK_UP, True)
        self._set_role(await client.get(Prop.NET_ROLE))
        if self.role not in ATTACHED and not self._led:
            # A router RLOC16 while detached is one OpenThread restored from its settings: the NCP was a
            # router of this network before, and when we did not see it lead (the daemon restarted, not the
            # NCP alone) it leads again only after its attach cycle (gatewayd restarted on ot-ncp-ftd: 33.6 s).
            rloc16 = await optional(client, "restored role", client.get(Prop.THREAD_RLOC16))
            self._led = isinstance(rloc16, int) and (rloc16 & RLOC16_CHILD_BITS) == 0
        await self._sync_addresses()
        if self.role in ATTACHED:
            await self._publish()

    async def _adopt_stored(self, client: NcpClient) -> None:
        """A pending dataset the NCP took while this daemon was not running (or not listening) made a later
        active dataset of this network: keep it rather than hand the NCP the old one (its old channel) again."""
        assert self.dataset is not None
        try:
            stored = await read_dataset(client, DATASET_PROPS)
        except NcpError as exc:  # the NCP cannot say: hand it ours, as before
            log.debug("reading the NCP's active dataset: %s", exc)
            return
        if stored is not None and _successor(stored, self.dataset):
            log.info("the NCP holds a later active dataset of network %s (channel %s, was %s): taking it",
                     stored.network_name, stored.channel, self.dataset.channel)
            self.dataset = stored
            self.state.save_dataset(stored)
            self.changed()

    def _require_client(self) -> NcpClient:
        if self._client is None:
            raise NcpError("thread network is stopped")
        return self._client

    async def _publish(self) -> None:
        """Read the leader's network data, let the routing manager decide, and publish exactly that. One at a
        time: an older read finishing last would publish a stale decision over a newer one."""
        async with self._publishing:
            if self.netdata is None or self.local_omr_prefix is None:
                return
            self.routing.set_local(upstream_default=self._upstream_default)
            decision = self.routing.evaluate(await self._mesh_data())
            await self.netdata.publish(set(decision.prefixes), set(decision.routes))
        self.changed()

    async def _mesh_data(self) -> MeshData:
        """The leader's entries (the NCP lists its own local ones after them, is_local set) and our RLOC16."""
        client = self._require_client()
        nets = await optional(client, "network data prefixes", client.get(Prop.THREAD_ON_MESH_NETS)) or []
        routes = await optional(client, "network data routes", client.get(Prop.THREAD_OFF_MESH_ROUTES)) or []
        rloc16 = await optional(client, "RLOC16", client.get(Prop.THREAD_RLOC16))
        return MeshData(
            tuple(OnMeshPrefix(n.network, n.flags, n.stable, n.flags_ext or 0, n.rloc16 or 0)
                  for n in nets if not n.is_local),
            tuple(ExternalRoute(r.network, r.flags, r.stable, r.rloc16 or 0) for r in routes if not r.is_local),
            rloc16 if isinstance(rloc16, int) else None)

    def learned_from_lan(self, lan: LanLearned) -> None:
        """See :meth:`gatewayd.thread.view.ThreadView.learned_from_lan`."""
        if self.routing.learned_from_lan(lan) and self.role in ATTACHED:
            self._schedule_evaluation()

    def _schedule_evaluation(self) -> None:
        """Evaluate once for a burst of network-data pushes (the NCP sends prefixes and routes together), and
        once more for a push that lands while an evaluation is reading the NCP: that one may have read the
        network data before the change, and dropping the push would leave its decision stale."""
        self._evaluate_again = True
        if self._evaluation is None or self._evaluation.done():
            self._evaluation = asyncio.ensure_future(self._evaluate_soon())

    async def _evaluate_soon(self) -> None:
        while self._evaluate_again:
            await asyncio.sleep(0)
            self._evaluate_again = False
            await self._publish_safely()

    @property
    def omr_prefix(self) -> ipaddress.IPv6Network | None:
        """The mesh's favoured OMR prefix, once the routing manager has read the leader's network data: before
        that nothing is advertised on the LAN (ours may never be published: another router's may be favoured)."""
        decision = self.routing.decision
        return decision.omr_prefix if decision is not None else None

    @property
    def nat64_prefix(self) -> ipaddress.IPv6Network | None:
        """See :attr:`gatewayd.thread.view.ThreadView.nat64_prefix`."""
        decision = self.routing.decision
        return decision.nat64_prefix if decision is not None else None

    async def _sync_addresses(self) -> None:
        client = self._require_client()
        table = await optional(client, "wpan0 addresses", client.get(Prop.IPV6_ADDRESS_TABLE))
        if table is not None:
            await self._apply_address_table(table)
        nets = await optional(client, "on-mesh routes", client.get(Prop.THREAD_ON_MESH_NETS))
        if nets is not None:
            await self._apply_on_mesh(nets)

    async def _apply_address_table(self, table: list[AddressEntry]) -> None:
        if self.wpan is None:
            return
        wanted = {entry.interface for entry in table} | self._host_addresses()
        await self.wpan.sync_addresses(wanted)
        self.changed()

    async def _apply_on_mesh(self, nets: list[OnMeshNet]) -> None:
        if self.wpan is None:
            return
        self.on_mesh = {entry.network for entry in nets}
        covered = {a.network for a in self.wpan.addresses}
        await self.wpan.sync_routes(self.on_mesh - covered)
        self.changed()

    def _set_role(self, role: int) -> None:
        if role == self.role:
            return
        old, self.role = self.role, role
        log.info("Thread role %s", role_name(role), extra={"fields": {"THREAD_ROLE": role_name(role)}})
        if self.wpan is not None:
            self.wpan.set_attached(role in ATTACHED)
        if role in ATTACHED:
            self._led = role == NetRole.LEADER
            self._attached.set()
        else:
            self._attached.clear()
        if role in ATTACHED and old not in ATTACHED:
            self._spawn(self._publish_safely())
        self.changed()

    @property
    def children(self) -> int:
        return len(self.child_table)

    # ---- the ThreadView its dependents read ---------------------------------------------------
    @property
    def attached(self) -> bool:
        return self.role in ATTACHED

    @property
    def interface(self) -> str | None:
        return self.wpan.name if self.wpan is not None else None

    @property
    def interface_index(self) -> int | None:
        return self.wpan.index if self.wpan is not None else None

    @property
    def addresses(self) -> frozenset[ipaddress.IPv6Interface]:
        return frozenset(self.wpan.addresses) if self.wpan is not None else frozenset()

    @property
    def mesh_local_prefix(self) -> ipaddress.IPv6Network | None:
        return self.dataset.mesh_local_prefix if self.dataset is not None else None

    @property
    def dataset_summary(self) -> DatasetSummary | None:
        d = self.dataset
        if d is None:
            return None
        return DatasetSummary(d.network_name, d.channel, d.pan_id, d.mesh_local_prefix, d.extended_pan_id,
                              d.active_timestamp)

    def on_change(self, callback: Callable[[], None]) -> Unsubscribe:
        return self._subscribers.add(callback)

    def _view_state(self) -> tuple[object, ...]:
        return (self.role, self.interface, self.interface_index, self.addresses, self.omr_prefix,
                self.nat64_prefix, self.dns_address, self.dataset_summary)

    def changed(self) -> None:
        """The status line may have changed (the supervisor hears it); subscribers hear it only when
        something the view shows did (child table updates, for one, are not part of it)."""
        super().changed()
        state = self._view_state()
        if state != self._seen:
            self._seen = state
            self._subscribers.notify()

    # ---- events from the NCP ------------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, PropertyChanged):
            if isinstance(event.value, bytes):
                # undecodable (the client passes raw bytes): none of the properties below is bytes
                if event.prop in _FOLLOWED and self._client is not None:
                    self._client.degrade(f"{_FOLLOWED[event.prop]} updates", f"undecodable {event.value.hex()}")
                return
            if event.prop == Prop.NET_ROLE:
                self._set_role(event.value)
            elif event.prop == Prop.IPV6_ADDRESS_TABLE:
                self._spawn(self._apply_address_table(event.value))
            elif event.prop == Prop.THREAD_ON_MESH_NETS:
                self._spawn(self._apply_on_mesh(event.value))
                if self.role in ATTACHED:
                    self._schedule_evaluation()
            elif event.prop == Prop.THREAD_OFF_MESH_ROUTES:
                if self.role in ATTACHED:
                    self._schedule_evaluation()
            elif event.prop == Prop.THREAD_CHILD_TABLE:
                self.child_table = {child.ext_address: child for child in event.value}
                self._children_changed()
            elif event.prop == Prop.PHY_CHAN and self.dataset is not None and event.value != self.dataset.channel:
                self._spawn(self._adopt_active(f"the NCP moved to channel {event.value}"))
        elif isinstance(event, PropertyInserted | PropertyRemoved) and event.prop == Prop.THREAD_CHILD_TABLE:
            # The real NCP reports each child attaching or leaving on its own, the whole table only sometimes.
            if isinstance(event.value, ChildEntry):
                if isinstance(event, PropertyInserted):
                    self.child_table[event.value.ext_address] = event.value
                else:
                    self.child_table.pop(event.value.ext_address, None)
                self._children_changed()
        elif isinstance(event, Reset):
            self._schedule_recovery(f"NCP reset ({event.status})", unexpected=True)
        elif isinstance(event, LinkLost):
            log.warning("NCP link lost (%s); keeping %s down until it returns", event.reason,
                        self.config.thread.interface)
            if self.wpan is not None:
                self.wpan.set_attached(False)
            self.role = None
            self.changed()
        elif isinstance(event, Connected):
            self._schedule_recovery("NCP link restored", unexpected=False)

    def _children_changed(self) -> None:
        if self.hold.ready(self.child_table):
            self._release_held("the NCP lists its children again")
        self.changed()

    def _hold_for_children(self) -> None:
        """See :mod:`gatewayd.thread.hold`: no address query before the children are back."""
        if not self.child_table:
            return
        self.hold.start(self.child_table)
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        self._hold_timer = asyncio.get_running_loop().call_later(
            HOLD_MAX_S, self._release_held, f"{HOLD_MAX_S:.0f} s passed without every child back")

    def _release_held(self, why: str) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if not self.hold.active:
            return
        packets = self.hold.release()
        self._skip_mpl(len({p[24:40] for p in packets}))
        log.info("sending %d packets held back for the mesh: %s", len(packets), why)
        for packet in packets:
            self._to_mesh(packet)

    def _skip_mpl(self, upcoming: int) -> None:
        """Make the restarted NCP spend the MPL sequence numbers the mesh may still remember from its last lives.

        Each filler is a realm-local multicast with hop limit 0 and no payload: the NCP gives it an MPL
        sequence number and drops it before the radio. Its source is the NCP's mesh-local EID, so the NCP's
        MPL retransmissions of it are not looped back to the host either.
        """
        count = self.mpl.plan(upcoming)
        client = self._client
        if not count or client is None:
            return
        source = self._mesh_local_eid() or ipaddress.IPv6Address("::")
        filler = struct.pack("!IHBB16s16s", 6 << 28, 0, NO_NEXT_HEADER, 0, source.packed, MPL_FILLER_GROUP.packed)
        try:
            for _ in range(count):
                client.send_packet_nowait(filler)
        except (NcpError, OSError) as exc:
            log.debug("skipping MPL sequence numbers: %s", exc)
            return
        log.info("skipped %d MPL sequence numbers a recent NCP life may have used: the mesh drops a repeated one "
                 "as a duplicate", count)

    def _mesh_local_eid(self) -> ipaddress.IPv6Address | None:
        prefix = self.mesh_local_prefix
        if prefix is None or self.wpan is None:
            return None
        for iface in self.wpan.addresses:
            if iface.ip in prefix and iface.ip.packed[8:14] != RLOC_IID_PREFIX:
                return iface.ip
        return None

    def _schedule_recovery(self, reason: str, unexpected: bool) -> None:
        self.mpl.restarted()
        self._hold_for_children()
        self.child_table.clear()  # a restarted NCP lists each child again once it heard from it
        delay = self.throttle.record() if unexpected else 0.0
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()  # the NCP restarted again: what that recovery configured is gone
        self._recovery = asyncio.create_task(self._recover(reason, delay), name="thread-recovery")

    async def _recover(self, reason: str, delay: float) -> None:
        if delay:
            log.warning("NCP keeps resetting (%.0f unexpected resets recently); waiting %.1f s before "
                        "recovering; check its power supply and firmware", self.throttle.count, delay,
                        extra={"fields": {"NCP_STATE": "THROTTLED"}})
            await asyncio.sleep(delay)
        began = time.monotonic()
        log.info("recovering the Thread network after %s", reason)
        if self.netdata is not None:
            self.netdata.forget()
        self.role = None
        self._attached.clear()
        self.changed()
        if self.dataset is None:  # forgotten (factory reset) and none set since: nothing to bring up
            self._groups.clear()  # the NCP forgot the host's subscriptions; the monitor makes them again
            await self._keep_down(reason)
            return
        try:
            await self._bring_up()
            await self._reattach()
            if not self.hold.active:
                self._skip_mpl(0)  # no children held the host's packets back: skip before they go out
            await self._publish()
            self._groups.clear()  # the NCP forgot the host's subscriptions with the rest
            await self._sync_multicast()
        except (NcpError, OSError) as exc:  # TimeoutError is an OSError: only the NCP's own timeouts land here
            log.warning("recovery after %s failed: %s; waiting for the NCP", reason, exc)
            return
        self.recoveries += 1
        self.last_recovery_s = round(time.monotonic() - began, 3)
        log.info("Thread network restored in %.1f s (role %s, network data published)", self.last_recovery_s,
                 role_name(self.role), extra={"fields": {"THREAD_RECOVERY_S": str(self.last_recovery_s)}})

    async def _keep_down(self, reason: str) -> None:
        log.warning("no active dataset after %s (the network was forgotten): Thread stays off until one is set "
                    "(gatewayctl dataset set HEX, or PUT /node/dataset/active)", reason,
                    extra={"fields": {"THREAD_STATE": "NO_DATASET"}})
        client = self._client
        if client is None:
            return
        try:  # an NCP that keeps its settings may still hold the forgotten dataset: make sure it stays off
            await client.set(Prop.NET_STACK_UP, False)
            await client.set(Prop.NET_IF_UP, False)
            self._set_role(await client.get(Prop.NET_ROLE))
        except (NcpError, OSError) as exc:
            log.warning("could not keep Thread off on the restarted NCP: %s", exc)

    async def _reattach(self) -> None:
        """Wait until the restarted NCP is attached again.

        An NCP that led its partition and restarts runs OpenThread's whole attach cycle before it leads
        again (30-34.5 s, measured on ot-ncp-ftd 2023 and 2025) when no router is left to answer it. So
        after a short grace it is asked to lead at once; should another router exist after all, the two
        partitions merge as Thread specifies.
        """
        if self._led:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attached.wait(), REATTACH_GRACE)
            if not self._attached.is_set():
                log.info("the NCP led the network before it restarted; asking it to lead again")
                await self._require_client().set(Prop.NET_ROLE, NetRole.LEADER)
        try:
            await asyncio.wait_for(self._attached.wait(), ATTACH_TIMEOUT)
        except TimeoutError:
            log.warning("the NCP did not attach within %.0f s; still waiting (is the radio working?)",
                        ATTACH_TIMEOUT)
            await self._attached.wait()

    async def _reattach_safely(self) -> None:
        try:
            await self._reattach()
        except (NcpError, OSError) as exc:
            log.warning("asking the NCP to lead again failed: %s", exc)

    async def _publish_safely(self) -> None:
        try:
            await self._publish()
        except (NcpError, OSError) as exc:
            log.warning("publishing network data failed: %s; will retry", exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _to_mesh(self, packet: bytes) -> None:
        client = self._client
        if client is None or self.hold.offer(packet):
            return
        self.mpl.sent(packet)
        try:
            client.send_packet_nowait(packet)
        except (NcpError, OSError):
            if self.wpan is not None:
                self.wpan.counters.down_dropped += 1

    # ---- periodic work -------------------------------------------------------------------------
    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_INTERVAL)
            try:
                await self._monitor_once()
            except (NcpError, OSError) as exc:
                log.debug("monitor: %s", exc)

    async def _monitor_once(self) -> None:
        client = self._client
        if client is None or self.wpan is None or not self.ncp.running:
            return
        await self._sync_multicast()
        upstream = await self._has_upstream_default()
        if upstream != self._upstream_default:
            self._upstream_default = upstream
            log.info("upstream IPv6 default route %s", "found: publishing ::/0" if upstream else "gone")
            if self.role in ATTACHED:
                await self._publish()

    async def _sync_multicast(self) -> None:
        """Make the NCP's multicast subscriptions those of wpan0 (what the host's sockets joined)."""
        client = self._client
        if client is None or self.wpan is None:
            return
        groups = self.wpan.multicast_groups()
        for group in sorted(groups - self._groups):
            await client.insert(Prop.IPV6_MULTICAST_ADDRESS_TABLE, group)
            self._groups.add(group)
            log.info("subscribed the mesh to %s", group)
        for group in sorted(self._groups - groups):
            with contextlib.suppress(NcpError):
                await client.remove(Prop.IPV6_MULTICAST_ADDRESS_TABLE, group)
            self._groups.discard(group)

    async def _has_upstream_default(self) -> bool:
        assert self.wpan is not None
        with Rtnl() as rt:  # rtnetlink answers inside the send: see common/netlink.py
            return any(r.oif not in (self.wpan.index, None) for r in rt.default_routes(socket.AF_INET6))

    # ---- what gatewayctl and the REST API read and change ---------------------------------------
    def role_name(self) -> str:
        """The role as ``gatewayctl state`` shows it: "leader", "disabled"…, "unknown" when none is known."""
        return role_name(self.role)

    def active_dataset(self) -> Dataset | None:
        """The active dataset, secrets included (None after a factory reset until one is set)."""
        return self.dataset

    @property
    def dataset_configured(self) -> bool:
        """``[thread] dataset`` fixes the active dataset: it cannot be replaced or forgotten at run time."""
        return bool(self.config.thread.dataset.reveal())

    async def enable(self, on: bool, via: str = "gatewayctl") -> None:
        """Thread and the NCP's IPv6 interface up or down (otbr-agent's ``PUT /node/state``).

        The component follows the role the NCP then pushes. A restarted daemon or NCP brings Thread up
        again while there is an active dataset (otbr-agent's auto-attach does the same)."""
        client = self._connected_client()
        if on:
            if self.dataset is None:
                raise ThreadRefused(NO_DATASET)
            await client.set(Prop.NET_IF_UP, True)
            await client.set(Prop.NET_STACK_UP, True)
        else:
            await client.set(Prop.NET_STACK_UP, False)
            await client.set(Prop.NET_IF_UP, False)
        log.info("Thread %s through %s", "enabled" if on else "disabled", via)

    async def replace_active_dataset(self, dataset: Dataset, via: str = "gatewayctl") -> None:
        """A new active dataset for a stopped Thread stack (otbr-agent refuses it while Thread is enabled),
        given to the NCP and kept in state_dir so a restart rejoins it, like one gatewayd formed."""
        if self.dataset_configured:
            raise ThreadRefused("[thread] dataset in the configuration fixes the active dataset")
        if not dataset.is_complete:
            raise CommandError("the dataset is not a complete active dataset (what ot-ctl dataset active -x "
                               "prints)")
        client = self._connected_client()
        if await client.get(Prop.NET_STACK_UP):
            raise ThreadRefused("Thread is enabled: disable it first (gatewayctl thread disable, or PUT "
                                "/node/state \"disable\"), or change the network through a pending dataset")
        await set_active_dataset(client, dataset)
        self.state.save_dataset(dataset)
        self.dataset = dataset
        self.changed()
        log.info("active dataset set through %s: network %s, channel %s", via, dataset.network_name,
                 dataset.channel)

    async def forget_network(self, via: str = "gatewayctl") -> None:
        """Factory reset (otbr-agent's ``DELETE /node``): detach and forget the active dataset. Thread stays
        off, through NCP resets too, until a dataset is set; a daemon restarted before that forms a new
        network, as on first start."""
        if self.dataset_configured:
            raise ThreadRefused("[thread] dataset in the configuration fixes the active dataset")
        try:
            await self.enable(False, via)
        except NcpError as exc:
            raise ThreadRefused(f"cannot detach: {exc}") from None
        self.state.dataset_path.unlink(missing_ok=True)
        self.dataset = None
        self.changed()
        log.warning("factory reset through %s: the active dataset is forgotten and Thread is off", via)

    # ---- the pending dataset: channel changes --------------------------------------------------
    async def pending_dataset(self) -> Dataset | None:
        """The NCP's pending dataset, secrets included, None when there is none (what ``gatewayctl dataset
        pending`` and ``GET /node/dataset/pending`` show). The NCP keeps it, counting its delay down."""
        return await read_dataset(self._connected_client(), PENDING_DATASET_PROPS)

    async def set_pending_dataset(self, dataset: Dataset, via: str = "gatewayctl") -> Dataset:
        """Hand the NCP a pending dataset; after its delay timer the NCP and every node that heard of it take it
        as their active dataset (a channel change keeps the role, the children and the network data).

        The NCP stores it as OpenThread's ``otDatasetSetPendingTlvs`` does (what otbr-agent's ``PUT
        /node/dataset/pending`` calls), which checks none of what a leader checks of an MGMT_PENDING_SET: so
        it is checked here. Without a pending timestamp one newer than the last is added. Returns what was
        set; the daemon adopts the new active dataset when the NCP takes it."""
        active = self._changeable_dataset()
        if dataset.delay_timer is None:
            raise CommandError("a pending dataset needs a delay timer (ms until it becomes active)")
        if not 0 <= dataset.delay_timer <= MAX_DELAY_TIMER_MS:
            raise CommandError(f"delay {dataset.delay_timer} ms: 0 to {MAX_DELAY_TIMER_MS} ms (72 h)")
        future = dataset.as_active
        if not future.is_complete:
            raise CommandError("the pending dataset is not a complete dataset: it replaces the active one whole")
        _check_channel(future)
        if future.network_key == active.network_key and not _stamp(future) > _stamp(active):
            raise ThreadRefused(f"the pending dataset's active timestamp must be newer than the active dataset's "
                                f"({_stamp(active).seconds}), or the NCP never takes it")
        client = self._connected_client()
        current = await read_dataset(client, PENDING_DATASET_PROPS)
        if dataset.pending_timestamp is None:
            seconds = max(_stamp(future).seconds, _stamp(current, "pending_timestamp").seconds + 1 if current else 0)
            dataset = dataset.with_(pending_timestamp=Timestamp(seconds))
        elif current is not None and not dataset.pending_timestamp > _stamp(current, "pending_timestamp"):
            raise ThreadRefused("the pending timestamp must be newer than that of the pending dataset in place "
                                f"({_stamp(current, 'pending_timestamp').seconds})")
        await write_dataset(client, dataset, PENDING_DATASET_PROPS)
        self._await_pending(dataset.delay_timer / 1000)
        self._pending_due = (dataset.channel, time.monotonic() + dataset.delay_timer / 1000)
        log.info("pending dataset set through %s: channel %s → %s, network %s, in %.1f s", via, active.channel,
                 future.channel, future.network_name, dataset.delay_timer / 1000,
                 extra={"fields": {"THREAD_PENDING_CHANNEL": str(future.channel)}})
        return dataset

    async def change_channel(self, channel: int, delay_ms: int, via: str = "gatewayctl") -> Dataset:
        """Move the network to ``channel`` in ``delay_ms`` through a pending dataset: the active dataset with the
        channel changed and its active timestamp one second newer (what python-otbr-api's ``set_channel`` and
        OpenThread's channel manager do). Refused while another pending dataset is in place."""
        active = self._changeable_dataset()
        if active.channel == channel:
            raise CommandError(f"the network is on channel {channel} already")
        _check_channel(active.with_(channel=channel, channel_page=0))
        current = await self.pending_dataset()
        if current is not None:
            raise ThreadRefused(f"a pending dataset is in place (channel {current.channel}): wait until it is "
                                "active, or clear it (gatewayctl dataset pending clear)")
        stamp = _stamp(active)
        pending = active.with_(channel=channel, channel_page=0, delay_timer=delay_ms,
                               active_timestamp=Timestamp(stamp.seconds + 1, stamp.ticks, stamp.authoritative))
        return await self.set_pending_dataset(pending, via)

    async def clear_pending_dataset(self, via: str = "gatewayctl") -> None:
        """Forget the NCP's pending dataset (otbr-agent's ``DELETE /node/dataset/pending``). Nodes that already
        heard of it still take it when its delay passes: clear only what has not gone out yet."""
        self._changeable_dataset()
        await write_dataset(self._connected_client(), None, PENDING_DATASET_PROPS)
        if self._pending_watch is not None:
            self._pending_watch.cancel()
        self._pending_due = None
        log.warning("pending dataset cleared through %s", via)

    def _changeable_dataset(self) -> Dataset:
        if self.dataset_configured:
            raise ThreadRefused("[thread] dataset in the configuration fixes the active dataset")
        if self.dataset is None:
            raise ThreadRefused(NO_DATASET)
        return self.dataset

    def _await_pending(self, delay: float) -> None:
        """Adopt the NCP's new active dataset once the pending one's delay passed (the NCP pushes PHY_CHAN when
        the channel changes, but a change of key or name alone pushes nothing this component follows)."""
        if self._pending_watch is not None:
            self._pending_watch.cancel()

        async def adopt_later() -> None:
            await asyncio.sleep(delay + PENDING_GRACE)
            await self._adopt_active("the pending dataset's delay passed")
            self._pending_due = None

        self._pending_watch = asyncio.create_task(adopt_later(), name="thread-pending")

    async def _adopt_active(self, why: str) -> None:
        """The NCP's active dataset as this component's (kept in state_dir) when it is newer: a pending dataset
        became active, so a restart or an NCP reset must not hand the NCP the old one again."""
        client = self._client
        if client is None or self.dataset is None or not self.ncp.running:
            return
        try:
            current = await read_dataset(client, DATASET_PROPS)
        except (NcpError, OSError) as exc:
            log.warning("could not read the NCP's active dataset after %s: %s", why, exc)
            return
        if current is None or not _successor(current, self.dataset):
            return
        old, self.dataset, self._pending_due = self.dataset, current, None
        self.state.save_dataset(current)
        self.changed()
        log.info("the NCP took the pending dataset (%s): network %s now on channel %s (was %s); kept in %s", why,
                 current.network_name, current.channel, old.channel, self.state.dataset_path,
                 extra={"fields": {"THREAD_CHANNEL": str(current.channel)}})

    # ---- status and commands ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": role_name(self.role), "children": self.children}
        if self.dataset is not None:
            out.update(network_name=self.dataset.network_name, channel=self.dataset.channel)
        if self._pending_due is not None:  # a channel change on its way: the status page and `state` say so
            channel, due = self._pending_due
            out.update(pending_channel=channel, pending_in_s=round(max(0.0, due - time.monotonic()), 1))
        if (omr := self.omr_prefix or self.local_omr_prefix) is not None:
            out["omr_prefix"] = str(omr)
        if self.local_omr_prefix is not None:
            out["local_omr_prefix"] = str(self.local_omr_prefix)  # ours; omr_prefix is the mesh's favoured one
        if self.dns_address is not None:
            out["dns64_address"] = str(self.dns_address)
        return out

    def status_line(self) -> str | None:
        if self.dataset is None:
            return "no active dataset: Thread off" if self._client is not None else None
        children = f"{self.children} child" + ("ren" if self.children != 1 else "")
        return f"{role_name(self.role)} ch {self.dataset.channel} · {children}"

    def commands(self) -> list[Command]:
        return [
            Command("state", self._cmd_state, "Thread role and network identity"),
            Command("dataset active", self._cmd_dataset, "the active dataset (-x: hex TLVs; "
                    "--show-secrets: root only)", "[-x] [--show-secrets]"),
            Command("dataset pending", self._cmd_dataset_pending, "the pending dataset, if any: a channel change on "
                    "its way (delay_ms: what remains; -x: hex TLVs; --show-secrets: root only)",
                    "[-x] [--show-secrets]"),
            Command("dataset pending clear", self._cmd_dataset_pending_clear, "forget the pending dataset (nodes "
                    "that heard of it still take it; root only)"),
            Command("channel change", self._cmd_channel_change, "move the network to another channel through a "
                    "pending dataset, after MS milliseconds (default 300000: sleepy nodes hear of it first); "
                    "role, children and network data are kept (root only)", "CHANNEL [--delay MS]"),
            Command("child table", self._cmd_children, "the NCP's children"),
            Command("neighbor table", self._cmd_neighbors, "the NCP's neighbors"),
            Command("router table", self._cmd_routers, "the partition's routers as the NCP sees them"),
            Command("netdata show", self._cmd_netdata, "network data: every border router's prefixes, routes "
                    "and services (local: ours), and the routing manager's decisions"),
            Command("counters", self._cmd_counters, "datapath, NCP link and NCP IP counters"),
            Command("thread enable", self._cmd_enable, "Thread and its interface up (root only)"),
            Command("thread disable", self._cmd_disable, "Thread and its interface down: the node leaves the "
                    "mesh (root only)"),
            Command("dataset set", self._cmd_dataset_set, "replace the active dataset while Thread is disabled; "
                    "kept in state_dir (root only); '-' or '--file PATH': gatewayctl reads the TLVs from stdin or the "
                    "file, keeping the network key out of the shell's history and ps", "HEX | - | --file PATH"),
            Command("factory-reset", self._cmd_factory_reset, "detach and forget the active dataset: Thread stays "
                    "off until one is set (root only)"),
        ]

    def _running_client(self) -> NcpClient:
        if self._client is None:
            raise ThreadUnavailable("the Thread network is not running (see: gatewayctl status)")
        return self._client

    def _connected_client(self) -> NcpClient:
        """The NCP client for a change: the Thread network running and the NCP link up."""
        client = self._running_client()
        if not self.ncp.running:
            raise ThreadUnavailable("the NCP is not connected (see: gatewayctl ncp)")
        return client

    async def _cmd_state(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        out = self.status()
        if self.dataset is not None:
            out.update(pan_id=f"0x{self.dataset.pan_id:04x}", ext_pan_id=(self.dataset.extended_pan_id or b"").hex(),
                       mesh_local_prefix=str(self.dataset.mesh_local_prefix))
        if self.wpan is not None:
            out.update(self.wpan.status())
            out.pop("datapath", None)
        out["multicast"] = sorted(str(g) for g in self._groups)
        out["recoveries"] = self.recoveries
        if self.last_recovery_s is not None:
            out["last_recovery_s"] = self.last_recovery_s
        return out

    async def _cmd_dataset(self, request: Request) -> Any:
        as_hex, show = _show_options(request)
        d = self.active_dataset()
        if d is None:
            raise CommandError("no active dataset yet")
        return _dataset_view(d, as_hex, show)

    async def _cmd_dataset_pending(self, request: Request) -> Any:
        as_hex, show = _show_options(request)
        with ncp_refusal():
            d = await self.pending_dataset()
        return _dataset_view(d, as_hex, show) if d is not None else None

    async def _cmd_dataset_pending_clear(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        request.require_root("dataset pending clear")
        with ncp_refusal():
            await self.clear_pending_dataset()
        return {"pending_dataset": None}

    async def _cmd_channel_change(self, request: Request) -> dict[str, Any]:
        request.require_root("channel change")
        delay_text = request.option("--delay")
        usage = "usage: channel change CHANNEL [--delay MS] (11..26; default delay 300000 ms)"
        if len(request.args) != 1:
            raise CommandError(usage)
        try:
            channel = int(request.args.pop())
            delay = int(delay_text) if delay_text is not None else DEFAULT_CHANNEL_DELAY_MS
        except ValueError:
            raise CommandError(usage) from None
        old = self.dataset.channel if self.dataset is not None else None
        with ncp_refusal():
            pending = await self.change_channel(channel, delay)
        return {"channel": old, "new_channel": channel, "delay_ms": delay,
                "pending_timestamp": _stamp(pending, "pending_timestamp").seconds,
                "active_timestamp": _stamp(pending).seconds}

    async def _cmd_enable(self, request: Request) -> dict[str, Any]:
        return await self._switch(request, True)

    async def _cmd_disable(self, request: Request) -> dict[str, Any]:
        return await self._switch(request, False)

    async def _switch(self, request: Request, on: bool) -> dict[str, Any]:
        request.no_more_args()
        request.require_root(f"thread {'enable' if on else 'disable'}")
        with ncp_refusal():
            await self.enable(on)
        return {"thread": "enabled" if on else "disabled"}

    async def _cmd_dataset_set(self, request: Request) -> dict[str, Any]:
        request.require_root("dataset set")
        if len(request.args) != 1:
            raise CommandError("usage: dataset set HEX (the TLVs ot-ctl dataset active -x prints), or with "
                               "gatewayctl: dataset set - (from stdin) or dataset set --file PATH")
        text = request.args.pop()
        try:
            dataset = Dataset.from_tlvs(bytes.fromhex(text.strip()))
        except ValueError as exc:  # MeshCoPError is a ValueError; neither names the secret bytes
            raise CommandError(f"not a dataset as hex TLVs: {_without(str(exc), text)}") from None
        with ncp_refusal():
            await self.replace_active_dataset(dataset)
        return {"network_name": dataset.network_name, "channel": dataset.channel,
                "pan_id": f"0x{dataset.pan_id:04x}" if dataset.pan_id is not None else None}

    async def _cmd_factory_reset(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        request.require_root("factory-reset")
        await self.forget_network()
        return {"dataset": None, "thread": "disabled"}

    async def _cmd_children(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        client = self._running_client()
        rows = [_row(r) for r in await client.get(Prop.THREAD_CHILD_TABLE)]
        # Only MTD children register their addresses with the parent; an FTD child lists none.
        registered = await optional(client, "child addresses", client.get(Prop.THREAD_CHILD_TABLE_ADDRESSES))
        if registered is not None:
            by_ext = {entry.ext_address.hex(): [str(a) for a in entry.addresses] for entry in registered}
            for row in rows:
                row["addresses"] = by_ext.get(row["extaddr"], [])
        return rows

    async def _cmd_routers(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        return [_row(r) for r in await self._running_client().get(Prop.THREAD_ROUTER_TABLE)]

    async def _cmd_neighbors(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        return [_row(r) for r in await self._running_client().get(Prop.THREAD_NEIGHBOR_TABLE)]

    async def _cmd_netdata(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        client = self._running_client()
        prefixes = await client.get(Prop.THREAD_ON_MESH_NETS)
        routes = await client.get(Prop.THREAD_OFF_MESH_ROUTES)
        rloc16 = await optional(client, "RLOC16", client.get(Prop.THREAD_RLOC16))
        decision = self.routing.decision
        favoured = decision.omr_prefix if decision else None
        # The NCP lists the leader's entries (every border router's) and then its own local ones: each entry
        # once per border router, ``local`` marking ours (our RLOC16 in the leader's, or not registered yet).
        return {
            "prefixes": _per_router([{"prefix": str(p.network), "stable": p.stable, "flags": _net_flags(p.flags),
                                      "preference": preference_of(p.flags).name.lower(), "local": bool(p.is_local),
                                      "rloc16": _hex16(p.rloc16), "favoured": p.network == favoured}
                                     for p in prefixes], rloc16),
            "routes": _per_router([{"prefix": str(r.network), "stable": r.stable,
                                    "nat64": bool(r.flags & ROUTE_FLAG_NAT64),
                                    "preference": preference_of(r.flags).name.lower(), "local": bool(r.is_local),
                                    "rloc16": _hex16(r.rloc16)} for r in routes], rloc16),
            "services": await self._services(client),
            "routing": self.routing.status(),
        }

    async def _services(self, client: NcpClient) -> list[dict[str, Any]]:
        """The Service TLVs of the leader's network data (SRP server, DNS...), each with its servers."""
        blob = await optional(client, "network data services", client.get(Prop.THREAD_LEADER_NETWORK_DATA))
        if not isinstance(blob, bytes):
            return []
        try:
            services = parse_network_data(blob).services
        except NetworkDataError as exc:
            client.degrade("network data services", f"undecodable leader network data: {exc}")
            return []
        return [{"service_id": s.service_id, "enterprise": s.enterprise_number, "data": s.data.hex(),
                 "servers": ", ".join(_hex16(v.rloc16) or "" for v in s.servers)} for s in services]

    async def _cmd_counters(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        out: dict[str, Any] = {}
        if self.wpan is not None:
            out["datapath"] = self.wpan.status()["datapath"]
        if self.ncp.client is not None:
            out["ncp_link"] = self.ncp.client.status()["counters"]
        ip: dict[str, Any] = {}
        if self._client is not None:
            for name, prop in (("tx_success", Prop.CNTR_IP_TX_SUCCESS), ("rx_success", Prop.CNTR_IP_RX_SUCCESS),
                               ("tx_failure", Prop.CNTR_IP_TX_FAILURE), ("rx_failure", Prop.CNTR_IP_RX_FAILURE)):
                with contextlib.suppress(NcpError):
                    ip[name] = await self._client.get(prop)
        if ip:
            out["ncp_ip"] = ip
        out["recoveries"] = self.recoveries
        out["held_for_recovery"] = {"packets": self.hold.held, "dropped": self.hold.dropped,
                                    "holding": len(self.hold.queue), "mpl_sequence_skipped": self.mpl.skipped}
        return out


def _successor(current: Dataset, ours: Dataset) -> bool:
    """``current`` (the NCP's) is a later active dataset of the same network: a pending dataset made it."""
    return (current.is_complete and current.extended_pan_id == ours.extended_pan_id
            and _stamp(current) > _stamp(ours))


def _stamp(dataset: Dataset | None, which: str = "active_timestamp") -> Timestamp:
    """A dataset's active (or pending) timestamp; a missing one counts as the oldest."""
    stamp = getattr(dataset, which) if dataset is not None else None
    return stamp if stamp is not None else Timestamp(0)


def _check_channel(dataset: Dataset) -> None:
    """A 2.4 GHz channel (page 0, 11..26) that the dataset's channel mask allows."""
    channel = dataset.channel
    if dataset.channel_page != 0 or channel is None or not 11 <= channel <= 26:
        raise CommandError(f"channel {channel}: 11 to 26 (2.4 GHz, page 0)")
    mask = (dataset.channel_mask or {}).get(0)
    if mask is not None and not mask >> channel & 1:
        raise CommandError(f"channel {channel} is not in the dataset's channel mask 0x{mask:08x}")


def _show_options(request: Request) -> tuple[bool, bool]:
    """``-x`` and ``--show-secrets`` of ``dataset active``/``pending``; the hex holds the key: root only."""
    as_hex = request.flag("-x")
    show = request.flag("--show-secrets")
    request.no_more_args()
    if show:
        request.require_root("--show-secrets")
    if as_hex and not show:
        raise CommandError("the hex dataset contains the network key: add --show-secrets (root only)")
    return as_hex, show


def _dataset_view(d: Dataset, as_hex: bool, show: bool) -> Any:
    """A dataset as ``gatewayctl dataset active``/``pending`` print it, secrets masked unless ``show``."""
    if as_hex:
        return d.to_tlvs().hex()
    out = {
        "active_timestamp": d.active_timestamp.seconds if d.active_timestamp else None,
        "channel": d.channel,
        "channel_mask": f"0x{(d.channel_mask or {}).get(0, 0):08x}",
        "ext_pan_id": (d.extended_pan_id or b"").hex(),
        "mesh_local_prefix": str(d.mesh_local_prefix),
        "network_key": (d.network_key or b"").hex() if show else MASK,
        "network_name": d.network_name,
        "pan_id": f"0x{d.pan_id:04x}" if d.pan_id is not None else None,
        "pskc": (d.pskc or b"").hex() if show else MASK,
        "security_policy": d.security_policy.rotation_time if d.security_policy else None,
    }
    if d.pending_timestamp is not None:
        out["pending_timestamp"] = d.pending_timestamp.seconds
    if d.delay_timer is not None:
        out["delay_ms"] = d.delay_timer  # what remains, as the NCP counts it
    return out


def _without(message: str, secret: str) -> str:
    """``message`` with any part of ``secret`` (a dataset's hex, network key included) masked."""
    return message.replace(secret, MASK) if secret and secret in message else message


def _hex16(value: int | None) -> str | None:
    return f"0x{value:04x}" if value is not None else None


def _row(entry: Any) -> dict[str, Any]:
    """A child or neighbor table record for gatewayctl; fields an older NCP does not send are left out."""
    out: dict[str, Any] = {}
    for name, value in entry._asdict().items():
        if value is None:
            continue
        if name == "ext_address":
            out["extaddr"] = value.hex()
        elif name == "rloc16":
            out["rloc16"] = _hex16(value)
        elif name == "mode":
            out["mode"] = f"0x{value:02x}"
        else:
            out[name] = value
    return out


def _per_router(rows: list[dict[str, Any]], rloc16: Any) -> list[dict[str, Any]]:
    """One row per (prefix, border router): the leader's rows, ours marked local; a local entry the leader
    does not list yet is kept with ``registered`` false."""
    ours = _hex16(rloc16) if isinstance(rloc16, int) else None
    merged: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in rows:
        if not row["local"]:
            row["local"] = ours is not None and row["rloc16"] == ours
            merged.setdefault((row["prefix"], row["rloc16"]), row)
        elif (row["prefix"], ours) not in merged:
            row["registered"] = False
            merged.setdefault((row["prefix"], "local"), row)
    return list(merged.values())


def _net_flags(flags: int) -> str:
    """ot-ctl's letters: p preferred, a SLAAC, d DHCP, c configure, r default route, o on-mesh."""
    letters = [("p", 1 << 5), ("a", 1 << 4), ("d", 1 << 3), ("c", 1 << 2), ("r", 1 << 1), ("o", 1 << 0)]
    return "".join(ch for ch, bit in letters if flags & bit)
