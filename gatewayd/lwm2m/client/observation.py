"""Observe, Notify and Cancel Observation (LwM2M 1.1 §5.5): a client's observations and their timers.

Each observation the server starts (GET or FETCH with Observe) remembers the value it last reported and
the attributes (pmin, pmax, gt, lt, st, epmin, epmax) in force for its path. A notification goes out when
a change is due under those attributes, and at the latest after pmax; one timer per observation wakes it
at its next deadline. Write-Attributes on an observed path reschedules it with the new attributes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..codecs import ContentFormat
from ..errors import LwM2MError
from ..observe import Observation
from ..paths import LwM2MPath
from ..persist import encode_value
from .operations import OpRequest, parse_path

if TYPE_CHECKING:
    from .registration import LwM2MClient

log = logging.getLogger("gatewayd.lwm2m")


@dataclass(slots=True)
class ActiveObservation:
    obs: Observation
    request: OpRequest
    notify: Callable[[], None]
    timer: asyncio.TimerHandle | None = None
    attribute_path: LwM2MPath | None = None


class ObservationScheduler:
    """The observations of one client (:attr:`active`) and when each notifies next."""

    def __init__(self, client: LwM2MClient) -> None:
        self.client = client
        self.active: list[ActiveObservation] = []

    def observe(self, req: OpRequest, notify: Callable[[], None]) -> Callable[[], None] | None:
        """Start observing what a Read (GET) or Read-Composite (FETCH) names; returns the cancel function,
        or None when the request is no observation this client keeps."""
        if req.method not in ("GET", "FETCH") or req.accept == ContentFormat.LINK_FORMAT:
            return None
        ops = self.client.ops
        try:
            if req.method == "FETCH":
                paths = tuple(ops.composite_paths(req))
                attr_path = None
            else:
                attr_path = parse_path(req.uri_path)
                paths = (attr_path,)
        except LwM2MError:
            return None
        attrs = ops.attributes.effective(attr_path) if attr_path else ops.attributes.effective(LwM2MPath())
        obs = Observation(paths, attrs)
        obs.start(time.monotonic(), self._snapshot(paths))
        active = ActiveObservation(obs, req, notify, attribute_path=attr_path)
        self.active.append(active)
        self._schedule(active)
        self._changed()
        return lambda: self.drop(active)

    def drop(self, active: ActiveObservation) -> None:
        """Cancel Observation: stop its timer and forget it."""
        if active.timer is not None:
            active.timer.cancel()
            active.timer = None
        if active in self.active:
            self.active.remove(active)
            self._changed()

    def drop_all(self) -> None:
        for active in list(self.active):
            self.drop(active)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        now = time.monotonic()
        for a in self.active:
            attrs = ",".join(f"{k}={v:g}" for k, v in sorted(a.obs.attributes.items()))
            rows.append({
                "endpoint": self.client.endpoint,
                "paths": " ".join(str(p) for p in a.obs.paths),
                "attributes": attrs,
                "notifications": a.obs.notifications,
                "last_sent_ago": round(now - a.obs.last_sent, 1),
            })
        return rows

    def attributes_changed(self) -> None:
        """A Write-Attributes went through: observations of a path take its new attributes."""
        for active in self.active:
            if active.attribute_path is not None:
                active.obs.attributes = self.client.ops.attributes.effective(active.attribute_path)
                self._schedule(active)

    def store_changed(self, paths: list[LwM2MPath]) -> None:
        """Values at ``paths`` changed: observations of them notify when the change is due."""
        if not self.active:
            return
        now = time.monotonic()
        for active in self.active:
            touched = any(a.is_prefix_of(b) or b.is_prefix_of(a) for a in active.obs.paths for b in paths)
            if touched and active.obs.changed(now, self._snapshot(active.obs.paths)):
                self._schedule(active)

    def _changed(self) -> None:
        hook = self.client.on_observations
        if hook is not None:
            try:
                hook()
            except Exception:
                log.exception("%s: observation hook failed", self.client.endpoint)

    def _snapshot(self, paths: tuple[LwM2MPath, ...]) -> Any:
        store = self.client.store
        values = []
        for p in paths:
            if p.depth >= 3:
                values.append(store.get(p))
                continue
            try:
                values.append(tuple((q, encode_value(v)) for q, v in store.read(p)))
            except LwM2MError:
                values.append(None)
        return values[0] if len(values) == 1 else tuple(values)

    def _schedule(self, active: ActiveObservation) -> None:
        if active.timer is not None:
            active.timer.cancel()
            active.timer = None
        now = time.monotonic()
        at = active.obs.deadline(now)
        if at is None:
            return
        loop = asyncio.get_running_loop()
        active.timer = loop.call_later(max(0.0, at - now), self._fire, active)

    def _fire(self, active: ActiveObservation) -> None:
        active.timer = None
        if active not in self.active:
            return
        now = time.monotonic()
        obs = active.obs
        epmax = obs.attributes.get("epmax")
        value = self._snapshot(obs.paths)
        if epmax and now >= obs.last_evaluated + epmax:
            obs.changed(now, value)
        if obs.due(now):
            obs.sent(now, value)
            self.client.counters["notifications"] += 1
            active.notify()
        self._schedule(active)
