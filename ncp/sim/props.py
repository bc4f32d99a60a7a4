"""Spinel property requests: which subsystem answers a GET, takes a SET, INSERT or REMOVE, and how.

The host sees the NCP only through properties, so this table is the simulator's whole surface; it holds
no Thread state itself (only the values of properties that are merely stored) and hands each request to
the subsystem that owns it.  As on ot-ncp-ftd, what a request causes is pushed (TID 0) right after the
request's own reply, and a property without a handler answers PROP_NOT_FOUND.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ncp.spinel import (
    INTERFACE_TYPE_THREAD,
    Command,
    NetRole,
    Prop,
    SpinelError,
    Status,
    pack_prop,
    unpack_prop,
)
from ncp.spinel.dataset import dataset_to_props

from .datapath import PING_OFFLOAD_DISABLED
from .generation import CAPS, PROTOCOL_VERSION
from .meshcop import DATASET_PROPS, PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE
from .topology import CHILD_TIMEOUT, MODE_FULL_NETWORK_DATA, MODE_FULL_THREAD_DEV, MODE_RX_ON_WHEN_IDLE

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = ["Properties"]

STATUS_STACK_NATIVE = 16384  # SPINEL_STATUS_STACK_NATIVE__BEGIN: + an otError
OT_ERROR_DETACHED = 16

# Properties OpenThread takes and reports back without the simulator modelling them.
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
# Write-only properties a SET of which is answered LAST_STATUS OK, not IS of the property.
_STATUS_ANSWERED = frozenset({Prop.MESHCOP_JOINER_COMMISSIONING, Prop.THREAD_UDP_FORWARD_STREAM})
# Properties a SET of which is refused (INVALID_STATE) while the stack is up.
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


class Properties:
    """Runtime state: the values of the merely stored properties."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        self.extra_props: dict[int, bytes] = {}

    # --- GET ----------------------------------------------------------------------------------------------

    def get(self, prop: int) -> bytes | None:
        """The encoded current value of ``prop``; None if this NCP has no such property."""
        if prop == PROP_BORDER_AGENT_MESHCOP_SERVICE_STATE:
            return self.ncp.meshcop.border_agent_state() if self.ncp.generation.border_agent else None
        if prop in self.extra_props:
            return self.extra_props[prop]
        getter = self._getters().get(prop)
        return pack_prop(prop, getter()) if getter is not None else None

    def _get_error(self, prop: int) -> int | None:
        """The LAST_STATUS a GET of ``prop`` gets instead of a value right now, if any."""
        if prop == Prop.THREAD_LEADER_ADDR and not self.ncp.stack.attached:
            return STATUS_STACK_NATIVE + OT_ERROR_DETACHED  # otThreadGetLeaderRloc fails
        return None

    def handle_get(self, tid: int, prop: int) -> None:
        value = self.get(prop)
        error = self._get_error(prop)
        if error is not None:
            self.ncp.out.status(tid, error)
        elif value is None:
            self.ncp.out.status(tid, Status.PROP_NOT_FOUND)
        else:
            self.ncp.out.reply(tid, Command.PROP_VALUE_IS, prop, value)

    def _getters(self) -> dict[int, Callable[[], Any]]:
        ncp = self.ncp
        ds, stack, addresses, netdata, topology = ncp.dataset, ncp.stack, ncp.addresses, ncp.netdata, ncp.topology
        generation = ncp.generation
        commissioning = ncp.commissioning
        commissioning.check_attached()
        getters: dict[int, Callable[[], Any]] = {
            Prop.LAST_STATUS: lambda: int(Status.OK),
            Prop.PROTOCOL_VERSION: lambda: PROTOCOL_VERSION,
            # a firmware a DFU installed (ncp/sim/dfu.py) reports its own version
            Prop.NCP_VERSION: lambda: getattr(ncp, "firmware_version", "") or generation.ncp_version,
            Prop.INTERFACE_TYPE: lambda: INTERFACE_TYPE_THREAD,
            Prop.VENDOR_ID: lambda: 0,
            Prop.CAPS: lambda: CAPS,
            Prop.INTERFACE_COUNT: lambda: 1,
            Prop.HWADDR: lambda: ncp.eui64,
            Prop.MAC_15_4_LADDR: lambda: ncp.flash.ext_addr,
            Prop.MAC_15_4_SADDR: lambda: stack.rloc16,
            Prop.PHY_CHAN: lambda: ds.channel if ds.channel is not None else 11,
            Prop.PHY_CHAN_SUPPORTED: lambda: list(range(11, 27)),
            Prop.MAC_15_4_PANID: lambda: ds.pan_id if ds.pan_id is not None else 0xFFFF,
            Prop.NET_IF_UP: lambda: stack.if_up,
            Prop.NET_STACK_UP: lambda: stack.stack_up,
            Prop.NET_ROLE: lambda: int(
                stack.role if stack.role != NetRole.DISABLED or generation.modern_roles else NetRole.DETACHED
            ),
            Prop.NET_NETWORK_NAME: lambda: ds.network_name or "",
            Prop.NET_XPANID: lambda: ds.extended_pan_id or bytes(8),
            Prop.NET_NETWORK_KEY: lambda: ds.network_key or bytes(16),
            Prop.NET_PSKC: lambda: ds.pskc or bytes(16),
            Prop.NET_KEY_SEQUENCE_COUNTER: lambda: 0,
            Prop.NET_PARTITION_ID: lambda: stack.partition_id,
            Prop.THREAD_RLOC16: lambda: stack.rloc16,
            Prop.THREAD_LEADER_RID: lambda: stack.router_id if stack.leader_rloc16 == stack.rloc16
            else stack.leader_rloc16 >> 10,
            Prop.THREAD_LEADER_ADDR: lambda: addresses.rloc_addr(stack.leader_rloc16) or ipaddress.IPv6Address("::"),
            Prop.THREAD_NETWORK_DATA_VERSION: lambda: netdata.version & 0xFF,
            Prop.THREAD_STABLE_NETWORK_DATA_VERSION: lambda: netdata.version & 0xFF,
            Prop.THREAD_ON_MESH_NETS: netdata.on_mesh_nets,
            Prop.THREAD_OFF_MESH_ROUTES: netdata.off_mesh_routes,
            Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE: lambda: netdata.allow_local_change,
            Prop.THREAD_LEADER_NETWORK_DATA: netdata.leader_tlvs,
            Prop.THREAD_NETWORK_DATA: netdata.local_tlvs,
            Prop.THREAD_CHILD_TABLE: topology.child_table,
            Prop.THREAD_NEIGHBOR_TABLE: topology.neighbor_table,
            Prop.THREAD_ROUTER_TABLE: topology.router_table,
            Prop.THREAD_CHILD_TABLE_ADDRESSES: topology.child_addresses,
            Prop.THREAD_ACTIVE_DATASET: lambda: dataset_to_props(ds),
            Prop.THREAD_PENDING_DATASET: lambda: dataset_to_props(pending) if (pending := ncp.meshcop.pending_now())
            else [],
            Prop.IPV6_LL_ADDR: lambda: addresses.link_local,
            Prop.THREAD_CHILD_TIMEOUT: lambda: CHILD_TIMEOUT,
            Prop.THREAD_MODE: lambda: MODE_RX_ON_WHEN_IDLE | MODE_FULL_THREAD_DEV | MODE_FULL_NETWORK_DATA,
            Prop.IPV6_ML_ADDR: lambda: addresses.ml_eid or ipaddress.IPv6Address("::"),
            Prop.IPV6_ML_PREFIX: lambda: (
                (ds.mesh_local_prefix.network_address, 64) if ds.mesh_local_prefix else ("::", 64)
            ),
            Prop.IPV6_ADDRESS_TABLE: addresses.entries,
            Prop.IPV6_MULTICAST_ADDRESS_TABLE: lambda: [(g,) for g in addresses.multicast_groups()],
            Prop.IPV6_ICMP_PING_OFFLOAD: lambda: ncp.datapath.ping_offload_mode != PING_OFFLOAD_DISABLED,
            Prop.IPV6_ICMP_PING_OFFLOAD_MODE: lambda: ncp.datapath.ping_offload_mode,
            Prop.UNSOL_UPDATE_FILTER: lambda: sorted(ncp.out.unsol_filter),
            Prop.UNSOL_UPDATE_LIST: lambda: generation.unsol_update_list,
            Prop.MESHCOP_COMMISSIONER_STATE: lambda: int(commissioning.state),
            Prop.MESHCOP_COMMISSIONER_SESSION_ID: lambda: commissioning.session_id,
            Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL: lambda: commissioning.provisioning_url,
            Prop.MESHCOP_COMMISSIONER_JOINERS: commissioning.joiner_table,
            Prop.MESHCOP_JOINER_STATE: lambda: int(commissioning.joiner_state),
        }
        if generation.dataset_tlvs:
            getters[Prop.THREAD_ACTIVE_DATASET_TLVS] = ds.to_tlvs
            getters[Prop.THREAD_PENDING_DATASET_TLVS] = lambda: pending.to_tlvs() if (
                pending := ncp.meshcop.pending_now()) else b""
        return getters

    # --- SET ----------------------------------------------------------------------------------------------

    def handle_set(self, tid: int, prop: int, value: bytes, now: float) -> None:
        ncp = self.ncp
        if prop in (Prop.STREAM_NET, Prop.STREAM_NET_INSECURE):
            ncp.datapath.from_host(tid, value)
            return
        if prop in _NEEDS_DISABLED and ncp.stack.stack_up:
            ncp.out.status(tid, Status.INVALID_STATE)
            return
        mark = len(ncp.to_host)
        try:
            status = self._apply_set(prop, value, now)
        except SpinelError:
            status = Status.PARSE_ERROR
        caused = ncp.to_host[mark:]  # what the change pushed goes out after the reply
        del ncp.to_host[mark:]
        if status is None:
            ncp.out.status(tid, Status.PROP_NOT_FOUND)
        elif status != Status.OK or prop in _STATUS_ANSWERED:
            ncp.out.status(tid, status)
        else:
            reply = self.get(prop)
            ncp.out.reply(tid, Command.PROP_VALUE_IS, prop, reply if reply is not None else value)
        ncp.to_host += caused
        if status == Status.OK:
            self._after_set(prop, now)

    def _apply_set(self, prop: int, value: bytes, now: float) -> Status | None:
        ncp = self.ncp
        if prop in DATASET_PROPS:
            return ncp.meshcop.set_property(prop, value)
        if prop == Prop.NET_IF_UP:
            ncp.stack.set_if_up(unpack_prop(prop, value), now)
        elif prop == Prop.NET_STACK_UP:
            return ncp.stack.set_stack_up(unpack_prop(prop, value), now)
        elif prop == Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE:
            ncp.netdata.set_allow_local_change(unpack_prop(prop, value))
        elif prop == Prop.IPV6_ICMP_PING_OFFLOAD:
            ncp.datapath.set_ping_offload(unpack_prop(prop, value))
        elif prop == Prop.IPV6_ICMP_PING_OFFLOAD_MODE:
            ncp.datapath.set_ping_offload_mode(unpack_prop(prop, value))
        elif prop == Prop.NET_ROLE:
            return ncp.stack.set_role(unpack_prop(prop, value), now)
        elif prop == Prop.MESHCOP_COMMISSIONER_STATE:
            return ncp.commissioning.set_state(value, now)
        elif prop == Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL:
            return ncp.commissioning.set_url(value)
        elif prop == Prop.MESHCOP_JOINER_COMMISSIONING:
            return ncp.commissioning.set_joiner_commissioning(value, now)
        elif prop == Prop.THREAD_UDP_FORWARD_STREAM:
            ncp.meshcop.udp_forward(value)
        elif prop == Prop.UNSOL_UPDATE_FILTER:
            ncp.out.unsol_filter = set(unpack_prop(prop, value))
        elif prop in _STORED:
            unpack_prop(prop, value)  # validate
            self.extra_props[prop] = bytes(value)
        else:
            return None
        return Status.OK

    def _after_set(self, prop: int, now: float) -> None:
        """What a successful SET causes, pushed after its reply."""
        if prop == Prop.NET_IF_UP:
            self.ncp.stack.after_if_up()
        elif prop in (Prop.THREAD_ACTIVE_DATASET_TLVS, Prop.THREAD_ACTIVE_DATASET):
            self.ncp.stack.maybe_form(now)
        elif prop == Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE:
            self.ncp.netdata.after_allow_local_change(now)

    # --- INSERT / REMOVE ----------------------------------------------------------------------------------

    def handle_insert_remove(self, tid: int, prop: int, value: bytes, *, insert: bool) -> None:
        ncp = self.ncp
        handlers: dict[int, Callable[[int, bytes, bool], Status]] = {
            Prop.IPV6_MULTICAST_ADDRESS_TABLE: ncp.addresses.change_group,
            Prop.IPV6_ADDRESS_TABLE: ncp.addresses.change_address,
            Prop.THREAD_ON_MESH_NETS: ncp.netdata.change,
            Prop.THREAD_OFF_MESH_ROUTES: ncp.netdata.change,
            Prop.MESHCOP_COMMISSIONER_JOINERS: ncp.commissioning.change_joiner,
        }
        handler = handlers.get(prop)
        if handler is None:
            ncp.out.status(tid, Status.PROP_NOT_FOUND)  # no INSERT/REMOVE handler, as OpenThread answers
            return
        mark = len(ncp.to_host)
        try:
            status = handler(prop, value, insert)
        except (SpinelError, ValueError):
            status = Status.PARSE_ERROR
        caused = ncp.to_host[mark:]  # pushed after the reply
        del ncp.to_host[mark:]
        if status != Status.OK:
            ncp.out.status(tid, status)
        else:
            command = Command.PROP_VALUE_INSERTED if insert else Command.PROP_VALUE_REMOVED
            ncp.out.reply(tid, command, prop, bytes(value))
        ncp.to_host += caused
