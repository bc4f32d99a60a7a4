"""The Border Agent's MeshCoP service, ``_meshcop._udp``: its DNS-SD TXT record and state bitmap.

A commissioner app (or Home Assistant) finds Thread border routers by browsing ``_meshcop._udp`` over
mDNS and reads the network from the TXT record. The keys and their encodings are the Thread
specification's (1.3, §8.4.2.1.1, table 8-5 for the state bitmap) as OpenThread writes them
(``src/core/meshcop/border_agent_txt_data.cpp``; otbr-agent's ``border_agent.cpp`` adds ``vn``/``mn``):
binary values (ids, addresses, bitmaps, timestamps) raw and big-endian, names as UTF-8.

Also the value of Spinel's ``BORDER_AGENT_MESHCOP_SERVICE_STATE`` (``bSD``): whether an NCP's own
border agent runs, its UDP port, and the TXT data the NCP would publish itself.

Sans-I/O: bytes in, dataclasses out. :func:`decode_txt` and :meth:`MeshCoPService.from_txt` raise only
:class:`TxtError`.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields

from ncp.meshcop import MeshCoPError, Timestamp

__all__ = [
    "DUMMY_PORT", "RECORD_VERSION", "SERVICE_TYPE", "Availability", "BorderAgentState", "ConnMode",
    "IfState", "MeshCoPService", "StateBitmap", "TxtError", "TxtRole", "decode_txt", "encode_txt",
]

SERVICE_TYPE = "_meshcop._udp.local."
RECORD_VERSION = "1"
# otbr-agent's port while no border agent listens: the service still tells the network's state, and
# the state bitmap says no connection is possible.
DUMMY_PORT = 49152
TxtEntries = list[tuple[str, bytes | None]]


class TxtError(ValueError):
    """A TXT record (or one MeshCoP value in it) that cannot be what it claims to be."""


class ConnMode(enum.IntEnum):
    """How a commissioner may open a DTLS session to the border agent (bits 0-2)."""

    DISABLED = 0
    PSKC = 1
    PSKD = 2
    VENDOR = 3
    X509 = 4


class IfState(enum.IntEnum):
    """The Thread interface (bits 3-4)."""

    NOT_INITIALIZED = 0
    INITIALIZED = 1
    ACTIVE = 2


class Availability(enum.IntEnum):
    """Bits 5-6: a border router on mains is HIGH."""

    INFREQUENT = 0
    HIGH = 1


class TxtRole(enum.IntEnum):
    """The Thread role (bits 9-10)."""

    DISABLED_OR_DETACHED = 0
    CHILD = 1
    ROUTER = 2
    LEADER = 3


# Spinel NET_ROLE (0 detached, 1 child, 2 router, 3 leader, 4 disabled) → interface state and role.
_BY_NET_ROLE = {0: (IfState.INITIALIZED, TxtRole.DISABLED_OR_DETACHED), 1: (IfState.ACTIVE, TxtRole.CHILD),
                2: (IfState.ACTIVE, TxtRole.ROUTER), 3: (IfState.ACTIVE, TxtRole.LEADER)}


@dataclass(frozen=True)
class StateBitmap:
    """The ``sb`` value, a 32-bit big-endian bitmap; fields hold plain ints so unknown values survive."""

    conn_mode: int = ConnMode.DISABLED
    if_state: int = IfState.NOT_INITIALIZED
    availability: int = Availability.HIGH
    bbr_active: bool = False
    bbr_primary: bool = False
    role: int = TxtRole.DISABLED_OR_DETACHED
    epskc_supported: bool = False

    def to_int(self) -> int:
        return (self.conn_mode & 7 | (self.if_state & 3) << 3 | (self.availability & 3) << 5
                | self.bbr_active << 7 | self.bbr_primary << 8 | (self.role & 3) << 9 | self.epskc_supported << 11)

    @classmethod
    def from_int(cls, value: int) -> StateBitmap:
        """Bits this version does not define are ignored (a later spec may use them)."""
        return cls(value & 7, value >> 3 & 3, value >> 5 & 3, bool(value >> 7 & 1), bool(value >> 8 & 1),
                   value >> 9 & 3, bool(value >> 11 & 1))

    @classmethod
    def for_role(cls, net_role: int | None, conn_mode: int = ConnMode.DISABLED) -> StateBitmap:
        """What OpenThread reports for a Spinel ``NET_ROLE`` (None or disabled: not initialized)."""
        if_state, role = _BY_NET_ROLE.get(net_role, (IfState.NOT_INITIALIZED, TxtRole.DISABLED_OR_DETACHED))
        return cls(conn_mode=conn_mode, if_state=if_state, role=role)


def encode_txt(entries: Iterable[tuple[str, bytes | None]]) -> bytes:
    """TXT RDATA (RFC 6763 §6): one length-prefixed ``key=value`` string per entry (None: the key alone)."""
    out = bytearray()
    for key, value in entries:
        _check_key(key)
        item = key.encode() if value is None else key.encode() + b"=" + value
        if len(item) > 255:
            raise TxtError(f"TXT entry {key!r} is {len(item)} bytes; at most 255 fit")
        out += bytes((len(item),)) + item
    return bytes(out)


def decode_txt(data: bytes) -> TxtEntries:
    """TXT RDATA → (key, value) pairs in order; value None for a key without ``=`` (RFC 6763 §6.4).

    Empty strings and strings that start with ``=`` are skipped, as RFC 6763 §6.4 says; a string that
    runs past the end, or a key that is not printable US-ASCII, raises :class:`TxtError`.
    """
    entries: TxtEntries = []
    i = 0
    while i < len(data):
        n = data[i]
        item = bytes(data[i + 1:i + 1 + n])
        if len(item) != n:
            raise TxtError(f"TXT string at offset {i} claims {n} bytes, {len(item)} remain")
        i += 1 + n
        key, eq, value = item.partition(b"=")
        if not key:
            continue
        try:
            text = key.decode("ascii")
            _check_key(text)
        except (UnicodeDecodeError, TxtError):
            raise TxtError(f"TXT key {key!r} is not printable US-ASCII") from None
        entries.append((text, value if eq else None))
    return entries


def _check_key(key: str) -> None:
    if not key or "=" in key or not all(0x20 <= ord(c) <= 0x7E for c in key):
        raise TxtError(f"bad TXT key {key!r}: printable US-ASCII without '=', at least one character")


# (key, field, kind) in the order OpenThread writes them; vn and mn come from otbr-agent.
_KEYS = (
    ("id", "agent_id", 16), ("rv", "record_version", str), ("sb", "state", StateBitmap),
    ("tv", "thread_version", str), ("xa", "ext_address", 8), ("xp", "extended_pan_id", 8),
    ("nn", "network_name", str), ("pt", "partition_id", 4), ("at", "active_timestamp", Timestamp),
    ("sq", "bbr_seq", 1), ("bb", "bbr_port", 2), ("dn", "domain_name", str),
    ("omr", "omr_prefix", ipaddress.IPv6Network), ("vn", "vendor_name", str), ("mn", "model_name", str),
)
_UINTS = frozenset({"partition_id", "bbr_seq", "bbr_port"})


@dataclass(frozen=True)
class MeshCoPService:
    """The values a ``_meshcop._udp`` TXT record carries; None is a key left out."""

    record_version: str | None = RECORD_VERSION
    agent_id: bytes | None = None  # 16 bytes, stable across restarts (Home Assistant keys routers by it)
    thread_version: str | None = None  # "1.3.0"
    state: StateBitmap | None = None
    network_name: str | None = None
    extended_pan_id: bytes | None = None
    ext_address: bytes | None = None  # the border router's IEEE 802.15.4 extended address
    active_timestamp: Timestamp | None = None
    partition_id: int | None = None
    bbr_seq: int | None = None  # backbone router sequence number and port (Thread 1.2 BBR only)
    bbr_port: int | None = None
    domain_name: str | None = None
    omr_prefix: ipaddress.IPv6Network | None = None
    vendor_name: str | None = None
    model_name: str | None = None
    other: tuple[tuple[str, bytes | None], ...] = field(default=(), compare=True)  # keys not listed above

    def to_txt(self) -> TxtEntries:
        """(key, value) pairs in OpenThread's order, then ``other``; :func:`encode_txt` makes RDATA."""
        out: TxtEntries = []
        for key, name, kind in _KEYS:
            value = getattr(self, name)
            if value is not None:
                out.append((key, _encode_value(name, kind, value)))
        out.extend(self.other)
        return out

    @classmethod
    def from_txt(cls, entries: Sequence[tuple[str, bytes | None]]) -> MeshCoPService:
        """Keys are case-insensitive and only a key's first occurrence counts (RFC 6763 §6.4); a known key
        with a value of the wrong size or encoding raises :class:`TxtError`."""
        by_key = {key: (name, kind) for key, name, kind in _KEYS}
        values: dict[str, object] = {"record_version": None}
        other: TxtEntries = []
        seen: set[str] = set()
        for key, value in entries:
            lower = key.lower()
            if lower in seen:
                continue
            seen.add(lower)
            if lower not in by_key:
                other.append((key, value))
                continue
            name, kind = by_key[lower]
            if value is None:
                raise TxtError(f"TXT key {key!r} has no value")
            values[name] = _decode_value(key, name, kind, value)
        return cls(**values, other=tuple(other))  # type: ignore[arg-type]

    def changed_keys(self, other: MeshCoPService) -> list[str]:
        """The TXT keys whose values differ (for a log line saying what an update changed)."""
        keys = {name: key for key, name, _ in _KEYS}
        return [keys.get(f.name, f.name) for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def _encode_value(name: str, kind: object, value: object) -> bytes:
    if kind is str:
        return str(value).encode()
    if kind is StateBitmap:
        return value.to_int().to_bytes(4, "big")  # type: ignore[attr-defined]
    if kind is Timestamp:
        try:
            return value.to_bytes()  # type: ignore[attr-defined]
        except MeshCoPError as exc:
            raise TxtError(str(exc)) from None
    if kind is ipaddress.IPv6Network:
        prefix: ipaddress.IPv6Network = value  # type: ignore[assignment]
        return bytes((prefix.prefixlen,)) + prefix.network_address.packed[:(prefix.prefixlen + 7) // 8]
    assert isinstance(kind, int)
    if name in _UINTS:
        try:
            return int(value).to_bytes(kind, "big")  # type: ignore[call-overload]
        except OverflowError:
            raise TxtError(f"{name} {value} does not fit {kind} bytes") from None
    raw = bytes(value)  # type: ignore[call-overload]
    if len(raw) != kind:
        raise TxtError(f"{name} must be {kind} bytes, got {len(raw)}")
    return raw


def _decode_value(key: str, name: str, kind: object, value: bytes) -> object:
    if kind is str:
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise TxtError(f"TXT {key}= is not UTF-8") from None
    if kind is StateBitmap:
        return StateBitmap.from_int(_uint(key, value, 4))
    if kind is Timestamp:
        try:
            return Timestamp.from_bytes(value)
        except MeshCoPError as exc:
            raise TxtError(f"TXT {key}=: {exc}") from None
    if kind is ipaddress.IPv6Network:
        if not value or value[0] > 128 or len(value) != 1 + (value[0] + 7) // 8:
            raise TxtError(f"TXT {key}= must be a prefix length (0-128) and that many bits, got {value.hex()}")
        raw = value[1:].ljust(16, b"\0")
        try:
            return ipaddress.IPv6Network((raw, value[0]))
        except ValueError:
            raise TxtError(f"TXT {key}= has bits set beyond its /{value[0]}") from None
    assert isinstance(kind, int)
    if name in _UINTS:
        return _uint(key, value, kind)
    if len(value) != kind:
        raise TxtError(f"TXT {key}= must be {kind} bytes, got {len(value)}")
    return bytes(value)


def _uint(key: str, value: bytes, size: int) -> int:
    if len(value) != size:
        raise TxtError(f"TXT {key}= must be a {size}-byte big-endian number, got {len(value)} bytes")
    return int.from_bytes(value, "big")


@dataclass(frozen=True)
class BorderAgentState:
    """``BORDER_AGENT_MESHCOP_SERVICE_STATE``: the NCP's own border agent (OpenThread since 2024)."""

    running: bool
    port: int  # its UDP port on the NCP; 0 while stopped
    service: MeshCoPService

    @classmethod
    def from_spinel(cls, value: object) -> BorderAgentState:
        """From the unpacked ``bSD`` tuple; anything else raises :class:`TxtError`."""
        if not (isinstance(value, tuple) and len(value) == 3 and isinstance(value[2], bytes | bytearray)):
            raise TxtError(f"not a (running, port, TXT data) value: {value!r}"[:200])
        running, port, txt = value
        return cls(bool(running), int(port), MeshCoPService.from_txt(decode_txt(bytes(txt))))
