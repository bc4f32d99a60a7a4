"""Asyncio client for an OpenThread NCP speaking Spinel over HDLC-lite.

One :class:`NcpClient` owns one link.  It matches replies to requests by TID, retries GETs, turns pushed
frames into typed events and STREAM_NET frames into packets, notices NCP resets, and reopens the link with
exponential backoff when it is lost.  State changes are logged with the journal field ``NCP_STATE``.

Events (delivered to handlers added with :meth:`NcpClient.add_event_handler` and to queues from
:meth:`NcpClient.subscribe`): :class:`PropertyChanged`, :class:`PropertyInserted`,
:class:`PropertyRemoved`, :class:`Reset`, :class:`LinkLost`, :class:`Connected`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from common.aio import cancel_all
from common.backoff import Backoff

from . import hdlc
from .links import base as _links
from .links.url import create_link, parse_link_url
from .record import Recorder
from .spinel import (
    INTERFACE_TYPE_THREAD,
    Command,
    Prop,
    SpinelError,
    SpinelFrame,
    Status,
    is_reset,
    is_secret,
    pack_prop,
    prop_name,
    status_name,
    unpack_prop,
)

__all__ = [
    "Connected",
    "LinkLost",
    "NcpClient",
    "NcpError",
    "NcpIncompatible",
    "NcpNotConnected",
    "NcpState",
    "NcpStatusError",
    "NcpTimeout",
    "NcpUndecodable",
    "NetPacket",
    "PropertyChanged",
    "PropertyInserted",
    "PropertyRemoved",
    "Reset",
]

log = logging.getLogger(__name__)

SUPPORTED_PROTOCOL_MAJOR = 4
MAX_TID = 15


class NcpState(enum.StrEnum):
    STOPPED = "STOPPED"
    CONNECTING = "CONNECTING"
    RUNNING = "RUNNING"
    RESETTING = "RESETTING"
    LINK_LOST = "LINK_LOST"
    INCOMPATIBLE = "INCOMPATIBLE"


# -- errors ----------------------------------------------------------------------------------------


class NcpError(Exception):
    """Base class of NCP client failures."""


class NcpTimeout(NcpError, TimeoutError):
    """The NCP did not answer in time (after the retries)."""


class NcpNotConnected(NcpError):
    """The link is down; the request was not (or not completely) sent."""


class NcpIncompatible(NcpError):
    """The NCP speaks another protocol major version or is not a Thread interface; retry later."""


class NcpStatusError(NcpError):
    """The NCP answered a request with a failing LAST_STATUS."""

    def __init__(self, status: int, request: str) -> None:
        self.status = status
        super().__init__(f"{request} failed: {status_name(status)} ({status})")

    @property
    def unsupported(self) -> bool:
        """The NCP's firmware lacks the property or this command on it (an older or smaller build)."""
        return self.status in _UNSUPPORTED


class NcpUndecodable(NcpError):
    """The NCP answered, but not in the format this driver knows for the property."""


_UNSUPPORTED = frozenset({Status.PROP_NOT_FOUND, Status.UNIMPLEMENTED, Status.INVALID_COMMAND_FOR_PROP,
                          Status.INVALID_COMMAND})


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PropertyChanged:
    """IS pushed by the NCP (TID 0) for a property other than LAST_STATUS and the streams."""

    prop: int
    value: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class PropertyInserted:
    prop: int
    value: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class PropertyRemoved:
    prop: int
    value: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reset:
    """The NCP restarted (LAST_STATUS 112..120) and lost its runtime state."""

    status: int


@dataclass(frozen=True, slots=True)
class LinkLost:
    """The link dropped; the client is reconnecting."""

    reason: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The link is (re)established and the NCP passed the compatibility checks."""

    info: dict[str, Any]


Event = PropertyChanged | PropertyInserted | PropertyRemoved | Reset | LinkLost | Connected


class NetPacket(NamedTuple):
    """An IPv6 packet from STREAM_NET (secure) or STREAM_NET_INSECURE."""

    data: bytes
    secure: bool


@dataclass(slots=True)
class ClientCounters:
    frames_in: int = 0
    frames_out: int = 0
    bad_frames: int = 0  # well-framed but not valid Spinel
    retries: int = 0
    timeouts: int = 0
    resets: int = 0
    link_losses: int = 0
    reconnects: int = 0
    late_replies: int = 0
    packets_in: int = 0
    packets_out: int = 0
    packets_dropped: int = 0  # receive queue full
    events_dropped: int = 0
    undecodable: int = 0  # replies and pushed values not in the known format of their property
    degraded: int = 0  # features found unavailable on this NCP (see NcpClient.degrade)


_STATUS_VALUES = frozenset(int(s) for s in Status)
# OpenThread's commissioner logs the PSKd ("Added Joiner (any, J01NME)", "Starting new session with Joiner
# (eui64:..., J01NME)"): an NCP that logs over STREAM_LOG must not put it in the host's journal.
_PSKD_IN_LOG = re.compile(r"(Joiner \([^,()]*, )[^)]*\)")
_MASK = "********"
_EXPECTED_REPLY = {
    Command.PROP_VALUE_GET: Command.PROP_VALUE_IS,
    Command.PROP_VALUE_SET: Command.PROP_VALUE_IS,
    Command.PROP_VALUE_INSERT: Command.PROP_VALUE_INSERTED,
    Command.PROP_VALUE_REMOVE: Command.PROP_VALUE_REMOVED,
}


class NcpClient:
    """Talk to one NCP.  ``await start()`` connects; ``await stop()`` closes everything."""

    def __init__(
        self,
        link: str | _links.Link,
        *,
        request_timeout: float = 2.0,
        get_retries: int = 2,
        reset_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        packet_queue_size: int = 512,
        on_packet: Callable[[NetPacket], None] | None = None,
        record: str | None = None,
    ) -> None:
        if isinstance(link, str):
            spec = parse_link_url(link)
            record = record or spec.record
            link = create_link(spec)
        self.link = link
        # Every byte to and from the NCP, for test data (ncp.record); ``record=`` in the URL or here.
        self.recorder = Recorder(record) if record else None
        self.request_timeout = request_timeout
        self.get_retries = get_retries
        self.reset_timeout = reset_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.on_packet = on_packet
        self.packets: asyncio.Queue[NetPacket] = asyncio.Queue(packet_queue_size)
        self.counters = ClientCounters()
        self.state = NcpState.STOPPED
        self.info: dict[str, Any] = {}
        # How this NCP serves a feature that NCP generations serve differently (e.g. "dataset" →
        # "THREAD_ACTIVE_DATASET"), and features it cannot serve at all, with the reason.  Both are
        # learned from its answers and forgotten on reconnect: the firmware may have been replaced.
        self.features: dict[str, str] = {}
        self.degraded: dict[str, str] = {}
        self._decoder = hdlc.HdlcDecoder()
        self._pending: dict[int, asyncio.Future[SpinelFrame]] = {}
        self._expired: set[int] = set()
        self._next_tid = 1
        self._tid_free = asyncio.Condition()
        self._reset_waiters: list[asyncio.Future[int]] = []
        self._handlers: list[Callable[[Event], None]] = []
        self._queues: list[asyncio.Queue[Event]] = []
        self._reader: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._stopping = False
        self._link_ok = False

    # -- public lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the link and check the NCP; raises NcpIncompatible, NcpTimeout or a link error."""
        self._stopping = False
        try:
            await self._connect()
        except BaseException:
            await self._close_link()
            if self.state is not NcpState.INCOMPATIBLE:
                self._set_state(NcpState.STOPPED)
            raise

    async def stop(self) -> None:
        self._stopping = True
        await cancel_all(self._reconnector, self._reader)
        self._reconnector = self._reader = None
        self._fail_pending(NcpNotConnected("client stopped"))
        await self._close_link()
        self._set_state(NcpState.STOPPED)
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    # -- public requests -------------------------------------------------------------------------
    async def get(self, prop: int, *, timeout: float | None = None) -> Any:
        """Read a property, decoded by its format (raw bytes for unknown properties)."""
        reply = await self.request(Command.PROP_VALUE_GET, prop, b"", timeout=timeout, retries=self.get_retries)
        return self._decode_reply(reply, prop)

    async def set(self, prop: int, value: Any, *, timeout: float | None = None) -> Any:
        """Write a property; returns the value the NCP reports back (None for a bare LAST_STATUS OK)."""
        reply = await self.request(Command.PROP_VALUE_SET, prop, pack_prop(prop, value), timeout=timeout)
        return self._decode_reply(reply, prop)

    async def insert(self, prop: int, value: Any, *, timeout: float | None = None) -> Any:
        """Add one item to an array property (e.g. an on-mesh prefix)."""
        data = pack_prop(prop, value, element=True)
        reply = await self.request(Command.PROP_VALUE_INSERT, prop, data, timeout=timeout)
        return self._decode_reply(reply, prop, element=True)

    async def remove(self, prop: int, value: Any, *, timeout: float | None = None) -> Any:
        data = pack_prop(prop, value, element=True)
        reply = await self.request(Command.PROP_VALUE_REMOVE, prop, data, timeout=timeout)
        return self._decode_reply(reply, prop, element=True)

    def send_packet_nowait(self, packet: bytes, *, insecure: bool = False) -> None:
        """Hand an IPv6 packet to the mesh (SET STREAM_NET, no reply requested); NcpNotConnected if the link is down.

        Synchronous, so a datapath can call it per packet without creating a task.
        """
        prop = Prop.STREAM_NET_INSECURE if insecure else Prop.STREAM_NET
        self._send(SpinelFrame(0, 0, Command.PROP_VALUE_SET, prop, pack_prop(prop, (packet, b""))))
        self.counters.packets_out += 1

    async def send_packet(self, packet: bytes, *, insecure: bool = False) -> None:
        """:meth:`send_packet_nowait` for callers in a coroutine."""
        self.send_packet_nowait(packet, insecure=insecure)

    async def reset(self, *, hard: bool = False) -> int:
        """Restart the NCP and wait for its reset LAST_STATUS; returns that status.

        A software RESET that is not answered in time falls back to the link's hard reset when the link
        has one.  The NCP loses its runtime state: callers must configure it again.
        """
        self._set_state(NcpState.RESETTING)
        try:
            if hard and self.link.supports_hard_reset:
                return await self._hard_reset()
            waiter = self._reset_waiter()
            self._send(SpinelFrame(0, 0, Command.RESET))
            try:
                return await asyncio.wait_for(waiter, self.reset_timeout)
            except TimeoutError:
                self.counters.timeouts += 1
                if not self.link.supports_hard_reset:
                    raise NcpTimeout("NCP did not report a reset after RESET") from None
                log.warning("NCP did not answer RESET; trying a hard reset through the link")
                return await self._hard_reset()
        finally:
            if self.state is NcpState.RESETTING:
                self._set_state(NcpState.RUNNING if self._link_ok else NcpState.LINK_LOST)

    async def _hard_reset(self) -> int:
        waiter = self._reset_waiter()
        if not await self.link.hard_reset():
            waiter.cancel()
            raise NcpError("hard reset through the link failed")
        try:
            return await asyncio.wait_for(waiter, self.reset_timeout)
        except TimeoutError:
            self.counters.timeouts += 1
            raise NcpTimeout("NCP did not report a reset after a hard reset") from None

    async def request(
        self,
        command: int,
        prop: int,
        value: bytes = b"",
        *,
        timeout: float | None = None,
        retries: int = 0,
    ) -> SpinelFrame:
        """Send one PROP_VALUE_* request and return the matching reply frame.

        Raises NcpStatusError when the NCP answers with a failing LAST_STATUS.
        """
        timeout = self.request_timeout if timeout is None else timeout
        what = f"{getattr(command, 'name', command)} {prop_name(prop)}"
        for attempt in range(retries + 1):
            if attempt:
                self.counters.retries += 1
                log.debug("retrying %s (attempt %d)", what, attempt + 1)
            tid = await self._alloc_tid()
            future = self._pending[tid]
            try:
                self._send(SpinelFrame(0, tid, command, prop, value))
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                self.counters.timeouts += 1
                self._expired.add(tid)
                continue
            finally:
                await self._release_tid(tid)
            return self._check_reply(reply, command, prop, what)
        raise NcpTimeout(f"{what}: no answer from the NCP after {retries + 1} attempt(s)")

    # -- events and status ---------------------------------------------------------------------------
    def add_event_handler(self, handler: Callable[[Event], None]) -> None:
        self._handlers.append(handler)

    def remove_event_handler(self, handler: Callable[[Event], None]) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(handler)

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        """A queue that receives every event from now on (events are dropped and counted when full)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    def degrade(self, feature: str, reason: str) -> None:
        """Note that ``feature`` does not work on this NCP: logged once, counted, shown by ``gatewayctl ncp``."""
        if feature not in self.degraded:
            self.counters.degraded += 1
            log.warning("NCP: %s unavailable (%s); the rest keeps working", feature, reason,
                        extra={"fields": {"NCP_FEATURE": feature}})
        self.degraded[feature] = reason

    def status(self) -> dict[str, Any]:
        """Plain dict for ``gatewayctl ncp``."""
        out: dict[str, Any] = {
            "state": str(self.state),
            "link": self.link.describe(),
            "link_info": dict(self.link.info),
            "ncp": dict(self.info),
            "features": dict(self.features),
            "degraded": dict(self.degraded),
            "counters": asdict(self.counters),
            "hdlc": self._decoder.counters.as_dict(),
        }
        session = getattr(self.link, "session", None)
        if session is not None and hasattr(session, "counters"):
            out["cascoda"] = session.counters.as_dict()
        return out

    # -- connection ---------------------------------------------------------------------------------
    def _set_state(self, state: NcpState) -> None:
        if state is not self.state:
            self.state = state
            level = logging.WARNING if state in (NcpState.LINK_LOST, NcpState.INCOMPATIBLE) else logging.INFO
            log.log(level, "NCP state %s", state, extra={"fields": {"NCP_STATE": str(state)}})

    async def _connect(self) -> None:
        self._set_state(NcpState.CONNECTING)
        self._decoder.reset()
        await self.link.open()
        self._link_ok = True
        self._reader = asyncio.create_task(self._read_loop(), name="ncp-reader")
        self.features.clear()
        self.degraded.clear()
        info = await self._handshake()
        self.info = info
        self._set_state(NcpState.RUNNING)
        self._emit(Connected(dict(info)))

    async def _handshake(self) -> dict[str, Any]:
        major, minor = await self.get(Prop.PROTOCOL_VERSION)
        itype = await self.get(Prop.INTERFACE_TYPE)
        info: dict[str, Any] = {"protocol_version": f"{major}.{minor}", "interface_type": itype}
        for key, prop in (("ncp_version", Prop.NCP_VERSION), ("caps", Prop.CAPS), ("hwaddr", Prop.HWADDR)):
            try:
                value = await self.get(prop)
            except NcpStatusError as exc:
                log.warning("NCP cannot report %s: %s", prop.name, exc)
                continue
            info[key] = value.hex() if isinstance(value, bytes) else value
        log.info(
            "NCP %s, Spinel %s, interface type %s, EUI-64 %s, %d capabilities",
            info.get("ncp_version", "?"),
            info["protocol_version"],
            itype,
            info.get("hwaddr", "?"),
            len(info.get("caps", ())),
        )
        if major != SUPPORTED_PROTOCOL_MAJOR:
            self._refuse(
                f"NCP speaks Spinel protocol {major}.{minor}, this daemon needs major version "
                f"{SUPPORTED_PROTOCOL_MAJOR}: flash the NCP with an OpenThread NCP firmware of a matching version"
            )
        if itype != INTERFACE_TYPE_THREAD:
            self._refuse(
                f"NCP interface type is {itype}, not Thread ({INTERFACE_TYPE_THREAD}): flash an OpenThread "
                "NCP (ot-ncp-ftd) firmware, not an RCP or another protocol stack"
            )
        return info

    def _refuse(self, message: str) -> None:
        self._set_state(NcpState.INCOMPATIBLE)
        log.error("%s", message, extra={"fields": {"NCP_STATE": str(NcpState.INCOMPATIBLE)}})
        raise NcpIncompatible(message)

    async def _close_link(self) -> None:
        self._link_ok = False
        await cancel_all(self._reader)
        self._reader = None
        with contextlib.suppress(Exception):
            await self.link.close()

    def _on_link_lost(self, reason: str) -> None:
        if not self._link_ok or self._stopping:
            return
        self._link_ok = False
        self._fail_pending(NcpNotConnected(f"link lost: {reason}"))
        if self.state is NcpState.CONNECTING:
            return  # the connect attempt fails; whoever started it decides about retrying
        self.counters.link_losses += 1
        self._set_state(NcpState.LINK_LOST)
        self._emit(LinkLost(reason))
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.create_task(self._reconnect(), name="ncp-reconnect")

    async def _reconnect(self) -> None:
        retry = Backoff(self.backoff_initial, self.backoff_max)  # each link loss starts afresh
        delay = retry.delay()
        while not self._stopping:
            await self._close_link()
            await asyncio.sleep(delay)
            delay = retry.delay()
            try:
                await self._connect()
            except (OSError, NcpError, SpinelError) as exc:  # LinkDown is an OSError
                log.warning("reconnecting to the NCP failed: %s; next try in %.1f s", exc, delay)
                if self.state is not NcpState.INCOMPATIBLE:
                    self._set_state(NcpState.LINK_LOST)
                continue
            self.counters.reconnects += 1
            return

    # -- I/O ---------------------------------------------------------------------------------------
    def _send(self, frame: SpinelFrame) -> None:
        if not self._link_ok:
            raise NcpNotConnected("NCP link is down")
        data = hdlc.encode(frame.encode())
        try:
            self.link.write(data)
        except OSError as exc:
            self._on_link_lost(str(exc))
            raise NcpNotConnected(f"NCP link is down: {exc}") from exc
        self.counters.frames_out += 1
        if self.recorder is not None:
            self.recorder.note("host", data)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("-> %r", frame)

    async def _read_loop(self) -> None:
        try:
            while True:
                chunk = await self.link.read()
                if self.recorder is not None:
                    self.recorder.note("ncp", chunk)
                for payload in self._decoder.feed(chunk):
                    try:
                        self._on_frame(payload)
                    except Exception:
                        # A bug here (or in on_packet) must not end the reader: requests would hang.
                        self.counters.bad_frames += 1
                        log.exception("NCP frame handling failed; frame dropped")
        except _links.LinkDown as exc:
            self._on_link_lost(str(exc))
        except OSError as exc:
            self._on_link_lost(f"read error: {exc}")

    def _on_frame(self, payload: bytes) -> None:
        try:
            frame = SpinelFrame.decode(payload)
        except SpinelError as exc:
            self.counters.bad_frames += 1
            log.debug("dropping bad Spinel frame: %s", exc)
            return
        self.counters.frames_in += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("<- %r", frame)
        if frame.prop == Prop.LAST_STATUS and frame.command == Command.PROP_VALUE_IS:
            self._check_reset_status(frame)
        if frame.tid:
            future = self._pending.get(frame.tid)
            if future is not None and not future.done():
                future.set_result(frame)
                return
            if frame.tid in self._expired:
                self.counters.late_replies += 1
                return
        self._on_unsolicited(frame)

    def _check_reset_status(self, frame: SpinelFrame) -> None:
        try:
            status = unpack_prop(Prop.LAST_STATUS, frame.value)
        except SpinelError:
            return
        if not is_reset(status):
            return
        self.counters.resets += 1
        status = Status(status) if status in _STATUS_VALUES else status
        log.warning("NCP reset: %s", status_name(status))
        for waiter in self._reset_waiters:
            if not waiter.done():
                waiter.set_result(status)
        self._reset_waiters.clear()
        self._emit(Reset(status))

    def _on_unsolicited(self, frame: SpinelFrame) -> None:
        prop = frame.prop
        if prop is None:
            return
        if frame.command == Command.PROP_VALUE_IS:
            if prop == Prop.LAST_STATUS:
                # Resets are handled above. Other pushed statuses answer TID-0 requests (DROPPED, NOMEM) or
                # report an outcome, such as the NCP-as-joiner's JOIN_SUCCESS / JOIN_SECURITY / JOIN_NO_PEERS.
                status = self._decode_value(prop, frame.value)
                if isinstance(status, int) and not is_reset(status):
                    self._emit(PropertyChanged(prop, status))
                return
            if prop in (Prop.STREAM_NET, Prop.STREAM_NET_INSECURE):
                self._on_packet(frame)
                return
            if prop in (Prop.STREAM_LOG, Prop.STREAM_DEBUG):
                self._on_ncp_log(frame)
                return
            self._emit(PropertyChanged(prop, self._decode_value(prop, frame.value)))
        elif frame.command == Command.PROP_VALUE_INSERTED:
            self._emit(PropertyInserted(prop, self._decode_value(prop, frame.value, element=True)))
        elif frame.command == Command.PROP_VALUE_REMOVED:
            self._emit(PropertyRemoved(prop, self._decode_value(prop, frame.value, element=True)))

    def _on_packet(self, frame: SpinelFrame) -> None:
        try:
            data, _meta = unpack_prop(frame.prop, frame.value)
        except SpinelError as exc:
            self.counters.bad_frames += 1
            log.debug("dropping malformed %s: %s", prop_name(frame.prop), exc)
            return
        self.counters.packets_in += 1
        packet = NetPacket(data, frame.prop == Prop.STREAM_NET)
        if self.on_packet is not None:
            self.on_packet(packet)
            return
        try:
            self.packets.put_nowait(packet)
        except asyncio.QueueFull:
            self.counters.packets_dropped += 1

    def _on_ncp_log(self, frame: SpinelFrame) -> None:
        try:
            value = unpack_prop(frame.prop, frame.value)
        except SpinelError:
            value = frame.value
        text = value[0] if isinstance(value, tuple) else value
        if isinstance(text, str):
            text = _PSKD_IN_LOG.sub(r"\1" + _MASK + ")", text)
        log.debug("NCP log: %s", text)

    def _decode_value(self, prop: int, data: bytes, *, element: bool = False) -> Any:
        try:
            return unpack_prop(prop, data, element=element)
        except SpinelError as exc:
            self.counters.undecodable += 1
            log.debug("undecodable %s value (%s); passing raw bytes", prop_name(prop), exc)
            return bytes(data)

    def _emit(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                log.exception("NCP event handler failed")
        for queue in self._queues:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.counters.events_dropped += 1

    # -- request plumbing ---------------------------------------------------------------------------
    async def _alloc_tid(self) -> int:
        async with self._tid_free:
            while len(self._pending) >= MAX_TID:
                await self._tid_free.wait()
            tid = self._next_tid
            while tid in self._pending:
                tid = tid % MAX_TID + 1
            self._next_tid = tid % MAX_TID + 1
            self._expired.discard(tid)
            self._pending[tid] = asyncio.get_running_loop().create_future()
            return tid

    async def _release_tid(self, tid: int) -> None:
        self._pending.pop(tid, None)
        async with self._tid_free:
            self._tid_free.notify()

    def _reset_waiter(self) -> asyncio.Future[int]:
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reset_waiters.append(waiter)
        return waiter

    def _fail_pending(self, exc: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        for waiter in self._reset_waiters:
            if not waiter.done():
                waiter.set_exception(exc)
        self._reset_waiters.clear()

    def _check_reply(self, reply: SpinelFrame, command: int, prop: int, what: str) -> SpinelFrame:
        if reply.prop == Prop.LAST_STATUS and prop != Prop.LAST_STATUS:
            try:
                status = unpack_prop(Prop.LAST_STATUS, reply.value)
            except SpinelError as exc:
                raise NcpError(f"{what}: undecodable LAST_STATUS reply") from exc
            if status != Status.OK:
                raise NcpStatusError(status, what)
            return reply
        expected = _EXPECTED_REPLY.get(command)
        if expected is not None and (reply.command != expected or reply.prop != prop):
            raise NcpError(f"{what}: unexpected reply {reply!r}")
        return reply

    def _decode_reply(self, reply: SpinelFrame, prop: int, *, element: bool = False) -> Any:
        if reply.prop == Prop.LAST_STATUS and prop != Prop.LAST_STATUS:
            return None
        try:
            return unpack_prop(prop, reply.value, element=element)
        except SpinelError as exc:
            self.counters.undecodable += 1
            shown = "<secret>" if is_secret(prop) else reply.value.hex()
            raise NcpUndecodable(f"{prop_name(prop)}: cannot decode reply {shown}: {exc}") from exc
