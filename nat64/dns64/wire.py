"""Byte-level DNS helpers for the fast path: no full parse, no dnspython objects.

`query_key` recognises the plain one-question queries that make up nearly all
traffic; `ttl_offsets` finds where TTLs sit in a rendered answer so a cached copy
can be aged in place; `error_reply` answers from the header alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")
QR = 0x8000
TC = 0x0200
RD = 0x0100
OPCODE_MASK = 0x7800
TYPE_OPT = 41
DO = 0x8000


class Dns64WireError(ValueError):
    """Bytes that are not a well-formed DNS message."""


@dataclass(frozen=True, slots=True)
class QueryKey:
    """Cache key of a plain query plus what the fast path needs to answer it."""

    key: bytes  # query without ID, qname lowercased
    qend: int  # end offset of the question
    limit: int  # largest UDP answer the client accepts


def query_key(wire: bytes) -> QueryKey | None:
    """Key of a one-question query with at most an OPT record, else None.

    Anything unusual (compression in the question, extra records) goes the slow path,
    which parses properly.
    """
    n = len(wire)
    if n < 17 or n > 512:
        return None
    _, flags, qd, an, ns, ar = HEADER.unpack_from(wire)
    if flags & (QR | OPCODE_MASK | 0x000F) or qd != 1 or an or ns or ar > 1:
        return None
    pos = 12
    while True:
        length = wire[pos]
        if length == 0:
            break
        if length > 63:
            return None
        pos += length + 1
        if pos >= n:
            return None
    qname_end = pos + 1
    qend = qname_end + 4
    if ar == 0:
        if qend != n:
            return None
        limit = 512
        key = wire[2:12] + wire[12:qname_end].lower() + wire[qname_end:]
    else:
        # OPT: root name, type 41, class = payload, ttl = ext-rcode/version/flags, rdlen.
        # Its options (cookies, padding, ...) do not change the answer, so they are not
        # part of the key; they must still be well formed.
        if n < qend + 11 or wire[qend] != 0:
            return None
        rtype, payload, _ext, version, _flags, rdlen = struct.unpack_from("!HHBBHH", wire, qend + 1)
        if rtype != TYPE_OPT or version != 0 or n != qend + 11 + rdlen:
            return None
        pos = qend + 11
        while pos < n:
            if pos + 4 > n:
                return None
            pos += 4 + struct.unpack_from("!H", wire, pos + 2)[0]
        if pos != n:
            return None
        limit = max(512, payload)
        key = wire[2:12] + wire[12:qname_end].lower() + wire[qname_end : qend + 9] + b"\0\0"
    return QueryKey(key, qend, limit)


def _skip_name(wire: bytes, pos: int) -> int:
    n = len(wire)
    while True:
        if pos >= n:
            raise Dns64WireError("name runs past the end")
        length = wire[pos]
        if length & 0xC0 == 0xC0:
            if pos + 2 > n:
                raise Dns64WireError("truncated pointer")
            return pos + 2
        if length & 0xC0:
            raise Dns64WireError("bad label type")
        if length == 0:
            return pos + 1
        pos += length + 1


def ttl_offsets(wire: bytes) -> list[tuple[int, int]]:
    """(offset, ttl) of every RR TTL in *wire*, OPT excluded. Raises Dns64WireError."""
    if len(wire) < 12:
        raise Dns64WireError("short header")
    _, _, qd, an, ns, ar = HEADER.unpack_from(wire)
    pos = 12
    for _ in range(qd):
        pos = _skip_name(wire, pos) + 4
    out = []
    for _ in range(an + ns + ar):
        pos = _skip_name(wire, pos)
        if pos + 10 > len(wire):
            raise Dns64WireError("truncated record")
        rtype, _cls, ttl, rdlen = struct.unpack_from("!HHIH", wire, pos)
        if rtype != TYPE_OPT:
            out.append((pos + 4, ttl))
        pos += 10 + rdlen
    if pos != len(wire):
        raise Dns64WireError("records do not fill the message")
    return out


def age_ttls(buf: bytearray, offsets: list[tuple[int, int]], age: int) -> None:
    """Lower each TTL in *buf* by *age* seconds (not below zero)."""
    if age <= 0:
        return
    for off, ttl in offsets:
        struct.pack_into("!I", buf, off, ttl - age if ttl > age else 0)


def question_end(wire: bytes) -> int | None:
    """End of the only question when it is intact and uses no compression, else None."""
    n = len(wire)
    if n < 12 or HEADER.unpack_from(wire)[2] != 1:
        return None
    pos = 12
    while pos < n:
        length = wire[pos]
        if length == 0:
            end = pos + 5
            return end if end <= n and end - 12 <= 259 else None
        if length > 63:
            return None
        pos += length + 1
    return None


def error_reply(wire: bytes, rcode: int, with_question: bool = True) -> bytes:
    """Response carrying *rcode*, built from the query header (and its question if intact).

    Only standard queries get their question back: other opcodes lay out sections differently.
    """
    qid, flags = struct.unpack_from("!HH", wire)
    out_flags = QR | (flags & (OPCODE_MASK | RD)) | (rcode & 0xF)
    qend = question_end(wire) if with_question and not flags & OPCODE_MASK else None
    if qend is None:
        return HEADER.pack(qid, out_flags, 0, 0, 0, 0)
    return HEADER.pack(qid, out_flags, 1, 0, 0, 0) + wire[12:qend]
