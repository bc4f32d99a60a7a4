"""The on-mesh commissioner in the NCP: devices join with a PSKd instead of being handed the whole dataset.

gatewayctl ``commissioner start|stop|state``, ``joiner add|remove|list`` and ``[commissioning]`` drive the NCP's
MeshCoP commissioner properties.  What the NCP reports, seen on ot-ncp-ftd 2023 and 2025: SET
MESHCOP_COMMISSIONER_STATE = active is answered "petition" and the NCP is active within a second (only while
attached: INVALID_STATE otherwise; ALREADY when it is active); joiner INSERT/REMOVE answer at once
(INVALID_STATE while the commissioner is off, INVALID_ARGUMENT for a PSKd Thread forbids, ITEM_NOT_FOUND for
an unknown joiner).  Nothing is pushed: not the state, not the joiner table, and no joiner events
(``otCommissionerStart`` is given no callbacks).  So, while joiners are allowed, the table is read every
:data:`POLL_INTERVAL` seconds and what changed becomes the journal's joiner events (``JOINER_EUI64``,
``JOINER_EVENT``): an EUI-64 entry whose time OpenThread cut to 20 s has *joined* (it does that after
JOIN_FIN); an entry gone at its end *timed out* (no device joined with it; a wrong PSKd looks the same from
here); children that attached while ``*`` was open are counted.  An NCP reset or a lost attachment ends the
commissioner; it is started again, with what is left of each joiner's time, once Thread is attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.aio import cancel_all
from gatewayd.component import Command, Component
from gatewayd.control import CommandError, Request, ncp_refusal
from gatewayd.secrets import MASK
from ncp.client import NcpClient, NcpError, NcpStatusError, PropertyInserted, Reset
from ncp.commissioning import (
    ANY,
    CommissionerState,
    JoinerEntry,
    PskdError,
    check_pskd,
    decode_joiners,
    joiner_insert,
    joiner_remove,
    parse_joiner,
)
from ncp.spinel import Command as SpinelCommand
from ncp.spinel import Prop, Status

if TYPE_CHECKING:
    from gatewayd.config import Config
    from gatewayd.ncp.component import NcpComponent
    from gatewayd.thread.view import ThreadView

log = logging.getLogger("gatewayd.commissioning")

POLL_INTERVAL = 3.0  # joiner table reads while joiners are allowed (nothing is pushed)
START_TIMEOUT = 10.0  # petition → active (ot-ncp-ftd: under a second)
STOP_TIMEOUT = 2.0  # the NCP answers a state set at once; a stop must not wait on a hung link
DEFAULT_TIMEOUT = 120  # seconds a joiner added by gatewayctl may join (ot-ctl's default)
MAX_TIMEOUT = 2_000_000  # OpenThread adds it to a 32-bit millisecond clock
JOINED_REMAINS_S = 20  # OpenThread's kRemoveJoinerDelay: an EUI-64 entry lives this long after its device joined


@dataclass
class Joiner:
    """A joiner entry gatewayd added (its PSKd, to add it again after the NCP lost it)."""

    eui64: bytes | None
    pskd: str
    deadline: float  # monotonic
    source: str  # "config" or "gatewayctl"
    joined: bool = False
    attached: int = 0  # children that attached while it was open (for "*")

    @property
    def name(self) -> str:
        return self.eui64.hex() if self.eui64 is not None else ANY

    def left(self, now: float) -> int:
        return max(0, round(self.deadline - now))


def _fields(joiner: str, event: str) -> dict[str, Any]:
    return {"fields": {"JOINER_EUI64": joiner, "JOINER_EVENT": event}}


def _state_name(state: int | None) -> str:
    try:
        return CommissionerState(state).name.lower() if state is not None else "unknown"
    except ValueError:
        return f"state {state}"


class Commissioning(Component):
    name = "commissioning"

    def __init__(self, config: Config, ncp: NcpComponent, thread: ThreadView | None):
        super().__init__(config)
        self.ncp = ncp
        self.thread = thread
        self.joiners: dict[str, Joiner] = {}
        self.state: int = CommissionerState.DISABLED
        self.session_id: int | None = None
        self.wanted = False  # the commissioner should run (config, or started/used through gatewayctl)
        self._client: NcpClient | None = None
        self._unsubscribe: Any = None
        self._monitor: asyncio.Task[None] | None = None
        self._applying: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._take_config(self.config)
        if self.thread is not None:
            self._unsubscribe = self.thread.on_change(self._on_thread_change)
        self._on_thread_change()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await cancel_all(self._monitor, self._applying)
        self._monitor = self._applying = None
        await self._disable_on_stop()
        self._detach_client()

    async def _disable_on_stop(self) -> None:
        """An NCP that outlives gatewayd (a Chili2 on the UART) would go on admitting joiners with their PSKd
        while nobody watches or logs them: the commissioner stops with the daemon and is started again at the
        next start from the configuration."""
        client = self._client
        if self.state == CommissionerState.DISABLED or client is None or not self.ncp.running:
            return
        try:
            await asyncio.wait_for(client.set(Prop.MESHCOP_COMMISSIONER_STATE, CommissionerState.DISABLED),
                                   STOP_TIMEOUT)
        except (NcpError, TimeoutError, OSError) as exc:
            log.warning("could not stop the commissioner in the NCP: %s; it may still admit joiners until the "
                        "NCP restarts", exc)
            return
        self._set_state(CommissionerState.DISABLED, "gatewayd is stopping")

    async def reload(self, config: Config) -> None:
        old = self.config
        self.config = config
        dropped = {_key(j.eui64) for j in old.commissioning.joiner}
        for name in dropped - {_key(j.eui64) for j in config.commissioning.joiner}:
            joiner = self.joiners.get(name)
            if joiner is not None and joiner.source == "config":
                with contextlib.suppress(NcpError, CommandError):
                    await self.remove_joiner(joiner.eui64, via="reload")
        self._take_config(config)
        if self.state == CommissionerState.ACTIVE and (self._applying is None or self._applying.done()):
            self._applying = asyncio.create_task(self._apply_safely(), name="commissioner-apply")
        self._on_thread_change()

    def _take_config(self, config: Config) -> None:
        """The configured joiners, from now for their whole timeout; they are added once the commissioner runs."""
        now = time.monotonic()
        section = config.commissioning
        for entry in section.joiner:
            eui64 = parse_joiner(entry.eui64)
            raw = entry.pskd.reveal()
            pskd = raw.decode() if isinstance(raw, bytes) else str(raw)
            self.joiners[_key(entry.eui64)] = Joiner(eui64, pskd, now + entry.timeout, "config")
        if section.commissioner or section.joiner:
            self.wanted = True

    # ---- following the NCP and Thread ------------------------------------------------------------
    def _on_thread_change(self) -> None:
        """Thread attached (again): start the commissioner and add what is left of the joiners."""
        attached = self.thread is not None and self.thread.attached
        client = self.ncp.client if self.ncp.running else None
        if client is not self._client:
            self._detach_client()
            if client is not None:
                self._client = client
                client.add_event_handler(self._on_event)
        if not attached:
            if self.state != CommissionerState.DISABLED:
                self._set_state(CommissionerState.DISABLED, "Thread is not attached")
            return
        if self.wanted and self.state == CommissionerState.DISABLED and (
                self._applying is None or self._applying.done()):
            self._applying = asyncio.create_task(self._apply_safely(), name="commissioner-apply")

    def _detach_client(self) -> None:
        if self._client is not None:
            self._client.remove_event_handler(self._on_event)
            self._client = None

    def _on_event(self, event: object) -> None:
        if isinstance(event, Reset):
            if self.state != CommissionerState.DISABLED:
                self._set_state(CommissionerState.DISABLED, "the NCP restarted")
        elif isinstance(event, PropertyInserted) and event.prop == Prop.THREAD_CHILD_TABLE:
            for joiner in self.joiners.values():
                if joiner.eui64 is None:
                    joiner.attached += 1

    async def _apply_safely(self) -> None:
        try:
            await self._apply()
        except (NcpError, CommandError, OSError) as exc:
            log.warning("could not start the commissioner: %s; trying again when Thread next attaches", exc,
                        extra={"fields": {"COMMISSIONER_STATE": _state_name(self.state)}})

    async def _apply(self) -> None:
        """Commissioner on, provisioning URL set, every joiner with time left added (again)."""
        await self._start_commissioner()
        client = self._require_client()
        url = self.config.commissioning.provisioning_url
        with contextlib.suppress(NcpStatusError):
            await client.set(Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL, url)
        now = time.monotonic()
        for joiner in list(self.joiners.values()):
            left = joiner.left(now)
            if left <= 0 or joiner.joined:
                self.joiners.pop(joiner.name, None)
                continue
            await self._insert(joiner.eui64, joiner.pskd, left)
        self._ensure_monitor()

    # ---- the commissioner ------------------------------------------------------------------------
    def _require_client(self) -> NcpClient:
        client = self.ncp.client
        if client is None or not self.ncp.running:
            raise CommandError("the NCP is not connected (see: gatewayctl ncp)")
        if self.thread is None or not self.thread.attached:
            raise CommandError("Thread is not attached: the commissioner needs an attached node (see: gatewayctl "
                               "state)")
        return client

    def _set_state(self, state: int, why: str = "") -> None:
        if state == self.state:
            return
        self.state = state
        if state != CommissionerState.ACTIVE:
            self.session_id = None
        name = _state_name(state)
        suffix = f" ({why})" if why else ""
        session = f", session id {self.session_id}" if self.session_id is not None else ""
        log.info("commissioner %s%s%s", name, session, suffix, extra={"fields": {"COMMISSIONER_STATE": name}})
        self.changed()

    async def _start_commissioner(self) -> None:
        client = self._require_client()
        async with self._lock:
            try:
                state = await client.set(Prop.MESHCOP_COMMISSIONER_STATE, CommissionerState.ACTIVE)
            except NcpStatusError as exc:
                if exc.status == Status.ALREADY:
                    state = CommissionerState.ACTIVE
                elif exc.unsupported:
                    client.degrade("commissioner", str(exc))
                    raise CommandError("this NCP's firmware has no commissioner (build it with "
                                       "OT_COMMISSIONER=ON)") from None
                else:
                    raise CommandError(f"the NCP refused to start the commissioner: {exc}") from None
            deadline = time.monotonic() + START_TIMEOUT
            while state != CommissionerState.ACTIVE:
                if state == CommissionerState.DISABLED or time.monotonic() > deadline:
                    self._set_state(CommissionerState.DISABLED, "the leader refused the petition")
                    raise CommandError("the leader did not accept the commissioner (another commissioner may be "
                                       "active)")
                await asyncio.sleep(0.2)
                state = await client.get(Prop.MESHCOP_COMMISSIONER_STATE)
            self.session_id = await client.get(Prop.MESHCOP_COMMISSIONER_SESSION_ID)
            self.wanted = True
            self._set_state(CommissionerState.ACTIVE)

    async def start_commissioner(self, via: str = "gatewayctl") -> dict[str, Any]:
        """Start the commissioner (and add the configured joiners); its state."""
        self.wanted = True
        await self._apply()
        log.debug("commissioner started through %s", via)
        return await self.commissioner_state()

    async def stop_commissioner(self, via: str = "gatewayctl") -> dict[str, Any]:
        """Stop the commissioner: the NCP forgets every joiner, and so does gatewayd (until a reload)."""
        self.wanted = False
        client = self._require_client()
        async with self._lock:
            await client.set(Prop.MESHCOP_COMMISSIONER_STATE, CommissionerState.DISABLED)
        self.joiners.clear()
        await cancel_all(self._monitor)
        self._monitor = None
        self._set_state(CommissionerState.DISABLED, f"stopped through {via}")
        return await self.commissioner_state()

    async def commissioner_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": _state_name(self.state), "session_id": self.session_id}
        client = self.ncp.client if self.ncp.running else None
        if client is not None:
            with contextlib.suppress(NcpError):
                self._set_state(await client.get(Prop.MESHCOP_COMMISSIONER_STATE))
                out["state"] = _state_name(self.state)
                if self.state == CommissionerState.ACTIVE:
                    self.session_id = out["session_id"] = await client.get(Prop.MESHCOP_COMMISSIONER_SESSION_ID)
                out["provisioning_url"] = await client.get(Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL)
        out["joiners"] = len(self.joiners)
        return out

    # ---- joiners -----------------------------------------------------------------------------------
    async def _insert(self, eui64: bytes | None, pskd: str, timeout: int) -> None:
        client = self._require_client()
        try:
            await client.request(SpinelCommand.PROP_VALUE_INSERT, Prop.MESHCOP_COMMISSIONER_JOINERS,
                                 joiner_insert(eui64, pskd, timeout))
        except NcpStatusError as exc:
            raise CommandError(f"the NCP refused the joiner: {exc}") from None

    async def add_joiner(self, eui64: bytes | None, pskd: str, timeout: int = DEFAULT_TIMEOUT,
                         via: str = "gatewayctl") -> Joiner:
        """Let ``eui64`` (None: any device) join with ``pskd`` for ``timeout`` seconds; the commissioner is
        started first when it is not running.  PskdError for a PSKd Thread forbids."""
        check_pskd(pskd)
        if not 1 <= timeout <= MAX_TIMEOUT:
            raise CommandError(f"the timeout is 1 to {MAX_TIMEOUT} seconds")
        if self.state != CommissionerState.ACTIVE:
            await self._start_commissioner()
        await self._insert(eui64, pskd, timeout)
        joiner = Joiner(eui64, pskd, time.monotonic() + timeout, via)
        self.joiners[joiner.name] = joiner
        log.info("joiner %s may join for %d s (added through %s)", joiner.name, timeout, via,
                 extra=_fields(joiner.name, "added"))
        self._ensure_monitor()
        return joiner

    async def remove_joiner(self, eui64: bytes | None, via: str = "gatewayctl") -> None:
        client = self._require_client()
        name = _key(eui64)
        try:
            await client.request(SpinelCommand.PROP_VALUE_REMOVE, Prop.MESHCOP_COMMISSIONER_JOINERS,
                                 joiner_remove(eui64))
        except NcpStatusError as exc:
            self.joiners.pop(name, None)
            if exc.status == Status.ITEM_NOT_FOUND:
                raise CommandError(f"no joiner {name} (see: gatewayctl joiner list)") from None
            if exc.status == Status.INVALID_STATE:
                raise CommandError("the commissioner is not running (see: gatewayctl commissioner state)") from None
            raise CommandError(f"the NCP refused: {exc}") from None
        self.joiners.pop(name, None)
        log.info("joiner %s removed through %s", name, via, extra=_fields(name, "removed"))

    async def list_joiners(self) -> list[JoinerEntry]:
        client = self._require_client()
        try:
            reply = await client.request(SpinelCommand.PROP_VALUE_GET, Prop.MESHCOP_COMMISSIONER_JOINERS)
        except NcpStatusError as exc:
            if exc.unsupported:
                raise CommandError("this NCP's firmware has no commissioner") from None
            raise
        try:
            return decode_joiners(reply.value)
        except ValueError as exc:
            client.counters.undecodable += 1
            raise NcpError(f"MESHCOP_COMMISSIONER_JOINERS: cannot decode the joiner table: {exc}") from None

    # ---- joiner events (polled: the NCP pushes none) ------------------------------------------------
    def _ensure_monitor(self) -> None:
        if self.joiners and (self._monitor is None or self._monitor.done()):
            self._monitor = asyncio.create_task(self._monitor_loop(), name="commissioner-joiners")

    async def _monitor_loop(self) -> None:
        while self.joiners and self.state == CommissionerState.ACTIVE:
            now = time.monotonic()
            next_end = min(j.deadline for j in self.joiners.values())
            await asyncio.sleep(max(0.1, min(POLL_INTERVAL, next_end - now + 0.2)))
            try:
                rows = await self.list_joiners()
                state = await self._require_client().get(Prop.MESHCOP_COMMISSIONER_STATE)
            except (NcpError, CommandError) as exc:
                log.debug("reading the joiner table: %s", exc)
                continue
            if state != CommissionerState.ACTIVE:
                self._set_state(state, "the NCP ended it")
                return
            self.observe(rows, time.monotonic())

    def observe(self, rows: list[JoinerEntry], now: float) -> None:
        """Compare the NCP's joiner table with the joiners gatewayd added: log who joined or timed out."""
        present = {row.name: row for row in rows}
        for name, joiner in list(self.joiners.items()):
            row = present.get(name)
            if row is not None:
                if (not joiner.joined and joiner.eui64 is not None and row.timeout_ms <= JOINED_REMAINS_S * 1000
                        and joiner.deadline - now > JOINED_REMAINS_S + 2):
                    joiner.joined = True
                    log.info("joiner %s joined the network", name, extra=_fields(name, "joined"))
                continue
            del self.joiners[name]
            if joiner.joined:
                log.debug("joiner %s: entry gone after joining", name)
            elif now >= joiner.deadline - 2:
                if joiner.eui64 is None:
                    log.info("joiner * ended after its timeout; %d device(s) attached while it was open",
                             joiner.attached, extra=_fields(name, "timeout"))
                else:
                    log.warning("joiner %s timed out: no device joined with it (check the PSKd the device uses, "
                                "and that it is in range)", name, extra=_fields(name, "timeout"))
            else:
                log.info("joiner %s is gone from the NCP's table (removed by another commissioner?)", name,
                         extra=_fields(name, "removed"))

    # ---- status and commands --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"commissioner": _state_name(self.state), "joiners": len(self.joiners)}

    def status_line(self) -> str | None:
        if self.state == CommissionerState.ACTIVE:
            return f"commissioner active · {len(self.joiners)} joiner(s)"
        return None

    def commands(self) -> list[Command]:
        return [
            Command("commissioner state", self._cmd_state, "the NCP's commissioner: state, session id"),
            Command("commissioner start", self._cmd_start, "start the on-mesh commissioner (root only)"),
            Command("commissioner stop", self._cmd_stop, "stop the commissioner; its joiners are forgotten "
                    "(root only)"),
            Command("joiner add", self._cmd_add, "let a device join with a PSKd (root only; the commissioner is "
                    f"started when needed; TIMEOUT in seconds, default {DEFAULT_TIMEOUT})",
                    "EUI64|* PSKD [TIMEOUT]"),
            Command("joiner remove", self._cmd_remove, "stop allowing a device to join (root only)", "EUI64|*"),
            Command("joiner list", self._cmd_list, "the joiners the commissioner allows (--show-secrets: root "
                    "only)", "[--show-secrets]"),
        ]

    async def _cmd_state(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        return await self.commissioner_state()

    async def _cmd_start(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        request.require_root("commissioner start")
        with ncp_refusal():
            return await self.start_commissioner()

    async def _cmd_stop(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        request.require_root("commissioner stop")
        with ncp_refusal():
            return await self.stop_commissioner()

    async def _cmd_add(self, request: Request) -> dict[str, Any]:
        request.require_root("joiner add")
        if len(request.args) not in (2, 3):
            raise CommandError("usage: joiner add EUI64|* PSKD [TIMEOUT]")
        eui64 = _joiner_arg(request.args[0])
        pskd = request.args[1]
        timeout = DEFAULT_TIMEOUT
        if len(request.args) == 3:
            try:
                timeout = int(request.args[2])
            except ValueError:
                raise CommandError(f"TIMEOUT is whole seconds, not {request.args[2]!r}") from None
        try:
            check_pskd(pskd)
        except PskdError as exc:
            raise CommandError(f"bad PSKd: {exc}") from None
        with ncp_refusal():
            joiner = await self.add_joiner(eui64, pskd, timeout)
        return {"joiner": joiner.name, "pskd": MASK, "timeout": timeout}

    async def _cmd_remove(self, request: Request) -> dict[str, Any]:
        request.require_root("joiner remove")
        if len(request.args) != 1:
            raise CommandError("usage: joiner remove EUI64|*")
        eui64 = _joiner_arg(request.args[0])
        with ncp_refusal():
            await self.remove_joiner(eui64)
        return {"removed": _key(eui64)}

    async def _cmd_list(self, request: Request) -> list[dict[str, Any]]:
        show = request.flag("--show-secrets")
        request.no_more_args()
        if show:
            request.require_root("--show-secrets")
        with ncp_refusal():
            rows = await self.list_joiners()
        out = []
        for row in rows:
            ours = self.joiners.get(row.name)
            out.append({"joiner": row.name, "pskd": row.pskd if show else MASK,
                        "timeout": round(row.timeout_ms / 1000),
                        "state": "joined" if ours is not None and ours.joined else "waiting",
                        "added_by": ours.source if ours is not None else "other"})
        return out


def _key(eui64: bytes | str | None) -> str:
    if isinstance(eui64, str):
        eui64 = parse_joiner(eui64)
    return eui64.hex() if eui64 is not None else ANY


def _joiner_arg(text: str) -> bytes | None:
    try:
        return parse_joiner(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
