"""The NCP's own DNS-SD server (OpenThread's ``Dns::ServiceDiscovery::Server``, OT_DNSSD_SERVER) on UDP 53.

An OpenThread NCP built with it answers every DNS query sent to any of its addresses itself, and the
query never reaches the host (the port is in use inside the NCP).  It serves only names registered
with its SRP server under ``default.service.arpa.``; the simulator registers none, so every well-formed
standard query gets what OpenThread sends for a name it does not serve: rcode NXDOMAIN (3) with the
question echoed (``Server::ProcessQuery``; ``ot-cli-ftd`` reports it as "Error 23: NotFound").
Not modelled: the SRV+TXT two-question query OpenThread accepts (answered FORMERR here) and SOA/NS
answers for the domain itself.
"""

from __future__ import annotations

import struct

__all__ = ["RCODE_FORMAT_ERROR", "RCODE_NAME_ERROR", "RCODE_NOT_IMPLEMENTED", "answer"]

PORT = 53
RCODE_FORMAT_ERROR = 1
RCODE_NAME_ERROR = 3
RCODE_NOT_IMPLEMENTED = 4

_HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
_TC = 0x0200
_RD = 0x0100


def _question_end(message: bytes, offset: int) -> int | None:
    """Offset after one question (uncompressed name, type, class), None if it is malformed."""
    while True:
        if offset >= len(message):
            return None
        length = message[offset]
        offset += 1
        if length == 0:
            break
        if length > 63:  # a compression pointer cannot start the first name of a query
            return None
        offset += length
    offset += 4
    return offset if offset <= len(message) else None


def answer(query: bytes) -> bytes | None:
    """The DNS message the server sends back for ``query``, or None where OpenThread stays silent."""
    if len(query) < _HEADER.size:
        return None
    ident, flags, qdcount = _HEADER.unpack_from(query)[:3]
    if flags & _QR:
        return None  # a response, not a query
    opcode = (flags >> 11) & 0xF
    base = _QR | (opcode << 11) | (flags & _RD)

    def header(rcode: int, questions: int) -> bytes:
        return _HEADER.pack(ident, base | rcode, questions, 0, 0, 0)

    if opcode != 0:
        return header(RCODE_NOT_IMPLEMENTED, 0)
    end = _question_end(query, _HEADER.size) if qdcount == 1 and not flags & _TC else None
    if end is None:
        return header(RCODE_FORMAT_ERROR, 0)
    return header(RCODE_NAME_ERROR, 1) + query[_HEADER.size : end]
