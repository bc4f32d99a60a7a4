"""Thread commissioning over Spinel, sans-I/O: the joiner credential (PSKd), the commissioner's joiner table
(``SPINEL_PROP_MESHCOP_COMMISSIONER_JOINERS``) and the NCP-as-joiner request
(``SPINEL_PROP_MESHCOP_JOINER_COMMISSIONING``), as OpenThread's ``ncp_base_ftd.cpp`` / ``ncp_base_mtd.cpp``
read and write them.

The joiner table is ``A(t(t(E|CX)LU))``: per entry a joiner id struct (empty: any joiner; 8 bytes: an
EUI-64; otherwise a discerner, bit length and uint64 value), the timeout (read: milliseconds left; written:
seconds) and the PSKd.  An INSERT carries one entry without the outer struct (``t(E|CX)LU``), a REMOVE only
the id struct.  Seen on ot-ncp-ftd (2023 and 2025 builds): the NCP pushes none of this; joiner progress on
the commissioner side is not reported over Spinel at all (``otCommissionerStart`` is given no callbacks).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from .spinel import SpinelError
from .spinel.format import pack, unpack

__all__ = [
    "ANY",
    "CommissionerState",
    "JoinerEntry",
    "JoinerState",
    "PskdError",
    "check_pskd",
    "decode_joiners",
    "joiner_commissioning",
    "joiner_id",
    "joiner_insert",
    "joiner_remove",
    "parse_joiner",
]

#: The joiner id meaning "any joiner" (OpenThread's ``*``).
ANY = "*"
PSKD_MIN, PSKD_MAX = 6, 32
_PSKD_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXY")  # no I, O, Q, Z
_TABLE_FMT = "A(t(dLU))"


class PskdError(ValueError):
    """A joiner credential Thread does not allow; the message says what is wrong without repeating it."""


class CommissionerState(enum.IntEnum):
    """``SPINEL_MESHCOP_COMMISSIONER_STATE_*``."""

    DISABLED = 0
    PETITION = 1
    ACTIVE = 2


class JoinerState(enum.IntEnum):
    """``SPINEL_MESHCOP_JOINER_STATE_*`` (MESHCOP_JOINER_STATE)."""

    IDLE = 0
    DISCOVER = 1
    CONNECTING = 2
    CONNECTED = 3
    ENTRUST = 4
    JOINED = 5


def check_pskd(pskd: str) -> str:
    """``pskd`` if Thread accepts it as a joiner credential (6-32 characters, uppercase letters and digits
    without I, O, Q and Z, as OpenThread's ``JoinerPskd::IsPskdValid``), else :class:`PskdError`."""
    if not isinstance(pskd, str):
        raise PskdError("the PSKd must be text")
    if not PSKD_MIN <= len(pskd) <= PSKD_MAX:
        raise PskdError(f"a PSKd has {PSKD_MIN} to {PSKD_MAX} characters, this one {len(pskd)}")
    bad = sorted({c for c in pskd if c not in _PSKD_ALPHABET})
    if bad:
        wrong = "I, O, Q or Z" if all(c in "IOQZ" for c in bad) else "other characters (lowercase, punctuation, spaces)"
        raise PskdError(f"a PSKd holds uppercase letters and digits only, without I, O, Q and Z; this one has {wrong}")
    return pskd


def parse_joiner(text: str) -> bytes | None:
    """A joiner named on a command line: ``*`` (any: None) or an EUI-64 as 16 hex digits (colons allowed)."""
    if text == ANY:
        return None
    try:
        raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise ValueError(f"a joiner is * or an EUI-64 of 16 hex digits, not {text!r}")
    return raw


def joiner_id(eui64: bytes) -> bytes:
    """The Joiner ID a joiner uses as its extended address while joining: SHA-256 of its EUI-64, first
    8 bytes, the locally-administered bit set (Thread 1.3, 8.4.3.1)."""
    digest = bytearray(hashlib.sha256(eui64).digest()[:8])
    digest[0] |= 0x02
    return bytes(digest)


@dataclass(frozen=True, slots=True)
class JoinerEntry:
    """One row of the commissioner's joiner table.  ``eui64`` None is any joiner; ``discerner`` (bit length,
    value) stands for a joiner chosen by discerner instead.  ``timeout_ms`` is what is left of its time."""

    eui64: bytes | None
    timeout_ms: int
    pskd: str = field(repr=False)
    discerner: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """``*``, the EUI-64 in hex, or ``discerner:VALUE/BITS``."""
        if self.discerner is not None:
            return f"discerner:{self.discerner[1]:x}/{self.discerner[0]}"
        return self.eui64.hex() if self.eui64 is not None else ANY


def _id_struct(eui64: bytes | None) -> bytes:
    if eui64 is not None and len(eui64) != 8:
        raise SpinelError("a joiner EUI-64 has 8 bytes")
    return eui64 or b""


def _decode_id(raw: bytes) -> tuple[bytes | None, tuple[int, int] | None]:
    if not raw:
        return None, None
    if len(raw) == 8:
        return raw, None
    bits, value = unpack("CX", raw)
    return None, (bits, value)


def decode_joiners(data: bytes) -> list[JoinerEntry]:
    """The joiner table as GET MESHCOP_COMMISSIONER_JOINERS returns it; SpinelError for anything else."""
    rows = unpack(_TABLE_FMT, data)[0]
    out = []
    for raw_id, timeout_ms, pskd in rows:
        eui64, discerner = _decode_id(raw_id)
        out.append(JoinerEntry(eui64, timeout_ms, pskd, discerner))
    return out


def joiner_insert(eui64: bytes | None, pskd: str, timeout_s: int) -> bytes:
    """The INSERT MESHCOP_COMMISSIONER_JOINERS value adding ``eui64`` (None: any) for ``timeout_s`` seconds."""
    return pack("dLU", _id_struct(eui64), timeout_s, pskd)


def joiner_remove(eui64: bytes | None) -> bytes:
    """The REMOVE MESHCOP_COMMISSIONER_JOINERS value for ``eui64`` (None: the any-joiner entry)."""
    return pack("d", _id_struct(eui64))


def joiner_commissioning(start: bool, pskd: str = "", provisioning_url: str = "", vendor_name: str = "",
                         vendor_model: str = "", vendor_sw_version: str = "") -> bytes:
    """The SET MESHCOP_JOINER_COMMISSIONING value (``b`` or ``bUUUUU``): start joining with ``pskd``, or stop.
    Empty vendor strings make OpenThread use its own defaults."""
    if not start:
        return pack("b", False)
    return pack("bUUUUU", True, pskd, provisioning_url, vendor_name, vendor_model, vendor_sw_version)
