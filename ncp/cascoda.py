"""Cascoda CA-8211 (Chili2) serial link, sans-I/O.

On this link the NCP's HDLC-lite byte stream travels inside Cascoda messages: ``0xDE`` (SOM), command,
length (0..254), payload.  Host → device stream chunks use OT_SERIAL_DOWNLINK, device → host
OT_SERIAL_UPLINK.  Every message except RXRDY/RXFAIL is acknowledged with RXRDY before the sender may send
the next one; a malformed or stalled message is answered with RXFAIL and resent in full.

:class:`CascodaParser` splits the byte stream into messages; :class:`CascodaSession` runs the
acknowledge/resend state machine.  Both are driven by the caller's clock (``now`` in seconds), so the
asyncio transport on top only moves bytes and calls ``tick()``.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import asdict, dataclass, field

__all__ = [
    "ACK_TIMEOUT",
    "INCOMPLETE_TIMEOUT",
    "MAX_MISSED_ACKS",
    "MAX_PAYLOAD",
    "SOM",
    "Attribute",
    "CascodaCounters",
    "CascodaError",
    "CascodaMessage",
    "CascodaParser",
    "CascodaSession",
    "Cmd",
    "GetConfirm",
    "Incomplete",
    "Malformed",
    "get_request",
    "message_text",
    "parse_get_confirm",
    "parse_set_confirm",
    "set_request",
]

SOM = 0xDE
RESERVED = 0xFF
MAX_PAYLOAD = 254
ACK_TIMEOUT = 1.0  # wait at most this long for RXRDY
INCOMPLETE_TIMEOUT = 0.2  # a message not complete this long after it started is answered with RXFAIL
MAX_MISSED_ACKS = 5  # missed RXRDYs in a row before the link is considered down


class Cmd(enum.IntEnum):
    """Cascoda TLV command ids used by the host."""

    EVBME_SET_CONFIRM = 0x5E
    EVBME_SET_REQUEST = 0x5F
    EVBME_GET_CONFIRM = 0x5C
    EVBME_GET_REQUEST = 0x5D
    EVBME_HOST_CONNECTED = 0x81
    EVBME_HOST_DISCONNECTED = 0x82
    EVBME_MESSAGE_INDICATION = 0xA0
    EVBME_COMM_CHECK = 0xA1
    EVBME_COMM_INDICATION = 0xA2
    EVBME_DFU_CMD = 0xA3
    EVBME_RXRDY = 0xAA
    EVBME_RXFAIL = 0xAB
    OT_SERIAL_DOWNLINK = 0xB2
    OT_SERIAL_UPLINK = 0xB3


class Attribute(enum.IntEnum):
    """EVBME attribute ids for GET/SET requests."""

    RESETRF = 0x00
    VERSION = 0x80
    PLATFORM = 0x81
    APPLICATION = 0x82
    SERIALNO = 0x83
    OT_EUI64 = 0x84
    OT_JOINCRED = 0x85


_NOT_ACKED = frozenset({Cmd.EVBME_RXRDY, Cmd.EVBME_RXFAIL})


class CascodaError(ValueError):
    """A Cascoda message or EVBME payload is malformed."""


@dataclass(frozen=True, slots=True)
class CascodaMessage:
    cmd: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.cmd < RESERVED:
            raise CascodaError(f"command 0x{self.cmd:02x} is out of range or reserved")
        if len(self.payload) > MAX_PAYLOAD:
            raise CascodaError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    def encode(self) -> bytes:
        return bytes((SOM, self.cmd, len(self.payload))) + self.payload

    @property
    def needs_ack(self) -> bool:
        return self.cmd not in _NOT_ACKED


RXRDY = CascodaMessage(Cmd.EVBME_RXRDY)
RXFAIL = CascodaMessage(Cmd.EVBME_RXFAIL)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message header with a reserved command or length; the receiver answers RXFAIL."""

    reason: str


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A message that did not complete within INCOMPLETE_TIMEOUT; the receiver answers RXFAIL."""

    received: int


ParserEvent = CascodaMessage | Malformed | Incomplete


class CascodaParser:
    """Split the UART byte stream into messages, resynchronising on the next SOM when out of step."""

    def __init__(self, incomplete_timeout: float = INCOMPLETE_TIMEOUT) -> None:
        self.incomplete_timeout = incomplete_timeout
        self._buf = bytearray()
        self._started: float | None = None
        self.skipped = 0  # bytes dropped while looking for a SOM

    def feed(self, data: bytes, now: float) -> list[ParserEvent]:
        buf = self._buf
        buf += data
        events: list[ParserEvent] = []
        while buf:
            if buf[0] != SOM:
                nxt = buf.find(SOM)
                drop = len(buf) if nxt < 0 else nxt
                self.skipped += drop
                del buf[:drop]
                self._started = None
                continue
            if len(buf) >= 2 and buf[1] == RESERVED:
                events.append(Malformed("reserved command 0xff"))
                del buf[:1]
                self._started = None
                continue
            if len(buf) >= 3 and buf[2] == RESERVED:
                events.append(Malformed("reserved length 0xff"))
                del buf[:1]
                self._started = None
                continue
            if len(buf) < 3 or len(buf) < 3 + buf[2]:
                if self._started is None:
                    self._started = now
                break
            end = 3 + buf[2]
            events.append(CascodaMessage(buf[1], bytes(buf[3:end])))
            del buf[:end]
            self._started = None
        return events

    def tick(self, now: float) -> Incomplete | None:
        """Give up on a partial message that has been stalled too long."""
        if self._started is not None and now >= self._started + self.incomplete_timeout:
            event = Incomplete(len(self._buf))
            self._buf.clear()
            self._started = None
            return event
        return None

    @property
    def deadline(self) -> float | None:
        return None if self._started is None else self._started + self.incomplete_timeout

    def reset(self) -> None:
        self._buf.clear()
        self._started = None


@dataclass(slots=True)
class CascodaCounters:
    tx_messages: int = 0
    rx_messages: int = 0
    resends: int = 0  # after RXFAIL from the peer
    ack_timeouts: int = 0
    rxfail_sent: int = 0
    malformed: int = 0
    incomplete: int = 0
    resync_bytes: int = 0
    link_down_events: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Pending:
    message: CascodaMessage
    deadline: float


@dataclass
class CascodaSession:
    """Acknowledge/resend state machine for one Cascoda UART link.

    Drive it with ``feed(data, now)`` for received bytes, ``tick(now)`` at ``next_deadline()``, and
    ``send(message, now)`` / ``send_stream(data, now)`` for outgoing data; collect the bytes to write
    with ``data_to_send()``.  ``feed`` returns the received messages the application cares about (no
    RXRDY/RXFAIL).
    """

    ack_timeout: float = ACK_TIMEOUT
    max_missed_acks: int = MAX_MISSED_ACKS
    incomplete_timeout: float = INCOMPLETE_TIMEOUT
    counters: CascodaCounters = field(default_factory=CascodaCounters)

    def __post_init__(self) -> None:
        self._parser = CascodaParser(self.incomplete_timeout)
        self._queue: deque[CascodaMessage] = deque()
        self._pending: _Pending | None = None
        self._out = bytearray()
        self.missed_acks = 0
        self.link_down = False

    # -- output --------------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def send(self, message: CascodaMessage, now: float) -> None:
        """Queue a message; it goes out once the previous one was acknowledged."""
        if not message.needs_ack:
            self._write(message)
            return
        self._queue.append(message)
        self._pump(now)

    def send_stream(self, data: bytes, now: float) -> None:
        """Queue NCP stream bytes as OT_SERIAL_DOWNLINK chunks."""
        for i in range(0, len(data), MAX_PAYLOAD):
            self._queue.append(CascodaMessage(Cmd.OT_SERIAL_DOWNLINK, bytes(data[i : i + MAX_PAYLOAD])))
        self._pump(now)

    @property
    def queued(self) -> int:
        return len(self._queue) + (1 if self._pending else 0)

    def _write(self, message: CascodaMessage) -> None:
        self._out += message.encode()
        if message.needs_ack:
            self.counters.tx_messages += 1

    def _pump(self, now: float) -> None:
        while self._pending is None and self._queue:
            message = self._queue.popleft()
            self._write(message)
            if not self.link_down:
                self._pending = _Pending(message, now + self.ack_timeout)

    # -- input ---------------------------------------------------------------------------------
    def feed(self, data: bytes, now: float) -> list[CascodaMessage]:
        delivered: list[CascodaMessage] = []
        skipped = self._parser.skipped
        events = self._parser.feed(data, now)
        self.counters.resync_bytes += self._parser.skipped - skipped
        for event in events:
            if isinstance(event, Malformed):
                self.counters.malformed += 1
                self._reject()
                continue
            # Anything well-formed proves the peer is alive again.
            self.missed_acks = 0
            self.link_down = False
            if event.cmd == Cmd.EVBME_RXRDY:
                self._pending = None
            elif event.cmd == Cmd.EVBME_RXFAIL:
                if self._pending is not None:
                    self.counters.resends += 1
                    self._out += self._pending.message.encode()
                    self._pending.deadline = now + self.ack_timeout
            else:
                self.counters.rx_messages += 1
                self._write(RXRDY)
                delivered.append(event)
        self._pump(now)
        return delivered

    def _reject(self) -> None:
        self.counters.rxfail_sent += 1
        self._write(RXFAIL)

    def tick(self, now: float) -> None:
        """Run timers: stalled partial messages and missing RXRDYs."""
        if self._parser.tick(now) is not None:
            self.counters.incomplete += 1
            self._reject()
        pending = self._pending
        if pending is not None and now >= pending.deadline:
            self._pending = None
            self.counters.ack_timeouts += 1
            self.missed_acks += 1
            if self.missed_acks >= self.max_missed_acks and not self.link_down:
                self.link_down = True
                self.counters.link_down_events += 1
        self._pump(now)

    def next_deadline(self) -> float | None:
        """When ``tick`` must next run, or None if no timer is armed."""
        pending = self._pending.deadline if self._pending is not None else None
        times = [t for t in (self._parser.deadline, pending) if t is not None]
        return min(times) if times else None

    def reset(self) -> None:
        """Forget queued and partial messages (the port was reopened)."""
        self._parser.reset()
        self._queue.clear()
        self._pending = None
        self._out.clear()
        self.missed_acks = 0
        self.link_down = False


# -- EVBME payloads ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetConfirm:
    status: int
    attribute: int
    value: bytes


def get_request(attribute: int) -> CascodaMessage:
    return CascodaMessage(Cmd.EVBME_GET_REQUEST, bytes((attribute,)))


def set_request(attribute: int, value: bytes = b"") -> CascodaMessage:
    if len(value) > MAX_PAYLOAD - 2:
        raise CascodaError("attribute value too long")
    return CascodaMessage(Cmd.EVBME_SET_REQUEST, bytes((attribute, len(value))) + value)


def parse_get_confirm(payload: bytes) -> GetConfirm:
    """EVBME_GET_CONFIRM payload: status, attribute id, length, value."""
    if len(payload) < 3:
        raise CascodaError(f"GET_CONFIRM too short ({len(payload)} bytes)")
    length = payload[2]
    if len(payload) < 3 + length:
        raise CascodaError(f"GET_CONFIRM value truncated ({len(payload) - 3} of {length} bytes)")
    return GetConfirm(payload[0], payload[1], bytes(payload[3 : 3 + length]))


def parse_set_confirm(payload: bytes) -> int:
    """EVBME_SET_CONFIRM payload: status (0 is success)."""
    if not payload:
        raise CascodaError("SET_CONFIRM without status")
    return payload[0]


def message_text(payload: bytes) -> str:
    """Printable text of an EVBME_MESSAGE_INDICATION."""
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
