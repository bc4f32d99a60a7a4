"""Spinel frames to the host: replies by OpenThread's TID rules, pushed changes, the update filter.

Whether the host hears of something is decided here, not by the subsystem that changed it: TID 0 asks
for no reply (``NcpBase::EnqueueResponse``), a DROPPED status on TID 0 goes out with the next push
instead, and properties in UNSOL_UPDATE_FILTER are not pushed.  Frames are queued on
``SimNcp.to_host``, which outlives a power-on; this object's state does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ncp.spinel import Command, Prop, SpinelFrame, Status, pack_prop

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = ["Outbox"]


class Outbox:
    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp
        self.unsol_filter: set[int] = set()
        self._pushed: dict[int, bytes] = {}
        self._dropped_pending = False

    def send(self, tid: int, command: int, prop: int, value: bytes) -> None:
        self.ncp.to_host.append(SpinelFrame(0, tid, command, prop, value))

    def reply(self, tid: int, command: int, prop: int, value: bytes) -> None:
        """The answer to a request.  TID 0 asks for none (``NcpBase::EnqueueResponse``): nothing is sent,
        except that a DROPPED status goes out (TID 0) with the next pushed property, once however many
        packets were dropped meanwhile."""
        if tid:
            self.send(tid, command, prop, value)
        elif prop == Prop.LAST_STATUS and value == pack_prop(Prop.LAST_STATUS, int(Status.DROPPED)):
            self._dropped_pending = True

    def status(self, tid: int, status: int) -> None:
        self.reply(tid, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(status)))

    def _flush_dropped(self) -> None:
        if self._dropped_pending:
            self._dropped_pending = False
            if Prop.LAST_STATUS not in self.unsol_filter:
                self.send(0, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(Status.DROPPED)))

    def push(self, prop: int) -> None:
        """Unsolicited IS (TID 0) of a property's current value, unless the host filtered it."""
        value = self.ncp.props.get(prop)
        if value is None:
            return
        self._pushed[prop] = value
        self._flush_dropped()
        if prop not in self.unsol_filter:
            self.send(0, Command.PROP_VALUE_IS, prop, value)

    def push_changed(self, prop: int) -> None:
        """:meth:`push` if the value differs from the one last pushed (an empty table at first)."""
        if self.ncp.props.get(prop) != self._pushed.get(prop, b""):
            self.push(prop)

    def announce(self, command: Command, prop: int, value: bytes) -> None:
        """VALUE_INSERTED / VALUE_REMOVED (TID 0) of one entry, unless the host filtered the property."""
        self._flush_dropped()
        if prop not in self.unsol_filter:
            self.send(0, command, prop, value)
