"""The active and pending operational datasets the host writes, and the Border Agent's MeshCoP service.

Datasets are why a network forms: a complete active dataset (THREAD_ACTIVE_DATASET_TLVS, or
THREAD_ACTIVE_DATASET) is committed and can form one; per-property setters (channel, PAN ID, key...)
change the dataset but leave the node detached.  The dataset lives in the flash; writing one of another
network (other key, prefix, PAN...) voids what the flash kept of the old one.  After a write, OpenThread
pushes each dataset property that changed (the network key too), then the Border Agent state.

A pending dataset (THREAD_PENDING_DATASET_TLVS, or THREAD_PENDING_DATASET on 2023) is kept in the flash as
``otDatasetSetPendingTlvs`` keeps it; read back, its delay timer is what remains. When the delay passes it
becomes the active dataset with the role, children and network data kept (ot-ncp-ftd: the network data
pushed with a new version, then PHY_CHAN and the other changed properties), and is deleted. The 2025 NCP
takes it only if its active timestamp is newer (or its key differs); the 2023 one takes it regardless.
"""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING

from ncp.meshcop import Dataset, MeshCoPError, Timestamp
from ncp.spinel import Command, Prop, Status, pack, pack_prop, unpack_prop
from ncp.spinel.dataset import dataset_from_props

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = ["DATASET_PROPS", "PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE", "MeshCoP"]

# SPINEL_PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE (bSD): pushed by OpenThread since 2024; the driver reads it
# (ncp.border_agent) for the NCP's Thread version and its border agent's port.
PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE = 0x951
# Properties a SET of which writes (part of) the active dataset.
DATASET_PROPS = frozenset({
    Prop.PHY_CHAN, Prop.MAC_15_4_PANID, Prop.NET_NETWORK_NAME, Prop.NET_XPANID, Prop.NET_NETWORK_KEY,
    Prop.NET_PSKC, Prop.IPV6_ML_PREFIX, Prop.THREAD_ACTIVE_DATASET_TLVS, Prop.THREAD_ACTIVE_DATASET,
    Prop.THREAD_PENDING_DATASET_TLVS, Prop.THREAD_PENDING_DATASET,
})
PENDING_TIMER = "pending-delay"
# The whole-dataset properties: (MeshCoP TLVs, pending).
_WHOLE_DATASETS = {Prop.THREAD_ACTIVE_DATASET_TLVS: (True, False), Prop.THREAD_ACTIVE_DATASET: (False, False),
                   Prop.THREAD_PENDING_DATASET_TLVS: (True, True), Prop.THREAD_PENDING_DATASET: (False, True)}
# Dataset fields that make it another network.
_NETWORK_IDENTITY = ("network_key", "mesh_local_prefix", "extended_pan_id", "pan_id", "channel", "network_name")
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
_SECRET_SIZES = {
    Prop.NET_XPANID: (8, "extended_pan_id"),
    Prop.NET_NETWORK_KEY: (16, "network_key"),
    Prop.NET_PSKC: (16, "pskc"),
}


class MeshCoP:
    """Outlives a power-on: the Border Agent's id and port are chosen once, the dataset is in the flash."""

    def __init__(self, ncp: SimNcp, rng: random.Random) -> None:
        self.ncp = ncp
        self.border_agent_id = rng.randbytes(16)
        self.border_agent_port = 49152 + rng.randrange(16)
        self.pending_since = 0.0  # when the pending dataset's delay timer (re)started

    def set_property(self, prop: int, value: bytes) -> Status | None:
        """SET of one of :data:`DATASET_PROPS`; None if this NCP has no such property."""
        ds = self.ncp.dataset
        if prop == Prop.PHY_CHAN:
            ch = unpack_prop(prop, value)
            if not 11 <= ch <= 26:
                return Status.INVALID_ARGUMENT
            self.update(ds.with_(channel=ch))
        elif prop == Prop.MAC_15_4_PANID:
            self.update(ds.with_(pan_id=unpack_prop(prop, value)))
        elif prop == Prop.NET_NETWORK_NAME:
            name = unpack_prop(prop, value)
            if not 1 <= len(name.encode()) <= 16:
                return Status.INVALID_ARGUMENT
            self.update(ds.with_(network_name=name))
        elif prop in _SECRET_SIZES:
            size, attr = _SECRET_SIZES[prop]
            if len(value) != size:
                return Status.PARSE_ERROR
            self.update(ds.with_(**{attr: bytes(value)}))
        elif prop == Prop.IPV6_ML_PREFIX:
            if len(value) < 8:
                return Status.PARSE_ERROR
            raw = bytes(value[:8])
            self.update(ds.with_(mesh_local_prefix=ipaddress.IPv6Network((raw + bytes(8), 64))))
        elif prop in _WHOLE_DATASETS:
            return self._set_whole(prop, value)
        else:
            return None
        return Status.OK

    def _set_whole(self, prop: int, value: bytes) -> Status | None:
        """A whole active or pending dataset: MeshCoP TLVs (since 2024), or Spinel properties."""
        tlvs, pending = _WHOLE_DATASETS[prop]
        if tlvs and not self.ncp.generation.dataset_tlvs:
            return None
        try:
            dataset = Dataset.from_tlvs(value) if tlvs else dataset_from_props(unpack_prop(prop, value))
        except MeshCoPError:
            return Status.INVALID_ARGUMENT  # a SpinelError (the properties' form) is answered PARSE_ERROR
        (self.set_pending if pending else self.set_active)(dataset)
        return Status.OK

    # --- the pending dataset -------------------------------------------------------------------------------

    def set_pending(self, pending: Dataset) -> None:
        """Store (an empty one: delete) the pending dataset and start its delay timer."""
        flash, now = self.ncp.flash, self.ncp.now
        flash.pending = pending if pending != Dataset() else None
        self.ncp.save()
        self.start_delay_timer(now)

    def start_delay_timer(self, now: float) -> None:
        """(Re)start the stored pending dataset's delay from ``now``, as OpenThread does when it stores or
        restores one."""
        self.ncp.timers.cancel(PENDING_TIMER)
        pending = self.ncp.flash.pending
        self.pending_since = now
        if pending is not None and pending.delay_timer is not None:
            self.ncp.timers.after(now, pending.delay_timer / 1000, PENDING_TIMER, self._delay_passed)

    def pending_now(self) -> Dataset | None:
        """The stored pending dataset as a GET shows it: the delay timer counts what remains."""
        pending = self.ncp.flash.pending
        if pending is None or pending.delay_timer is None:
            return pending
        elapsed_ms = int((self.ncp.now - self.pending_since) * 1000)
        return pending.with_(delay_timer=max(0, pending.delay_timer - elapsed_ms))

    def _delay_passed(self, now: float) -> None:
        flash = self.ncp.flash
        pending, flash.pending = flash.pending, None
        if pending is None:
            return
        new, old = pending.as_active, flash.dataset
        newer = (new.active_timestamp or Timestamp(0)) > (old.active_timestamp or Timestamp(0))
        if not (newer or new.network_key != old.network_key or not self.ncp.generation.pending_needs_newer):
            self.ncp.save()  # the 2025 NCP drops a pending dataset that is not newer
            return
        flash.dataset = new  # the same network, moved: role, children, network data kept
        self.ncp.save()
        out = self.ncp.out
        if self.ncp.stack.attached:
            self.ncp.netdata.version = (self.ncp.netdata.version + 1) & 0xFF
            out.push(Prop.THREAD_LEADER_NETWORK_DATA)
            out.push(Prop.THREAD_ON_MESH_NETS)
            out.push(Prop.THREAD_OFF_MESH_ROUTES)
        for attr, prop in _DATASET_PUSHES:
            if getattr(old, attr) != getattr(new, attr):
                out.push(prop)
        self.push_border_agent()

    def set_active(self, new: Dataset) -> None:
        """A whole active dataset written: it replaces the old one; complete, it can form a network."""
        self.ncp.flash.committed = new.is_complete
        self.update(new)

    def update(self, new: Dataset) -> None:
        flash = self.ncp.flash
        old, flash.dataset = flash.dataset, new
        if any(getattr(old, attr) != getattr(new, attr) for attr in _NETWORK_IDENTITY):
            # another network: what the settings kept of the old one is void
            flash.led, flash.router_id, flash.children = False, None, {}
        self.ncp.save()
        for attr, prop in _DATASET_PUSHES:
            if getattr(old, attr) != getattr(new, attr):
                self.ncp.out.push(prop)
        self.push_border_agent()  # after any dataset write, changed or not

    def push_border_agent(self) -> None:
        if self.ncp.generation.border_agent:
            self.ncp.out.push(PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE)

    def udp_forward(self, value: bytes) -> None:
        """A datagram the host relays (THREAD_UDP_FORWARD_STREAM) to one of the NCP's sockets. Only the border
        agent's listens, and its DTLS is not modelled: like ot-ncp-ftd's to a ClientHello that carries no
        EC-JPAKE key share, its answer to any ClientHello is a fatal handshake_failure alert, sent twice."""
        payload, peer_port, peer, sock_port = unpack_prop(Prop.THREAD_UDP_FORWARD_STREAM, value)
        running = self.ncp.generation.border_agent and self.ncp.stack.attached
        if not running or sock_port != self.border_agent_port or payload[:1] != b"\x16" or payload[13:14] != b"\x01":
            return  # no socket there, or not a ClientHello: OpenThread drops it
        for sequence in (0, 1):
            alert = bytes.fromhex("15fefd0000") + sequence.to_bytes(6, "big") + bytes.fromhex("00020228")
            self.ncp.out.send(0, Command.PROP_VALUE_IS, Prop.THREAD_UDP_FORWARD_STREAM,
                              pack_prop(Prop.THREAD_UDP_FORWARD_STREAM, (alert, peer_port, peer, sock_port)))

    def border_agent_state(self) -> bytes:
        """BORDER_AGENT_MESHCOP_SERVICE_STATE: running, UDP port, the MeshCoP service TXT data."""
        ds = self.ncp.dataset
        stack = self.ncp.stack
        state = 0x0E31 if stack.attached else 0x0828 if stack.stack_up else 0x0820
        txt = [b"id=" + self.border_agent_id, b"rv=1", b"sb=" + state.to_bytes(4, "big"), b"tv=1.4.0",
               b"xa=" + self.ncp.flash.ext_addr]
        if ds.extended_pan_id is not None:
            txt.append(b"xp=" + ds.extended_pan_id)
        if ds.network_name is not None:
            txt.append(b"nn=" + ds.network_name.encode())
        if stack.attached:
            txt.append(b"pt=" + stack.partition_id.to_bytes(4, "big"))
            if ds.active_timestamp is not None:
                txt.append(b"at=" + ds.active_timestamp.to_bytes())
        port = self.border_agent_port if stack.attached else 0
        return pack("bS", stack.attached, port) + b"".join(bytes((len(t),)) + t for t in txt)
