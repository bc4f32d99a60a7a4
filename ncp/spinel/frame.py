"""Spinel frames: header (flag, IID, TID), packed command, property id, raw value bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

from .commands import PROP_COMMANDS, Command
from .errors import SpinelError
from .format import pack_uint, unpack_uint
from .props import as_prop

__all__ = ["HEADER_FLAG", "SpinelFrame"]

HEADER_FLAG = 0x80  # bits 7-6 = 0b10
_FLAG_MASK = 0xC0

_COMMANDS: dict[int, Command] = {int(c): c for c in Command}


@dataclass(frozen=True, slots=True)
class SpinelFrame:
    """One Spinel frame.

    ``prop`` is set for the PROP_VALUE_* commands (GET..REMOVED) and None for the others, whose whole
    payload is then ``value``.  ``command`` and ``prop`` are enum members when known, else plain ints.
    TID 0 means "unsolicited / no reply wanted".
    """

    iid: int
    tid: int
    command: int
    prop: int | None = None
    value: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.iid <= 3:
            raise SpinelError(f"IID out of range 0..3: {self.iid}")
        if not 0 <= self.tid <= 15:
            raise SpinelError(f"TID out of range 0..15: {self.tid}")
        if (self.command in PROP_COMMANDS) != (self.prop is not None):
            need = "needs" if self.prop is None else "takes no"
            raise SpinelError(f"command {self.command} {need} property")

    @property
    def header(self) -> int:
        return HEADER_FLAG | (self.iid << 4) | self.tid

    def encode(self) -> bytes:
        """Frame bytes as carried inside HDLC (no flags, no FCS)."""
        command, prop = self.command, self.prop
        if command < 0x80 and prop is not None and prop < 0x80:
            return bytes((HEADER_FLAG | (self.iid << 4) | self.tid, command, prop)) + self.value
        out = bytes((HEADER_FLAG | (self.iid << 4) | self.tid,)) + pack_uint(command)
        if prop is not None:
            out += pack_uint(prop)
        return out + self.value

    @classmethod
    def decode(cls, data: bytes) -> SpinelFrame:
        """Parse one frame; raises SpinelError for anything malformed."""
        if len(data) < 2:
            raise SpinelError(f"frame too short ({len(data)} bytes)")
        header = data[0]
        if header & _FLAG_MASK != HEADER_FLAG:
            raise SpinelError(f"bad header flag in 0x{header:02x}")
        command, pos = unpack_uint(data, 1)
        prop = None
        if command in PROP_COMMANDS:
            prop, pos = unpack_uint(data, pos)
            prop = as_prop(prop)
        # Fields are valid by construction: skip __post_init__ on this hot path.
        frame = object.__new__(cls)
        _set = object.__setattr__
        _set(frame, "iid", (header >> 4) & 0x3)
        _set(frame, "tid", header & 0xF)
        _set(frame, "command", _COMMANDS.get(command, command))
        _set(frame, "prop", prop)
        _set(frame, "value", bytes(data[pos:]))
        return frame

    def __repr__(self) -> str:
        cmd = self.command.name if isinstance(self.command, Command) else str(self.command)
        prop = ""
        if self.prop is not None:
            prop = f", prop={getattr(self.prop, 'name', self.prop)}"
        return f"SpinelFrame(iid={self.iid}, tid={self.tid}, command={cmd}{prop}, {len(self.value)} bytes)"
