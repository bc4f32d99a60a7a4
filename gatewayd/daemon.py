"""The daemon: one asyncio process that runs the components under a supervisor and
keeps systemd, the journal and the control socket informed."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from common.aio import cancel_all
from gatewayd import __version__
from gatewayd import log as logsetup
from gatewayd.component import EXIT_RESTART, Command, Component, Supervisor
from gatewayd.components import FACTORIES, Factory
from gatewayd.config import Config, ConfigError, flatten, load
from gatewayd.config.render import dump
from gatewayd.config.schema import Key, Section, find
from gatewayd.control import ControlServer, Request
from gatewayd.sdnotify import Notifier

log = logging.getLogger("gatewayd.daemon")

def needs_restart(changed: Sequence[str]) -> list[str]:
    """Changed key paths that a reload cannot apply."""
    out = []
    for path in changed:
        entry = find(path)
        if isinstance(entry, Key):
            live = entry.live
        elif isinstance(entry, Section):
            live = entry.free is not None or entry.array
        else:
            parent = find(path.rpartition(".")[0])
            live = isinstance(parent, Section) and parent.free is not None
        if not live:
            out.append(path)
    return out


def release_memory() -> None:
    """Give back what bring-up freed: start-up parses config, object definitions and tables, then frees
    them, and glibc keeps the freed heap unless asked (malloc_trim). An idle border router should not sit
    on its start-up peak (benchmarks/idle.py)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


STATUS_REFRESH_S = 30.0  # STATUS= shows counters that change without events; 30 s is fresh enough


class Daemon:
    def __init__(self, config: Config, factories: Sequence[Factory] | None = None,
                 notifier: Notifier | None = None):
        self.config = config
        self.factories = list(FACTORIES if factories is None else factories)
        self.notifier = notifier or Notifier()
        self.supervisor = Supervisor(config.daemon.retry_max_backoff, on_change=self._status_changed,
                                     on_restart=self.request_restart)
        self.exit_code = 0
        self.control = ControlServer.from_config(config.control)
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self._tick = asyncio.Event()  # wake the ticker early: a log summary is now due
        self._reload_requested = asyncio.Event()
        self._ready = False

    # ---- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig, action in ((signal.SIGTERM, self.request_stop), (signal.SIGINT, self.request_stop),
                            (signal.SIGHUP, self.request_reload)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, action)
        try:
            self._prepare_state_dir()
            await self.control.start()
        except OSError as exc:
            log.error("cannot start: %s", exc)
            return 1
        for warning in self.config.warnings:
            log.warning("%s", warning)
        self._register_commands()
        built: dict[str, Component] = {}
        for factory in self.factories:
            component = factory(self.config, built)
            if component is not None:
                built[component.name] = component
                self.supervisor.add(component)
                for command in component.commands():
                    self.control.register(command)
        log.info("gatewayd %s starting with %s", __version__, self.config.path,
                 extra={"fields": {"GATEWAYD_EVENT": "starting"}})
        await self.supervisor.start_all()
        self._ready = True
        self.notifier.ready(self.supervisor.status_line())
        log.info("gatewayd ready: %s", self.supervisor.status_line())
        release_memory()
        tasks = [loop.create_task(self._ticker())]
        if self.notifier.watchdog_interval:
            tasks.append(loop.create_task(self._watchdog(self.notifier.watchdog_interval)))
        try:
            while not self._stop.is_set():
                reload_wait = loop.create_task(self._reload_requested.wait())
                stop_wait = loop.create_task(self._stop.wait())
                await asyncio.wait({reload_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                await cancel_all(reload_wait, stop_wait)
                if self._reload_requested.is_set() and not self._stop.is_set():
                    self._reload_requested.clear()
                    await self.reload()
        finally:
            await self.shutdown()
            await cancel_all(*tasks)
        return self.exit_code

    def request_stop(self) -> None:
        self._stop.set()

    def request_restart(self, reason: str) -> None:
        """Orderly stop, then exit with EXIT_RESTART so systemd starts gatewayd again."""
        log.warning("restarting: %s", reason, extra={"fields": {"GATEWAYD_EVENT": "restart"}})
        self.exit_code = EXIT_RESTART
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested.set()

    async def shutdown(self) -> None:
        self.notifier.stopping()
        log.info("stopping", extra={"fields": {"GATEWAYD_EVENT": "stopping"}})
        await self.supervisor.stop_all(self.config.daemon.stop_timeout)
        await self.control.stop()
        log.info("stopped", extra={"fields": {"GATEWAYD_EVENT": "stopped"}})
        logsetup.flush()

    async def reload(self) -> bool:
        """Re-read the config; an invalid one is rejected and the running one kept."""
        self.notifier.reloading()
        try:
            new = load(self.config.path)
        except ConfigError as exc:
            for line in exc.errors:
                log.error("reload rejected: %s", line)
            log.error("keeping the running configuration; fix the file and reload again")
            self.notifier.ready(self.supervisor.status_line())
            return False
        for warning in new.warnings:
            log.warning("%s", warning)
        old_flat, new_flat = flatten(self.config.root), flatten(new.root)
        changed = sorted(k for k in old_flat.keys() | new_flat.keys() if old_flat.get(k) != new_flat.get(k))
        later = needs_restart(changed)
        if later:
            log.warning("changed keys need a restart to take effect: %s (systemctl restart gatewayd)",
                        ", ".join(later))
        self.config = new
        logsetup.apply_levels(new.log.level, dict(new.log.components.items()))
        logsetup.set_rate_limit(new.log.rate_limit_interval)
        await self.supervisor.reload_all(new)
        applied = [k for k in changed if k not in later]
        log.info("configuration reloaded%s", f"; applied {', '.join(applied)}" if applied else "; no changes",
                 extra={"fields": {"GATEWAYD_EVENT": "reloaded"}})
        self.notifier.ready(self.supervisor.status_line())
        return True

    def _prepare_state_dir(self) -> None:
        path = self.config.daemon.state_dir
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create state directory {path}: {exc.strerror}; "
                          "set [daemon] state_dir to a writable directory") from None

    # ---- systemd ------------------------------------------------------------------------------
    def _status_changed(self) -> None:
        if self._ready:
            self.notifier.status(self.supervisor.status_line())

    async def _ticker(self) -> None:
        """STATUS= refreshed for what drifts without events (counters), and held-back log summaries
        emitted when due; otherwise asleep, as an idle border router should be."""
        loop = asyncio.get_running_loop()
        logsetup.on_hold(lambda: loop.call_soon_threadsafe(self._tick.set))
        try:
            while True:
                due = logsetup.next_due()
                wait = STATUS_REFRESH_S if due is None else min(STATUS_REFRESH_S, max(0.05, due - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._tick.wait(), wait)
                self._tick.clear()
                self._status_changed()
                logsetup.flush()
        finally:
            logsetup.on_hold(None)

    async def _watchdog(self, interval: float) -> None:
        # Runs on the event loop: if the loop stalls, the pings stop and systemd restarts us.
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    # ---- control ------------------------------------------------------------------------------
    def _register_commands(self) -> None:
        self.control.register(Command("status", self._cmd_status, "daemon and component status"))
        self.control.register(Command("config", self._cmd_config,
                                      "the running configuration (--show-secrets: root only)",
                                      "[--show-secrets]"))
        self.control.register(Command("help", self._cmd_help, "list the commands"))

    async def _cmd_status(self, request: Request) -> dict[str, Any]:
        request.no_more_args()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(time.monotonic() - self.started, 1),
            "config": self.config.path,
            "status": self.supervisor.status_line(),
            "components": {s.component.name: s.info() for s in self.supervisor.slots},
        }

    async def _cmd_config(self, request: Request) -> dict[str, Any]:
        show = request.flag("--show-secrets")
        request.no_more_args()
        if show:
            request.require_root("--show-secrets")
        return dump(self.config.root, show_secrets=show)

    async def _cmd_help(self, request: Request) -> list[dict[str, str]]:
        return [{"command": f"{c.name} {c.args}".strip(), "description": c.help}
                for c in sorted(self.control.commands.values(), key=lambda c: c.name)]
