"""Spinel, the NCP control protocol: sans-I/O codec, format-string packer, property and status tables.

Typical use::

    frame = SpinelFrame(0, 1, Command.PROP_VALUE_GET, Prop.PROTOCOL_VERSION)
    wire = hdlc.encode(frame.encode())
    reply = SpinelFrame.decode(payload)
    major, minor = unpack_prop(reply.prop, reply.value)
"""

from __future__ import annotations

from .commands import PROP_COMMANDS, Command
from .errors import SpinelError
from .format import (
    MAX_UINT_PACKED,
    element_format,
    pack,
    pack_uint,
    pack_value,
    unpack,
    unpack_uint,
    unpack_value,
)
from .frame import HEADER_FLAG, SpinelFrame
from .props import (
    INTERFACE_TYPE_THREAD,
    NetRole,
    Prop,
    as_prop,
    is_secret,
    pack_prop,
    prop_fmt,
    prop_name,
    unpack_prop,
)
from .status import RESET_BEGIN, RESET_END, Status, is_reset, status_name

__all__ = [
    "HEADER_FLAG",
    "INTERFACE_TYPE_THREAD",
    "MAX_UINT_PACKED",
    "PROP_COMMANDS",
    "RESET_BEGIN",
    "RESET_END",
    "Command",
    "NetRole",
    "Prop",
    "SpinelError",
    "SpinelFrame",
    "Status",
    "as_prop",
    "element_format",
    "is_reset",
    "is_secret",
    "pack",
    "pack_prop",
    "pack_uint",
    "pack_value",
    "prop_fmt",
    "prop_name",
    "status_name",
    "unpack",
    "unpack_prop",
    "unpack_uint",
    "unpack_value",
]
