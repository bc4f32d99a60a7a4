"""The simulated OpenThread NCP, sans-I/O.

:class:`SimNcp` takes decoded Spinel frames from the host, IPv6 packets from the simulated mesh and the
passing of time, and answers with Spinel frames for the host and IPv6 packets for the mesh.  The I/O
glue (``ncp.sim.app``) moves bytes; everything a host can observe is decided here, so it is tested
without a pty or a namespace.

Behaviour follows a real OpenThread NCP (see the Spinel wire facts): a complete active dataset written
as THREAD_ACTIVE_DATASET_TLVS is needed to form a network, per-property setters alone never attach;
RESET answers with LAST_STATUS RESET_POWER_ON and drops all runtime state while the dataset persists.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ncp.meshcop import Dataset, MeshCoPError
from ncp.spinel import (
    INTERFACE_TYPE_THREAD,
    Command,
    NetRole,
    Prop,
    SpinelError,
    SpinelFrame,
    Status,
    pack_prop,
    unpack,
    unpack_prop,
)
from ncp.spinel.tables import AddressEntry

from . import ipv6
from .netdata import ExternalRoute, OnMeshPrefix, encode_leader_network_data

__all__ = ["MeshConfig", "Node", "SimConfig", "SimNcp"]

log = logging.getLogger("gatewayd.sim")

PROTOCOL_VERSION = (4, 3)
NCP_VERSION = "OPENTHREAD/gatewayd-sim; SIMULATION; Python"
# SPINEL_CAP_*: COUNTERS, CMD_MULTI, UNSOL_UPDATE_FILTER, CONFIG_FTD, ROLE_ROUTER, NET_THREAD_1_1,
# NET_THREAD_1_2, THREAD_BORDER_ROUTER
CAPS = [5, 11, 12, 32, 48, 53, 54, 1028]
MLE_PORT = 19788
ALL_NODES = ipaddress.IPv6Address("ff02::1")
PING_OFFLOAD_ALL = 3  # SPINEL_IPV6_ICMP_PING_OFFLOAD_ALL
CHILD_MODE = 0x0D  # rx-on-when-idle, secure data requests, full network data (an MTD child)
INFINITE = 0xFFFFFFFF


# ICMPv6 types a kernel emits on its own (ND, MLD) that never cross a Thread border router.
_LOCAL_ICMP = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})


@dataclass
class SimConfig:
    leader_delay: float = 0.5  # stack up -> leader
    attach_delay: float = 0.2  # leader (or node added) -> child attached
    mle_interval: float = 10.0  # own MLE multicast forwarded to the host; 0 disables
    eui64: bytes | None = None
    seed: int | None = None


@dataclass
class Node:
    """A simulated Thread end device (an MTD child of the simulated leader)."""

    name: str
    eui64: bytes
    child_id: int = 0
    link_quality: int = 3
    rssi: int = -45
    attached: bool = False

    def iid(self, salt: bytes) -> bytes:
        """Opaque, stable interface identifier for ``salt`` (a prefix), like RFC 7217."""
        return hashlib.sha256(b"gatewayd-sim" + self.eui64 + salt).digest()[:8]


@dataclass(frozen=True)
class MeshConfig:
    """What the mesh side (the TUN in the namespace) should hold right now."""

    addresses: frozenset[ipaddress.IPv6Address] = frozenset()
    on_link: frozenset[ipaddress.IPv6Network] = frozenset()
    routes: frozenset[ipaddress.IPv6Network] = frozenset()


@dataclass
class _Timer:
    when: float
    action: Callable[[float], None]
    name: str


@dataclass
class _Persistent:
    """What survives RESET and restarts (an NCP's flash)."""

    dataset: Dataset = field(default_factory=Dataset)
    committed: bool = False  # a complete dataset arrived as THREAD_ACTIVE_DATASET_TLVS
    ext_addr: bytes = b""


class SimNcp:
    """OpenThread-like NCP state machine.

    Call :meth:`handle_frame`, :meth:`handle_mesh_packet` and :meth:`poll` with the current monotonic
    time; then drain :attr:`to_host` (Spinel frames) and :attr:`to_mesh` (IPv6 packets) and apply
    :meth:`mesh_config`.  :attr:`on_persist` is called with the new state whenever the dataset changes.
    """

    def __init__(self, config: SimConfig | None = None, persisted: dict[str, Any] | None = None) -> None:
        self.config = config or SimConfig()
        self.rng = random.Random(self.config.seed)
        self.eui64 = self.config.eui64 or self._random_eui64()
        self.flash = _Persistent(ext_addr=self.rng.randbytes(8))
        if persisted:
            self._load(persisted)
        self.nodes: dict[str, Node] = {}
        self._next_child_id = 1
        self.to_host: list[SpinelFrame] = []
        self.to_mesh: list[bytes] = []
        self.on_persist: Callable[[dict[str, Any]], None] | None = None
        self._timers: list[_Timer] = []
        self._init_runtime()

    # --- runtime state --------------------------------------------------------------------------------

    def _init_runtime(self) -> None:
        self.if_up = False
        self.stack_up = False
        self.role = NetRole.DISABLED
        self.partition_id = 0
        self.router_id = 0
        self.allow_local_change = False
        self._publish_pending = False
        self.local_prefixes: dict[ipaddress.IPv6Network, OnMeshPrefix] = {}
        self.local_routes: dict[ipaddress.IPv6Network, ExternalRoute] = {}
        self.net_prefixes: dict[ipaddress.IPv6Network, OnMeshPrefix] = {}
        self.net_routes: dict[ipaddress.IPv6Network, ExternalRoute] = {}
        self.netdata_version = 0
        self.ping_offload = True
        self.ping_offload_mode = 1  # unicast only: echo to own unicast addresses still go to the host
        self.unsol_filter: set[int] = set()
        self.host_groups: set[ipaddress.IPv6Address] = set()  # multicast groups the host subscribed
        self.extra_props: dict[int, bytes] = {}
        self._timers = []
        for node in self.nodes.values():
            node.attached = False

    def _random_eui64(self) -> bytes:
        return bytes([0x18, 0xB4, 0x30]) + self.rng.randbytes(5)

    # --- persistence ------------------------------------------------------------------------------------

    def persisted(self) -> dict[str, Any]:
        return {
            "dataset": self.flash.dataset.hex(),
            "committed": self.flash.committed,
            "ext_addr": self.flash.ext_addr.hex(),
            "eui64": self.eui64.hex(),
        }

    def _load(self, state: dict[str, Any]) -> None:
        try:
            self.flash.dataset = Dataset.from_hex(state.get("dataset", ""))
            self.flash.committed = bool(state.get("committed")) and self.flash.dataset.is_complete
            if state.get("ext_addr"):
                self.flash.ext_addr = bytes.fromhex(state["ext_addr"])
            if state.get("eui64") and self.config.eui64 is None:
                self.eui64 = bytes.fromhex(state["eui64"])
        except (MeshCoPError, ValueError) as exc:
            log.warning("ignoring unreadable simulator state: %s", exc)

    def _save(self) -> None:
        if self.on_persist is not None:
            self.on_persist(self.persisted())

    @property
    def dataset(self) -> Dataset:
        return self.flash.dataset

    # --- addresses ---------------------------------------------------------------------------------------

    @property
    def rloc16(self) -> int:
        return self.router_id << 10 if self.role == NetRole.LEADER else 0xFFFE

    @property
    def link_local(self) -> ipaddress.IPv6Address:
        iid = bytes((self.flash.ext_addr[0] ^ 0x02,)) + self.flash.ext_addr[1:]
        return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid)

    def _ml_prefix_bytes(self) -> bytes | None:
        prefix = self.dataset.mesh_local_prefix
        return prefix.network_address.packed[:8] if prefix is not None else None

    @property
    def ml_eid(self) -> ipaddress.IPv6Address | None:
        ml = self._ml_prefix_bytes()
        if ml is None:
            return None
        iid = hashlib.sha256(b"ml-eid" + self.flash.ext_addr + ml).digest()[:8]
        return ipaddress.IPv6Address(ml + iid)

    def _rloc_addr(self, rloc16: int) -> ipaddress.IPv6Address | None:
        ml = self._ml_prefix_bytes()
        if ml is None:
            return None
        return ipaddress.IPv6Address(ml + b"\x00\x00\x00\xff\xfe\x00" + rloc16.to_bytes(2, "big"))

    def slaac_prefixes(self) -> list[ipaddress.IPv6Network]:
        if self.role != NetRole.LEADER:
            return []
        return [p.prefix for p in self.net_prefixes.values() if p.slaac]

    def own_slaac(self) -> list[ipaddress.IPv6Address]:
        salt = self.flash.ext_addr
        return [
            ipaddress.IPv6Address(
                p.network_address.packed[:8] + hashlib.sha256(salt + p.network_address.packed).digest()[:8]
            )
            for p in self.slaac_prefixes()
        ]

    def own_addresses(self) -> list[ipaddress.IPv6Address]:
        if not self.if_up:
            return []
        addrs = [self.link_local]
        if self.ml_eid is not None:
            addrs.append(self.ml_eid)
        if self.role == NetRole.LEADER:
            rloc = self._rloc_addr(self.rloc16)
            if rloc is not None:
                addrs.append(rloc)
            addrs += self.own_slaac()
        return addrs

    def node_addresses(self, node: Node) -> list[ipaddress.IPv6Address]:
        if not node.attached:
            return []
        addrs = []
        ml = self._ml_prefix_bytes()
        if ml is not None:
            addrs.append(ipaddress.IPv6Address(ml + node.iid(ml)))
        for prefix in self.slaac_prefixes():
            raw = prefix.network_address.packed[:8]
            addrs.append(ipaddress.IPv6Address(raw + node.iid(raw)))
        return addrs

    def node_rloc16(self, node: Node) -> int:
        return self.rloc16 | node.child_id

    def mesh_config(self) -> MeshConfig:
        """Addresses of the attached nodes and the routes that lead from them to the border router."""
        attached = [n for n in self.nodes.values() if n.attached]
        addrs = frozenset(a for n in attached for a in self.node_addresses(n))
        if self.role != NetRole.LEADER or self.dataset.mesh_local_prefix is None:
            return MeshConfig(addrs)
        on_link = {self.dataset.mesh_local_prefix, *(p.prefix for p in self.net_prefixes.values())}
        routes = {ipaddress.IPv6Network("::/0"), *(r.prefix for r in self.net_routes.values())}
        return MeshConfig(addrs, frozenset(on_link), frozenset(routes - on_link))

    # --- time ---------------------------------------------------------------------------------------------

    def _after(self, now: float, delay: float, name: str, action: Callable[[float], None]) -> None:
        self._timers = [t for t in self._timers if t.name != name]
        self._timers.append(_Timer(now + delay, action, name))

    def _cancel(self, name: str) -> None:
        self._timers = [t for t in self._timers if t.name != name]

    def next_deadline(self) -> float | None:
        return min((t.when for t in self._timers), default=None)

    def poll(self, now: float) -> None:
        """Run whatever timers are due."""
        while True:
            due = [t for t in self._timers if t.when <= now]
            if not due:
                return
            timer = min(due, key=lambda t: t.when)
            self._timers.remove(timer)
            timer.action(now)

    # --- output helpers --------------------------------------------------------------------------------

    def _send(self, tid: int, command: int, prop: int, value: bytes) -> None:
        self.to_host.append(SpinelFrame(0, tid, command, prop, value))

    def _is(self, tid: int, prop: int, value: Any) -> None:
        self._send(tid, Command.PROP_VALUE_IS, prop, pack_prop(prop, value))

    def _status(self, tid: int, status: int) -> None:
        self._is(tid, Prop.LAST_STATUS, int(status))

    def _push(self, prop: Prop) -> None:
        """Unsolicited IS (TID 0) of a property's current value, unless the host filtered it."""
        if prop in self.unsol_filter:
            return
        value = self._get(prop)
        if value is not None:
            self._send(0, Command.PROP_VALUE_IS, prop, value)

    def take(self) -> tuple[list[SpinelFrame], list[bytes]]:
        frames, packets = self.to_host, self.to_mesh
        self.to_host, self.to_mesh = [], []
        return frames, packets

    # --- lifecycle -------------------------------------------------------------------------------------

    def boot(self, now: float, status: int = Status.RESET_POWER_ON) -> None:
        """Power on (or restart): runtime state gone, the reset reason sent unsolicited."""
        self._init_runtime()
        self._status(0, status)

    def reset(self, now: float) -> None:
        self.boot(now, Status.RESET_POWER_ON)

    # --- host frames ----------------------------------------------------------------------------------

    def handle_frame(self, frame: SpinelFrame, now: float) -> None:
        if frame.iid != 0:
            return  # only interface 0 exists
        cmd = frame.command
        if cmd == Command.NOOP:
            self._status(frame.tid, Status.OK)
        elif cmd == Command.RESET:
            self.reset(now)
        elif cmd == Command.PROP_VALUE_GET:
            value = self._get(frame.prop)
            if value is None:
                self._status(frame.tid, Status.PROP_NOT_FOUND)
            else:
                self._send(frame.tid, Command.PROP_VALUE_IS, frame.prop, value)
        elif cmd == Command.PROP_VALUE_SET:
            self._set(frame.tid, frame.prop, frame.value, now)
        elif cmd == Command.PROP_VALUE_INSERT:
            self._insert_remove(frame.tid, frame.prop, frame.value, now, insert=True)
        elif cmd == Command.PROP_VALUE_REMOVE:
            self._insert_remove(frame.tid, frame.prop, frame.value, now, insert=False)
        else:
            self._status(frame.tid, Status.INVALID_COMMAND)

    # --- GET ----------------------------------------------------------------------------------------------

    def _get(self, prop: int) -> bytes | None:
        getter = self._getters().get(prop)
        if getter is not None:
            return pack_prop(prop, getter())
        return self.extra_props.get(prop)

    def _getters(self) -> dict[int, Callable[[], Any]]:
        ds = self.dataset
        return {
            Prop.LAST_STATUS: lambda: int(Status.OK),
            Prop.PROTOCOL_VERSION: lambda: PROTOCOL_VERSION,
            Prop.NCP_VERSION: lambda: NCP_VERSION,
            Prop.INTERFACE_TYPE: lambda: INTERFACE_TYPE_THREAD,
            Prop.VENDOR_ID: lambda: 0,
            Prop.CAPS: lambda: CAPS,
            Prop.INTERFACE_COUNT: lambda: 1,
            Prop.HWADDR: lambda: self.eui64,
            Prop.MAC_15_4_LADDR: lambda: self.flash.ext_addr,
            Prop.MAC_15_4_SADDR: lambda: self.rloc16,
            Prop.PHY_CHAN: lambda: ds.channel if ds.channel is not None else 11,
            Prop.PHY_CHAN_SUPPORTED: lambda: list(range(11, 27)),
            Prop.MAC_15_4_PANID: lambda: ds.pan_id if ds.pan_id is not None else 0xFFFF,
            Prop.NET_IF_UP: lambda: self.if_up,
            Prop.NET_STACK_UP: lambda: self.stack_up,
            Prop.NET_ROLE: lambda: int(self.role),
            Prop.NET_NETWORK_NAME: lambda: ds.network_name or "",
            Prop.NET_XPANID: lambda: ds.extended_pan_id or bytes(8),
            Prop.NET_NETWORK_KEY: lambda: ds.network_key or bytes(16),
            Prop.NET_PSKC: lambda: ds.pskc or bytes(16),
            Prop.NET_KEY_SEQUENCE_COUNTER: lambda: 0,
            Prop.NET_PARTITION_ID: lambda: self.partition_id,
            Prop.THREAD_RLOC16: lambda: self.rloc16,
            Prop.THREAD_LEADER_RID: lambda: self.router_id,
            Prop.THREAD_LEADER_ADDR: lambda: self._rloc_addr(0xFC00) or ipaddress.IPv6Address("::"),
            Prop.THREAD_NETWORK_DATA_VERSION: lambda: self.netdata_version & 0xFF,
            Prop.THREAD_STABLE_NETWORK_DATA_VERSION: lambda: self.netdata_version & 0xFF,
            Prop.THREAD_ON_MESH_NETS: self._on_mesh_nets,
            Prop.THREAD_OFF_MESH_ROUTES: self._off_mesh_routes,
            Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE: lambda: self.allow_local_change,
            Prop.THREAD_LEADER_NETWORK_DATA: self._leader_network_data,
            Prop.THREAD_NETWORK_DATA: self._local_network_data,
            Prop.THREAD_CHILD_TABLE: self._child_table,
            Prop.THREAD_NEIGHBOR_TABLE: self._neighbor_table,
            Prop.THREAD_ROUTER_TABLE: self._router_table,
            Prop.THREAD_CHILD_TABLE_ADDRESSES: self._child_addresses,
            Prop.THREAD_ACTIVE_DATASET_TLVS: ds.to_tlvs,
            Prop.IPV6_LL_ADDR: lambda: self.link_local if self.if_up else ipaddress.IPv6Address("::"),
            Prop.IPV6_ML_ADDR: lambda: self.ml_eid or ipaddress.IPv6Address("::"),
            Prop.IPV6_ML_PREFIX: lambda: (
                (ds.mesh_local_prefix.network_address, 64) if ds.mesh_local_prefix else ("::", 64)
            ),
            Prop.IPV6_ADDRESS_TABLE: self._address_table,
            Prop.IPV6_MULTICAST_ADDRESS_TABLE: lambda: (
                [(ipaddress.IPv6Address(a),) for a in ("ff02::1", "ff02::2", "ff03::1", "ff03::2")]
                + [(g,) for g in sorted(self.host_groups)]
                if self.if_up
                else []
            ),
            Prop.IPV6_ICMP_PING_OFFLOAD: lambda: self.ping_offload,
            Prop.IPV6_ICMP_PING_OFFLOAD_MODE: lambda: self.ping_offload_mode,
            Prop.UNSOL_UPDATE_FILTER: lambda: sorted(self.unsol_filter),
            Prop.UNSOL_UPDATE_LIST: lambda: [
                Prop.NET_ROLE,
                Prop.THREAD_CHILD_TABLE,
                Prop.IPV6_ADDRESS_TABLE,
                Prop.THREAD_ON_MESH_NETS,
                Prop.THREAD_OFF_MESH_ROUTES,
                Prop.THREAD_LEADER_NETWORK_DATA,
            ],
        }

    def _on_mesh_nets(self) -> list[tuple]:
        out = [
            (p.prefix.network_address, p.prefix.prefixlen, p.stable, p.flags, False, self.rloc16, p.flags_ext)
            for p in self.net_prefixes.values()
        ]
        out += [
            (p.prefix.network_address, p.prefix.prefixlen, p.stable, p.flags, True, self.rloc16, p.flags_ext)
            for p in self.local_prefixes.values()
        ]
        return out

    def _off_mesh_routes(self) -> list[tuple]:
        out = [
            (r.prefix.network_address, r.prefix.prefixlen, r.stable, r.flags, False, True, self.rloc16)
            for r in self.net_routes.values()
        ]
        out += [
            (r.prefix.network_address, r.prefix.prefixlen, r.stable, r.flags, True, True, self.rloc16)
            for r in self.local_routes.values()
        ]
        return out

    def _leader_network_data(self) -> bytes:
        if self.role != NetRole.LEADER:
            return b""
        return encode_leader_network_data(list(self.net_prefixes.values()), list(self.net_routes.values()), self.rloc16)

    def _local_network_data(self) -> bytes:
        return encode_leader_network_data(
            list(self.local_prefixes.values()), list(self.local_routes.values()), self.rloc16
        )

    def _attached_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.attached]

    def _child_entry(self, n: Node) -> tuple:
        return (
            n.eui64,
            self.node_rloc16(n),
            240,
            1,
            self.netdata_version & 0xFF,
            n.link_quality,
            n.rssi,
            CHILD_MODE,
            n.rssi,
        )

    def _child_table(self) -> list[tuple]:
        return [self._child_entry(n) for n in self._attached_nodes()]

    def _child_addresses(self) -> list[tuple]:
        return [(n.eui64, self.node_rloc16(n), self.node_addresses(n)) for n in self._attached_nodes()]

    def _neighbor_table(self) -> list[tuple]:
        return [
            (
                n.eui64,
                self.node_rloc16(n),
                1,
                n.link_quality,
                n.rssi,
                CHILD_MODE,
                True,
                100 + n.child_id,
                10 + n.child_id,
                n.rssi,
            )
            for n in self._attached_nodes()
        ]

    def _router_table(self) -> list[tuple]:
        if self.role != NetRole.LEADER:
            return []
        return [(self.flash.ext_addr, self.rloc16, self.router_id, 63, 0, 0, 0, 0, False)]

    def _address_table(self) -> list[tuple]:
        # 25-byte entries as OpenThread sends them: no trailing flags byte
        return [AddressEntry(a, 64, INFINITE, INFINITE) for a in self.own_addresses()]

    # --- SET ----------------------------------------------------------------------------------------------

    _STORED = frozenset(
        {
            Prop.THREAD_ROUTER_ROLE_ENABLED,
            Prop.THREAD_RLOC16_DEBUG_PASSTHRU,
            Prop.NET_REQUIRE_JOIN_EXISTING,
            Prop.THREAD_LOCAL_LEADER_WEIGHT,
            Prop.THREAD_CHILD_TIMEOUT,
            Prop.PHY_TX_POWER,
            Prop.HOST_POWER_STATE,
            Prop.THREAD_MODE,
            Prop.THREAD_PREFERRED_ROUTER_ID,
            Prop.MAC_DATA_POLL_PERIOD,
            Prop.PHY_ENABLED,
        }
    )
    _NEEDS_DISABLED = frozenset(
        {
            Prop.PHY_CHAN,
            Prop.MAC_15_4_PANID,
            Prop.NET_NETWORK_NAME,
            Prop.NET_XPANID,
            Prop.NET_PSKC,
            Prop.IPV6_ML_PREFIX,
        }
    )

    def _set(self, tid: int, prop: int, value: bytes, now: float) -> None:
        if prop in (Prop.STREAM_NET, Prop.STREAM_NET_INSECURE):
            self._host_stream(tid, value, now)
            return
        if prop in self._NEEDS_DISABLED and self.stack_up:
            self._status(tid, Status.INVALID_STATE)
            return
        try:
            status = self._apply_set(prop, value, now)
        except SpinelError:
            status = Status.PARSE_ERROR
        if status is None:
            self._status(tid, Status.PROP_NOT_FOUND)
        elif status != Status.OK:
            self._status(tid, status)
        else:
            reply = self._get(prop)
            self._send(tid, Command.PROP_VALUE_IS, prop, reply if reply is not None else value)
            self._after_set(prop, now)

    def _apply_set(self, prop: int, value: bytes, now: float) -> Status | None:
        ds = self.dataset
        if prop == Prop.PHY_CHAN:
            ch = unpack_prop(prop, value)
            if not 11 <= ch <= 26:
                return Status.INVALID_ARGUMENT
            self._update_dataset(ds.with_(channel=ch))
        elif prop == Prop.MAC_15_4_PANID:
            self._update_dataset(ds.with_(pan_id=unpack_prop(prop, value)))
        elif prop == Prop.NET_NETWORK_NAME:
            name = unpack_prop(prop, value)
            if not 1 <= len(name.encode()) <= 16:
                return Status.INVALID_ARGUMENT
            self._update_dataset(ds.with_(network_name=name))
        elif prop in (Prop.NET_XPANID, Prop.NET_NETWORK_KEY, Prop.NET_PSKC):
            size, attr = {
                Prop.NET_XPANID: (8, "extended_pan_id"),
                Prop.NET_NETWORK_KEY: (16, "network_key"),
                Prop.NET_PSKC: (16, "pskc"),
            }[prop]
            if len(value) != size:
                return Status.PARSE_ERROR
            self._update_dataset(ds.with_(**{attr: bytes(value)}))
        elif prop == Prop.IPV6_ML_PREFIX:
            if len(value) < 8:
                return Status.PARSE_ERROR
            raw = bytes(value[:8])
            self._update_dataset(ds.with_(mesh_local_prefix=ipaddress.IPv6Network((raw + bytes(8), 64))))
        elif prop == Prop.THREAD_ACTIVE_DATASET_TLVS:
            try:
                new = Dataset.from_tlvs(value)
            except MeshCoPError:
                return Status.INVALID_ARGUMENT
            self.flash.dataset = new
            self.flash.committed = new.is_complete
            self._save()
        elif prop == Prop.NET_IF_UP:
            up = unpack_prop(prop, value)
            if not up and self.stack_up:
                self._stack(False, now)
            self.if_up = up
        elif prop == Prop.NET_STACK_UP:
            up = unpack_prop(prop, value)
            if up and not self.if_up:
                return Status.INVALID_STATE
            self._stack(up, now)
        elif prop == Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE:
            allow = unpack_prop(prop, value)
            was, self.allow_local_change = self.allow_local_change, allow
            if was and not allow:
                self._publish_pending = True
        elif prop == Prop.IPV6_ICMP_PING_OFFLOAD:
            self.ping_offload = unpack_prop(prop, value)
        elif prop == Prop.IPV6_ICMP_PING_OFFLOAD_MODE:
            self.ping_offload_mode = unpack_prop(prop, value)
        elif prop == Prop.UNSOL_UPDATE_FILTER:
            self.unsol_filter = set(unpack_prop(prop, value))
        elif prop in self._STORED:
            unpack_prop(prop, value)  # validate
            self.extra_props[prop] = bytes(value)
        else:
            return None
        return Status.OK

    def _after_set(self, prop: int, now: float) -> None:
        """Side effects that a real NCP reports after the IS reply."""
        if prop == Prop.NET_IF_UP:
            self._push(Prop.IPV6_LL_ADDR)
            self._push(Prop.IPV6_ML_ADDR)
            self._push(Prop.IPV6_ADDRESS_TABLE)
        elif prop == Prop.NET_STACK_UP:
            self._push(Prop.NET_ROLE)
        elif prop == Prop.THREAD_ACTIVE_DATASET_TLVS:
            self._maybe_form(now)
        elif prop == Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE and self._publish_pending:
            self._publish_pending = False
            self._publish(now)

    def _update_dataset(self, new: Dataset) -> None:
        self.flash.dataset = new
        self._save()

    def _stack(self, up: bool, now: float) -> None:
        if up == self.stack_up:
            return
        self.stack_up = up
        if up:
            self.role = NetRole.DETACHED
            self._maybe_form(now)
        else:
            self._leave(now)
            self.role = NetRole.DISABLED

    def _maybe_form(self, now: float) -> None:
        """Become leader after a moment, if the stack is up and a complete dataset was committed."""
        if self.stack_up and self.role == NetRole.DETACHED and self.flash.committed:
            self._after(now, self.config.leader_delay, "leader", self._become_leader)

    def _become_leader(self, now: float) -> None:
        if not (self.stack_up and self.flash.committed):
            return
        self.role = NetRole.LEADER
        self.router_id = self.rng.randrange(0, 63)
        self.partition_id = self.rng.getrandbits(32)
        self.netdata_version = self.rng.randrange(256)
        self._push(Prop.NET_ROLE)
        self._push(Prop.NET_PARTITION_ID)
        self._push(Prop.THREAD_RLOC16)
        self._push(Prop.IPV6_LL_ADDR)
        self._push(Prop.IPV6_ML_ADDR)
        self._push(Prop.IPV6_ADDRESS_TABLE)
        self._push(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        if self.local_prefixes or self.local_routes:
            self._publish(now)
        else:
            self._push(Prop.THREAD_LEADER_NETWORK_DATA)
        for node in self.nodes.values():
            self._schedule_attach(node, now)
        if self.config.mle_interval > 0:
            self._after(now, 0.05, "mle", self._mle_advertisement)

    def _leave(self, now: float) -> None:
        for name in ("leader", "mle"):
            self._cancel(name)
        for node in self.nodes.values():
            self._cancel(f"attach:{node.name}")
            node.attached = False
        self.net_prefixes.clear()
        self.net_routes.clear()

    # --- network data -------------------------------------------------------------------------------------

    def _insert_remove(self, tid: int, prop: int, value: bytes, now: float, *, insert: bool) -> None:
        if prop == Prop.IPV6_MULTICAST_ADDRESS_TABLE:
            self._multicast(tid, value, insert=insert)
            return
        if prop not in (Prop.THREAD_ON_MESH_NETS, Prop.THREAD_OFF_MESH_ROUTES):
            self._status(tid, Status.PROP_NOT_FOUND if self._get(prop) is None else Status.INVALID_COMMAND_FOR_PROP)
            return
        if not self.allow_local_change:
            self._status(tid, Status.INVALID_STATE)
            return
        try:
            if insert:
                addr, plen, stable, flags = unpack("6CbC", value)
            else:
                addr, plen = unpack("6C", value)
            if plen > 128:
                raise SpinelError("prefix length")
            prefix = ipaddress.IPv6Network((addr, plen), strict=False)
        except (SpinelError, ValueError):
            self._status(tid, Status.PARSE_ERROR)
            return
        table: dict = self.local_prefixes if prop == Prop.THREAD_ON_MESH_NETS else self.local_routes
        if insert:
            if prop == Prop.THREAD_ON_MESH_NETS:
                ext = value[22] if len(value) >= 23 else 0  # after is-local and RLOC16: extended flags
                table[prefix] = OnMeshPrefix(prefix, stable, flags, ext)
            else:
                table[prefix] = ExternalRoute(prefix, stable, flags)
            self._send(tid, Command.PROP_VALUE_INSERTED, prop, bytes(value))
        else:
            if table.pop(prefix, None) is None:
                self._status(tid, Status.ITEM_NOT_FOUND)
                return
            self._send(tid, Command.PROP_VALUE_REMOVED, prop, bytes(value))

    def _multicast(self, tid: int, value: bytes, *, insert: bool) -> None:
        """The host subscribing the mesh interface to a group (or leaving it), as OpenThread allows."""
        try:
            (group,) = unpack("6", value)
        except SpinelError:
            self._status(tid, Status.PARSE_ERROR)
            return
        if not group.is_multicast:
            self._status(tid, Status.INVALID_ARGUMENT)
            return
        if insert:
            self.host_groups.add(group)
            self._send(tid, Command.PROP_VALUE_INSERTED, Prop.IPV6_MULTICAST_ADDRESS_TABLE, bytes(value))
        elif group in self.host_groups:
            self.host_groups.discard(group)
            self._send(tid, Command.PROP_VALUE_REMOVED, Prop.IPV6_MULTICAST_ADDRESS_TABLE, bytes(value))
        else:
            self._status(tid, Status.ITEM_NOT_FOUND)

    def _publish(self, now: float) -> None:
        """Register the local network data with the leader (ourselves) and tell the host."""
        if self.role != NetRole.LEADER:
            return  # registered when we become leader
        new_prefixes = dict(self.local_prefixes)
        new_routes = dict(self.local_routes)
        if new_prefixes == self.net_prefixes and new_routes == self.net_routes:
            return
        self.net_prefixes, self.net_routes = new_prefixes, new_routes
        self.netdata_version = (self.netdata_version + 1) & 0xFF
        self._push(Prop.THREAD_ON_MESH_NETS)
        self._push(Prop.THREAD_OFF_MESH_ROUTES)
        self._push(Prop.THREAD_LEADER_NETWORK_DATA)
        self._push(Prop.IPV6_ADDRESS_TABLE)

    # --- nodes --------------------------------------------------------------------------------------------

    def add_node(self, name: str, eui64: bytes | None, now: float) -> Node:
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        if eui64 is None:
            eui64 = hashlib.sha256(b"node" + name.encode()).digest()[:8]
        if len(eui64) != 8:
            raise ValueError("EUI-64 must be 8 bytes")
        node = Node(name, eui64, child_id=self._next_child_id)
        self._next_child_id = self._next_child_id % 511 + 1
        self.nodes[name] = node
        self._schedule_attach(node, now)
        return node

    def remove_node(self, name: str, now: float) -> None:
        node = self.nodes.pop(name)
        self._cancel(f"attach:{name}")
        if node.attached:
            node.attached = False
            self._child_table_changed(Command.PROP_VALUE_REMOVED, node)

    def _child_table_changed(self, command: Command, node: Node) -> None:
        """Tell the host about one child (INSERTED/REMOVED), then push the whole table."""
        self._send(0, command, Prop.THREAD_CHILD_TABLE,
                   pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True))
        self._push(Prop.THREAD_CHILD_TABLE)

    def _schedule_attach(self, node: Node, now: float) -> None:
        if self.role != NetRole.LEADER:
            return

        def attach(now: float) -> None:
            if self.role != NetRole.LEADER or self.nodes.get(node.name) is not node:
                return
            node.attached = True
            self._child_table_changed(Command.PROP_VALUE_INSERTED, node)

        self._after(now, self.config.attach_delay, f"attach:{node.name}", attach)

    # --- IPv6 datapath ------------------------------------------------------------------------------------

    def _stream_to_host(self, packet: bytes, prop: int = Prop.STREAM_NET) -> None:
        self._send(0, Command.PROP_VALUE_IS, prop, pack_prop(prop, (packet, b"")))

    def _host_stream(self, tid: int, value: bytes, now: float) -> None:
        try:
            packet, _meta = unpack_prop(Prop.STREAM_NET, value)
        except SpinelError:
            self._status(tid, Status.PARSE_ERROR)
            return
        pkt = ipv6.parse(packet)
        if pkt is None:
            self._status(tid, Status.PARSE_ERROR)
            return
        self._status(tid, Status.OK)
        if not self.if_up:
            return
        if pkt.dst in self.own_addresses():
            if pkt.icmp_type == ipv6.ICMPV6_ECHO_REQUEST:
                self._stream_to_host(ipv6.build_echo_reply(pkt))
            return
        if self.role == NetRole.LEADER:
            self.to_mesh.append(bytes(packet))

    def handle_mesh_packet(self, packet: bytes, now: float) -> None:
        """A packet a program in the mesh namespace sent: hand it to the host as STREAM_NET."""
        pkt = ipv6.parse(packet)
        if pkt is None or self.role != NetRole.LEADER:
            return
        if pkt.src.is_unspecified or pkt.icmp_type in _LOCAL_ICMP:
            return
        if (
            pkt.icmp_type == ipv6.ICMPV6_ECHO_REQUEST
            and self.ping_offload_mode == PING_OFFLOAD_ALL
            and pkt.dst in self.own_addresses()
        ):
            self.to_mesh.append(ipv6.build_echo_reply(pkt))
            return
        self._stream_to_host(bytes(packet[: 40 + len(pkt.payload)]))

    def _mle_advertisement(self, now: float) -> None:
        """Our own MLE multicast, which a real NCP also hands to the host."""
        if self.role == NetRole.DISABLED:
            return
        payload = b"\x00" + self.rng.randbytes(24)  # security suite 0, then an opaque secured body
        self._stream_to_host(ipv6.build_udp(self.link_local, ALL_NODES, MLE_PORT, MLE_PORT, payload))
        if self.config.mle_interval > 0:
            self._after(now, self.config.mle_interval, "mle", self._mle_advertisement)

    # --- introspection ------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Summary for the control socket: role, nodes and their addresses, network data."""
        return {
            "role": self.role.name.lower(),
            "if_up": self.if_up,
            "stack_up": self.stack_up,
            "dataset_committed": self.flash.committed,
            "network_name": self.dataset.network_name,
            "channel": self.dataset.channel,
            "pan_id": self.dataset.pan_id,
            "mesh_local_prefix": str(self.dataset.mesh_local_prefix) if self.dataset.mesh_local_prefix else None,
            "partition_id": self.partition_id,
            "rloc16": self.rloc16,
            "eui64": self.eui64.hex(),
            "addresses": [str(a) for a in self.own_addresses()],
            "multicast": sorted(str(g) for g in self.host_groups),
            "nodes": [
                {
                    "name": n.name,
                    "eui64": n.eui64.hex(),
                    "rloc16": self.node_rloc16(n) if n.attached else None,
                    "attached": n.attached,
                    "addresses": [str(a) for a in self.node_addresses(n)],
                }
                for n in self.nodes.values()
            ],
            "netdata": {
                "prefixes": [
                    {"prefix": str(p.prefix), "flags": p.flags, "stable": p.stable} for p in self.net_prefixes.values()
                ],
                "routes": [
                    {"prefix": str(r.prefix), "flags": r.flags, "stable": r.stable} for r in self.net_routes.values()
                ],
            },
        }
