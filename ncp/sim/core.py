"""The simulated OpenThread NCP, sans-I/O.

:class:`SimNcp` takes decoded Spinel frames from the host, IPv6 packets from the simulated mesh and the
passing of time, and answers with Spinel frames for the host and IPv6 packets for the mesh.  The I/O
glue (``ncp.sim.app``) moves bytes; everything a host can observe is decided here, so it is tested
without a pty or a namespace.

The real NCP is the authority: what is modelled here was checked against ``ot-ncp-ftd`` (OpenThread
714aeeb70 of 2025, and 28f30b3ce of 2023 as ``ncp_generation="2023"``) and its ``ncp_base*.cpp``:

- a complete active dataset (THREAD_ACTIVE_DATASET_TLVS, or THREAD_ACTIVE_DATASET) forms a network;
  per-property setters alone leave the node detached.  RESET (and power-on) report LAST_STATUS
  RESET_POWER_ON on TID 0 and drop all runtime state; the dataset persists, and so do OpenThread's
  network info and child settings: a former leader bringing its stack up again (after RESET, a restart
  or a stack down/up) restores its RLOC16 and, with no router to answer it, leads again only after the
  whole attach cycle (``reattach_delay``), unless the host SETs NET_ROLE = leader; it lists each child
  it restored only once the child answered (``child_restore_delay`` after it leads), with its old RLOC16.
- SET NET_ROLE does what otThreadBecomeDetached/Child/Router/Leader do.  Requests on TID 0 get no answer
  (a DROPPED status goes out with the next push); host packets with an on-mesh source or a mesh-local
  destination are DROPPED unless the NCP owns their source (Ip6::SendRaw).
- changes a request causes are pushed (TID 0) right after the request's own reply: dataset properties
  (the network key too) after a dataset write, addresses, role and multicast groups after NET_IF_UP /
  NET_STACK_UP.  SLAAC addresses outlive the stack going down, as OpenThread's do.
- children are announced with VALUE_INSERTED / VALUE_REMOVED of one bare child entry, never with a
  whole-table VALUE_IS; router neighbors with VALUE_INSERTED / REMOVED of THREAD_NEIGHBOR_TABLE, whose
  entry keeps its struct length (``EncodeNeighborInfo`` opens a struct; ``EncodeChildInfo`` does not).
- FTD children (the kind ``ot-cli-ftd`` is by default) register no addresses, so
  THREAD_CHILD_TABLE_ADDRESSES lists them with an empty list; after the router selection jitter they
  become routers: out of the child table, into the router and neighbor tables, with a router RLOC16.
- packets for the NCP's own addresses reach the host unless the NCP consumes them: echo requests its
  ping offload mode answers (default: to its RLOC/ALOC), UDP to ports its own stack uses (MLE, TMF and,
  with ``dnssd_server``, DNS, which it answers itself); packets from a mesh-local source that are not
  for the NCP never leave the mesh.  The NCP's own MLE reaches the host as STREAM_NET_INSECURE.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ncp import ipv6
from ncp.meshcop import Dataset, MeshCoPError
from ncp.spinel import (
    INTERFACE_TYPE_THREAD,
    Command,
    NetRole,
    Prop,
    SpinelError,
    SpinelFrame,
    Status,
    pack,
    pack_prop,
    unpack,
    unpack_prop,
)
from ncp.spinel.dataset import dataset_from_props, dataset_to_props
from ncp.spinel.tables import (
    AddressEntry,
    ChildAddressesEntry,
    ChildEntry,
    NeighborEntry,
    OffMeshRoute,
    OnMeshNet,
    RouterEntry,
)

from . import dnssd
from .netdata import NET_FLAG_ON_MESH, ExternalRoute, OnMeshPrefix, encode_network_data

__all__ = ["GENERATIONS", "NODE_KINDS", "Generation", "MeshConfig", "Node", "SimConfig", "SimNcp"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = (4, 3)
# SPINEL_CAP_* exactly as ot-ncp-ftd lists them (both generations); no CMD_MULTI.
CAPS = [5, 12, 24, 32, 513, 518, 53, 54, 14, 512, 6, 520, 515, 517, 516, 522, 523, 48, 49, 1024, 1027, 1028,
        1026, 1029, 526, 528]
# SPINEL_PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE (bSD): pushed by OpenThread since 2024, unknown to the driver.
PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE = 0x951
MLE_PORT = 19788
TMF_PORT = 61631
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_ROUTERS = ipaddress.IPv6Address("ff02::2")
INFINITE = 0xFFFFFFFF
CHILD_TIMEOUT = 240
NEXT_HOP_NONE = 63  # router table: no next hop (ourselves, or a router we hear directly)
ALOC16_LEADER = 0xFC00
STATUS_STACK_NATIVE = 16384  # SPINEL_STATUS_STACK_NATIVE__BEGIN: + an otError
OT_ERROR_DETACHED = 16
# SPINEL_IPV6_ICMP_PING_OFFLOAD_*
PING_OFFLOAD_DISABLED, PING_OFFLOAD_UNICAST, PING_OFFLOAD_MULTICAST, PING_OFFLOAD_ALL, PING_OFFLOAD_RLOC_ALOC = range(5)
# SPINEL_THREAD_MODE_* as LinkFlagsToFlagByte sets them (never SECURE_DATA_REQUEST)
MODE_FULL_NETWORK_DATA = 0x01
MODE_FULL_THREAD_DEV = 0x02
MODE_RX_ON_WHEN_IDLE = 0x08
NODE_KINDS = ("ftd", "mtd")

# ICMPv6 types a kernel emits on its own (ND, MLD) that never cross a Thread border router.
# Dataset fields that make it another network.
_NETWORK_IDENTITY = ("network_key", "mesh_local_prefix", "extended_pan_id", "pan_id", "channel", "network_name")
# A restarted former leader that nobody answers gives its old RLOC16 up this long before it leads again.
ATTACH_ANY_PARTITION = 4.4
_LOCAL_ICMP = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})
_LOCATOR_IID = b"\x00\x00\x00\xff\xfe\x00"


@dataclass(frozen=True)
class Generation:
    """What differs between the OpenThread NCP builds the simulator imitates (seen on ot-ncp-ftd)."""

    name: str
    commit: str
    built: str  # __DATE__ __TIME__ of the build; here the commit's date
    dataset_tlvs: bool  # THREAD_ACTIVE_DATASET_TLVS exists (added in 2024); else PROP_NOT_FOUND
    ml_preferred: bool  # mesh-local addresses listed with preferred lifetime 0xFFFFFFFF (2023: 0)
    if_up_pushed: bool  # NET_IF_UP changes are pushed
    border_agent: bool  # BORDER_AGENT_MESHCOP_SERVICE_STATE is pushed
    locators_to_host: bool  # packets for the NCP's RLOC/ALOC reach the host (2023: dropped)
    # 2023: no NET_ROLE "disabled" (reported as detached), no ping offload mode RLOC_ALOC_ONLY (offload is
    # off by default, yet echo requests to an RLOC/ALOC are always answered by the NCP)
    modern_roles: bool

    @property
    def ncp_version(self) -> str:
        return f"OPENTHREAD/{self.commit}; SIMULATION; {self.built}"

    @property
    def unsol_update_list(self) -> list[int]:
        props = [112, 96, 97, 99, 65, 67, 72, 71, 5389, 82, 90, 91, 66, 73, 0, 0, 4609, 102, 33, 54, 68, 69,
                 70, 75, 34, 6400, 6413]
        return props if self.if_up_pushed else [p for p in props if p != Prop.NET_IF_UP]


GENERATIONS = {
    "2023": Generation("2023", "28f30b3ce", "Oct 23 2023 05:17:51", dataset_tlvs=False, ml_preferred=False,
                       if_up_pushed=False, border_agent=False, locators_to_host=False, modern_roles=False),
    "2025": Generation("2025", "714aeeb70", "Nov 14 2025 16:17:19", dataset_tlvs=True, ml_preferred=True,
                       if_up_pushed=True, border_agent=True, locators_to_host=True, modern_roles=True),
}


@dataclass
class SimConfig:
    leader_delay: float = 0.5  # stack up -> leader
    attach_delay: float = 0.2  # leader (or node added) -> child attached
    mle_interval: float = 10.0  # own MLE multicast forwarded to the host; 0 disables
    # FTD child -> router.  OpenThread waits a random time up to its router selection jitter (120 s).
    router_upgrade_delay: float = 120.0
    dnssd_server: bool = False  # OT_DNSSD_SERVER: UDP 53 to the NCP's addresses is answered by the NCP
    # A former leader bringing its stack up again (RESET, restart, stack down/up) with no router around runs
    # OpenThread's whole attach cycle before it leads again (ot-ncp-ftd 2023 and 2025: 30-34.5 s after a
    # restart), unless the host SETs NET_ROLE = leader.
    reattach_delay: float = 33.0
    # ...and lists each child it restored from its settings once the child answered (0.2-0.9 s after leading)
    child_restore_delay: float = 0.5
    ncp_generation: str = "2025"  # a key of GENERATIONS
    eui64: bytes | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.ncp_generation not in GENERATIONS:
            raise ValueError(f"ncp_generation must be one of {sorted(GENERATIONS)}")


@dataclass
class Node:
    """A simulated Thread device: an rx-on child of the simulated leader, an FTD one later a router."""

    name: str
    eui64: bytes
    kind: str = "ftd"
    child_id: int = 0
    link_quality: int = 3
    rssi: int = -45
    attached: bool = False
    router_id: int | None = None
    since: float = 0.0  # when it attached or became a router

    def __post_init__(self) -> None:
        if self.kind not in NODE_KINDS:
            raise ValueError(f"node kind must be one of {NODE_KINDS}")

    @property
    def is_router(self) -> bool:
        return self.router_id is not None

    @property
    def mode(self) -> int:
        """Spinel mode flags: rx-on, full network data, and full Thread device for an FTD."""
        ftd = MODE_FULL_THREAD_DEV if self.kind == "ftd" else 0
        return MODE_RX_ON_WHEN_IDLE | MODE_FULL_NETWORK_DATA | ftd

    def iid(self, salt: bytes) -> bytes:
        """Opaque, stable interface identifier for ``salt`` (a prefix), like RFC 7217."""
        return hashlib.sha256(b"gatewayd-sim" + self.eui64 + salt).digest()[:8]


@dataclass(frozen=True)
class MeshConfig:
    """What the mesh side (the TUN in the namespace) should hold right now."""

    addresses: frozenset[ipaddress.IPv6Address] = frozenset()
    on_link: frozenset[ipaddress.IPv6Network] = frozenset()
    routes: frozenset[ipaddress.IPv6Network] = frozenset()
    # (RLOC, ML-EID): what is sent to a node's RLOC reaches the programs bound to its ML-EID, as every
    # socket of a Thread node answers on its RLOC too
    aliases: frozenset[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]] = frozenset()
    # the source for off-mesh destinations: a node's OMR address, never a mesh-local one (as OpenThread
    # picks it; the NCP drops off-mesh packets from a mesh-local source)
    off_mesh_source: ipaddress.IPv6Address | None = None


@dataclass
class _Timer:
    when: float
    action: Callable[[float], None]
    name: str


@dataclass
class _Persistent:
    """What survives RESET and restarts (an NCP's flash)."""

    dataset: Dataset = field(default_factory=Dataset)
    committed: bool = False  # a complete active dataset was written
    ext_addr: bytes = b""
    # OpenThread's network info and child info settings: whether it led this network, its router id (it
    # keeps it when it leads again), and its children (EUI-64 -> child id)
    led: bool = False
    router_id: int | None = None
    children: dict[bytes, int] = field(default_factory=dict)


class SimNcp:
    """OpenThread-like NCP state machine.

    Call :meth:`handle_frame`, :meth:`handle_mesh_packet` and :meth:`poll` with the current monotonic
    time; then drain :attr:`to_host` (Spinel frames) and :attr:`to_mesh` (IPv6 packets) and apply
    :meth:`mesh_config`.  :attr:`on_persist` is called with the new state whenever the dataset changes.
    """

    def __init__(self, config: SimConfig | None = None, persisted: dict[str, Any] | None = None) -> None:
        self.config = config or SimConfig()
        self.generation = GENERATIONS[self.config.ncp_generation]
        self.rng = random.Random(self.config.seed)
        self.eui64 = self.config.eui64 or self._random_eui64()
        self.flash = _Persistent(ext_addr=self.rng.randbytes(8))
        if persisted:
            self._load(persisted)
        self.border_agent_id = self.rng.randbytes(16)
        self.border_agent_port = 49152 + self.rng.randrange(16)
        self.nodes: dict[str, Node] = {}
        self._next_child_id = 1
        self.to_host: list[SpinelFrame] = []
        self.to_mesh: list[bytes] = []
        self.on_persist: Callable[[dict[str, Any]], None] | None = None
        self._timers: list[_Timer] = []
        self.now = 0.0
        self._init_runtime()

    # --- runtime state --------------------------------------------------------------------------------

    def _init_runtime(self) -> None:
        self.if_up = False
        self._if_changed = False
        self.stack_up = False
        self.role = NetRole.DISABLED
        self.partition_id = 0
        self.router_id = 0
        self.session_id = 0
        self.allow_local_change = False
        self._publish_pending = False
        self.local_prefixes: dict[ipaddress.IPv6Network, OnMeshPrefix] = {}
        self.local_routes: dict[ipaddress.IPv6Network, ExternalRoute] = {}
        self.net_prefixes: dict[ipaddress.IPv6Network, OnMeshPrefix] = {}
        self.net_routes: dict[ipaddress.IPv6Network, ExternalRoute] = {}
        self._prefix_order: dict[ipaddress.IPv6Network, None] = {}  # first insertion order of local prefixes
        self._slaac: dict[ipaddress.IPv6Network, ipaddress.IPv6Address] = {}  # kept when the stack goes down
        self.netdata_version = 0
        self.ping_offload_mode = PING_OFFLOAD_RLOC_ALOC if self.generation.modern_roles else PING_OFFLOAD_DISABLED
        self.unsol_filter: set[int] = set()
        self.host_groups: dict[ipaddress.IPv6Address, None] = {}  # multicast groups the host subscribed
        self.host_addresses: dict[ipaddress.IPv6Address, AddressEntry] = {}  # unicast ones it added
        self._address_seq: dict[ipaddress.IPv6Address, int] = {}
        self._seq = 0
        self._pushed: dict[int, bytes] = {}
        self.extra_props: dict[int, bytes] = {}
        self.restored_rloc16: int | None = None  # the RLOC16 a former leader restored, until it gives it up
        self._restored_at = 0.0
        self._dropped_pending = False
        self._timers = []
        for node in self.nodes.values():
            node.attached = False
            node.router_id = None

    def _random_eui64(self) -> bytes:
        return bytes([0x18, 0xB4, 0x30]) + self.rng.randbytes(5)

    # --- persistence ------------------------------------------------------------------------------------

    def persisted(self) -> dict[str, Any]:
        return {
            "dataset": self.flash.dataset.hex(),
            "committed": self.flash.committed,
            "ext_addr": self.flash.ext_addr.hex(),
            "eui64": self.eui64.hex(),
            "led": self.flash.led,
            "router_id": self.flash.router_id,
            "children": {eui.hex(): child_id for eui, child_id in self.flash.children.items()},
        }

    def _load(self, state: dict[str, Any]) -> None:
        try:
            self.flash.dataset = Dataset.from_hex(state.get("dataset", ""))
            self.flash.committed = bool(state.get("committed")) and self.flash.dataset.is_complete
            if state.get("ext_addr"):
                self.flash.ext_addr = bytes.fromhex(state["ext_addr"])
            if state.get("eui64") and self.config.eui64 is None:
                self.eui64 = bytes.fromhex(state["eui64"])
            router_id = state.get("router_id")
            if isinstance(router_id, int) and 0 <= router_id < 63:
                self.flash.router_id = router_id
                self.flash.led = bool(state.get("led"))
            self.flash.children = {bytes.fromhex(eui): int(child_id)
                                   for eui, child_id in (state.get("children") or {}).items()
                                   if 1 <= int(child_id) <= 511 and len(bytes.fromhex(eui)) == 8}
        except (AttributeError, MeshCoPError, TypeError, ValueError) as exc:
            log.warning("ignoring unreadable simulator state: %s", exc)

    def _save(self) -> None:
        if self.on_persist is not None:
            self.on_persist(self.persisted())

    @property
    def dataset(self) -> Dataset:
        return self.flash.dataset

    # --- addresses ---------------------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self.role == NetRole.LEADER

    @property
    def rloc16(self) -> int:
        if self.attached:
            return self.router_id << 10
        return self.restored_rloc16 if self.restored_rloc16 is not None else 0xFFFE

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
        return ipaddress.IPv6Address(ml + _LOCATOR_IID + rloc16.to_bytes(2, "big"))

    def _is_locator(self, addr: ipaddress.IPv6Address) -> bool:
        """An RLOC or ALOC (mesh-local prefix, IID 0:ff:fe00:xxxx)."""
        ml = self._ml_prefix_bytes()
        return ml is not None and addr.packed[:14] == ml + _LOCATOR_IID

    def _in_mesh_local(self, addr: ipaddress.IPv6Address) -> bool:
        ml = self._ml_prefix_bytes()
        return ml is not None and addr.packed[:8] == ml

    def _is_on_mesh(self, addr: ipaddress.IPv6Address) -> bool:
        """In the mesh-local prefix or an on-mesh prefix of the leader's network data."""
        return self._in_mesh_local(addr) or any(
            p.flags & NET_FLAG_ON_MESH and addr in p.prefix for p in self.net_prefixes.values()
        )

    def slaac_prefixes(self) -> list[ipaddress.IPv6Network]:
        if not self.attached:
            return []
        return [p.prefix for p in self.net_prefixes.values() if p.slaac]

    def _update_slaac(self) -> None:
        """SLAAC follows the network data while attached; going down keeps the addresses, as in OpenThread."""
        if not self.attached:
            return
        salt = self.flash.ext_addr
        self._slaac = {
            p: ipaddress.IPv6Address(
                p.network_address.packed[:8] + hashlib.sha256(salt + p.network_address.packed).digest()[:8]
            )
            for p in self.slaac_prefixes()
        }

    def own_slaac(self) -> list[ipaddress.IPv6Address]:
        """SLAAC addresses, except in prefixes where the host added an address (OpenThread skips those)."""
        return [a for p, a in self._slaac.items() if not any(h in p for h in self.host_addresses)]

    def _address_entries(self) -> list[AddressEntry]:
        """IPV6_ADDRESS_TABLE: newest address first, as OpenThread pushes each onto its list."""
        ml_preferred = INFINITE if self.generation.ml_preferred else 0
        found: list[AddressEntry] = []
        if self.if_up:
            found.append(AddressEntry(self.link_local, 64, INFINITE, INFINITE))
        found += self.host_addresses.values()
        if self.if_up and self.stack_up and self.ml_eid is not None:
            found.append(AddressEntry(self.ml_eid, 64, ml_preferred, INFINITE))
        locators: tuple[int, ...] = ()
        if self.attached:
            locators = (self.rloc16, ALOC16_LEADER)
        elif self.restored_rloc16 is not None:
            locators = (self.restored_rloc16,)  # no ALOC: it is no leader yet
        if self.if_up and self.stack_up:
            for rloc16 in locators:
                locator = self._rloc_addr(rloc16)
                if locator is not None:
                    found.append(AddressEntry(locator, 64, ml_preferred, INFINITE))
        found += [AddressEntry(a, 64, INFINITE, INFINITE) for a in self.own_slaac()]
        seq = {}
        for entry in found:
            if entry.address not in self._address_seq:
                self._seq += 1
                self._address_seq[entry.address] = self._seq
            seq[entry.address] = self._address_seq[entry.address]
        self._address_seq = seq
        return sorted(found, key=lambda e: -seq[e.address])

    def own_addresses(self) -> list[ipaddress.IPv6Address]:
        return [e.address for e in self._address_entries()]

    def _multicast_groups(self) -> list[ipaddress.IPv6Address]:
        """IPV6_MULTICAST_ADDRESS_TABLE in the order OpenThread lists it."""
        if not self.if_up:
            return []
        groups = []
        ml = self._ml_prefix_bytes()
        if self.stack_up and ml is not None:
            # realm-local all-Thread-nodes groups: ff33/ff32:40:<mesh-local prefix>::1
            groups += [ipaddress.IPv6Address(b"\xff" + scope + b"\x00\x40" + ml + b"\x00\x00\x00\x01")
                       for scope in (b"\x33", b"\x32")]
        groups += reversed(self.host_groups)
        if self.attached:
            groups += [ALL_ROUTERS, ipaddress.IPv6Address("ff03::2")]
        groups += [ALL_NODES, ipaddress.IPv6Address("ff03::1"), ipaddress.IPv6Address("ff03::fc")]
        return groups

    def node_addresses(self, node: Node) -> list[ipaddress.IPv6Address]:
        """The node's endpoint addresses (ML-EID, SLAAC), those an MTD child registers with its parent."""
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
        if node.router_id is not None:
            return node.router_id << 10
        return self.rloc16 | node.child_id

    def node_rloc(self, node: Node) -> ipaddress.IPv6Address | None:
        """The node's RLOC address, which every Thread node answers on."""
        return self._rloc_addr(self.node_rloc16(node)) if node.attached else None

    def mesh_config(self) -> MeshConfig:
        """Addresses of the attached nodes, their RLOCs, and the routes that lead to the border router."""
        attached = [n for n in self.nodes.values() if n.attached]
        addrs = frozenset(a for n in attached for a in self.node_addresses(n))
        aliases = frozenset(
            (rloc, eids[0]) for n in attached if (rloc := self.node_rloc(n)) and (eids := self.node_addresses(n))
        )
        ml = self.dataset.mesh_local_prefix
        if not self.attached or ml is None:
            return MeshConfig(addrs, aliases=aliases)
        on_link = {ml, *(p.prefix for p in self.net_prefixes.values())}
        routes = {ipaddress.IPv6Network("::/0"), *(r.prefix for r in self.net_routes.values())}
        source = next((a for n in attached for a in self.node_addresses(n) if not self._in_mesh_local(a)), None)
        return MeshConfig(addrs, frozenset(on_link), frozenset(routes - on_link), aliases, source)

    # --- time ---------------------------------------------------------------------------------------------

    def _after(self, now: float, delay: float, name: str, action: Callable[[float], None]) -> None:
        self._timers = [t for t in self._timers if t.name != name]
        self._timers.append(_Timer(now + delay, action, name))

    def _cancel(self, name: str) -> None:
        self._timers = [t for t in self._timers if t.name != name and not t.name.startswith(name + ":")]

    def next_deadline(self) -> float | None:
        return min((t.when for t in self._timers), default=None)

    def poll(self, now: float) -> None:
        """Run whatever timers are due."""
        self.now = now
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

    def _reply(self, tid: int, command: int, prop: int, value: bytes) -> None:
        """The answer to a request.  TID 0 asks for none (``NcpBase::EnqueueResponse``): nothing is sent,
        except that a DROPPED status goes out (TID 0) with the next pushed property, once however many
        packets were dropped meanwhile."""
        if tid:
            self._send(tid, command, prop, value)
        elif prop == Prop.LAST_STATUS and value == pack_prop(Prop.LAST_STATUS, int(Status.DROPPED)):
            self._dropped_pending = True

    def _status(self, tid: int, status: int) -> None:
        self._reply(tid, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(status)))

    def _flush_dropped(self) -> None:
        if self._dropped_pending:
            self._dropped_pending = False
            if Prop.LAST_STATUS not in self.unsol_filter:
                self._send(0, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(Status.DROPPED)))

    def _push(self, prop: int) -> None:
        """Unsolicited IS (TID 0) of a property's current value, unless the host filtered it."""
        value = self._get(prop)
        if value is None:
            return
        self._pushed[prop] = value
        self._flush_dropped()
        if prop not in self.unsol_filter:
            self._send(0, Command.PROP_VALUE_IS, prop, value)

    def _push_changed(self, prop: int) -> None:
        """:meth:`_push` if the value differs from the one last pushed (an empty table at first)."""
        if self._get(prop) != self._pushed.get(prop, b""):
            self._push(prop)

    def _announce(self, command: Command, prop: int, value: bytes) -> None:
        """VALUE_INSERTED / VALUE_REMOVED (TID 0) of one entry, unless the host filtered the property."""
        self._flush_dropped()
        if prop not in self.unsol_filter:
            self._send(0, command, prop, value)

    def _push_border_agent(self) -> None:
        if self.generation.border_agent:
            self._push(PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE)

    def take(self) -> tuple[list[SpinelFrame], list[bytes]]:
        frames, packets = self.to_host, self.to_mesh
        self.to_host, self.to_mesh = [], []
        return frames, packets

    # --- lifecycle -------------------------------------------------------------------------------------

    def boot(self, now: float, status: int = Status.RESET_POWER_ON) -> None:
        """Power on (or restart): runtime state gone, the reset reason sent unsolicited on TID 0."""
        self.now = now
        self._init_runtime()
        self._send(0, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(status)))

    def reset(self, now: float) -> None:
        """RESET (whatever its TID) is answered like a power-on: LAST_STATUS RESET_POWER_ON on TID 0."""
        self.boot(now, Status.RESET_POWER_ON)

    # --- host frames ----------------------------------------------------------------------------------

    def handle_frame(self, frame: SpinelFrame, now: float) -> None:
        self.now = now
        if frame.iid != 0:
            return  # only interface 0 exists
        cmd = frame.command
        if cmd == Command.NOOP:
            self._status(frame.tid, Status.OK)
        elif cmd == Command.RESET:
            self.reset(now)
        elif cmd == Command.PROP_VALUE_GET:
            value = self._get(frame.prop)
            error = self._get_error(frame.prop)
            if error is not None:
                self._status(frame.tid, error)
            elif value is None:
                self._status(frame.tid, Status.PROP_NOT_FOUND)
            else:
                self._reply(frame.tid, Command.PROP_VALUE_IS, frame.prop, value)
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
        if prop == PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE:
            return self._border_agent_state() if self.generation.border_agent else None
        if prop in self.extra_props:
            return self.extra_props[prop]
        getter = self._getters().get(prop)
        return pack_prop(prop, getter()) if getter is not None else None

    def _get_error(self, prop: int) -> int | None:
        """The LAST_STATUS a GET of ``prop`` gets instead of a value right now, if any."""
        if prop == Prop.THREAD_LEADER_ADDR and not self.attached:
            return STATUS_STACK_NATIVE + OT_ERROR_DETACHED  # otThreadGetLeaderRloc fails
        return None

    def _getters(self) -> dict[int, Callable[[], Any]]:
        ds = self.dataset
        getters: dict[int, Callable[[], Any]] = {
            Prop.LAST_STATUS: lambda: int(Status.OK),
            Prop.PROTOCOL_VERSION: lambda: PROTOCOL_VERSION,
            Prop.NCP_VERSION: lambda: self.generation.ncp_version,
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
            Prop.NET_ROLE: lambda: int(
                self.role if self.role != NetRole.DISABLED or self.generation.modern_roles else NetRole.DETACHED
            ),
            Prop.NET_NETWORK_NAME: lambda: ds.network_name or "",
            Prop.NET_XPANID: lambda: ds.extended_pan_id or bytes(8),
            Prop.NET_NETWORK_KEY: lambda: ds.network_key or bytes(16),
            Prop.NET_PSKC: lambda: ds.pskc or bytes(16),
            Prop.NET_KEY_SEQUENCE_COUNTER: lambda: 0,
            Prop.NET_PARTITION_ID: lambda: self.partition_id,
            Prop.THREAD_RLOC16: lambda: self.rloc16,
            Prop.THREAD_LEADER_RID: lambda: self.router_id,
            Prop.THREAD_LEADER_ADDR: lambda: self._rloc_addr(self.rloc16) or ipaddress.IPv6Address("::"),
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
            Prop.THREAD_ACTIVE_DATASET: lambda: dataset_to_props(ds),
            Prop.IPV6_LL_ADDR: lambda: self.link_local,
            Prop.THREAD_CHILD_TIMEOUT: lambda: CHILD_TIMEOUT,
            Prop.THREAD_MODE: lambda: MODE_RX_ON_WHEN_IDLE | MODE_FULL_THREAD_DEV | MODE_FULL_NETWORK_DATA,
            Prop.IPV6_ML_ADDR: lambda: self.ml_eid or ipaddress.IPv6Address("::"),
            Prop.IPV6_ML_PREFIX: lambda: (
                (ds.mesh_local_prefix.network_address, 64) if ds.mesh_local_prefix else ("::", 64)
            ),
            Prop.IPV6_ADDRESS_TABLE: self._address_entries,
            Prop.IPV6_MULTICAST_ADDRESS_TABLE: lambda: [(g,) for g in self._multicast_groups()],
            Prop.IPV6_ICMP_PING_OFFLOAD: lambda: self.ping_offload_mode != PING_OFFLOAD_DISABLED,
            Prop.IPV6_ICMP_PING_OFFLOAD_MODE: lambda: self.ping_offload_mode,
            Prop.UNSOL_UPDATE_FILTER: lambda: sorted(self.unsol_filter),
            Prop.UNSOL_UPDATE_LIST: lambda: self.generation.unsol_update_list,
        }
        if self.generation.dataset_tlvs:
            getters[Prop.THREAD_ACTIVE_DATASET_TLVS] = ds.to_tlvs
        return getters

    def _border_agent_state(self) -> bytes:
        """BORDER_AGENT_MESHCOP_SERVICE_STATE: running, UDP port, the MeshCoP service TXT data."""
        ds = self.dataset
        state = 0x0E31 if self.attached else 0x0828 if self.stack_up else 0x0820
        txt = [b"id=" + self.border_agent_id, b"rv=1", b"sb=" + state.to_bytes(4, "big"), b"tv=1.4.0",
               b"xa=" + self.flash.ext_addr]
        if ds.extended_pan_id is not None:
            txt.append(b"xp=" + ds.extended_pan_id)
        if ds.network_name is not None:
            txt.append(b"nn=" + ds.network_name.encode())
        if self.attached:
            txt.append(b"pt=" + self.partition_id.to_bytes(4, "big"))
            if ds.active_timestamp is not None:
                txt.append(b"at=" + ds.active_timestamp.to_bytes())
        port = self.border_agent_port if self.attached else 0
        return pack("bS", self.attached, port) + b"".join(bytes((len(t),)) + t for t in txt)

    def _on_mesh_nets(self) -> list[OnMeshNet]:
        """The leader's entries, then this NCP's local ones (0xFFFE until registered)."""
        return [
            OnMeshNet(p.prefix.network_address, p.prefix.prefixlen, p.stable, p.flags, local, p.rloc16, p.flags_ext)
            for local, table in ((False, self.net_prefixes), (True, self.local_prefixes))
            for p in table.values()
        ]

    def _off_mesh_routes(self) -> list[OffMeshRoute]:
        routes = []
        for local, table in ((False, self.net_routes), (True, self.local_routes)):
            for r in table.values():
                ours = r.rloc16 == self.rloc16 and self.attached
                routes.append(
                    OffMeshRoute(r.prefix.network_address, r.prefix.prefixlen, r.stable, r.flags, local, ours, r.rloc16)
                )
        return routes

    def _ordered(self, prefixes: dict, routes: dict) -> list[OnMeshPrefix | ExternalRoute]:
        order = list(self._prefix_order)
        entries: list[OnMeshPrefix | ExternalRoute] = [*prefixes.values(), *routes.values()]
        return sorted(entries, key=lambda e: order.index(e.prefix) if e.prefix in order else len(order))

    def _leader_network_data(self) -> bytes:
        if not self.attached:
            return b""
        entries = self._ordered(self.net_prefixes, self.net_routes)
        return encode_network_data(entries, leader_session_id=self.session_id)

    def _local_network_data(self) -> bytes:
        return encode_network_data(self._ordered(self.local_prefixes, self.local_routes))

    def _attached_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.attached]

    def _children(self) -> list[Node]:
        return [n for n in self._attached_nodes() if not n.is_router]

    def _routers(self) -> list[Node]:
        return [n for n in self._attached_nodes() if n.is_router]

    def _age(self, node: Node, period: int) -> int:
        """Seconds since the node was last heard; it refreshes its link every ``period`` seconds."""
        return int(max(0.0, self.now - node.since)) % period

    def _child_entry(self, n: Node) -> ChildEntry:
        lq, rssi = n.link_quality, n.rssi
        age = self._age(n, CHILD_TIMEOUT)
        return ChildEntry(n.eui64, self.node_rloc16(n), CHILD_TIMEOUT, age, self.netdata_version & 0xFF, lq, rssi,
                          n.mode, rssi)

    def _neighbor_entry(self, n: Node) -> NeighborEntry:
        if n.is_router:
            age, frames = self._age(n, 32), (1, 2)
        else:
            age, frames = self._age(n, CHILD_TIMEOUT), (0, 1)
        return NeighborEntry(n.eui64, self.node_rloc16(n), age, n.link_quality, n.rssi, n.mode, not n.is_router,
                             *frames, n.rssi)

    def _child_table(self) -> list[ChildEntry]:
        return [self._child_entry(n) for n in self._children()]

    def _child_addresses(self) -> list[ChildAddressesEntry]:
        """Only MTD children register their addresses; an FTD child is listed with none."""
        return [
            ChildAddressesEntry(n.eui64, self.node_rloc16(n), self.node_addresses(n) if n.kind == "mtd" else [])
            for n in self._children()
        ]

    def _neighbor_table(self) -> list[NeighborEntry]:
        return [self._neighbor_entry(n) for n in self._children() + self._routers()]

    def _router_table(self) -> list[RouterEntry]:
        """Allocated router ids in order, this leader included; routers we hear directly have no next hop."""
        if not self.attached:
            return []
        rows = [RouterEntry(self.flash.ext_addr, self.rloc16, self.router_id, NEXT_HOP_NONE, 0, 0, 0, 0, False)]
        for n in self._routers():
            lq = n.link_quality
            rows.append(RouterEntry(n.eui64, self.node_rloc16(n), n.router_id, NEXT_HOP_NONE, 0, lq, lq,
                                    self._age(n, 32), True))
        return sorted(rows, key=lambda r: r.router_id)

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
    # Dataset fields and the property OpenThread pushes when one changes, in its order.
    _DATASET_PUSHES = (
        ("mesh_local_prefix", Prop.IPV6_ML_ADDR),
        ("network_key", Prop.NET_KEY_SEQUENCE_COUNTER),
        ("channel", Prop.PHY_CHAN),
        ("pan_id", Prop.MAC_15_4_PANID),
        ("network_name", Prop.NET_NETWORK_NAME),
        ("extended_pan_id", Prop.NET_XPANID),
        ("network_key", Prop.NET_NETWORK_KEY),
        ("pskc", Prop.NET_PSKC),
    )

    def _set(self, tid: int, prop: int, value: bytes, now: float) -> None:
        if prop in (Prop.STREAM_NET, Prop.STREAM_NET_INSECURE):
            self._host_stream(tid, value, now)
            return
        if prop in self._NEEDS_DISABLED and self.stack_up:
            self._status(tid, Status.INVALID_STATE)
            return
        mark = len(self.to_host)
        try:
            status = self._apply_set(prop, value, now)
        except SpinelError:
            status = Status.PARSE_ERROR
        caused = self.to_host[mark:]  # what the change pushed goes out after the reply
        del self.to_host[mark:]
        if status is None:
            self._status(tid, Status.PROP_NOT_FOUND)
        elif status != Status.OK:
            self._status(tid, status)
        else:
            reply = self._get(prop)
            self._reply(tid, Command.PROP_VALUE_IS, prop, reply if reply is not None else value)
        self.to_host += caused
        if status == Status.OK:
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
        elif prop == Prop.THREAD_ACTIVE_DATASET_TLVS and self.generation.dataset_tlvs:
            try:
                new = Dataset.from_tlvs(value)
            except MeshCoPError:
                return Status.INVALID_ARGUMENT
            self._set_active_dataset(new)
        elif prop == Prop.THREAD_ACTIVE_DATASET:
            self._set_active_dataset(dataset_from_props(unpack_prop(prop, value)))
        elif prop == Prop.NET_IF_UP:
            up = unpack_prop(prop, value)
            if not up and self.stack_up:
                self._stack(False, now)
            self._if_changed, self.if_up = up != self.if_up, up
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
            self.ping_offload_mode = PING_OFFLOAD_ALL if unpack_prop(prop, value) else PING_OFFLOAD_DISABLED
        elif prop == Prop.IPV6_ICMP_PING_OFFLOAD_MODE:
            mode = unpack_prop(prop, value)
            last = PING_OFFLOAD_RLOC_ALOC if self.generation.modern_roles else PING_OFFLOAD_ALL
            self.ping_offload_mode = mode if mode <= last else PING_OFFLOAD_DISABLED
        elif prop == Prop.NET_ROLE:
            return self._set_role(unpack_prop(prop, value), now)
        elif prop == Prop.UNSOL_UPDATE_FILTER:
            self.unsol_filter = set(unpack_prop(prop, value))
        elif prop in self._STORED:
            unpack_prop(prop, value)  # validate
            self.extra_props[prop] = bytes(value)
        else:
            return None
        return Status.OK

    def _after_set(self, prop: int, now: float) -> None:
        """What a successful SET causes, pushed after its reply."""
        if prop == Prop.NET_IF_UP and self._if_changed:
            if self.if_up:
                self._push(Prop.IPV6_LL_ADDR)
            self._push_changed(Prop.IPV6_ADDRESS_TABLE)
            if self.generation.if_up_pushed:
                self._push(Prop.NET_IF_UP)
            self._push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        elif prop in (Prop.THREAD_ACTIVE_DATASET_TLVS, Prop.THREAD_ACTIVE_DATASET):
            self._maybe_form(now)
        elif prop == Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE and self._publish_pending:
            self._publish_pending = False
            self._publish(now)

    def _set_active_dataset(self, new: Dataset) -> None:
        """A whole active dataset written: it replaces the old one; complete, it can form a network."""
        self.flash.committed = new.is_complete
        self._update_dataset(new)

    def _update_dataset(self, new: Dataset) -> None:
        old, self.flash.dataset = self.flash.dataset, new
        if any(getattr(old, attr) != getattr(new, attr) for attr in _NETWORK_IDENTITY):
            # another network: what the settings kept of the old one is void
            self.flash.led, self.flash.router_id, self.flash.children = False, None, {}
        self._save()
        for attr, prop in self._DATASET_PUSHES:
            if getattr(old, attr) != getattr(new, attr):
                self._push(prop)
        self._push_border_agent()  # after any dataset write, changed or not

    def _stack(self, up: bool, now: float) -> None:
        if up == self.stack_up:
            return
        self.stack_up = up
        restoring = False
        if up:
            self.role = NetRole.DETACHED
            self._restored_at = now
            # Mle::Start: a node whose settings say it was a router restores its RLOC16 and tries to take
            # its old place again before it attaches anew
            restoring = self.flash.committed and self.flash.led and self.flash.router_id is not None
            if restoring:
                self.restored_rloc16 = self.flash.router_id << 10
        else:
            self._leave(now)
            self.role = NetRole.DISABLED
            self.restored_rloc16 = None
        self._push_changed(Prop.IPV6_ADDRESS_TABLE)
        self._push(Prop.NET_ROLE)
        self._push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        self._push_border_agent()
        if restoring:
            # Nobody answers a lone former leader: it gives its RLOC16 up, attaches to any partition, and
            # finding none leads again (ot-ncp-ftd: the RLOC went 4.2-4.7 s before it led).
            delay = self.config.reattach_delay
            self._after(now, max(0.0, delay - ATTACH_ANY_PARTITION), "reattach", self._give_up_rloc16)
            self._after(now, delay, "leader", self._become_leader)
        elif up:
            self._maybe_form(now)
        if up and self.config.mle_interval > 0:
            self._after(now, 0.05, "mle", self._mle_advertisement)

    def _give_up_rloc16(self, now: float) -> None:
        if self.restored_rloc16 is not None and not self.attached:
            self.restored_rloc16 = None
            self._push_changed(Prop.IPV6_ADDRESS_TABLE)

    def _maybe_form(self, now: float) -> None:
        """Become leader after a moment, if the stack is up and a complete dataset was committed."""
        if (self.stack_up and self.role == NetRole.DETACHED and self.flash.committed
                and not any(t.name == "leader" for t in self._timers)):
            self._after(now, self.config.leader_delay, "leader", self._become_leader)

    def _set_role(self, role: int, now: float) -> Status:
        """SET NET_ROLE: otThreadBecomeDetached/Child/Router/Leader, as ncp_base_mtd.cpp maps the values."""
        if role > NetRole.LEADER:
            return Status.OK  # no such role: ignored, answered with the current one
        if not self.stack_up:
            return Status.INVALID_STATE
        if role == NetRole.LEADER:
            if not self.flash.committed:
                return Status.INVALID_STATE
            if not self.attached:
                self._become_leader(now)
        elif role == NetRole.DETACHED:
            self._detach(now)
        elif not self.attached:
            # BecomeRouter needs to be attached; BecomeChild refuses while an attach is under way
            return Status.INVALID_STATE if role == NetRole.ROUTER else Status.BUSY
        # a leader asked to be a router or a child stays leader (no better partition to attach to)
        return Status.OK

    def _detach(self, now: float) -> None:
        """BecomeDetached: the RLOC16 goes, and the node attaches to any partition anew (leading alone)."""
        was = self.attached
        self._leave(now)
        self.role = NetRole.DETACHED
        self.restored_rloc16 = None
        self._push_changed(Prop.IPV6_ADDRESS_TABLE)
        if was:
            self._push(Prop.NET_ROLE)
            self._push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
            self._push_border_agent()
        self._after(now, self.config.leader_delay, "leader", self._become_leader)
        if self.config.mle_interval > 0:
            self._after(now, 0.05, "mle", self._mle_advertisement)

    def _become_leader(self, now: float) -> None:
        if not (self.stack_up and self.flash.committed) or self.attached:
            return
        for name in ("leader", "reattach"):
            self._cancel(name)
        self.role = NetRole.LEADER
        self.restored_rloc16 = None
        # BecomeLeader keeps the previous router id; the partition is new
        self.router_id = self.flash.router_id if self.flash.router_id is not None else self.rng.randrange(0, 63)
        if (self.flash.led, self.flash.router_id) != (True, self.router_id):
            self.flash.led, self.flash.router_id = True, self.router_id
            self._save()
        self.partition_id = self.rng.getrandbits(32)
        self.session_id = self.rng.getrandbits(16)
        self.netdata_version = self.rng.randrange(256)
        if self.local_prefixes or self.local_routes:
            self._register()
        self._update_slaac()
        self._push_changed(Prop.IPV6_ADDRESS_TABLE)
        self._push(Prop.NET_ROLE)
        self._push(Prop.NET_PARTITION_ID)
        self._push(Prop.THREAD_LEADER_NETWORK_DATA)
        self._push(Prop.THREAD_ON_MESH_NETS)
        self._push(Prop.THREAD_OFF_MESH_ROUTES)
        self._push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        self._push_border_agent()
        restored = [n for n in self.nodes.values() if n.eui64 in self.flash.children]
        for node in self.nodes.values():
            if node not in restored:
                self._schedule_attach(node, now)
        if restored:
            # children restored from settings are listed again once they answered their Child Update
            self._after(now, self.config.child_restore_delay, "restore",
                        lambda now: self._restore_children(restored, now))
        if self.config.mle_interval > 0:
            self._after(now, 0.05, "mle", self._mle_advertisement)

    def _restore_children(self, nodes: list[Node], now: float) -> None:
        for node in nodes:
            if self.attached and self.nodes.get(node.name) is node and not node.attached:
                self._list_child(node, now, since=self._restored_at)

    def _leave(self, now: float) -> None:
        for name in ("leader", "reattach", "restore", "mle", "attach", "upgrade"):
            self._cancel(name)
        for node in self.nodes.values():
            node.attached = False
            node.router_id = None
        self.net_prefixes.clear()
        self.net_routes.clear()

    # --- INSERT / REMOVE ----------------------------------------------------------------------------------

    def _insert_remove(self, tid: int, prop: int, value: bytes, now: float, *, insert: bool) -> None:
        handlers = {
            Prop.IPV6_MULTICAST_ADDRESS_TABLE: self._multicast,
            Prop.IPV6_ADDRESS_TABLE: self._host_address,
            Prop.THREAD_ON_MESH_NETS: self._local_netdata,
            Prop.THREAD_OFF_MESH_ROUTES: self._local_netdata,
        }
        handler = handlers.get(prop)
        if handler is None:
            self._status(tid, Status.PROP_NOT_FOUND)  # no INSERT/REMOVE handler, as OpenThread answers
            return
        mark = len(self.to_host)
        try:
            status = handler(prop, value, insert)
        except (SpinelError, ValueError):
            status = Status.PARSE_ERROR
        caused = self.to_host[mark:]  # pushed after the reply
        del self.to_host[mark:]
        if status != Status.OK:
            self._status(tid, status)
        else:
            command = Command.PROP_VALUE_INSERTED if insert else Command.PROP_VALUE_REMOVED
            self._reply(tid, command, prop, bytes(value))
        self.to_host += caused

    def _multicast(self, prop: int, value: bytes, insert: bool) -> Status:
        """The host subscribing the interface to a group or leaving it; twice, or unknown, is no error."""
        (group,) = unpack("6", value)
        if not group.is_multicast:
            return Status.INVALID_ARGUMENT
        if insert:
            self.host_groups[group] = None
        else:
            self.host_groups.pop(group, None)
        self._push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        return Status.OK

    def _host_address(self, prop: int, value: bytes, insert: bool) -> Status:
        """An address the host adds (``6CLL``) or removes (``6``); removing one it never added is no error."""
        if insert:
            address, plen, preferred, valid = unpack("6CLL", value)
            if address.is_multicast or plen > 128:
                return Status.INVALID_ARGUMENT
            lifetimes = (INFINITE if preferred else 0, INFINITE if valid else 0)
            self.host_addresses[address] = AddressEntry(address, plen, *lifetimes)
        else:
            (address,) = unpack("6", value)
            self.host_addresses.pop(address, None)
        self._push_changed(Prop.IPV6_ADDRESS_TABLE)
        return Status.OK

    def _local_netdata(self, prop: int, value: bytes, insert: bool) -> Status:
        if not self.allow_local_change:
            return Status.INVALID_STATE
        if insert:
            addr, plen, stable, flags = unpack("6CbC", value)
        else:
            addr, plen = unpack("6C", value)
        if plen > 128:
            return Status.PARSE_ERROR
        prefix = ipaddress.IPv6Network((addr, plen), strict=False)
        on_mesh = prop == Prop.THREAD_ON_MESH_NETS
        table: dict = self.local_prefixes if on_mesh else self.local_routes
        if not insert:
            table.pop(prefix, None)  # an unknown prefix is no error
            if prefix not in self.local_prefixes and prefix not in self.local_routes:
                self._prefix_order.pop(prefix, None)
            return Status.OK
        if on_mesh:
            if flags >> 6 == 2:  # reserved preference: otBorderRouterAddOnMeshPrefix refuses it
                return Status.INVALID_ARGUMENT
            ext = value[22] if len(value) >= 23 else 0  # after is-local and RLOC16: extended flags
            table[prefix] = OnMeshPrefix(prefix, stable, flags, ext)
        else:
            table[prefix] = ExternalRoute(prefix, stable, flags)
        self._prefix_order.setdefault(prefix)
        return Status.OK

    def _register(self) -> None:
        """Register the local network data with the leader (ourselves), stamping it with our RLOC16."""
        rloc = self.rloc16
        self.local_prefixes = {k: OnMeshPrefix(p.prefix, p.stable, p.flags, p.flags_ext, rloc)
                               for k, p in self.local_prefixes.items()}
        self.local_routes = {k: ExternalRoute(r.prefix, r.stable, r.flags, rloc) for k, r in self.local_routes.items()}
        changed = (self.net_prefixes, self.net_routes) != (self.local_prefixes, self.local_routes)
        self.net_prefixes, self.net_routes = dict(self.local_prefixes), dict(self.local_routes)
        if changed:
            self.netdata_version = (self.netdata_version + 1) & 0xFF
        self._update_slaac()

    def _publish(self, now: float) -> None:
        """ALLOW_LOCAL_NET_DATA_CHANGE went back to false: register, and report what changed."""
        if not self.attached:
            return  # registered when we become leader
        before = (self.net_prefixes, self.net_routes)
        self._register()
        if (self.net_prefixes, self.net_routes) == before:
            return
        self._push_changed(Prop.IPV6_ADDRESS_TABLE)
        self._push(Prop.THREAD_LEADER_NETWORK_DATA)
        self._push(Prop.THREAD_ON_MESH_NETS)
        self._push(Prop.THREAD_OFF_MESH_ROUTES)

    # --- nodes --------------------------------------------------------------------------------------------

    def add_node(self, name: str, eui64: bytes | None, now: float, kind: str = "ftd") -> Node:
        self.now = now
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        if eui64 is None:
            eui64 = hashlib.sha256(b"node" + name.encode()).digest()[:8]
        if len(eui64) != 8:
            raise ValueError("EUI-64 must be 8 bytes")
        node = Node(name, eui64, kind, child_id=self.flash.children.get(eui64) or self._free_child_id())
        self.nodes[name] = node
        self._schedule_attach(node, now)
        return node

    def remove_node(self, name: str, now: float) -> None:
        self.now = now
        node = self.nodes.pop(name)
        self._cancel(f"attach:{name}")
        self._cancel(f"upgrade:{name}")
        self._store_child(node, False)
        if not node.attached:
            return
        if node.is_router:
            entry = pack("t(ESLCcCbLLc)", self._neighbor_entry(node))
            self._announce(Command.PROP_VALUE_REMOVED, Prop.THREAD_NEIGHBOR_TABLE, entry)
        else:
            entry = pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True)
            self._announce(Command.PROP_VALUE_REMOVED, Prop.THREAD_CHILD_TABLE, entry)
        node.attached = False
        node.router_id = None

    def _free_child_id(self) -> int:
        used = {n.child_id for n in self.nodes.values()} | set(self.flash.children.values())
        for _ in range(511):
            child_id, self._next_child_id = self._next_child_id, self._next_child_id % 511 + 1
            if child_id not in used:
                return child_id
        raise ValueError("no child id left")

    def _schedule_attach(self, node: Node, now: float) -> None:
        if not self.attached:
            return

        def attach(now: float) -> None:
            if self.attached and self.nodes.get(node.name) is node:
                self._list_child(node, now, since=now)

        self._after(now, self.config.attach_delay, f"attach:{node.name}", attach)

    def _list_child(self, node: Node, now: float, since: float) -> None:
        """The node is (again) our child: announced, kept in the settings, a router later if it is an FTD."""
        node.attached, node.router_id, node.since = True, None, since
        entry = pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True)
        self._announce(Command.PROP_VALUE_INSERTED, Prop.THREAD_CHILD_TABLE, entry)
        self._store_child(node, True)
        delay = self.config.router_upgrade_delay
        if node.kind == "ftd" and delay >= 0 and math.isfinite(delay):
            self._after(now, delay, f"upgrade:{node.name}", lambda now: self._upgrade(node, now))

    def _store_child(self, node: Node, child: bool) -> None:
        """Keep the child table in the settings, as OpenThread does for each child that attaches or goes."""
        if child:
            if self.flash.children.get(node.eui64) == node.child_id:
                return
            self.flash.children[node.eui64] = node.child_id
        elif self.flash.children.pop(node.eui64, None) is None:
            return
        self._save()

    def _upgrade(self, node: Node, now: float) -> None:
        """An FTD child becomes a router: a router neighbor appears, then the child entry goes."""
        if not self.attached or self.nodes.get(node.name) is not node or not node.attached or node.is_router:
            return
        child = pack_prop(Prop.THREAD_CHILD_TABLE, self._child_entry(node), element=True)
        used = {self.router_id} | {n.router_id for n in self._routers()}
        node.router_id = self.rng.choice([rid for rid in range(63) if rid not in used])
        node.since = now
        self._store_child(node, False)
        neighbor = pack("t(ESLCcCbLLc)", self._neighbor_entry(node))
        self._announce(Command.PROP_VALUE_INSERTED, Prop.THREAD_NEIGHBOR_TABLE, neighbor)
        self._announce(Command.PROP_VALUE_REMOVED, Prop.THREAD_CHILD_TABLE, child)

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
        if (self._is_on_mesh(pkt.src) or self._in_mesh_local(pkt.dst)) and pkt.src not in self.own_addresses():
            # Ip6::SendRaw: from the host, an on-mesh source or a mesh-local destination needs a source the
            # NCP owns (its own addresses and those the host added)
            self._status(tid, Status.DROPPED)
            return
        self._status(tid, Status.OK)
        if not self.if_up:
            return
        if pkt.dst in self.own_addresses():
            if pkt.icmp_type == ipv6.ICMPV6_ECHO_REQUEST:
                self._stream_to_host(ipv6.build_echo_reply(pkt))
            return
        if self.attached:
            self.to_mesh.append(bytes(packet))

    def _handles_echo(self, dst: ipaddress.IPv6Address) -> bool:
        """Whether the ping offload mode has the NCP answer an echo request to ``dst`` itself."""
        mode = self.ping_offload_mode
        locator = not dst.is_multicast and dst.packed[8:14] == _LOCATOR_IID  # OpenThread checks the IID only
        if locator and (mode == PING_OFFLOAD_RLOC_ALOC or not self.generation.modern_roles):
            return True  # 2023: an RLOC/ALOC is answered whatever the mode
        if mode == PING_OFFLOAD_ALL:
            return True
        if mode == PING_OFFLOAD_UNICAST:
            return not dst.is_multicast
        return mode == PING_OFFLOAD_MULTICAST and dst.is_multicast

    def _ports_in_use(self) -> set[int]:
        ports = {MLE_PORT, TMF_PORT}
        if self.config.dnssd_server:
            ports.add(dnssd.PORT)
        return ports

    def handle_mesh_packet(self, packet: bytes, now: float) -> None:
        """A packet a program in the mesh namespace sent: the NCP's to answer, the host's, or dropped."""
        self.now = now
        pkt = ipv6.parse(packet)
        if pkt is None or not self.attached:
            return
        if pkt.src.is_unspecified or pkt.icmp_type in _LOCAL_ICMP:
            return
        for_ncp = pkt.dst in self.own_addresses() or (
            pkt.dst.is_multicast and pkt.dst in self._multicast_groups()
        )
        if not for_ncp:
            if self._in_mesh_local(pkt.src):
                return  # a mesh-local source never leaves the mesh
            self._stream_to_host(bytes(packet[: 40 + len(pkt.payload)]))
            return
        if pkt.icmp_type == ipv6.ICMPV6_ECHO_REQUEST and self._handles_echo(pkt.dst):
            src = pkt.dst
            if pkt.dst.is_multicast:  # answered from a unicast address of the group's scope
                src = self.link_local if pkt.dst.packed[1] & 0x0F <= 2 else self.ml_eid or self.link_local
            self.to_mesh.append(ipv6.build_echo_reply(pkt, src))
            return
        ports = pkt.udp_ports
        if ports is not None and ports[1] in self._ports_in_use():
            if ports[1] == dnssd.PORT and not pkt.dst.is_multicast:
                response = dnssd.answer(pkt.payload[8:])
                if response is not None:
                    self.to_mesh.append(ipv6.build_udp(pkt.dst, pkt.src, dnssd.PORT, ports[0], response, hlim=64))
            return
        if self._is_locator(pkt.dst) and not self.generation.locators_to_host:
            return
        self._stream_to_host(bytes(packet[: 40 + len(pkt.payload)]))

    def _mle_advertisement(self, now: float) -> None:
        """Our own MLE (parent requests while detached, advertisements as leader), also handed to the host."""
        if not self.stack_up:
            return
        dst = ALL_NODES if self.attached else ALL_ROUTERS
        # security suite 0, security control (key id mode 2, level 5), frame counter, key source and index,
        # then an opaque encrypted body and MIC
        header = b"\x00\x15" + self.rng.getrandbits(32).to_bytes(4, "little") + bytes(4) + b"\x01"
        payload = header + self.rng.randbytes(24)
        udp = ipv6.build_udp(self.link_local, dst, MLE_PORT, MLE_PORT, payload)
        self._stream_to_host(udp, Prop.STREAM_NET_INSECURE)
        if self.config.mle_interval > 0:
            self._after(now, self.config.mle_interval, "mle", self._mle_advertisement)

    # --- introspection ------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Summary for the control socket: role, nodes and their addresses, network data."""
        return {
            "role": self.role.name.lower(),
            "ncp_generation": self.generation.name,
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
                    "kind": n.kind,
                    "role": ("router" if n.is_router else "child") if n.attached else "detached",
                    "rloc16": self.node_rloc16(n) if n.attached else None,
                    "rloc": str(rloc) if (rloc := self.node_rloc(n)) is not None else None,
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
