"""The Thread interface and its role: NET_IF_UP, NET_STACK_UP, NET_ROLE and becoming leader.

This is the state machine a host waits on (detached -> leader) and the one that decides when the mesh
exists at all: nodes attach, network data registers and SLAAC addresses appear only while leading.  As
in ot-ncp-ftd, SET NET_ROLE does what otThreadBecomeDetached/Child/Router/Leader do, and a former leader
bringing its stack up again (after RESET, a restart or a stack down/up) restores its RLOC16 and, with no
router to answer it, leads again only after the whole attach cycle (``reattach_delay``), unless the host
SETs NET_ROLE = leader; it lists each child it restored only once the child answered
(``child_restore_delay`` after it leads), with its old RLOC16.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ncp.spinel import NetRole, Prop, Status

if TYPE_CHECKING:
    from .core import SimNcp
    from .radio import Announcement
    from .topology import Node

__all__ = ["ATTACH_ANY_PARTITION", "ThreadStack"]

# A restarted former leader that nobody answers gives its old RLOC16 up this long before it leads again.
ATTACH_ANY_PARTITION = 4.4


class ThreadStack:
    """Runtime state: interface and stack up, the role, and what this NCP is while it leads."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        self.if_up = False
        self._if_changed = False
        self.stack_up = False
        self.role = NetRole.DISABLED
        self.partition_id = 0
        self.router_id = 0
        self.session_id = 0
        self.restored_rloc16: int | None = None  # the RLOC16 a former leader restored, until it gives it up
        self._restored_at = 0.0

    @property
    def attached(self) -> bool:
        """Leading, or (on a shared radio) a router of another NCP's partition."""
        return self.role in (NetRole.LEADER, NetRole.ROUTER)

    @property
    def leader_rloc16(self) -> int:
        """Ours while leading; on a shared radio as a router, the leader's."""
        radio = self.ncp.radio
        leader = radio.leader_rloc16() if radio is not None and self.role == NetRole.ROUTER else None
        return self.rloc16 if leader is None else leader

    @property
    def rloc16(self) -> int:
        if self.attached:
            return self.router_id << 10
        return self.restored_rloc16 if self.restored_rloc16 is not None else 0xFFFE

    # --- SETs from the host ---------------------------------------------------------------------------------

    def set_if_up(self, up: bool, now: float) -> None:
        if not up and self.stack_up:
            self._stack(False, now)
        self._if_changed, self.if_up = up != self.if_up, up

    def after_if_up(self) -> None:
        """What NET_IF_UP changed, pushed after its reply."""
        if not self._if_changed:
            return
        out = self.ncp.out
        if self.if_up:
            out.push(Prop.IPV6_LL_ADDR)
        out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        if self.ncp.generation.if_up_pushed:
            out.push(Prop.NET_IF_UP)
        out.push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)

    def set_stack_up(self, up: bool, now: float) -> Status:
        if up and not self.if_up:
            return Status.INVALID_STATE
        self._stack(up, now)
        return Status.OK

    def set_role(self, role: int, now: float) -> Status:
        """SET NET_ROLE: otThreadBecomeDetached/Child/Router/Leader, as ncp_base_mtd.cpp maps the values."""
        if role > NetRole.LEADER:
            return Status.OK  # no such role: ignored, answered with the current one
        if not self.stack_up:
            return Status.INVALID_STATE
        if role == NetRole.LEADER:
            if not self.ncp.flash.committed:
                return Status.INVALID_STATE
            if not self.attached:
                self.become_leader(now)
        elif role == NetRole.DETACHED:
            self._detach(now)
        elif not self.attached:
            # BecomeRouter needs to be attached; BecomeChild refuses while an attach is under way
            return Status.INVALID_STATE if role == NetRole.ROUTER else Status.BUSY
        # a leader asked to be a router or a child stays leader (no better partition to attach to)
        return Status.OK

    # --- the state machine ----------------------------------------------------------------------------------

    def _stack(self, up: bool, now: float) -> None:
        if up == self.stack_up:
            return
        ncp = self.ncp
        flash = ncp.flash
        self.stack_up = up
        restoring = False
        if up:
            self.role = NetRole.DETACHED
            self._restored_at = now
            # Mle::Start: a node whose settings say it was a router restores its RLOC16 and tries to take
            # its old place again before it attaches anew
            restoring = flash.committed and flash.led and flash.router_id is not None
            if restoring:
                self.restored_rloc16 = flash.router_id << 10
        else:
            self._leave(now)
            self.role = NetRole.DISABLED
            self.restored_rloc16 = None
        ncp.out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        ncp.out.push(Prop.NET_ROLE)
        ncp.out.push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        ncp.meshcop.push_border_agent()
        if restoring:
            # Nobody answers a lone former leader: it gives its RLOC16 up, attaches to any partition, and
            # finding none leads again (ot-ncp-ftd: the RLOC went 4.2-4.7 s before it led).
            delay = ncp.config.reattach_delay
            ncp.timers.after(now, max(0.0, delay - ATTACH_ANY_PARTITION), "reattach", self._give_up_rloc16)
            ncp.timers.after(now, delay, "leader", self.become_leader)
        elif up:
            self.maybe_form(now)
        if up and ncp.config.mle_interval > 0:
            ncp.timers.after(now, 0.05, "mle", ncp.datapath.mle_advertisement)

    def _give_up_rloc16(self, now: float) -> None:
        if self.restored_rloc16 is not None and not self.attached:
            self.restored_rloc16 = None
            self.ncp.out.push_changed(Prop.IPV6_ADDRESS_TABLE)

    def maybe_form(self, now: float) -> None:
        """Become leader after a moment, if the stack is up and a complete dataset was committed."""
        if (self.stack_up and self.role == NetRole.DETACHED and self.ncp.flash.committed
                and not self.ncp.timers.pending("leader")):
            self.ncp.timers.after(now, self.ncp.config.leader_delay, "leader", self.become_leader)

    def _detach(self, now: float) -> None:
        """BecomeDetached: the RLOC16 goes, and the node attaches to any partition anew (leading alone)."""
        ncp = self.ncp
        was = self.attached
        self._leave(now)
        self.role = NetRole.DETACHED
        self.restored_rloc16 = None
        ncp.out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        if was:
            ncp.out.push(Prop.NET_ROLE)
            ncp.out.push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
            ncp.meshcop.push_border_agent()
        ncp.timers.after(now, ncp.config.leader_delay, "leader", self.become_leader)
        if ncp.config.mle_interval > 0:
            ncp.timers.after(now, 0.05, "mle", ncp.datapath.mle_advertisement)

    def become_leader(self, now: float) -> None:
        ncp = self.ncp
        if not (self.stack_up and ncp.flash.committed) or self.role == NetRole.LEADER:
            return
        leader = ncp.radio.best_leader() if ncp.radio is not None and not self.attached else None
        if leader is not None:
            self.become_router(leader, now)  # a leader of our network answered: attach to its partition
            return
        self._attach(NetRole.LEADER, None, now)

    def become_router(self, leader: Announcement, now: float) -> None:
        """Shared radio: join ``leader``'s partition as a router (the leader registers our network data)."""
        if not (self.stack_up and self.ncp.flash.committed):
            return
        if self.role == NetRole.ROUTER and self.partition_id == leader.partition_id:
            return
        self._attach(NetRole.ROUTER, leader.partition_id, now)

    def _router_id(self) -> int:
        """BecomeLeader keeps the previous router id; on a shared radio one no other router uses."""
        ncp = self.ncp
        previous = ncp.flash.router_id
        if ncp.radio is None:
            return previous if previous is not None else ncp.rng.randrange(0, 63)
        used = ncp.radio.router_ids()
        if previous is not None and previous not in used:
            return previous
        start = int.from_bytes(hashlib.sha256(ncp.flash.ext_addr).digest()[:2], "big") % 63
        return next((rid for k in range(63) if (rid := (start + k) % 63) not in used), start)

    def _attach(self, role: NetRole, partition_id: int | None, now: float) -> None:
        """Lead a new partition (``partition_id`` None) or be a router in an existing one."""
        ncp = self.ncp
        flash = ncp.flash
        for name in ("leader", "reattach"):
            ncp.timers.cancel(name)
        was_attached = self.attached  # a router taking the lead, or a leader joining another partition
        self.role = role
        self.restored_rloc16 = None
        if not was_attached or self.router_id in (ncp.radio.router_ids() if ncp.radio is not None else ()):
            self.router_id = self._router_id()
        if (flash.led, flash.router_id) != (True, self.router_id):
            flash.led, flash.router_id = True, self.router_id
            ncp.save()
        self.partition_id = ncp.rng.getrandbits(32) if partition_id is None else partition_id
        self.session_id = ncp.rng.getrandbits(16)
        ncp.netdata.version = ncp.rng.randrange(256)
        if ncp.netdata.local_prefixes or ncp.netdata.local_routes:
            ncp.netdata.register()
        ncp.addresses.update_slaac()
        ncp.out.push_changed(Prop.IPV6_ADDRESS_TABLE)
        ncp.out.push(Prop.NET_ROLE)
        ncp.out.push(Prop.NET_PARTITION_ID)
        ncp.out.push(Prop.THREAD_LEADER_NETWORK_DATA)
        ncp.out.push(Prop.THREAD_ON_MESH_NETS)
        ncp.out.push(Prop.THREAD_OFF_MESH_ROUTES)
        ncp.out.push_changed(Prop.IPV6_MULTICAST_ADDRESS_TABLE)
        ncp.meshcop.push_border_agent()
        if ncp.radio is not None:
            ncp.radio.merge()
        if was_attached:
            return  # the children stay with us
        nodes = ncp.topology.nodes
        restored = [n for n in nodes.values() if n.eui64 in flash.children]
        for node in nodes.values():
            if node not in restored:
                ncp.topology.schedule_attach(node, now)
        if restored:
            # children restored from settings are listed again once they answered their Child Update
            ncp.timers.after(now, ncp.config.child_restore_delay, "restore",
                             lambda now: self._restore_children(restored, now))
        if ncp.config.mle_interval > 0:
            ncp.timers.after(now, 0.05, "mle", ncp.datapath.mle_advertisement)

    def _restore_children(self, nodes: list[Node], now: float) -> None:
        topology = self.ncp.topology
        for node in nodes:
            if self.attached and topology.nodes.get(node.name) is node and not node.attached:
                topology.list_child(node, now, since=self._restored_at)

    def _leave(self, now: float) -> None:
        for name in ("leader", "reattach", "restore", "mle", "attach", "upgrade"):
            self.ncp.timers.cancel(name)
        self.ncp.topology.detach_all()
        self.ncp.netdata.clear_leader_data()
