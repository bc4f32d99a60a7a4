"""Spinel values driven by spinel.h format strings (``spinel_datatype_pack``/``unpack`` semantics).

Python types per format character:

====== ================================================= ===========================
char   wire                                              Python
====== ================================================= ===========================
``b``  uint8, 0 or 1 (any non-zero reads as true)       ``bool``
``C``  uint8 / ``c`` int8                                ``int``
``S``  uint16 LE / ``s`` int16 LE                        ``int``
``L``  uint32 LE / ``l`` int32 LE                        ``int``
``X``  uint64 LE / ``x`` int64 LE                        ``int``
``i``  packed uint (7 bits a byte, LSB group first)      ``int``
``6``  IPv6 address, 16 bytes big-endian                 ``ipaddress.IPv6Address``
``E``  EUI-64, 8 bytes / ``e`` EUI-48, 6 bytes           ``bytes``
``D``  data to the end of the enclosing scope            ``bytes``
``d``  uint16 LE length + data                           ``bytes``
``U``  UTF-8 string, NUL-terminated                      ``str``
``t(...)`` uint16 LE length + struct (extra bytes ignored) ``tuple`` (shorter, with ``partial``, if
                                                          the struct ends early at a field boundary)
``A(...)`` array of the inner format to the end of scope ``list`` (of values if the inner
                                                          format is one item, else of tuples)
====== ================================================= ===========================

``pack``/``unpack`` work on tuples of top-level values; ``pack_value``/``unpack_value`` take and
return the bare value when the format has a single top-level item.  Every bad input raises
:class:`SpinelError`.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Sequence
from typing import Any

from .errors import SpinelError

__all__ = [
    "MAX_UINT_PACKED",
    "element_format",
    "pack",
    "pack_uint",
    "pack_value",
    "unpack",
    "unpack_uint",
    "unpack_value",
]

MAX_UINT_PACKED = 0xFFFFFFFF  # five bytes at most, as spinel.c decodes

_INTS: dict[str, struct.Struct] = {
    "C": struct.Struct("<B"),
    "c": struct.Struct("<b"),
    "S": struct.Struct("<H"),
    "s": struct.Struct("<h"),
    "L": struct.Struct("<I"),
    "l": struct.Struct("<i"),
    "X": struct.Struct("<Q"),
    "x": struct.Struct("<q"),
}
_FIXED = {"E": 8, "e": 6}
_SIMPLE = frozenset("bCcSsLlXxi6EeDdU")
_U16 = struct.Struct("<H")

# A compiled format: a tuple of items, each a format char or (char 't'/'A', inner items).
Item = str | tuple[str, tuple]


def pack_uint(value: int) -> bytes:
    """Spinel packed unsigned integer (EXI-style varint)."""
    if value.__class__ is not int and not isinstance(value, int):
        raise SpinelError(f"packed uint needs an int, not {type(value).__name__}")
    if value < 0x80:
        if value < 0:
            raise SpinelError(f"packed uint out of range: {value}")
        return bytes((value,))
    if value > MAX_UINT_PACKED:
        raise SpinelError(f"packed uint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def unpack_uint(data: bytes, pos: int = 0, end: int | None = None) -> tuple[int, int]:
    """Decode a packed uint at ``pos``; return (value, position after it)."""
    if end is None:
        end = len(data)
    if pos < end and data[pos] < 0x80:
        return data[pos], pos + 1
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise SpinelError("truncated packed uint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift >= 35:
            raise SpinelError("packed uint longer than 5 bytes")
    if value > MAX_UINT_PACKED:
        raise SpinelError(f"packed uint out of range: {value}")
    return value, pos


@functools.lru_cache(maxsize=512)
def _compile(fmt: str) -> tuple[Item, ...]:
    items, pos = _parse(fmt, 0)
    if pos != len(fmt):
        raise SpinelError(f"unbalanced ')' in format {fmt!r}")
    return items


def _parse(fmt: str, pos: int) -> tuple[tuple[Item, ...], int]:
    items: list[Item] = []
    while pos < len(fmt):
        ch = fmt[pos]
        if ch == ")":
            return tuple(items), pos
        if ch in "tA":
            if pos + 1 >= len(fmt) or fmt[pos + 1] != "(":
                raise SpinelError(f"{ch!r} must be followed by '(' in format {fmt!r}")
            inner, close = _parse(fmt, pos + 2)
            if close >= len(fmt) or fmt[close] != ")":
                raise SpinelError(f"missing ')' in format {fmt!r}")
            if not inner:
                raise SpinelError(f"empty {ch}() in format {fmt!r}")
            items.append((ch, inner))
            pos = close + 1
        elif ch in _SIMPLE:
            items.append(ch)
            pos += 1
        else:
            raise SpinelError(f"unknown format character {ch!r} in {fmt!r}")
    return tuple(items), pos


def element_format(fmt: str) -> str:
    """Format of one element of an array property, as INSERT/REMOVE/INSERTED carry it.

    ``A(t(6CbCbSC))`` gives ``6CbCbSC`` (the struct is sent without its length), ``A(C)`` gives ``C``.
    Non-array formats are returned unchanged.
    """
    if fmt.startswith("A(") and fmt.endswith(")"):
        inner = fmt[2:-1]
        if inner.startswith("t(") and inner.endswith(")") and len(_compile(inner)) == 1:
            inner = inner[2:-1]
        return inner
    return fmt


# --- packing -----------------------------------------------------------------------------------


def pack(fmt: str, *values: Any) -> bytes:
    """Pack top-level ``values`` according to ``fmt``."""
    items = _compile(fmt)
    out = bytearray()
    _pack_items(items, values, out)
    return bytes(out)


def pack_value(fmt: str, value: Any) -> bytes:
    """Like :func:`pack`, but a single-item format takes the bare value."""
    items = _compile(fmt)
    out = bytearray()
    if len(items) == 1:
        _pack_item(items[0], value, out)
    else:
        _pack_items(items, value, out)
    return bytes(out)


def _pack_items(items: tuple[Item, ...], values: Any, out: bytearray) -> None:
    if not isinstance(values, Sequence) or isinstance(values, str | bytes | bytearray):
        raise SpinelError(f"expected a sequence of {len(items)} values, got {type(values).__name__}")
    if len(values) != len(items):
        raise SpinelError(f"expected {len(items)} values, got {len(values)}")
    for item, value in zip(items, values, strict=True):
        _pack_item(item, value, out)


def _without_absent_tail(values: Any) -> Any:
    """A struct's trailing None fields are absent (an older layout): drop them before packing."""
    if isinstance(values, Sequence) and not isinstance(values, str | bytes | bytearray):
        n = len(values)
        while n and values[n - 1] is None:
            n -= 1
        return tuple(values[:n])
    return values


def _present(items: tuple[Item, ...], values: Any) -> int:
    if isinstance(values, Sequence) and not isinstance(values, str | bytes | bytearray):
        return min(len(items), len(_without_absent_tail(values)))
    return len(items)


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise SpinelError(f"{what} needs bytes, not {type(value).__name__}")


def _pack_item(item: Item, value: Any, out: bytearray) -> None:
    if item == "D" and value.__class__ is bytes:
        out += value
        return
    if item == "d" and value.__class__ is bytes and len(value) <= 0xFFFF:
        out += _U16.pack(len(value))
        out += value
        return
    if isinstance(item, tuple):
        kind, inner = item
        if kind == "t":
            body = bytearray()
            _pack_items(inner[: _present(inner, value)], _without_absent_tail(value), body)
            if len(body) > 0xFFFF:
                raise SpinelError("struct longer than 65535 bytes")
            out += _U16.pack(len(body))
            out += body
        else:  # 'A'
            if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
                raise SpinelError(f"array needs a sequence, not {type(value).__name__}")
            for element in value:
                if len(inner) == 1:
                    _pack_item(inner[0], element, out)
                else:
                    _pack_items(inner, element, out)
        return
    st = _INTS.get(item)
    if st is not None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpinelError(f"{item!r} needs an int, not {type(value).__name__}")
        try:
            out += st.pack(value)
        except struct.error as exc:
            raise SpinelError(f"{value} out of range for {item!r}") from exc
    elif item == "i":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpinelError(f"'i' needs an int, not {type(value).__name__}")
        out += pack_uint(value)
    elif item == "b":
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise SpinelError(f"'b' needs a bool, not {value!r}")
        out.append(1 if value else 0)
    elif item == "D":
        out += _as_bytes(value, "'D'")
    elif item == "d":
        data = _as_bytes(value, "'d'")
        if len(data) > 0xFFFF:
            raise SpinelError("'d' data longer than 65535 bytes")
        out += _U16.pack(len(data))
        out += data
    elif item == "U":
        if not isinstance(value, str):
            raise SpinelError(f"'U' needs a str, not {type(value).__name__}")
        if "\0" in value:
            raise SpinelError("'U' string contains NUL")
        try:
            out += value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SpinelError("'U' string is not encodable as UTF-8") from exc
        out.append(0)
    elif item == "6":
        if isinstance(value, str):
            try:
                value = ipaddress.IPv6Address(value)
            except ValueError as exc:
                raise SpinelError(f"bad IPv6 address {value!r}") from exc
        if isinstance(value, ipaddress.IPv6Address):
            out += value.packed
        else:
            data = _as_bytes(value, "'6'")
            if len(data) != 16:
                raise SpinelError("'6' needs 16 bytes")
            out += data
    else:  # 'E', 'e'
        data = _as_bytes(value, repr(item))
        if len(data) != _FIXED[item]:
            raise SpinelError(f"{item!r} needs {_FIXED[item]} bytes, got {len(data)}")
        out += data


# --- unpacking ---------------------------------------------------------------------------------


def unpack(fmt: str, data: bytes, *, partial: bool = False) -> tuple:
    """Unpack ``data`` as ``fmt``; one tuple entry per top-level item.  Trailing bytes are ignored.

    ``partial`` lets every struct (and ``data`` itself, as the bare array element INSERTED/REMOVED
    carry) end early at a field boundary: the tuple is then shorter.  Only callers that know which
    trailing fields are optional ask for it (ncp.spinel.tables); others get an error for a short struct.
    """
    items = _compile(fmt)
    values: list[Any] = []
    if data.__class__ is not bytes:
        data = bytes(data)
    if partial:
        _unpack_struct(items, data, 0, len(data), values, True)
    else:
        _unpack_items(items, data, 0, len(data), values, False)
    return tuple(values)


def unpack_value(fmt: str, data: bytes) -> Any:
    """Like :func:`unpack`, but a single-item format gives the bare value."""
    values = unpack(fmt, data)
    return values[0] if len(values) == 1 else values


def _unpack_items(items: tuple[Item, ...], data: bytes, pos: int, end: int, values: list, partial: bool) -> int:
    for item in items:
        pos = _unpack_item(item, data, pos, end, values, partial)
    return pos


def _unpack_struct(items: tuple[Item, ...], data: bytes, pos: int, end: int, values: list, partial: bool) -> None:
    """A ``t(...)`` body: bytes past the known fields are ignored (newer NCPs append fields); with
    ``partial`` a body that ends cleanly between fields leaves the rest out (older NCPs send fewer).
    Which missing fields are acceptable is the caller's decision (see :mod:`.tables`)."""
    for item in items:
        if partial and pos >= end and not _may_be_empty(item):
            return
        pos = _unpack_item(item, data, pos, end, values, partial)


def _may_be_empty(item: Item) -> bool:
    return item == "D" or (isinstance(item, tuple) and item[0] == "A")


def _need(pos: int, n: int, end: int, what: str) -> None:
    if pos + n > end:
        raise SpinelError(f"truncated {what}: need {n} bytes, have {max(end - pos, 0)}")


def _unpack_item(item: Item, data: bytes, pos: int, end: int, values: list, partial: bool) -> int:
    # 'd' and 'D' first: every STREAM_NET packet ("dD") takes this path.
    if item == "d":
        if pos + 2 > end:
            raise SpinelError("truncated 'd' length")
        length = data[pos] | (data[pos + 1] << 8)
        pos += 2
        if pos + length > end:
            raise SpinelError(f"truncated 'd' data: need {length} bytes, have {end - pos}")
        values.append(data[pos : pos + length])
        return pos + length
    if item == "D":
        values.append(data[pos:end])
        return max(pos, end)
    if isinstance(item, tuple):
        kind, inner = item
        if kind == "t":
            _need(pos, 2, end, "struct length")
            (length,) = _U16.unpack_from(data, pos)
            pos += 2
            _need(pos, length, end, "struct")
            fields: list[Any] = []
            _unpack_struct(inner, data, pos, pos + length, fields, partial)
            values.append(tuple(fields))
            return pos + length
        elements: list[Any] = []
        while pos < end:
            fields = []
            new_pos = _unpack_items(inner, data, pos, end, fields, partial)
            if new_pos <= pos:
                raise SpinelError("array element consumed no bytes")
            pos = new_pos
            elements.append(fields[0] if len(inner) == 1 else tuple(fields))
        values.append(elements)
        return pos
    st = _INTS.get(item)
    if st is not None:
        _need(pos, st.size, end, repr(item))
        values.append(st.unpack_from(data, pos)[0])
        return pos + st.size
    if item == "i":
        value, pos = unpack_uint(data, pos, end)
        values.append(value)
        return pos
    if item == "b":
        _need(pos, 1, end, "'b'")
        values.append(data[pos] != 0)
        return pos + 1
    if item == "U":
        nul = data.find(b"\0", pos, end)
        if nul < 0:
            raise SpinelError("'U' string without NUL terminator")
        try:
            values.append(data[pos:nul].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise SpinelError("'U' string is not valid UTF-8") from exc
        return nul + 1
    if item == "6":
        _need(pos, 16, end, "'6'")
        values.append(ipaddress.IPv6Address(data[pos : pos + 16]))
        return pos + 16
    size = _FIXED[item]
    _need(pos, size, end, repr(item))
    values.append(data[pos : pos + size])
    return pos + size
