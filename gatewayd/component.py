"""Components and their supervisor.

Each capability (NCP, Thread network, NAT64, DNS64, LwM2M) is a Component: start,
stop, reload, a status dict and a one-line summary for systemd's STATUS=. The
supervisor starts them in order; one that fails is retried with exponential
backoff and reported, without taking the daemon down.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.backoff import Backoff

if TYPE_CHECKING:
    from gatewayd.config import Config
    from gatewayd.control import Request


EXIT_RESTART = 75  # EX_TEMPFAIL: not a clean exit, so systemd starts the unit again


class State(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPING = "stopping"


Handler = Callable[["Request"], Awaitable[Any]]


@dataclass
class Command:
    """A gatewayctl command a component serves, named after ot-ctl where it can be."""

    name: str
    handler: Handler
    help: str
    args: str = ""


class Component:
    """Base class; subclasses set ``name`` and override what they need."""

    name = "component"
    #: Components whose failure makes the whole daemon pointless (none so far).
    required = False
    #: Its supervisor's Slot.info, once supervised.
    _supervised: Callable[[], dict[str, Any]] | None = None

    def __init__(self, config: Config):
        self.config = config
        self.log = logging.getLogger(f"gatewayd.{self.name}")
        self._on_failure: Callable[[Component, BaseException], None] | None = None
        self._on_change: Callable[[], None] | None = None
        self._on_restart: Callable[[str], None] | None = None

    async def start(self) -> None:
        """Bring the capability up; raise to have the supervisor retry later."""

    async def stop(self) -> None:
        """Undo everything start() set up."""

    async def reload(self, config: Config) -> None:
        """Apply the live keys of a new configuration."""
        self.config = config

    def status(self) -> dict[str, Any]:
        return {}

    def status_line(self) -> str | None:
        """A few words for systemd's STATUS=, or None to say nothing."""
        return None

    def supervised_status(self) -> dict[str, Any]:
        """Its entry in ``gatewayctl status``: the supervisor's ``state`` (and ``error``, ``retry_in``), then
        :meth:`status`; just :meth:`status` for a component no supervisor runs."""
        return self._supervised() if self._supervised is not None else self.status()

    def commands(self) -> list[Command]:
        return []

    # Called by the component itself.
    def failed(self, exc: BaseException) -> None:
        """Report a failure after start(): the supervisor stops and restarts the component."""
        if self._on_failure is not None:
            self._on_failure(self, exc)

    def changed(self) -> None:
        """Say the status line may have changed."""
        if self._on_change is not None:
            self._on_change()

    def restart_daemon(self, reason: str) -> None:
        """Ask for an orderly stop followed by a restart (e.g. LwM2M Reboot): the daemon exits
        with EXIT_RESTART, which systemd's Restart=on-failure turns into a new start."""
        if self._on_restart is not None:
            self._on_restart(reason)


@dataclass
class Slot:
    """The supervisor's record of one component."""

    component: Component
    state: State = State.STOPPED
    error: str = ""
    attempts: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    retry_at: float | None = None
    since: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state.value}
        if self.error:
            out["error"] = self.error
        if self.retry_at is not None:
            out["retry_in"] = round(max(0.0, self.retry_at - time.monotonic()), 1)
        out.update(self.component.status())
        return out


class Supervisor:
    def __init__(self, max_backoff: float = 60.0, on_change: Callable[[], None] | None = None,
                 on_restart: Callable[[str], None] | None = None):
        self.slots: list[Slot] = []
        self.max_backoff = max_backoff
        self.on_change = on_change or (lambda: None)
        self.on_restart = on_restart
        self.log = logging.getLogger("gatewayd.daemon")
        self._stopping = False

    def add(self, component: Component) -> None:
        component._on_failure = self._runtime_failure
        component._on_change = self.on_change
        component._on_restart = self.on_restart
        slot = Slot(component, backoff=Backoff(1.0, self.max_backoff))
        component._supervised = slot.info
        self.slots.append(slot)

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.component.name == name), None)

    async def start_all(self) -> None:
        """One start attempt for each component, in order; failures are retried in the background."""
        for slot in self.slots:
            await self._attempt(slot)

    async def _attempt(self, slot: Slot) -> None:
        comp = slot.component
        slot.state, slot.attempts = State.STARTING, slot.attempts + 1
        self.on_change()
        try:
            await comp.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._schedule_retry(slot, exc)
            return
        slot.state, slot.error, slot.retry_at, slot.since = State.RUNNING, "", None, time.monotonic()
        slot.backoff.started()  # a failure after a healthy run is retried from the first step
        if slot.attempts > 1:
            comp.log.info("%s started after %d attempts", comp.name, slot.attempts,
                          extra={"fields": {"COMPONENT_STATE": "running"}})
        slot.attempts = 0
        self.on_change()

    def _schedule_retry(self, slot: Slot, exc: BaseException) -> None:
        delay = slot.backoff.delay()
        slot.state, slot.error = State.FAILED, str(exc) or type(exc).__name__
        slot.retry_at = time.monotonic() + delay
        slot.component.log.error("%s failed: %s; retrying in %.0f s", slot.component.name, slot.error, delay,
                                 extra={"fields": {"COMPONENT_STATE": "failed"}})
        self.on_change()
        slot.task = asyncio.get_running_loop().create_task(self._retry_later(slot, delay))

    async def _retry_later(self, slot: Slot, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping:
            return
        slot.task = None
        try:
            await asyncio.wait_for(slot.component.stop(), 5)
        except Exception as exc:  # the retry goes ahead; what the failed instance left behind is said
            slot.component.log.warning("%s: cleaning up before the retry failed: %s", slot.component.name,
                                       str(exc) or type(exc).__name__)
        await self._attempt(slot)

    def _runtime_failure(self, component: Component, exc: BaseException) -> None:
        slot = next(s for s in self.slots if s.component is component)
        if self._stopping or slot.state != State.RUNNING:
            return
        self._schedule_retry(slot, exc)

    async def stop_all(self, timeout: float) -> None:
        """Stop in reverse order within ``timeout`` seconds overall."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        for slot in reversed(self.slots):
            if slot.task is not None:
                slot.task.cancel()
            if slot.state == State.STOPPED:
                continue
            slot.state = State.STOPPING
            remaining = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.wait_for(slot.component.stop(), remaining)
            except TimeoutError:
                slot.component.log.error("%s did not stop within %.1f s; abandoning it",
                                         slot.component.name, remaining)
            except Exception as exc:
                slot.component.log.error("%s stopped with an error: %s", slot.component.name, exc)
            slot.state = State.STOPPED

    async def reload_all(self, config: Config) -> None:
        self.max_backoff = config.daemon.retry_max_backoff
        for slot in self.slots:
            slot.backoff.maximum = self.max_backoff
            if slot.state != State.RUNNING:
                slot.component.config = config  # used by the next start attempt
                continue
            try:
                await slot.component.reload(config)
            except Exception as exc:
                slot.component.log.error("%s could not apply the new configuration: %s",
                                         slot.component.name, exc)

    def status_line(self) -> str:
        parts: list[str] = []
        for slot in self.slots:
            if slot.state == State.FAILED:
                retry = f", retry in {max(0, (slot.retry_at or 0) - time.monotonic()):.0f} s"
                parts.append(f"{slot.component.name} failed ({slot.error}{retry})")
            elif slot.state == State.RUNNING:
                line = slot.component.status_line()
                if line:
                    parts.append(line)
            elif slot.state == State.STARTING:
                parts.append(f"{slot.component.name} starting")
        return " · ".join(parts) or "running"
