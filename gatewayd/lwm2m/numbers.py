"""LwM2M numbers: the data types and operations of the object model and the integer ranges of its types.

Response codes are CoAP's: :class:`aiocoap.numbers.codes.Code` (``Code.NOT_FOUND``, ``.dotted`` "4.04").
Content-format numbers belong to the codecs (:class:`~gatewayd.lwm2m.codecs.ContentFormat`).
"""

from __future__ import annotations

import enum


class ResourceType(enum.Enum):
    """Resource data types of the LwM2M object model (DDF ``Type`` values)."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"


class Operations(enum.Flag):
    """Operations a resource allows (DDF ``Operations``: R, W, RW, E or empty)."""

    NONE = 0
    R = enum.auto()
    W = enum.auto()
    E = enum.auto()
    RW = R | W

    @classmethod
    def parse(cls, text: str) -> Operations:
        ops = cls.NONE
        for ch in text.strip().upper():
            if ch not in "RWE":
                raise ValueError(f"unknown operation {ch!r}")
            ops |= cls[ch]
        if Operations.E in ops and ops != Operations.E:
            raise ValueError("an executable resource allows nothing else")
        return ops


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
