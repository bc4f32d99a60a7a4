"""Client-initiated bootstrap (LwM2M 1.1 §5.2.7): Bootstrap-Request, the Bootstrap-Server's operations,
Bootstrap-Finish; and when a client falls back to it.

A client bootstraps when it has no LwM2M Server account, when a server executes the Bootstrap-Request
Trigger (/1/x/9), and after ``bootstrap_after`` failed Register attempts if it has a Bootstrap-Server
account (the LwM2M Server accounts are dropped first). Between its Bootstrap-Request (``POST
/bs?ep=&pct=``) and the Bootstrap-Server's Bootstrap-Finish (``POST /bs``) every request gets the
Bootstrap interface's semantics; the Finish is answered only once the new accounts are usable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiocoap.numbers.codes import Code

from ..bootstrap import ServerAccount, bootstrap_server, check_bootstrap_finish, clear_accounts
from ..errors import LwM2MError
from ..transport import TransportError
from .operations import CHANGED, OpRequest, OpResponse, error_response
from .state import RegistrationRejected, RegistrationState

if TYPE_CHECKING:
    from .registration import LwM2MClient

log = logging.getLogger("gatewayd.lwm2m")


class ClientBootstrap:
    """One client's bootstrap: asked for (:attr:`requested`), in progress (:attr:`active`), or a fallback."""

    def __init__(self, client: LwM2MClient) -> None:
        self.client = client
        #: the Bootstrap-Request Trigger was executed: bootstrap before anything else
        self.requested = False
        #: between Bootstrap-Request and Bootstrap-Finish: the server's requests are bootstrap operations
        self.active = False
        self._done: asyncio.Future[None] | None = None

    def available(self) -> bool:
        """The client has a Bootstrap-Server account."""
        return bootstrap_server(self.client.store) is not None

    def wanted(self, account: ServerAccount | None, failed_attempts: int) -> bool:
        """Bootstrap instead of registering: no LwM2M Server account, or registering with it keeps failing."""
        after = self.client.settings.bootstrap_after
        return account is None or (failed_attempts >= after > 0 and self.available())

    async def fall_back(self, account: ServerAccount | None, failed_attempts: int) -> None:
        """Bootstrap because :meth:`wanted` says so, dropping the LwM2M Server accounts that failed."""
        if account is not None:
            log.info("%s: falling back to bootstrap after %d failed attempts", self.client.endpoint, failed_attempts)
            clear_accounts(self.client.store)
        await self.run()

    async def run(self) -> None:
        """Bootstrap-Request, then wait for the Bootstrap-Server's Bootstrap-Finish."""
        client = self.client
        account = bootstrap_server(client.store)
        if account is None:
            raise LwM2MError(Code.NOT_FOUND, "no Bootstrap-Server account")
        client.registration = None
        await client._use_server(account)
        assert client.transport is not None
        client._set_state(RegistrationState.BOOTSTRAPPING)
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.active = True
        try:
            query = [f"ep={client.endpoint}"]
            if client.settings.lwm2m_version != "1.0":
                query.append(f"pct={client.settings.default_format}")
            async with client._slot():
                resp = await client.transport.request(Code.POST, ("bs",), tuple(query), keep_session=True)
            if not resp.ok:
                raise RegistrationRejected("Bootstrap-Request", resp)
            try:
                await asyncio.wait_for(asyncio.shield(self._done), client.settings.bootstrap_timeout)
            except TimeoutError:
                raise TransportError("no Bootstrap-Finish in time") from None
        finally:
            self.active = False
            self._done = None
        client.counters["bootstraps"] += 1
        client.persistence.accounts_written = True
        client.persistence.save()
        log.info("%s: bootstrap finished", client.endpoint)

    def handle(self, req: OpRequest) -> OpResponse:
        """A request of the Bootstrap-Server while :attr:`active`: Bootstrap-Finish or a bootstrap operation."""
        if req.method == "POST" and tuple(p for p in req.uri_path if p) == ("bs",):
            return self.finish()
        return self.client.ops.handle(req, bootstrap=True)

    def finish(self) -> OpResponse:
        """Bootstrap-Finish: 2.04 if the accounts written make a usable configuration (the bootstrap ends)."""
        try:
            check_bootstrap_finish(self.client.store)
        except LwM2MError as exc:
            return error_response(exc)
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        return OpResponse(CHANGED)
