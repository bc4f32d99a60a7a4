"""HDLC-lite framing of the NCP byte stream (flag 0x7E, escape 0x7D, FCS-16 of RFC 1662).

Sans-I/O: ``encode()`` turns one Spinel frame into wire bytes; ``HdlcDecoder.feed()`` takes arbitrary
chunks of the stream and returns the complete, FCS-checked frames.  A stream reader must survive line
noise, so the decoder never raises on input: bad frames are dropped and counted in ``counters``.
"""

from __future__ import annotations

import binascii
from dataclasses import asdict, dataclass

__all__ = [
    "ESCAPE",
    "FCS_GOOD",
    "FCS_INIT",
    "FLAG",
    "MAX_FRAME_SIZE",
    "HdlcCounters",
    "HdlcDecoder",
    "encode",
    "fcs16",
]

FLAG = 0x7E
ESCAPE = 0x7D
XON = 0x11
XOFF = 0x13
VENDOR_SPECIAL = 0xF8
FCS_INIT = 0xFFFF
FCS_GOOD = 0xF0B8  # residue of the FCS over data + its own (complemented, little-endian) FCS
MAX_FRAME_SIZE = 1300  # SPINEL_FRAME_MAX_SIZE: payload bytes between the flags, FCS excluded

_FLAG_B = b"\x7e"
_ESCAPE_B = b"\x7d"

# The reflected FCS-16 (poly 0x8408) equals the bit-mirrored CCITT CRC (poly 0x1021) over bit-mirrored
# bytes; binascii.crc_hqx computes the latter in C, which is ~50x faster than a Python table loop.
_MIRROR8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _mirror16(v: int) -> int:
    return (_MIRROR8[v & 0xFF] << 8) | _MIRROR8[v >> 8]


def fcs16(data: bytes, fcs: int = FCS_INIT) -> int:
    """Running FCS-16 register over ``data`` (not complemented), as RFC 1662 ``pppfcs16``."""
    return _mirror16(binascii.crc_hqx(data.translate(_MIRROR8), _mirror16(fcs)))


_crc_hqx = binascii.crc_hqx
_GOOD_MIRRORED = _mirror16(FCS_GOOD)  # FCS_INIT is its own mirror image

# Order matters: the escape byte itself must be escaped first.
_ESCAPED = (ESCAPE, FLAG, XON, XOFF, VENDOR_SPECIAL)
_ESCAPE_PAIRS = tuple((bytes([b]), bytes([ESCAPE, b ^ 0x20])) for b in _ESCAPED)
_ESCAPED_SET = bytes(_ESCAPED)


def encode(frame: bytes) -> bytes:
    """Wrap one Spinel frame: FCS appended, special bytes escaped, a flag at each end."""
    fcs = _mirror16(_crc_hqx(frame.translate(_MIRROR8), FCS_INIT)) ^ 0xFFFF
    body = bytes(frame) + bytes((fcs & 0xFF, fcs >> 8))
    if len(body.translate(None, _ESCAPED_SET)) != len(body):
        for raw, escaped in _ESCAPE_PAIRS:
            body = body.replace(raw, escaped)
    return _FLAG_B + body + _FLAG_B


@dataclass(slots=True)
class HdlcCounters:
    """Why frames were accepted or dropped; exposed for status output."""

    frames: int = 0  # good frames delivered
    bad_fcs: int = 0
    oversize: int = 0  # more than MAX_FRAME_SIZE bytes between flags
    garbage: int = 0  # too short, a dangling escape, or bytes before the first flag
    bytes_in: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _unescape(raw: bytes) -> bytes | None:
    """Undo escaping (any escaped byte is accepted); None for an escape with nothing after it."""
    if ESCAPE not in raw:
        return raw
    parts = raw.split(_ESCAPE_B)
    out = bytearray(parts[0])
    for part in parts[1:]:
        if not part:
            return None  # escape at the end, or two escapes in a row
        out.append(part[0] ^ 0x20)
        out += part[1:]
    return bytes(out)


class HdlcDecoder:
    """Streaming HDLC-lite deframer: feed it chunks, get back complete frames without FCS."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        # Escaped size bound: every byte (and the FCS) may be doubled.
        self._max_raw = 2 * (max_frame_size + 2)
        self.counters = HdlcCounters()
        self._buf = bytearray()
        self._synced = False  # seen a flag yet; bytes before the first one are noise
        self._overflow = False  # current frame already exceeded the limit: discard to the next flag

    def reset(self) -> None:
        """Forget a partial frame, e.g. after the link was reopened."""
        self._buf.clear()
        self._synced = False
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes]:
        """Consume a chunk of the stream; return every frame it completed, in order."""
        self.counters.bytes_in += len(data)
        if FLAG not in data:
            self._append(data)
            return []
        frames: list[bytes] = []
        pieces = data.split(_FLAG_B)
        # The first piece ends the frame in progress.
        first = pieces[0]
        if not self._synced:
            if first:
                self.counters.garbage += 1
            self._synced = True
        elif self._overflow:
            self._overflow = False
        elif self._buf:
            self._append(first)
            if self._overflow:
                self._overflow = False
            else:
                raw = bytes(self._buf)
                self._buf.clear()
                self._frame(raw, frames)
        elif first:
            self._frame(first, frames)
        # Pieces between two flags of this chunk are complete frames.
        for i in range(1, len(pieces) - 1):
            if pieces[i]:
                self._frame(pieces[i], frames)
        self._append(pieces[-1])
        return frames

    def _append(self, piece: bytes) -> None:
        if not piece:
            return
        if not self._synced:
            self.counters.garbage += 1
            return
        if self._overflow:
            return
        self._buf += piece
        if len(self._buf) > self._max_raw:
            self._buf.clear()
            self._overflow = True
            self.counters.oversize += 1

    def _frame(self, raw: bytes, frames: list[bytes]) -> None:
        """Judge the bytes between two flags."""
        if len(raw) > self._max_raw:
            self.counters.oversize += 1
            return
        data = _unescape(raw) if ESCAPE in raw else raw
        if data is None or len(data) < 3:
            self.counters.garbage += 1
            return
        if len(data) - 2 > self.max_frame_size:
            self.counters.oversize += 1
            return
        if _crc_hqx(data.translate(_MIRROR8), FCS_INIT) != _GOOD_MIRRORED:
            self.counters.bad_fcs += 1
            return
        self.counters.frames += 1
        frames.append(data[:-2])
