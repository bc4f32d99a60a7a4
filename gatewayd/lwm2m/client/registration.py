"""One LwM2M client: bootstrap, Register/Update/Deregister, the server's operations, observations.

The registration runs as one task per client. Register (``POST /rd?ep=&lt=&lwm2m=&b=``) is retried
with exponential backoff and jitter; once registered, an Update goes out before the lifetime ends
(``update_margin`` seconds early), when the object list changes, and every ``keepalive`` seconds so the
UDP NAT binding the server reaches us through never idles out. A server that forgot us (4.04 on
Update) gets a new Register; after ``bootstrap_after`` failed attempts the client falls back to its
Bootstrap-Server if it has one. Executing Disable (/1/x/4) on the current server's instance answers,
deregisters, closes the socket and stays away for the Disable Timeout (/1/x/5, default a day), then
registers again. Every state transition is logged with LWM2M_ENDPOINT, LWM2M_STATE and
LWM2M_SERVER journal fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiocoap.numbers.codes import Code

from common.backoff import Backoff

from ..bootstrap import (
    ServerAccount,
    bootstrap_server,
    check_bootstrap_finish,
    clear_accounts,
    lwm2m_server,
)
from ..codecs import ContentFormat, codec_for, encode_links, registration_links
from ..codecs.senml import SenMLJsonCodec, SenMLRecord
from ..model import LwM2MError, ObjectStore, Origin, ResponseCode
from ..observe import AttributeStore, Observation
from ..paths import LwM2MPath
from ..persist import PersistError, StateStore, encode_value, restore_instances, restore_values, snapshot_instances
from ..transport import ClientSite, ClientTransport, Response, Security, TransportError
from .operations import CHANGED, OpRequest, OpResponse, ServerOperations, error_response, parse_path
from .ramp import RegisterRamp

log = logging.getLogger("gatewayd.lwm2m")


class RegistrationState(enum.StrEnum):
    BOOTSTRAPPING = "bootstrapping"
    REGISTERING = "registering"
    REGISTERED = "registered"
    UPDATING = "updating"
    DEREGISTERED = "deregistered"
    DISABLED = "disabled"
    FAILED = "failed"


@dataclass(slots=True)
class ClientSettings:
    """How one client registers; ``lifetime``/``binding`` of a Server instance win over these."""

    lifetime: int = 300
    binding: str = "U"
    queue_mode: bool = False
    lwm2m_version: str = "1.1"
    #: send the Update this many seconds before the lifetime ends (at most half the lifetime)
    update_margin: float = 15.0
    #: an Update at least this often keeps NAT bindings alive (0: only before the lifetime ends)
    keepalive: float = 60.0
    request_timeout: float = 30.0
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    #: failed Register attempts before falling back to the Bootstrap-Server (0: never)
    bootstrap_after: int = 3
    bootstrap_timeout: float = 60.0
    #: what Reads without Accept answer in; None: by version (see :attr:`default_format`)
    preferred_format: int | None = None

    @property
    def default_format(self) -> int:
        """The format the client registers as its preferred one: SenML JSON for 1.1, TLV for 1.0.

        SenML JSON because every 1.1 server takes it: Wakaama's ``lwm2mserver`` refuses a Register whose
        root link says ``ct=11542`` (it accepts only 110, 112 and 11543 there) and reads TLV from a
        client that gives no ``ct``; LwM2M 1.0 has no ``ct`` and TLV is its default.
        """
        if self.preferred_format is not None:
            return self.preferred_format
        return ContentFormat.TLV if self.lwm2m_version == "1.0" else ContentFormat.SENML_JSON


#: Disable Timeout (/1/x/5) when the Server instance has none (LwM2M 1.1 Appendix E.2)
DEFAULT_DISABLE_TIMEOUT = 86400


class RegistrationRejected(Exception):
    """The server answered Register/Bootstrap-Request with an error code."""

    def __init__(self, what: str, response: Response) -> None:
        super().__init__(f"{what} rejected with {response.dotted}")
        self.response = response


@dataclass(slots=True)
class _ActiveObservation:
    obs: Observation
    request: OpRequest
    notify: Callable[[], None]
    timer: asyncio.TimerHandle | None = None
    attribute_path: LwM2MPath | None = None


@dataclass(slots=True)
class Registration:
    """What the server gave us: where our registration lives, until when (wall-clock time)."""

    server_uri: str
    location: tuple[str, ...]
    lifetime: int
    expires: float
    objects: str = ""
    registered_at: float = field(default_factory=time.time)


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
        self.state_store = state
        self.state = RegistrationState.DEREGISTERED
        self.registration: Registration | None = None
        self.server: ServerAccount | None = None
        self.transport: ClientTransport | None = None
        self.last_error = ""
        self.ops = ServerOperations(store, AttributeStore(), self.settings.default_format)
        self.site = ClientSite(self._handle, self._observe, self._prepare)
        self.observations: list[_ActiveObservation] = []
        #: awaited before the store answers a server's request: may refresh values from a proxied
        #: device (read-through) or answer the request itself (a Write or Execute forwarded to it)
        self.request_hook: Callable[[OpRequest], Awaitable[OpResponse | None]] | None = None
        #: called whenever an observation starts or ends (a proxy then observes or polls its device)
        self.on_observations: Callable[[], None] | None = None
        self.counters = {"registers": 0, "updates": 0, "requests": 0, "notifications": 0, "bootstraps": 0,
                         "dtls_faults": 0, "errors": 0}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._objects_changed = False
        self._lifetime_changed = False
        self._bootstrap_requested = False
        self._disable_requested = False
        #: wall-clock time until which the server account is disabled (Disable, /1/x/4)
        self.disabled_until: float | None = None
        self._bootstrapping = False
        self._bootstrap_done: asyncio.Future[None] | None = None
        self._written: set[LwM2MPath] = set()
        self._save_handle: asyncio.TimerHandle | None = None
        self._accounts_written = False
        self._unsubscribe = store.on_change(self._on_store_change)
        self._install_server_handlers()

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Restore saved state and start registering in the background."""
        if self._task is not None:
            return
        self._restore()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lwm2m {self.endpoint}")

    async def stop(self, deregister: bool = True) -> None:
        """Deregister (if registered and asked to) and close the socket; the saved state stays."""
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()  # again if a cancellation was swallowed on the way
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait({task}, timeout=1.0)
        for active in list(self.observations):
            self._drop_observation(active)
        if deregister and self.registration is not None and self.transport is not None:
            try:
                resp = await self.transport.request(Code.DELETE, self.registration.location,
                                                    timeout=min(5.0, self.settings.request_timeout))
                if resp.ok or resp.code == ResponseCode.NOT_FOUND:
                    self.registration = None
            except TransportError as exc:
                log.warning("%s: Deregister failed: %s", self.endpoint, exc)
            if self.registration is None:
                self._set_state(RegistrationState.DEREGISTERED)
        self._flush_save()
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
        self._disable_requested = True
        self._wake.set()

    def request_bootstrap(self) -> None:
        """Drop the registration and bootstrap again (Bootstrap-Request Trigger)."""
        self._bootstrap_requested = True
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
        return out

    def observation_rows(self) -> list[dict[str, Any]]:
        rows = []
        now = time.monotonic()
        for a in self.observations:
            attrs = ",".join(f"{k}={v:g}" for k, v in sorted(a.obs.attributes.items()))
            rows.append({
                "endpoint": self.endpoint,
                "paths": " ".join(str(p) for p in a.obs.paths),
                "attributes": attrs,
                "notifications": a.obs.notifications,
                "last_sent_ago": round(now - a.obs.last_sent, 1),
            })
        return rows

    # --- the registration task ----------------------------------------------------------------------
    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.ramp.slot() if self.ramp is not None else contextlib.nullcontext()

    async def _run(self) -> None:
        retry = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        if self.ramp is not None:
            await self.ramp.first_attempt()
        while True:
            try:
                if self._disable_requested or self.disabled_until is not None:
                    await self._disable()
                if self._bootstrap_requested:
                    self._bootstrap_requested = False
                    await self._bootstrap()
                    retry.reset()
                account = lwm2m_server(self.store)
                if account is None or (retry.attempts >= self.settings.bootstrap_after > 0 and self._can_bootstrap()):
                    if not self._can_bootstrap():
                        self._fail("no LwM2M Server or Bootstrap-Server account")
                        await self._wait_wake(None)
                        continue
                    if account is not None:
                        log.info("%s: falling back to bootstrap after %d failed attempts", self.endpoint,
                                 retry.attempts)
                        clear_accounts(self.store)
                    await self._bootstrap()
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

    def _can_bootstrap(self) -> bool:
        return bootstrap_server(self.store) is not None

    async def _use_server(self, account: ServerAccount) -> None:
        """Open the socket to the account's server (a new one if the server or its key changed)."""
        t = self.transport
        security = Security(account.identity, account.key) if account.secure else None
        if (t is not None and t.server_uri == _base(account.uri) and t.security == security
                and t.context is not None):
            self.server = account
            self._apply_server_defaults(account)
            return
        if t is not None:
            await t.close()
        self.server = account
        self._apply_server_defaults(account)
        self.transport = ClientTransport(account.uri, self.site, security, self.settings.request_timeout,
                                         on_fault=self._dtls_fault)
        await self.transport.open()

    def _apply_server_defaults(self, account: ServerAccount) -> None:
        self.ops.attributes.default_pmin = account.default_pmin
        self.ops.attributes.default_pmax = account.default_pmax

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
        started = time.time()
        resp = await self.transport.request(Code.POST, ("rd",), tuple(query), links.encode(),
                                            ContentFormat.LINK_FORMAT, keep_session=True)
        if resp.code != (2 << 5 | 1) or not resp.location:
            raise RegistrationRejected("Register", resp)
        self.counters["registers"] += 1
        self.registration = Registration(self.server.uri, resp.location, lifetime, started + lifetime, links)
        self.last_error = ""
        self._set_state(RegistrationState.REGISTERED)
        self._save()

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
        payload, cf = b"", None
        links = self._object_links()
        if self._objects_changed or links != reg.objects:
            payload, cf = links.encode(), ContentFormat.LINK_FORMAT
        self._objects_changed = self._lifetime_changed = False
        started = time.time()
        try:
            resp = await self.transport.request(Code.POST, reg.location, tuple(query), payload, cf,
                                                keep_session=True)
        except TransportError:
            self._set_state(RegistrationState.REGISTERED if reg.expires > time.time() else RegistrationState.FAILED)
            if payload:
                self._objects_changed = True
            raise
        if resp.code == ResponseCode.NOT_FOUND or resp.code == ResponseCode.BAD_REQUEST:
            log.info("%s: the server forgot the registration (%s); registering again", self.endpoint, resp.dotted)
            self.registration = None
            raise RegistrationRejected("Update", resp)
        if not resp.ok:
            raise RegistrationRejected("Update", resp)
        self.counters["updates"] += 1
        reg.lifetime, reg.expires, reg.objects = lifetime, started + lifetime, links
        self.last_error = ""
        self._set_state(RegistrationState.REGISTERED)
        self._save()

    def _next_update_in(self) -> float:
        reg = self.registration
        assert reg is not None
        margin = min(self.settings.update_margin, reg.lifetime / 2)
        due = reg.expires - margin - time.time()
        if self.settings.keepalive > 0:
            since = time.time() - (reg.expires - reg.lifetime)
            due = min(due, self.settings.keepalive - since)
        return max(0.0, due)

    async def _registered(self) -> None:
        """Stay registered: Update on time, on change and on trigger, until something fails."""
        while True:
            await self._wait_wake(self._next_update_in())
            if self._bootstrap_requested or self._disable_requested:
                return
            await self._update()

    async def _wait_wake(self, timeout: float | None) -> None:
        """Wait for a wake-up (trigger, change, request) or the timeout; a wake-up that came while the task
        was busy returns at once: cleared only once seen, so a trigger during an Update in flight (Wakaama
        writes the lifetime, then executes /1/0/8) gets an Update of its own instead of being lost."""
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives
            # just as the event is set (a trigger_update() right before stop()), and stop() then waits forever.
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    # --- Disable (/1/x/4) ----------------------------------------------------------------------------------
    def _disable_timeout(self) -> float:
        iid = self.server.server_instance if self.server is not None else None
        value = self.store.get(LwM2MPath(1, iid, 5)) if iid is not None and self.store.instance(1, iid) else None
        return float(value) if value is not None else float(DEFAULT_DISABLE_TIMEOUT)

    async def _disable(self) -> None:
        """Deregister, disconnect, and send nothing to the server until the Disable Timeout ends."""
        if self._disable_requested:
            self._disable_requested = False
            timeout = self._disable_timeout()
            await asyncio.sleep(0.05)  # the Execute's answer goes out before the Deregister
            if self.registration is not None and self.transport is not None:
                try:
                    await self.transport.request(Code.DELETE, self.registration.location,
                                                 timeout=min(5.0, self.settings.request_timeout))
                except TransportError as exc:
                    log.info("%s: Deregister before Disable got no answer: %s", self.endpoint, exc)
            self.registration = None
            for active in list(self.observations):
                self._drop_observation(active)
            if self.transport is not None:
                await self.transport.close()
                self.transport = None
            self.disabled_until = time.time() + timeout
            self._save()
            log.info("%s: server account disabled for %.0f s", self.endpoint, timeout)
        self._set_state(RegistrationState.DISABLED)
        while self.disabled_until is not None:
            left = self.disabled_until - time.time()
            if left <= 0 or self._bootstrap_requested:
                break
            await self._wait_wake(left)
        self.disabled_until = None
        self._save()

    # --- bootstrap --------------------------------------------------------------------------------------
    async def _bootstrap(self) -> None:
        account = bootstrap_server(self.store)
        if account is None:
            raise LwM2MError(ResponseCode.NOT_FOUND, "no Bootstrap-Server account")
        self.registration = None
        await self._use_server(account)
        assert self.transport is not None
        self._set_state(RegistrationState.BOOTSTRAPPING)
        loop = asyncio.get_running_loop()
        self._bootstrap_done = loop.create_future()
        self._bootstrapping = True
        try:
            query = [f"ep={self.endpoint}"]
            if self.settings.lwm2m_version != "1.0":
                query.append(f"pct={self.settings.default_format}")
            async with self._slot():
                resp = await self.transport.request(Code.POST, ("bs",), tuple(query), keep_session=True)
            if not resp.ok:
                raise RegistrationRejected("Bootstrap-Request", resp)
            try:
                await asyncio.wait_for(asyncio.shield(self._bootstrap_done), self.settings.bootstrap_timeout)
            except TimeoutError:
                raise TransportError("no Bootstrap-Finish in time") from None
        finally:
            self._bootstrapping = False
            self._bootstrap_done = None
        self.counters["bootstraps"] += 1
        self._accounts_written = True
        self._save()
        log.info("%s: bootstrap finished", self.endpoint)

    def _bootstrap_finish(self) -> OpResponse:
        try:
            check_bootstrap_finish(self.store)
        except LwM2MError as exc:
            return error_response(exc)
        if self._bootstrap_done is not None and not self._bootstrap_done.done():
            self._bootstrap_done.set_result(None)
        return OpResponse(CHANGED)

    # --- the server's requests ------------------------------------------------------------------------
    def _handle(self, req: OpRequest, remote: Any) -> OpResponse:
        self.counters["requests"] += 1
        if self._bootstrapping:
            if req.method == "POST" and tuple(p for p in req.uri_path if p) == ("bs",):
                return self._bootstrap_finish()
            return self.ops.handle(req, bootstrap=True)
        resp = self.ops.handle(req)
        if resp.ok and req.method == "PUT" and not req.payload and req.content_format is None:
            self._attributes_changed()
        return resp

    async def _prepare(self, req: OpRequest, remote: Any) -> OpResponse | None:
        if self.request_hook is None or self._bootstrapping:
            return None
        resp = await self.request_hook(req)
        if resp is not None:
            self.counters["requests"] += 1
        return resp

    def _observe(self, req: OpRequest, remote: Any, notify: Callable[[], None]
                 ) -> Callable[[], None] | None:
        if self._bootstrapping or req.method not in ("GET", "FETCH") or req.accept == ContentFormat.LINK_FORMAT:
            return None
        try:
            if req.method == "FETCH":
                paths = tuple(self.ops.composite_paths(req))
                attr_path = None
            else:
                attr_path = parse_path(req.uri_path)
                paths = (attr_path,)
        except LwM2MError:
            return None
        attrs = self.ops.attributes.effective(attr_path) if attr_path else self.ops.attributes.effective(LwM2MPath())
        obs = Observation(paths, attrs)
        obs.start(time.monotonic(), self._snapshot(paths))
        active = _ActiveObservation(obs, req, notify, attribute_path=attr_path)
        self.observations.append(active)
        self._schedule(active)
        self._observations_changed()
        return lambda: self._drop_observation(active)

    def _drop_observation(self, active: _ActiveObservation) -> None:
        if active.timer is not None:
            active.timer.cancel()
            active.timer = None
        if active in self.observations:
            self.observations.remove(active)
            self._observations_changed()

    def _observations_changed(self) -> None:
        if self.on_observations is not None:
            try:
                self.on_observations()
            except Exception:
                log.exception("%s: observation hook failed", self.endpoint)

    def _snapshot(self, paths: tuple[LwM2MPath, ...]) -> Any:
        values = []
        for p in paths:
            if p.depth >= 3:
                values.append(self.store.get(p))
                continue
            try:
                values.append(tuple((q, encode_value(v)) for q, v in self.store.read(p)))
            except LwM2MError:
                values.append(None)
        return values[0] if len(values) == 1 else tuple(values)

    def _schedule(self, active: _ActiveObservation) -> None:
        if active.timer is not None:
            active.timer.cancel()
            active.timer = None
        now = time.monotonic()
        at = active.obs.deadline(now)
        if at is None:
            return
        loop = asyncio.get_running_loop()
        active.timer = loop.call_later(max(0.0, at - now), self._fire, active)

    def _fire(self, active: _ActiveObservation) -> None:
        active.timer = None
        if active not in self.observations:
            return
        now = time.monotonic()
        obs = active.obs
        epmax = obs.attributes.get("epmax")
        value = self._snapshot(obs.paths)
        if epmax and now >= obs.last_evaluated + epmax:
            obs.changed(now, value)
        if obs.due(now):
            obs.sent(now, value)
            self.counters["notifications"] += 1
            active.notify()
        self._schedule(active)

    def _attributes_changed(self) -> None:
        for active in self.observations:
            if active.attribute_path is not None:
                active.obs.attributes = self.ops.attributes.effective(active.attribute_path)
                self._schedule(active)

    def _on_store_change(self, paths: list[LwM2MPath], origin: Origin) -> None:
        # instances came or went: the object list in the registration changed
        if not self._bootstrapping and any(p.is_instance and p.object not in (0, 21) for p in paths):
            self._objects_changed = True
            if self.state == RegistrationState.REGISTERED:
                self._wake.set()
        if origin is not Origin.LOCAL:
            for p in paths:
                if p.object in (0, 1):
                    self._accounts_written = True
                elif p.depth >= 3:
                    self._written.add(p.resource_path)
            if origin is Origin.SERVER and any(p.object == 1 and p.resource == 1 for p in paths):
                self._lifetime_changed = True
                if self.server is not None and self.server.server_instance is not None:
                    self.server.lifetime = self.store.get(LwM2MPath(1, self.server.server_instance, 1))
                self._wake.set()
            self._save_later()
        if not self.observations:
            return
        now = time.monotonic()
        for active in self.observations:
            touched = any(a.is_prefix_of(b) or b.is_prefix_of(a) for a in active.obs.paths for b in paths)
            if touched and active.obs.changed(now, self._snapshot(active.obs.paths)):
                self._schedule(active)

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
    async def send(self, paths: list[LwM2MPath], content_format: int = ContentFormat.SENML_CBOR) -> Response:
        """Send (``POST /dp``) the current values of ``paths`` with a timestamp; needs a registration."""
        if self.registration is None or self.transport is None:
            raise LwM2MError(ResponseCode.NOT_FOUND, "not registered")
        codec = codec_for(content_format)
        assert isinstance(codec, SenMLJsonCodec)
        now = time.time()
        records = []
        for p in paths:
            for q, v in self.store.read(p):
                if isinstance(v, dict):
                    records.extend(SenMLRecord(q.child(ri), rv, now) for ri, rv in sorted(v.items()))
                elif v is not None:
                    records.append(SenMLRecord(q, v, now))
        payload = codec.encode_records(LwM2MPath(), records, self.store.registry)
        return await self.transport.request(Code.POST, ("dp",), (), payload, content_format)

    # --- persistence ----------------------------------------------------------------------------------------
    def _restore(self) -> None:
        if self.state_store is None:
            return
        data = self.state_store.load(self.endpoint)
        if not data:
            return
        try:
            if data.get("accounts"):
                restore_instances(self.store, data["accounts"])
                self._accounts_written = True
            restore_values(self.store, data.get("values", {}))
            self._written = {LwM2MPath.parse(p) for p in data.get("values", {})}
            if data.get("disabled_until") and float(data["disabled_until"]) > time.time():
                self.disabled_until = float(data["disabled_until"])
            reg = data.get("registration")
            if reg:
                self.registration = Registration(str(reg["server"]), tuple(reg["location"]), int(reg["lifetime"]),
                                                 float(reg["expires"]), str(reg.get("objects", "")))
        except (PersistError, KeyError, TypeError, ValueError) as exc:
            log.warning("%s: ignoring saved LwM2M state: %s", self.endpoint, exc)
            self.registration = None

    def _state_data(self) -> dict[str, Any]:
        reg = self.registration
        data: dict[str, Any] = {}
        if reg is not None:
            data["registration"] = {"server": reg.server_uri, "location": list(reg.location),
                                    "lifetime": reg.lifetime, "expires": reg.expires, "objects": reg.objects}
        if self.disabled_until is not None:
            data["disabled_until"] = self.disabled_until
        if self._accounts_written:
            data["accounts"] = snapshot_instances(self.store, (0, 1))
        values = {}
        for p in sorted(self._written):
            if self.store.instance(p.object, p.instance) is not None and self.store.get(p) is not None:  # type: ignore[arg-type]
                values[str(p)] = encode_value(self.store.get(p))
        data["values"] = values
        return data

    def _save(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self.state_store is None:
            return
        try:
            self.state_store.save(self.endpoint, self._state_data())
        except OSError as exc:
            log.error("%s: cannot save LwM2M state: %s", self.endpoint, exc)

    def _save_later(self) -> None:
        if self.state_store is None or self._save_handle is not None:
            return
        try:
            self._save_handle = asyncio.get_running_loop().call_later(0.5, self._save)
        except RuntimeError:
            self._save()

    def _flush_save(self) -> None:
        if self._save_handle is not None or (self.state_store is not None and self.registration is None):
            self._save()

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


def _base(uri: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"
