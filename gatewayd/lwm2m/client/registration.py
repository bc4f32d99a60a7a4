"""One LwM2M client: Register, Update and De-register (LwM2M 1.1 §5.3), and the server's operations.

The registration runs as one task per client. Register (``POST /rd?ep=&lt=&lwm2m=&b=``) is retried
with exponential backoff and jitter; once registered, an Update goes out before the lifetime ends
(``update_margin`` seconds early), when the object list changes, and every ``keepalive`` seconds so the
UDP NAT binding the server reaches us through never idles out. A server that forgot us (4.04 on
Update) gets a new Register; after ``bootstrap_after`` failed attempts the client falls back to its
Bootstrap-Server if it has one (:mod:`.bootstrap_request`). Executing Disable (/1/x/4) on the current
server's instance answers, deregisters, closes the socket and stays away for the Disable Timeout
(:mod:`.disable`), then registers again. Observations are scheduled by :mod:`.observation`, Send
payloads built by :mod:`.send`, and the state kept across restarts by :mod:`.persistence`. Every state
transition is logged with LWM2M_ENDPOINT, LWM2M_STATE and LWM2M_SERVER journal fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiocoap.numbers.codes import Code

from common.backoff import Backoff

from ..bootstrap import ServerAccount, lwm2m_server
from ..codecs import ContentFormat, encode_links, registration_links
from ..dtls_pki import pki_security
from ..errors import LwM2MError
from ..observe import AttributeStore
from ..paths import LwM2MPath
from ..persist import StateStore
from ..store import ObjectStore, Origin
from ..transport import ClientSite, ClientTransport, Response, Security, TransportError
from .bootstrap_request import ClientBootstrap
from .disable import ServerDisable
from .observation import ActiveObservation, ObservationScheduler
from .operations import CREATED, OpRequest, OpResponse, ServerOperations
from .persistence import ClientPersistence
from .queue import NotificationQueue
from .ramp import RegisterRamp
from .send import send_payload
from .state import ClientSettings, Registration, RegistrationRejected, RegistrationState

log = logging.getLogger("gatewayd.lwm2m")

#: object lists longer than this go out block-wise (Block1) like any over one datagram, but some servers
#: refuse them: Wakaama's lwm2mserver parses the Register payload with 16-bit offsets and answers 4.00
LONG_OBJECT_LIST = 65535


class LwM2MClient:
    """A LwM2M client endpoint over an :class:`ObjectStore` that already holds its objects.

    The Security and Server objects of ``store`` say where to register (see
    :func:`~gatewayd.lwm2m.bootstrap.factory_bootstrap`); ``state`` (optional) keeps the registration and
    what servers wrote across restarts; ``ramp`` (optional, shared by an engine's clients) caps the
    Registers in flight and delays the first one by a random fraction of a second.
    """

    def __init__(
        self,
        endpoint: str,
        store: ObjectStore,
        settings: ClientSettings | None = None,
        state: StateStore | None = None,
        ramp: RegisterRamp | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.ramp = ramp
        self.store = store
        self.settings = settings or ClientSettings()
        self.state = RegistrationState.DEREGISTERED
        self.registration: Registration | None = None
        self.server: ServerAccount | None = None
        self.transport: ClientTransport | None = None
        self.last_error = ""
        self.ops = ServerOperations(store, AttributeStore(), self.settings.default_format, self.settings.lwm2m_version)
        self.site = ClientSite(self._handle, self._observe, self._prepare)
        #: queue mode: notifications held while offline, delivered after the next Update
        self.queue = NotificationQueue(self.settings.queue_limit, self.settings.awake_time) \
            if self.settings.queue_mode else None
        self.site.queue = self.queue
        if self.queue is not None:
            self.queue.storing = lambda: bool(self._server_value(6, True))
        #: awaited before the store answers a server's request: may refresh values from a proxied
        #: device (read-through) or answer the request itself (a Write or Execute forwarded to it)
        self.request_hook: Callable[[OpRequest], Awaitable[OpResponse | None]] | None = None
        #: called whenever an observation starts or ends (a proxy then observes or polls its device)
        self.on_observations: Callable[[], None] | None = None
        self.counters = {"registers": 0, "updates": 0, "requests": 0, "notifications": 0, "bootstraps": 0,
                         "dtls_faults": 0, "errors": 0, "pings": 0, "ping_failures": 0,
                         "connections_lost": 0, "sends_muted": 0}
        #: wall-clock time until which the server account is disabled (Disable, /1/x/4)
        self.disabled_until: float | None = None
        self.scheduler = ObservationScheduler(self)
        self.bootstrap = ClientBootstrap(self)
        self.disable = ServerDisable(self)
        self.persistence = ClientPersistence(self, state)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._objects_changed = False
        self._lifetime_changed = False
        #: the server wants Content-Format 40 on every Update, even without a payload (see _update)
        self._update_needs_ct = False
        #: whether the last _wait_wake ended by a wake-up rather than its timeout
        self._wake_seen = False
        #: over TCP: the registration's connection was lost
        self._lost = False
        self._unsubscribe = store.on_change(self._on_store_change)
        self._install_server_handlers()

    @property
    def observations(self) -> list[ActiveObservation]:
        """The observations servers hold on this client."""
        return self.scheduler.active

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Restore saved state and start registering in the background."""
        if self._task is not None:
            return
        self.persistence.restore()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lwm2m {self.endpoint}")

    async def stop(self, deregister: bool = True) -> None:
        """Deregister (if registered and asked to) and close the socket; the saved state stays."""
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()  # again if a cancellation was swallowed on the way
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait({task}, timeout=1.0)
        self.scheduler.drop_all()
        if deregister and self.registration is not None and self.transport is not None:
            try:
                resp = await self.transport.request(Code.DELETE, self.registration.location,
                                                    timeout=min(5.0, self.settings.request_timeout))
                if resp.ok or resp.code == Code.NOT_FOUND:
                    self.registration = None
            except TransportError as exc:
                log.warning("%s: Deregister failed: %s", self.endpoint, exc)
            if self.registration is None:
                self._set_state(RegistrationState.DEREGISTERED)
        self.persistence.flush()
        if self.transport is not None:
            await self.transport.close()
            self.transport = None
        self._unsubscribe()

    def trigger_update(self) -> None:
        """Send an Update now (Registration Update Trigger)."""
        self._wake.set()

    def request_disable(self, server_instance: int | None = None) -> None:
        """Deregister and stay away for the Disable Timeout (Execute on /1/x/4 of the current server)."""
        if server_instance is not None and (self.server is None or self.server.server_instance != server_instance):
            return  # another server's account: this client registers with one server only
        self.disable.requested = True
        self._wake.set()

    def request_bootstrap(self) -> None:
        """Drop the registration and bootstrap again (Bootstrap-Request Trigger)."""
        self.bootstrap.requested = True
        self._wake.set()

    # --- status ----------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        reg = self.registration
        out: dict[str, Any] = {
            "endpoint": self.endpoint,
            "state": self.state.value,
            "server": self.server.uri if self.server else "",
            "location": "/" + "/".join(reg.location) if reg else "",
            "lifetime": reg.lifetime if reg else (self.server.lifetime if self.server else None),
            "expires_in": round(reg.expires - time.time()) if reg else None,
            "observations": len(self.observations),
        }
        if self.last_error:
            out["error"] = self.last_error
        if self.disabled_until is not None:
            out["disabled_for"] = max(0, round(self.disabled_until - time.time()))
        if self.queue is not None:
            out.update(self.queue.info())
        return out

    def observation_rows(self) -> list[dict[str, Any]]:
        return self.scheduler.rows()

    # --- the registration task ----------------------------------------------------------------------
    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.ramp.slot() if self.ramp is not None else contextlib.nullcontext()

    async def _run(self) -> None:
        retry = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        if self.ramp is not None:
            await self.ramp.first_attempt()
        while True:
            try:
                if self.disable.pending:
                    await self.disable.run()
                if self.bootstrap.requested:
                    self.bootstrap.requested = False
                    await self.bootstrap.run()
                    retry.reset()
                account = lwm2m_server(self.store)
                if self.bootstrap.wanted(account, retry.attempts):
                    if not self.bootstrap.available():
                        self._fail("no LwM2M Server or Bootstrap-Server account")
                        await self._wait_wake(None)
                        continue
                    await self.bootstrap.fall_back(account, retry.attempts)
                    retry.reset()
                    continue
                async with self._slot():
                    await self._use_server(account)
                    if not await self._resume():
                        await self._register()
                retry.reset()
                await self._registered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, (TransportError, RegistrationRejected, LwM2MError, ValueError)):
                    # a bug or a third-party stack's fault: this client backs off, the others go on
                    self.counters["errors"] += 1
                    # where it happened, not what it said: an exception's text may quote a PSK identity
                    log.error("%s: unexpected %s in the registration task at\n%s", self.endpoint,
                              type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)).rstrip())
                    exc = TransportError(f"internal error ({type(exc).__name__})")
                delay = retry.delay()
                self._fail(f"{exc}; retry {retry.attempts} in {delay:.0f} s")
                await self._wait_wake(delay)

    def _dtls_fault(self, kind: str) -> None:
        self.counters["dtls_faults"] += 1

    async def _use_server(self, account: ServerAccount) -> None:
        """Open the socket to the account's server (a new one if the server or its key changed)."""
        t = self.transport
        pki = pki_security(account)
        security = Security(account.identity, account.key) if account.secure and pki is None else None
        if (t is not None and t.server_uri == _base(account.uri) and t.security == security
                and t.pki == pki and t.context is not None):
            self.server = account
            self._apply_server_defaults(account)
            return
        if t is not None:
            await t.close()
        self.server = account
        self._apply_server_defaults(account)
        self.transport = ClientTransport(account.uri, self.site, security, self.settings.request_timeout,
                                         on_fault=self._dtls_fault, server_certificate=account.server_public_key,
                                         pki=pki)
        self.transport.on_connection_lost = self._connection_lost
        self._lost = False
        await self.transport.open()

    def _apply_server_defaults(self, account: ServerAccount) -> None:
        self.ops.attributes.default_pmin = account.default_pmin
        self.ops.attributes.default_pmax = account.default_pmax

    def _server_value(self, resource: int, default: Any) -> Any:
        """A resource of the current server's Server instance (/1/x/resource); ``default`` if absent."""
        iid = self.server.server_instance if self.server is not None else None
        return default if iid is None else self.store.get(LwM2MPath(1, iid, resource), default)

    def _lifetime(self) -> int:
        if self.server is not None and self.server.lifetime:
            return int(self.server.lifetime)
        return self.settings.lifetime

    def _binding(self) -> str:
        binding = (self.server.binding if self.server and self.server.binding else self.settings.binding) or "U"
        if self.settings.queue_mode and self.settings.lwm2m_version == "1.0" and "Q" not in binding:
            binding += "Q"
        return binding

    def _object_links(self) -> str:
        objects, versions = self.store.registered_objects()
        fmt = self.settings.default_format
        # no ct for TLV: it is the default without one, and Wakaama refuses the whole Register over ct=11542
        tlv = fmt in (ContentFormat.TLV, ContentFormat.OLD_TLV)
        ct = None if self.settings.lwm2m_version == "1.0" or tlv else fmt
        return encode_links(registration_links(objects, versions, content_format=ct)).decode()

    async def _register(self) -> None:
        assert self.transport is not None and self.server is not None
        self._set_state(RegistrationState.REGISTERING)
        lifetime = self._lifetime()
        query = [f"ep={self.endpoint}", f"lt={lifetime}", f"lwm2m={self.settings.lwm2m_version}",
                 f"b={self._binding()}"]
        if self.settings.queue_mode and self.settings.lwm2m_version != "1.0":
            query.append("Q")
        links = self._object_links()
        self._objects_changed = self._lifetime_changed = False
        self._update_needs_ct = False  # learnt again from this server's first answer to an Update
        started = time.time()
        resp = await self.transport.request(Code.POST, ("rd",), tuple(query), links.encode(),
                                            ContentFormat.LINK_FORMAT, keep_session=True)
        if resp.code != CREATED or not resp.location:
            raise RegistrationRejected("Register", resp, _long_list_hint(links))
        self.counters["registers"] += 1
        self.registration = Registration(self.server.uri, resp.location, lifetime, started + lifetime, links)
        self.last_error = ""
        self._set_state(RegistrationState.REGISTERED)
        self.persistence.save()
        self._awake()

    async def _resume(self) -> bool:
        """Continue a registration that outlived a restart or a failed Update with an Update."""
        reg = self.registration
        if reg is None or self.server is None:
            return False
        if reg.server_uri != self.server.uri or reg.expires - time.time() < 2:
            self.registration = None
            return False
        try:
            await self._update()
        except RegistrationRejected:
            self.registration = None
            return False
        return True

    async def _update(self) -> None:
        assert self.transport is not None and self.registration is not None
        reg = self.registration
        self._set_state(RegistrationState.UPDATING)
        query: list[str] = []
        lifetime = self._lifetime()
        if lifetime != reg.lifetime or self._lifetime_changed:
            query.append(f"lt={lifetime}")
        payload, cf = b"", ContentFormat.LINK_FORMAT if self._update_needs_ct else None
        links = self._object_links()
        if self._objects_changed or links != reg.objects:
            payload, cf = links.encode(), ContentFormat.LINK_FORMAT
        self._objects_changed = self._lifetime_changed = False
        started = time.time()
        try:
            resp = await self.transport.request(Code.POST, reg.location, tuple(query), payload, cf,
                                                keep_session=True)
            if resp.code == Code.BAD_REQUEST and cf is None:
                # Wakaama's server from 2024-07 to 2025-11 answers 4.00 to any Update without Content-Format
                # 40, a payload or not; once it has, every Update carries it (it means nothing without one).
                resp = await self.transport.request(Code.POST, reg.location, tuple(query), payload,
                                                    ContentFormat.LINK_FORMAT, keep_session=True)
                if resp.ok:
                    self._update_needs_ct = True
                    log.info("%s: the server refuses an Update without Content-Format; sending 40 (link-format) "
                             "in every Update from now on", self.endpoint,
                             extra={"fields": {"LWM2M_ENDPOINT": self.endpoint}})
        except TransportError:
            self._set_state(RegistrationState.REGISTERED if reg.expires > time.time() else RegistrationState.FAILED)
            if payload:
                self._objects_changed = True
            raise
        if resp.code == Code.NOT_FOUND or resp.code == Code.BAD_REQUEST:
            log.info("%s: the server forgot the registration (%s); registering again", self.endpoint, resp.dotted)
            self.registration = None
            raise RegistrationRejected("Update", resp)
        if not resp.ok:
            raise RegistrationRejected("Update", resp)
        self.counters["updates"] += 1
        reg.lifetime, reg.expires, reg.objects = lifetime, started + lifetime, links
        self.last_error = ""
        self._set_state(RegistrationState.REGISTERED)
        self.persistence.save()
        self._awake()

    def _awake(self) -> None:
        """Queue mode: the server just heard from us; what was held while offline goes out now."""
        if self.queue is not None:
            sent = self.queue.wake()
            if sent:
                log.info("%s: %d held notification(s) sent after the Update", self.endpoint, sent,
                         extra={"fields": {"LWM2M_ENDPOINT": self.endpoint}})

    def _next_update_in(self) -> float:
        reg = self.registration
        assert reg is not None
        margin = min(self.settings.update_margin, reg.lifetime / 2)
        due = reg.expires - margin - time.time()
        if self.settings.keepalive > 0 and not self._reliable:
            since = time.time() - (reg.expires - reg.lifetime)
            due = min(due, self.settings.keepalive - since)
        return max(0.0, due)

    @property
    def _reliable(self) -> bool:
        return self.transport is not None and self.transport.reliable

    async def _registered(self) -> None:
        """Stay registered: Update on time, on change and on trigger, until something fails. Over TCP a
        Ping every ``keepalive`` seconds checks the connection instead of keep-alive Updates (RFC 8323)."""
        while True:
            # instances that came or went while the last Register/Update was in flight (the store's wake-up
            # only fires once registered) are not in what the server holds: Update now, not at the keep-alive
            update_in = 0.0 if self._objects_changed else self._next_update_in()
            keepalive = self.settings.keepalive
            if self._reliable and 0 < keepalive < update_in:
                await self._wait_wake(keepalive)
                if not self._wake_seen and self._next_update_in() > 0:
                    await self._ping()
                    continue
            else:
                await self._wait_wake(update_in)
            if self.bootstrap.requested or self.disable.requested:
                return
            if self._lost:
                self._lost = False
                self.counters["connections_lost"] += 1
                assert self.transport is not None
                await self.transport.close()  # a new connection, and the Update below tells the server
                raise TransportError(f"{self.transport.server_uri}: the server closed the connection")
            await self._update()

    def _connection_lost(self) -> None:
        """Over TCP: the server can no longer reach us; connect again and Update now, not at the next Ping."""
        self._lost = True
        self._wake.set()

    async def _ping(self) -> None:
        assert self.transport is not None
        try:
            await self.transport.ping()
        except TransportError:
            self.counters["ping_failures"] += 1
            # the connection is gone: a new one, and an Update on it, tell the server where we are
            await self.transport.close()
            raise
        self.counters["pings"] += 1

    async def _wait_wake(self, timeout: float | None) -> None:
        """Wait for a wake-up (trigger, change, request) or the timeout; a wake-up that came while the task
        was busy returns at once: cleared only once seen, so a trigger during an Update in flight (Wakaama
        writes the lifetime, then executes /1/0/8) gets an Update of its own instead of being lost."""
        self._wake_seen = False
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives
            # just as the event is set (a trigger_update() right before stop()), and stop() then waits forever.
            async with asyncio.timeout(timeout):
                await self._wake.wait()
            self._wake_seen = True
        except TimeoutError:
            pass
        self._wake.clear()

    # --- the server's requests ------------------------------------------------------------------------
    def _handle(self, req: OpRequest, remote: Any) -> OpResponse:
        self.counters["requests"] += 1
        if self.bootstrap.active:
            return self.bootstrap.handle(req)
        resp = self.ops.handle(req)
        if resp.ok and req.method == "PUT" and not req.payload and req.content_format is None:
            self.scheduler.attributes_changed()
        return resp

    async def _prepare(self, req: OpRequest, remote: Any) -> OpResponse | None:
        if self.request_hook is None or self.bootstrap.active:
            return None
        resp = await self.request_hook(req)
        if resp is not None:
            self.counters["requests"] += 1
        return resp

    def _observe(self, req: OpRequest, remote: Any, notify: Callable[[], None]
                 ) -> Callable[[], None] | None:
        if self.bootstrap.active:
            return None
        return self.scheduler.observe(req, notify)

    def _on_store_change(self, paths: list[LwM2MPath], origin: Origin) -> None:
        # instances came or went: the object list in the registration changed
        if not self.bootstrap.active and any(p.is_instance and p.object not in (0, 21) for p in paths):
            self._objects_changed = True
            if self.state == RegistrationState.REGISTERED:
                self._wake.set()
        if origin is not Origin.LOCAL:
            self.persistence.record(paths)
            if origin is Origin.SERVER and any(p.object == 1 and p.resource == 1 for p in paths):
                self._lifetime_changed = True
                if self.server is not None and self.server.server_instance is not None:
                    self.server.lifetime = self.store.get(LwM2MPath(1, self.server.server_instance, 1))
                self._wake.set()
            self.persistence.save_later()
        self.scheduler.store_changed(paths)

    def _install_server_handlers(self) -> None:
        if self.store.registry.get(1) is None:
            return
        with contextlib.suppress(KeyError):
            self.store.set_execute_handler(1, 8, lambda path, args: self.trigger_update())
        with contextlib.suppress(KeyError):
            self.store.set_execute_handler(1, 9, lambda path, args: self.request_bootstrap())
        with contextlib.suppress(KeyError):
            self.store.set_execute_handler(1, 4, lambda path, args: self.request_disable(path.instance))

    # --- Send (client push) -------------------------------------------------------------------------------
    async def send(self, paths: list[LwM2MPath], content_format: int | None = None,
                   timeout: float | None = None) -> Response:
        """Send (``POST /dp``) the current values of ``paths``; needs a registration and a server that has
        not muted Send (/1/x/23 false). The format is ``settings.send_format`` unless given: LwM2M CBOR
        for a 1.2 registration, SenML CBOR (with a timestamp) for 1.1."""
        if self.registration is None or self.transport is None:
            raise LwM2MError(Code.NOT_FOUND, "not registered")
        if self.settings.lwm2m_version == "1.0":
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, "Send is LwM2M 1.1's; this client registers as 1.0")
        if self._server_value(23, True):
            self.counters["sends_muted"] += 1
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, "the server muted Send (/1/x/23 Mute Send is true or absent)")
        if content_format is None:
            content_format = self.settings.send_format
        payload = send_payload(self.store, paths, content_format)
        return await self.transport.request(Code.POST, ("dp",), (), payload, content_format, timeout=timeout)

    # --- logging ---------------------------------------------------------------------------------------------
    def _set_state(self, state: RegistrationState) -> None:
        if state == self.state:
            return
        self.state = state
        server = self.server.uri if self.server else ""
        log.info("%s %s (%s)", self.endpoint, state.value, server or "no server",
                 extra={"fields": {"LWM2M_ENDPOINT": self.endpoint, "LWM2M_STATE": state.value,
                                   "LWM2M_SERVER": server}})

    def _fail(self, reason: str) -> None:
        self.last_error = reason
        if self.state == RegistrationState.FAILED:
            log.debug("%s: %s", self.endpoint, reason)
            return
        self.state = RegistrationState.FAILED
        server = self.server.uri if self.server else ""
        log.warning("%s failed: %s", self.endpoint, reason,
                    extra={"fields": {"LWM2M_ENDPOINT": self.endpoint, "LWM2M_STATE": "failed",
                                      "LWM2M_SERVER": server}})


def _long_list_hint(links: str) -> str:
    """Why a server may have refused a Register: its object list is longer than some servers take."""
    size = len(links.encode())
    if size <= LONG_OBJECT_LIST:
        return ""
    return (f"the object list is {size} bytes, over the {LONG_OBJECT_LIST} some servers take, Wakaama's "
            "among them: fewer devices behind this gateway, or registrations mode")


def _base(uri: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"
