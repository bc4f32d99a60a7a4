"""What a client keeps across restarts: its registration, a Disable in force, the Security and Server
accounts a Bootstrap-Server or server wrote, and the other values servers wrote.

Server writes are saved half a second later (many come in a burst); registration changes at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..paths import LwM2MPath
from ..persist import PersistError, StateStore, encode_value, restore_instances, restore_values, snapshot_instances
from .state import Registration

if TYPE_CHECKING:
    from .registration import LwM2MClient

log = logging.getLogger("gatewayd.lwm2m")


class ClientPersistence:
    """Saves one client's state in ``state`` (by endpoint name) and restores it; None keeps nothing."""

    def __init__(self, client: LwM2MClient, state: StateStore | None) -> None:
        self.client = client
        self.state = state
        #: resource paths a server (or Bootstrap-Server) wrote outside the Security and Server objects
        self.written: set[LwM2MPath] = set()
        #: the Security and Server objects were written: save them whole
        self.accounts_written = False
        self._save_handle: asyncio.TimerHandle | None = None

    def record(self, paths: list[LwM2MPath]) -> None:
        """A server or the Bootstrap-Server changed ``paths``: they are saved from now on."""
        for p in paths:
            if p.object in (0, 1):
                self.accounts_written = True
            elif p.depth >= 3:
                self.written.add(p.resource_path)

    def restore(self) -> None:
        if self.state is None:
            return
        client = self.client
        data = self.state.load(client.endpoint)
        if not data:
            return
        try:
            if data.get("accounts"):
                restore_instances(client.store, data["accounts"])
                self.accounts_written = True
            restore_values(client.store, data.get("values", {}))
            self.written = {LwM2MPath.parse(p) for p in data.get("values", {})}
            if data.get("disabled_until") and float(data["disabled_until"]) > time.time():
                client.disabled_until = float(data["disabled_until"])
            reg = data.get("registration")
            if reg:
                client.registration = Registration(str(reg["server"]), tuple(reg["location"]), int(reg["lifetime"]),
                                                   float(reg["expires"]), str(reg.get("objects", "")))
        except (PersistError, KeyError, TypeError, ValueError) as exc:
            log.warning("%s: ignoring saved LwM2M state: %s", client.endpoint, exc)
            client.registration = None

    def data(self) -> dict[str, Any]:
        client = self.client
        store = client.store
        reg = client.registration
        data: dict[str, Any] = {}
        if reg is not None:
            data["registration"] = {"server": reg.server_uri, "location": list(reg.location),
                                    "lifetime": reg.lifetime, "expires": reg.expires, "objects": reg.objects}
        if client.disabled_until is not None:
            data["disabled_until"] = client.disabled_until
        if self.accounts_written:
            data["accounts"] = snapshot_instances(store, (0, 1))
        values = {}
        for p in sorted(self.written):
            if store.instance(p.object, p.instance) is not None and store.get(p) is not None:  # type: ignore[arg-type]
                values[str(p)] = encode_value(store.get(p))
        data["values"] = values
        return data

    def save(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self.state is None:
            return
        try:
            self.state.save(self.client.endpoint, self.data())
        except OSError as exc:
            log.error("%s: cannot save LwM2M state: %s", self.client.endpoint, exc)

    def save_later(self) -> None:
        if self.state is None or self._save_handle is not None:
            return
        try:
            self._save_handle = asyncio.get_running_loop().call_later(0.5, self.save)
        except RuntimeError:
            self.save()

    def flush(self) -> None:
        """Save now what waits to be saved (and a registration that ended)."""
        if self._save_handle is not None or (self.state is not None and self.client.registration is None):
            self.save()
