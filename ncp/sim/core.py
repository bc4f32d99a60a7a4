"""The simulated OpenThread NCP, sans-I/O: :class:`SimNcp`, and how its subsystems fit together.

:class:`SimNcp` takes decoded Spinel frames from the host, IPv6 packets from the simulated mesh and the
passing of time, and answers with Spinel frames for the host and IPv6 packets for the mesh.  The I/O
glue (``ncp.sim.app``) moves bytes; everything a host can observe is decided by the core, so it is
tested without a pty or a namespace.

The real NCP is the authority: what is modelled was checked against ``ot-ncp-ftd`` (OpenThread
714aeeb70 of 2025, and 28f30b3ce of 2023 as ``ncp_generation="2023"``) and its ``ncp_base*.cpp``.
Each subsystem is a collaborator with its own module, which says what of OpenThread it follows:

- ``props``: Spinel property requests, handed to the subsystem that owns each property;
- ``outbox``: replies and pushes to the host (TID rules, the unsolicited update filter);
- ``stack``: NET_IF_UP / NET_STACK_UP / NET_ROLE and the attach state machine;
- ``meshcop``: the active dataset and the Border Agent state;
- ``netdata``: local and leader network data;
- ``addresses``: the NCP's and the nodes' addresses, and what the mesh namespace holds;
- ``topology``: the simulated nodes and the child, neighbor and router tables;
- ``datapath``: IPv6 between host and mesh, ping offload, the NCP's own MLE;
- ``flash``, ``timers``, ``generation``: settings kept across resets, named timers, build quirks.

RESET (and power-on) report LAST_STATUS RESET_POWER_ON on TID 0 and drop all runtime state: the
subsystems that hold it are created anew.  The flash, the simulated nodes (devices, not NCP state;
they only lose their attachment) and the Border Agent's identity persist.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import Any

from ncp.meshcop import Dataset
from ncp.netdata import ExternalRoute, OnMeshPrefix
from ncp.spinel import Command, Prop, SpinelFrame, Status, pack_prop

from .addresses import Addresses, MeshConfig
from .commissioning import Commissioning
from .config import SimConfig
from .datapath import Datapath
from .flash import Flash
from .generation import GENERATIONS
from .meshcop import MeshCoP
from .netdata import NetworkData
from .outbox import Outbox
from .props import Properties
from .radio import SharedRadio
from .stack import ThreadStack
from .timers import Timers
from .topology import Node, Topology

__all__ = ["SimNcp"]


class SimNcp:
    """OpenThread-like NCP state machine.

    Call :meth:`handle_frame`, :meth:`handle_mesh_packet` and :meth:`poll` with the current monotonic
    time; then drain :attr:`to_host` (Spinel frames) and :attr:`to_mesh` (IPv6 packets) and apply
    :meth:`mesh_config`.  :attr:`on_persist` is called with the new state whenever the dataset changes.
    """

    # runtime subsystems, created anew at every power-on (see _init_runtime)
    out: Outbox
    stack: ThreadStack
    netdata: NetworkData
    addresses: Addresses
    datapath: Datapath
    props: Properties
    commissioning: Commissioning
    radio: SharedRadio | None

    def __init__(self, config: SimConfig | None = None, persisted: dict[str, Any] | None = None) -> None:
        self.config = config or SimConfig()
        self.generation = GENERATIONS[self.config.ncp_generation]
        self.rng = random.Random(self.config.seed)
        self.eui64 = self.config.eui64 or self._random_eui64()
        self.flash = Flash(ext_addr=self.rng.randbytes(8))
        if persisted:
            stored_eui64 = self.flash.load(persisted, read_eui64=self.config.eui64 is None)
            if stored_eui64 is not None:
                self.eui64 = stored_eui64
        self.meshcop = MeshCoP(self, self.rng)
        self.topology = Topology(self)
        self.to_host: list[SpinelFrame] = []
        self.to_mesh: list[bytes] = []
        self.on_persist: Callable[[dict[str, Any]], None] | None = None
        self.timers = Timers()
        self.now = 0.0
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.timers.clear()
        self.radio = SharedRadio(self) if self.config.shared_radio else None
        self.out = Outbox(self)
        self.stack = ThreadStack(self)
        self.netdata = NetworkData(self)
        self.addresses = Addresses(self)
        self.datapath = Datapath(self)
        self.props = Properties(self)
        self.commissioning = Commissioning(self, self.rng)
        self.topology.detach_all()

    def _random_eui64(self) -> bytes:
        return bytes([0x18, 0xB4, 0x30]) + self.rng.randbytes(5)

    # --- persistence ------------------------------------------------------------------------------------

    def persisted(self) -> dict[str, Any]:
        return self.flash.to_state(self.eui64)

    def save(self) -> None:
        """The flash changed: hand the new state to :attr:`on_persist`."""
        if self.on_persist is not None:
            self.on_persist(self.persisted())

    @property
    def dataset(self) -> Dataset:
        return self.flash.dataset

    # --- lifecycle -------------------------------------------------------------------------------------

    def boot(self, now: float, status: int = Status.RESET_POWER_ON) -> None:
        """Power on (or restart): runtime state gone, the reset reason sent unsolicited on TID 0."""
        self.now = now
        self._init_runtime()
        if self.radio is not None:
            self.radio.start(now)
        self.meshcop.start_delay_timer(now)  # a stored pending dataset counts its whole delay again
        self.out.send(0, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(status)))

    def reset(self, now: float) -> None:
        """RESET (whatever its TID) is answered like a power-on: LAST_STATUS RESET_POWER_ON on TID 0."""
        self.boot(now, Status.RESET_POWER_ON)

    # --- input -----------------------------------------------------------------------------------------

    def handle_frame(self, frame: SpinelFrame, now: float) -> None:
        self.now = now
        if frame.iid != 0:
            return  # only interface 0 exists
        cmd = frame.command
        if cmd == Command.NOOP:
            self.out.status(frame.tid, Status.OK)
        elif cmd == Command.RESET:
            self.reset(now)
        elif cmd == Command.PROP_VALUE_GET:
            self.props.handle_get(frame.tid, frame.prop)
        elif cmd == Command.PROP_VALUE_SET:
            self.props.handle_set(frame.tid, frame.prop, frame.value, now)
        elif cmd == Command.PROP_VALUE_INSERT:
            self.props.handle_insert_remove(frame.tid, frame.prop, frame.value, insert=True)
        elif cmd == Command.PROP_VALUE_REMOVE:
            self.props.handle_insert_remove(frame.tid, frame.prop, frame.value, insert=False)
        else:
            self.out.status(frame.tid, Status.INVALID_COMMAND)

    def handle_mesh_packet(self, packet: bytes, now: float) -> None:
        """A packet a program in the mesh namespace sent: the NCP's to answer, the host's, or dropped."""
        self.now = now
        self.datapath.from_mesh(packet)

    def radio_heard(self, datagram: bytes, now: float) -> None:
        """An announcement of another NCP on the shared radio (``config.shared_radio``)."""
        self.now = now
        if self.radio is not None:
            self.radio.heard(datagram, now)

    def add_node(self, name: str, eui64: bytes | None, now: float, kind: str = "ftd") -> Node:
        self.now = now
        return self.topology.add(name, eui64, now, kind)

    def border_router(self, rloc16: int, prefixes: tuple[OnMeshPrefix, ...], routes: tuple[ExternalRoute, ...],
                      now: float) -> None:
        """Another border router on the mesh publishes these entries (none: it left)."""
        self.now = now
        self.netdata.set_peer(rloc16, prefixes, routes)

    def joiner_start(self, name: str, eui64: bytes | None, pskd: str, now: float, kind: str = "ftd") -> dict[str, Any]:
        """A device runs ``joiner start PSKD``: it becomes a node when the commissioner lets it in."""
        self.now = now
        eui64 = eui64 or self.topology.default_eui64(name)
        error = self.commissioning.device_joins(eui64, pskd)
        if error is not None:
            return {"name": name, "eui64": eui64.hex(), "joined": False, "error": error}
        node = self.topology.add(name, eui64, now, kind)
        return {"name": node.name, "eui64": node.eui64.hex(), "joined": True}

    def remove_node(self, name: str, now: float) -> None:
        self.now = now
        self.topology.remove(name, now)

    # --- time ---------------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def poll(self, now: float) -> None:
        """Run whatever timers are due."""
        self.now = now
        self.timers.run_due(now)

    # --- output -------------------------------------------------------------------------------------------

    def take(self) -> tuple[list[SpinelFrame], list[bytes]]:
        frames, packets = self.to_host, self.to_mesh
        self.to_host, self.to_mesh = [], []
        return frames, packets

    def take_radio(self) -> list[bytes]:
        """Datagrams for the other NCPs on the shared radio."""
        return self.radio.take() if self.radio is not None else []

    def mesh_config(self) -> MeshConfig:
        """Addresses of the attached nodes, their RLOCs, and the routes that lead to the border router."""
        return self.addresses.mesh_config()

    # --- introspection ------------------------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, Node]:
        return self.topology.nodes

    @property
    def link_local(self) -> ipaddress.IPv6Address:
        return self.addresses.link_local

    @property
    def netdata_version(self) -> int:
        return self.netdata.version

    def own_addresses(self) -> list[ipaddress.IPv6Address]:
        return self.addresses.own()

    def node_addresses(self, node: Node) -> list[ipaddress.IPv6Address]:
        return self.addresses.node_addresses(node)

    def node_rloc16(self, node: Node) -> int:
        return self.topology.node_rloc16(node)

    def node_rloc(self, node: Node) -> ipaddress.IPv6Address | None:
        return self.addresses.node_rloc(node)

    def state(self) -> dict[str, Any]:
        """Summary for the control socket: role, nodes and their addresses, network data."""
        stack, addresses, netdata = self.stack, self.addresses, self.netdata
        radio = {"radio": self.radio.state()} if self.radio is not None else {}
        return {
            **radio,
            "role": stack.role.name.lower(),
            "ncp_generation": self.generation.name,
            "if_up": stack.if_up,
            "stack_up": stack.stack_up,
            "dataset_committed": self.flash.committed,
            "network_name": self.dataset.network_name,
            "channel": self.dataset.channel,
            "pan_id": self.dataset.pan_id,
            "mesh_local_prefix": str(self.dataset.mesh_local_prefix) if self.dataset.mesh_local_prefix else None,
            "partition_id": stack.partition_id,
            "rloc16": stack.rloc16,
            "eui64": self.eui64.hex(),
            "addresses": [str(a) for a in addresses.own()],
            "multicast": sorted(str(g) for g in addresses.host_groups),
            "nodes": [
                {
                    "name": n.name,
                    "eui64": n.eui64.hex(),
                    "kind": n.kind,
                    "role": ("router" if n.is_router else "child") if n.attached else "detached",
                    "rloc16": self.node_rloc16(n) if n.attached else None,
                    "rloc": str(rloc) if (rloc := addresses.node_rloc(n)) is not None else None,
                    "attached": n.attached,
                    "addresses": [str(a) for a in addresses.node_addresses(n)],
                }
                for n in self.nodes.values()
            ],
            "netdata": {
                "prefixes": [
                    {"prefix": str(p.prefix), "flags": p.flags, "stable": p.stable, "rloc16": p.rloc16}
                    for p in netdata.leader_prefixes()
                ],
                "routes": [
                    {"prefix": str(r.prefix), "flags": r.flags, "stable": r.stable, "rloc16": r.rloc16}
                    for r in netdata.leader_routes()
                ],
            },
        }
