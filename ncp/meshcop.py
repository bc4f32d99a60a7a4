"""Thread MeshCoP operational dataset TLVs (Thread 1.3 spec, section 8.10).

The active dataset travels as a flat list of type/length/value items (type and length one byte each).
This module turns such a list into a :class:`Dataset` and back, in the order ``ot-ctl dataset active -x``
prints, and keeps TLVs it does not know so a dataset survives a round trip through this code unchanged.
A pending dataset is the same list with a Pending Timestamp and a Delay Timer (ms until it becomes active).
"""

from __future__ import annotations

import enum
import ipaddress
import random
import secrets
from dataclasses import dataclass, field, replace

__all__ = [
    "DEFAULT_CHANNEL_MASK",
    "DEFAULT_SECURITY_POLICY_FLAGS",
    "MAX_DELAY_TIMER_MS",
    "Dataset",
    "MeshCoPError",
    "SecurityPolicy",
    "Timestamp",
    "TlvType",
    "channel_mask_from_channels",
    "channels_from_channel_mask",
    "decode_tlvs",
    "encode_tlvs",
]


class MeshCoPError(ValueError):
    """Malformed MeshCoP TLV data (the only error the decoders raise)."""


class TlvType(enum.IntEnum):
    """MeshCoP TLV types used in an operational dataset."""

    CHANNEL = 0
    PAN_ID = 1
    EXTENDED_PAN_ID = 2
    NETWORK_NAME = 3
    PSKC = 4
    NETWORK_KEY = 5
    NETWORK_KEY_SEQUENCE = 6
    MESH_LOCAL_PREFIX = 7
    SECURITY_POLICY = 12
    ACTIVE_TIMESTAMP = 14
    PENDING_TIMESTAMP = 51
    DELAY_TIMER = 52
    CHANNEL_MASK = 53


# Channel page 0 (2.4 GHz O-QPSK) channels 11..26.
DEFAULT_CHANNEL_MASK: dict[int, int] = {0: sum(1 << ch for ch in range(11, 27))}
# O, N, R, C set; CCM, AE, NCR "disabled" bits set; TobleLink and non-CCM routers set; reserved bits set.
DEFAULT_SECURITY_POLICY_FLAGS = b"\xf7\xf8"
DEFAULT_ROTATION_HOURS = 672

_NAME_MAX = 16
# DelayTimerTlv::kMaxDelay: OpenThread caps a pending dataset's delay at 72 hours.
MAX_DELAY_TIMER_MS = 72 * 3600 * 1000


def encode_tlvs(items: list[tuple[int, bytes]]) -> bytes:
    """Pack (type, value) pairs; values longer than 254 bytes are refused (no extended length here)."""
    out = bytearray()
    for typ, value in items:
        if not 0 <= typ <= 0xFF or len(value) > 0xFE:
            raise MeshCoPError(f"TLV {typ} too long or bad type")
        out += bytes((typ, len(value))) + value
    return bytes(out)


def decode_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """Split a TLV byte string into (type, value) pairs, in order."""
    items: list[tuple[int, bytes]] = []
    i = 0
    n = len(data)
    while i < n:
        if i + 2 > n:
            raise MeshCoPError(f"truncated TLV header at offset {i}")
        typ, length = data[i], data[i + 1]
        if length == 0xFF:
            raise MeshCoPError(f"extended-length TLV {typ} not allowed in a dataset")
        end = i + 2 + length
        if end > n:
            raise MeshCoPError(f"TLV {typ} at offset {i} runs past the end ({length} bytes)")
        items.append((typ, bytes(data[i + 2 : end])))
        i = end
    return items


def channel_mask_from_channels(channels: list[int] | range) -> int:
    """A page mask as an int with bit ``n`` set for channel ``n``."""
    mask = 0
    for ch in channels:
        if not 0 <= ch < 32:
            raise MeshCoPError(f"channel {ch} out of range")
        mask |= 1 << ch
    return mask


def channels_from_channel_mask(mask: int) -> list[int]:
    return [ch for ch in range(32) if mask >> ch & 1]


def _reverse32(v: int) -> int:
    # The TLV sends the mask MSB-first with channel 0 in the top bit.
    return int(f"{v:032b}"[::-1], 2)


@dataclass(frozen=True, order=True)
class Timestamp:
    """Active/Pending Timestamp: 48-bit seconds, 15-bit ticks (1/32768 s), authoritative flag U."""

    seconds: int = 1
    ticks: int = 0
    authoritative: bool = False

    def to_bytes(self) -> bytes:
        if not 0 <= self.seconds < 1 << 48 or not 0 <= self.ticks < 1 << 15:
            raise MeshCoPError("timestamp out of range")
        low = self.ticks << 1 | int(self.authoritative)
        return self.seconds.to_bytes(6, "big") + low.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, value: bytes) -> Timestamp:
        if len(value) != 8:
            raise MeshCoPError(f"timestamp must be 8 bytes, got {len(value)}")
        low = int.from_bytes(value[6:], "big")
        return cls(int.from_bytes(value[:6], "big"), low >> 1, bool(low & 1))


@dataclass(frozen=True)
class SecurityPolicy:
    """Key rotation time in hours and the policy flag bytes (1 byte in Thread 1.1, 2 since 1.2)."""

    rotation_time: int = DEFAULT_ROTATION_HOURS
    flags: bytes = DEFAULT_SECURITY_POLICY_FLAGS

    def to_bytes(self) -> bytes:
        if not 1 <= self.rotation_time <= 0xFFFF or not self.flags:
            raise MeshCoPError("bad security policy")
        return self.rotation_time.to_bytes(2, "big") + self.flags

    @classmethod
    def from_bytes(cls, value: bytes) -> SecurityPolicy:
        if len(value) < 3:
            raise MeshCoPError(f"security policy must be at least 3 bytes, got {len(value)}")
        return cls(int.from_bytes(value[:2], "big"), bytes(value[2:]))

    @property
    def routers_enabled(self) -> bool:
        return bool(self.flags[0] & 0x20)


def _fixed(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise MeshCoPError(f"{what} must be {size} bytes, got {len(value)}")
    return bytes(value)


@dataclass(frozen=True)
class Dataset:
    """An operational dataset; fields left ``None`` are absent. The secrets stay out of ``repr()``."""

    active_timestamp: Timestamp | None = None
    channel: int | None = None
    channel_page: int = 0
    channel_mask: dict[int, int] | None = None
    extended_pan_id: bytes | None = None
    mesh_local_prefix: ipaddress.IPv6Network | None = None
    network_key: bytes | None = field(default=None, repr=False)
    network_name: str | None = None
    pan_id: int | None = None
    pskc: bytes | None = field(default=None, repr=False)
    security_policy: SecurityPolicy | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()
    pending_timestamp: Timestamp | None = None  # pending datasets only
    delay_timer: int | None = None  # ms until a pending dataset becomes active (pending datasets only)

    REQUIRED = (
        "active_timestamp",
        "channel",
        "channel_mask",
        "extended_pan_id",
        "mesh_local_prefix",
        "network_key",
        "network_name",
        "pan_id",
        "pskc",
        "security_policy",
    )

    @property
    def is_complete(self) -> bool:
        """True when every TLV a leader needs to form the network is present."""
        return all(getattr(self, name) is not None for name in self.REQUIRED)

    @classmethod
    def generate(
        cls,
        name: str | None = None,
        channel: int = 15,
        rng: random.Random | None = None,
        timestamp: Timestamp | None = None,
    ) -> Dataset:
        """A complete random dataset, like ``dataset init new``.

        ``rng`` makes the result reproducible (tests); by default the secrets come from ``secrets``.
        """

        def rand(n: int) -> bytes:
            return rng.randbytes(n) if rng is not None else secrets.token_bytes(n)

        pan_id = int.from_bytes(rand(2), "big")
        if pan_id == 0xFFFF:  # broadcast PAN ID is not a valid network PAN ID
            pan_id = 0xFFFE
        if name is None:
            name = f"gatewayd-{pan_id:04x}"
        ml = b"\xfd" + rand(5) + b"\x00\x00"
        return cls(
            active_timestamp=timestamp or Timestamp(1, 0, False),
            channel=channel,
            channel_page=0,
            channel_mask=dict(DEFAULT_CHANNEL_MASK),
            extended_pan_id=rand(8),
            mesh_local_prefix=ipaddress.IPv6Network((ml + bytes(8), 64)),
            network_key=rand(16),
            network_name=name,
            pan_id=pan_id,
            pskc=rand(16),
            security_policy=SecurityPolicy(),
        )

    # --- encoding -------------------------------------------------------------------------------------

    def to_tlvs(self) -> bytes:
        items: list[tuple[int, bytes]] = []
        if self.active_timestamp is not None:
            items.append((TlvType.ACTIVE_TIMESTAMP, self.active_timestamp.to_bytes()))
        if self.pending_timestamp is not None:
            items.append((TlvType.PENDING_TIMESTAMP, self.pending_timestamp.to_bytes()))
        if self.delay_timer is not None:
            if not 0 <= self.delay_timer < 1 << 32:
                raise MeshCoPError("delay timer out of range")
            items.append((TlvType.DELAY_TIMER, self.delay_timer.to_bytes(4, "big")))
        if self.channel is not None:
            if not 0 <= self.channel <= 0xFFFF or not 0 <= self.channel_page <= 0xFF:
                raise MeshCoPError("channel out of range")
            items.append((TlvType.CHANNEL, bytes((self.channel_page,)) + self.channel.to_bytes(2, "big")))
        if self.channel_mask is not None:
            mask = bytearray()
            for page, bits in sorted(self.channel_mask.items()):
                if not 0 <= page <= 0xFF or not 0 <= bits < 1 << 32:
                    raise MeshCoPError("channel mask out of range")
                mask += bytes((page, 4)) + _reverse32(bits).to_bytes(4, "big")
            items.append((TlvType.CHANNEL_MASK, bytes(mask)))
        if self.extended_pan_id is not None:
            items.append((TlvType.EXTENDED_PAN_ID, _fixed(self.extended_pan_id, 8, "extended PAN ID")))
        if self.mesh_local_prefix is not None:
            if self.mesh_local_prefix.prefixlen != 64:
                raise MeshCoPError("mesh-local prefix must be a /64")
            items.append((TlvType.MESH_LOCAL_PREFIX, self.mesh_local_prefix.network_address.packed[:8]))
        if self.network_key is not None:
            items.append((TlvType.NETWORK_KEY, _fixed(self.network_key, 16, "network key")))
        if self.network_name is not None:
            raw = self.network_name.encode()
            if not 1 <= len(raw) <= _NAME_MAX:
                raise MeshCoPError("network name must be 1..16 bytes of UTF-8")
            items.append((TlvType.NETWORK_NAME, raw))
        if self.pan_id is not None:
            if not 0 <= self.pan_id <= 0xFFFF:
                raise MeshCoPError("PAN ID out of range")
            items.append((TlvType.PAN_ID, self.pan_id.to_bytes(2, "big")))
        if self.pskc is not None:
            items.append((TlvType.PSKC, _fixed(self.pskc, 16, "PSKc")))
        if self.security_policy is not None:
            items.append((TlvType.SECURITY_POLICY, self.security_policy.to_bytes()))
        items.extend(self.unknown)
        return encode_tlvs(items)

    def hex(self) -> str:
        """The dataset as ``ot-ctl dataset active -x`` prints it (lower-case hex, no separators)."""
        return self.to_tlvs().hex()

    @classmethod
    def from_hex(cls, text: str) -> Dataset:
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise MeshCoPError(f"not hex: {exc}") from None
        return cls.from_tlvs(raw)

    @classmethod
    def from_tlvs(cls, data: bytes) -> Dataset:
        """Decode a dataset; a repeated known TLV keeps its last value, unknown TLVs are kept in order."""
        fields: dict[str, object] = {}
        unknown: list[tuple[int, bytes]] = []
        for typ, value in decode_tlvs(data):
            if typ == TlvType.ACTIVE_TIMESTAMP:
                fields["active_timestamp"] = Timestamp.from_bytes(value)
            elif typ == TlvType.PENDING_TIMESTAMP:
                fields["pending_timestamp"] = Timestamp.from_bytes(value)
            elif typ == TlvType.DELAY_TIMER:
                fields["delay_timer"] = int.from_bytes(_fixed(value, 4, "delay timer"), "big")
            elif typ == TlvType.CHANNEL:
                _fixed(value, 3, "channel")
                fields["channel_page"] = value[0]
                fields["channel"] = int.from_bytes(value[1:], "big")
            elif typ == TlvType.CHANNEL_MASK:
                fields["channel_mask"] = _decode_channel_mask(value)
            elif typ == TlvType.EXTENDED_PAN_ID:
                fields["extended_pan_id"] = _fixed(value, 8, "extended PAN ID")
            elif typ == TlvType.MESH_LOCAL_PREFIX:
                fields["mesh_local_prefix"] = ipaddress.IPv6Network(
                    (_fixed(value, 8, "mesh-local prefix") + bytes(8), 64)
                )
            elif typ == TlvType.NETWORK_KEY:
                fields["network_key"] = _fixed(value, 16, "network key")
            elif typ == TlvType.NETWORK_NAME:
                if not 1 <= len(value) <= _NAME_MAX:
                    raise MeshCoPError("network name must be 1..16 bytes")
                try:
                    fields["network_name"] = value.decode()
                except UnicodeDecodeError:
                    raise MeshCoPError("network name is not UTF-8") from None
            elif typ == TlvType.PAN_ID:
                fields["pan_id"] = int.from_bytes(_fixed(value, 2, "PAN ID"), "big")
            elif typ == TlvType.PSKC:
                fields["pskc"] = _fixed(value, 16, "PSKc")
            elif typ == TlvType.SECURITY_POLICY:
                fields["security_policy"] = SecurityPolicy.from_bytes(value)
            else:
                unknown.append((typ, value))
        return cls(**fields, unknown=tuple(unknown))  # type: ignore[arg-type]

    @property
    def as_active(self) -> Dataset:
        """What this pending dataset becomes once its delay timer expires (OpenThread drops both TLVs)."""
        return replace(self, pending_timestamp=None, delay_timer=None)

    def with_(self, **changes: object) -> Dataset:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _decode_channel_mask(value: bytes) -> dict[int, int]:
    masks: dict[int, int] = {}
    i = 0
    while i < len(value):
        if i + 2 > len(value):
            raise MeshCoPError("truncated channel mask entry")
        page, length = value[i], value[i + 1]
        if length != 4 or i + 2 + length > len(value):
            raise MeshCoPError(f"channel mask entry for page {page} must carry 4 bytes")
        masks[page] = _reverse32(int.from_bytes(value[i + 2 : i + 6], "big"))
        i += 2 + length
    if not masks:
        raise MeshCoPError("empty channel mask")
    return masks
