"""Disable (Execute on the Server object's /1/x/4, LwM2M 1.1 Appendix E.2): the client answers,
deregisters, closes its socket and sends nothing to that server for the Disable Timeout (/1/x/5, a day
when unset); then it registers again. A Disable in force survives a restart (see :mod:`.persistence`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiocoap.numbers.codes import Code

from ..paths import LwM2MPath
from ..transport import TransportError
from .state import RegistrationState

if TYPE_CHECKING:
    from .registration import LwM2MClient

log = logging.getLogger("gatewayd.lwm2m")

#: Disable Timeout (/1/x/5) when the Server instance has none (LwM2M 1.1 Appendix E.2)
DEFAULT_DISABLE_TIMEOUT = 86400


class ServerDisable:
    """One client's Disable: asked for (:attr:`requested`) or in force (the client's ``disabled_until``)."""

    def __init__(self, client: LwM2MClient) -> None:
        self.client = client
        #: Disable was executed on the current server's instance; the registration task carries it out
        self.requested = False

    @property
    def pending(self) -> bool:
        """A Disable waits to be carried out or is in force."""
        return self.requested or self.client.disabled_until is not None

    def timeout(self) -> float:
        client = self.client
        iid = client.server.server_instance if client.server is not None else None
        value = client.store.get(LwM2MPath(1, iid, 5)) if iid is not None and client.store.instance(1, iid) else None
        return float(value) if value is not None else float(DEFAULT_DISABLE_TIMEOUT)

    async def run(self) -> None:
        """Deregister, disconnect, and send nothing to the server until the Disable Timeout ends."""
        client = self.client
        if self.requested:
            self.requested = False
            timeout = self.timeout()
            await asyncio.sleep(0.05)  # the Execute's answer goes out before the Deregister
            if client.registration is not None and client.transport is not None:
                try:
                    await client.transport.request(Code.DELETE, client.registration.location,
                                                   timeout=min(5.0, client.settings.request_timeout))
                except TransportError as exc:
                    log.info("%s: Deregister before Disable got no answer: %s", client.endpoint, exc)
            client.registration = None
            client.scheduler.drop_all()
            if client.transport is not None:
                await client.transport.close()
                client.transport = None
            client.disabled_until = time.time() + timeout
            client.persistence.save()
            log.info("%s: server account disabled for %.0f s", client.endpoint, timeout)
        client._set_state(RegistrationState.DISABLED)
        while client.disabled_until is not None:
            left = client.disabled_until - time.time()
            if left <= 0 or client.bootstrap.requested:
                break
            await client._wait_wake(left)
        client.disabled_until = None
        client.persistence.save()
