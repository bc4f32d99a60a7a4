"""A plain CoAP device as a virtual LwM2M client: Read, Write, Execute and Observe reach the device.

- Read: a mapped resource is served from the cache while the device's last answer is fresh (its
  Max-Age, 60 s when absent, RFC 7252 §5.10.5); otherwise the device is asked (one request per resource
  at a time, concurrent Reads share it). A device that does not answer within ``timeout`` seconds makes
  the Read fail with 5.03 Service Unavailable; an error the device answers with (4.04, ...) is passed on.
- Write and Execute go to the device first (PUT/POST); only when it accepts does the store change.
- Observe: while the server observes a mapped resource, the gateway observes the CoAP resource on the
  device (RFC 7641) and every notification updates the store, which notifies upstream under the
  server's attributes. A device that cannot observe (no Observe option in its answer, or
  ``observe = false`` in the mapping) is polled every pmin seconds, or pmax/2 without pmin (at least
  every second, 30 s without either).
- Reachability shows in Connectivity Monitoring and the Device error code (see :mod:`.virtual`).

A device addressed by EUI-64 is looked up in freshly read NCP tables when its address is not known
yet, then kept (no table reads per request: an idle gateway stays idle). A request left unanswered
makes it look again in freshly read tables and, when the node moved (a child that became a router has
a new RLOC), try once more at the new address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code
from aiocoap.numbers.constants import TransportTuning

from common.aio import cancel_all

from ..client import LwM2MClient, OpRequest, OpResponse
from ..client.operations import CHANGED, parse_path
from ..codecs import CodecError, ContentFormat, UnsupportedContentFormat, decode
from ..definitions import ObjectRegistry, check_value
from ..errors import LwM2MError
from ..paths import LwM2MPath
from ..store import ObjectStore
from .mapping import ResourceMap, ValueDecodeError, decode_value, encode_value, mapped_under
from .virtual import Reachability, UpstreamAccount, virtual_store

log = logging.getLogger("gatewayd.lwm2m.proxy")

SERVICE_UNAVAILABLE = (5 << 5) | 3
DEFAULT_MAX_AGE = 60.0
MIN_POLL = 1.0
DEFAULT_POLL = 30.0
RETRY_OBSERVE = 30.0
#: devices read at once by their first read (a gateway starting with 10,000 devices would otherwise send
#: 20,000 requests in one instant: most time out, and aiocoap spends each timeout scanning all the others)
PREFETCH_CONCURRENCY = 64

Resolver = Callable[[str, bool], Awaitable[str | None]]  # (eui64, fresh tables) → address


class DeviceUnavailable(Exception):
    """The device did not answer in time (or its address is unknown)."""


class DeviceError(Exception):
    """The device answered with an error code."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: device answered {code >> 5}.{code & 0x1F:02d}")
        self.code = code


@dataclass(frozen=True)
class CoapDeviceConfig:
    """One ``[[lwm2m.device]]`` with ``adapter = "coap"``."""

    endpoint: str
    account: UpstreamAccount
    resources: dict[LwM2MPath, ResourceMap] = field(default_factory=dict)
    address: str = ""
    eui64: str = ""
    port: int = 5683
    timeout: float = 5.0
    queue_mode: bool = False

    @property
    def target(self) -> str:
        return self.address or f"eui64 {self.eui64}"


def _tuning(timeout: float) -> TransportTuning:
    """Retransmissions that end within about ``timeout`` seconds (CoAP's default would take 93 s)."""
    tuning = TransportTuning()
    tuning.MAX_RETRANSMIT = 2
    tuning.ACK_TIMEOUT = max(0.3, timeout / (7 * tuning.ACK_RANDOM_FACTOR))
    return tuning


def _host(address: str) -> str:
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


def _swallow(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class CoapDevice:
    """The virtual client's store plus the CoAP side toward one device."""

    adapter = "coap"

    def __init__(self, config: CoapDeviceConfig, registry: ObjectRegistry, context: aiocoap.Context,
                 resolver: Resolver | None = None, prefetch_slots: asyncio.Semaphore | None = None) -> None:
        self.config = config
        #: shared by a proxy's devices: caps the first reads in flight (PREFETCH_CONCURRENCY)
        self.prefetch_slots = prefetch_slots
        #: every mapped resource has been read once (answered or failed)
        self.prefetched = False
        self.registry = registry
        self.context = context
        self.resolver = resolver
        self.store: ObjectStore = virtual_store(registry, config.account, manufacturer="gatewayd proxy",
                                                model="CoAP device", serial=config.eui64)
        self.reach = Reachability(self.store)
        self.client: LwM2MClient | None = None
        self.address = config.address
        self.counters = {"device_requests": 0, "device_timeouts": 0, "cache_hits": 0, "notifications_in": 0}
        self._tuning = _tuning(config.timeout)
        self._readable = [m for m in config.resources.values() if m.readable]
        self._fresh: dict[LwM2MPath, float] = {}
        self._updated: dict[LwM2MPath, float] = {}
        self._inflight: dict[LwM2MPath, asyncio.Task[None]] = {}
        self._watchers: dict[LwM2MPath, asyncio.Task[None]] = {}
        self._watch_attrs: dict[LwM2MPath, tuple[float, float | None]] = {}
        self._observing: set[LwM2MPath] = set()
        self._observable: dict[LwM2MPath, bool] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        for rmap in config.resources.values():
            if self.store.instance(rmap.path.object, rmap.path.instance) is None:  # type: ignore[arg-type]
                self.store.add_instance(rmap.path.object, rmap.path.instance)  # type: ignore[arg-type]
            rdef = registry.resource(rmap.path)
            if rdef is not None and rdef.executable:
                # answered by the request hook; registered so Discover lists the resource
                self.store.set_execute_handler(rmap.path.object, rmap.path.resource,  # type: ignore[arg-type]
                                               lambda path, args: None, rmap.path.instance)
        if self.address:
            self.store.set(LwM2MPath(4, 0, 4), {0: self.address})

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    # --- lifecycle -------------------------------------------------------------------------------------
    def attach(self, client: LwM2MClient) -> None:
        self.client = client
        client.request_hook = self.handle
        client.on_observations = self._reconcile

    def start(self) -> None:
        """Read every mapped resource once in the background (fills the cache, learns reachability)."""
        self._spawn(self._prefetch())

    async def stop(self) -> None:
        tasks = [*self._watchers.values(), *self._inflight.values(), *self._tasks]
        self._watchers.clear()
        await cancel_all(*tasks)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prefetch(self) -> None:
        async with self.prefetch_slots or contextlib.nullcontext():
            await asyncio.gather(*(self.refresh(m) for m in self._readable), return_exceptions=True)
        self.prefetched = True

    # --- the device side -------------------------------------------------------------------------------
    async def _address(self, fresh: bool = False) -> str | None:
        if self.config.eui64 and self.resolver is not None and (fresh or not self.address):
            found = await self.resolver(self.config.eui64, fresh)
            if found and found != self.address:
                log.info("%s: device %s is at %s", self.endpoint, self.config.eui64, found)
                self.address = found
                self.store.set(LwM2MPath(4, 0, 4), {0: found})
            elif not found:
                self.address = ""
        return self.address or None

    async def _request(self, method: Code, path: str, payload: bytes = b"", content_format: int | None = None,
                       observe: bool = False) -> tuple[Any, aiocoap.Message]:
        """One request to the device: DeviceUnavailable without an answer, DeviceError for an error answer."""
        address = await self._address(fresh=not self.address)  # a lookup must not predate the request
        if address is None:
            self.reach.silent()
            raise DeviceUnavailable(f"{self.config.target} is not in the NCP's tables")
        try:
            req, resp = await self._exchange(address, method, path, payload, content_format, observe)
        except DeviceUnavailable:
            moved = await self._address(fresh=True) if self.config.eui64 else None
            if moved is None or moved == address:
                raise
            req, resp = await self._exchange(moved, method, path, payload, content_format, observe)
        if not resp.code.is_successful():
            raise DeviceError(int(resp.code), f"{method} {path}")
        return req, resp

    async def _exchange(self, address: str, method: Code, path: str, payload: bytes, content_format: int | None,
                        observe: bool) -> tuple[Any, aiocoap.Message]:
        msg = aiocoap.Message(code=method, uri=f"coap://{_host(address)}:{self.config.port}{path}",
                              payload=payload, transport_tuning=self._tuning)
        if content_format is not None:
            msg.opt.content_format = content_format
        if observe:
            msg.opt.observe = 0
        self.counters["device_requests"] += 1
        req = self.context.request(msg)
        req.response.add_done_callback(_swallow)
        try:
            # shielded: aiocoap completes the future itself, a cancelled one would make it complain
            resp = await asyncio.wait_for(asyncio.shield(req.response), self.config.timeout)
        except (TimeoutError, aiocoap.error.Error, OSError) as exc:
            if observe:
                with contextlib.suppress(Exception):
                    req.observation.cancel()
            self.counters["device_timeouts"] += 1
            self.reach.silent()
            raise DeviceUnavailable(f"{self.config.target} did not answer {method} {path}: "
                                    f"{type(exc).__name__}") from None
        self.reach.answered()
        return req, resp

    def _apply(self, rmap: ResourceMap, resp: aiocoap.Message) -> None:
        cf = resp.opt.content_format
        value = decode_value(bytes(resp.payload), rmap.type, rmap.format, rmap.pointer,
                             None if cf is None else int(cf))
        try:
            self.store.set(rmap.path, value)
        except LwM2MError as exc:
            raise ValueDecodeError(str(exc)) from None
        max_age = resp.opt.max_age
        self._fresh[rmap.path] = time.monotonic() + (DEFAULT_MAX_AGE if max_age is None else float(max_age))
        self._updated[rmap.path] = time.time()

    async def _fetch(self, rmap: ResourceMap) -> None:
        _, resp = await self._request(Code.GET, rmap.get)
        self._apply(rmap, resp)

    async def refresh(self, rmap: ResourceMap, force: bool = False) -> None:
        """Make the store's value of ``rmap`` current: from the cache if fresh, else from the device."""
        if not force and time.monotonic() < self._fresh.get(rmap.path, 0.0):
            self.counters["cache_hits"] += 1
            return
        task = self._inflight.get(rmap.path)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(rmap))
            self._inflight[rmap.path] = task
            task.add_done_callback(lambda t, p=rmap.path: self._inflight.pop(p, None) if
                                   self._inflight.get(p) is t else None)
        await asyncio.shield(task)

    # --- the server's requests ------------------------------------------------------------------------
    async def handle(self, op: OpRequest) -> OpResponse | None:
        """The request hook: None lets the store answer (after a refresh), else the answer."""
        try:
            if op.method == "GET" and op.accept != ContentFormat.LINK_FORMAT:
                return await self._read([parse_path(op.uri_path)])
            if op.method == "FETCH" and self.client is not None:
                return await self._read(self.client.ops.composite_paths(op))
            if op.method == "PUT" and (op.payload or op.content_format is not None):
                return await self._write(parse_path(op.uri_path), op)
            if op.method == "iPATCH":
                return await self._write(LwM2MPath(), op)
            if op.method == "POST":
                path = parse_path(op.uri_path)
                if path.is_resource:
                    return await self._execute(path, op.payload)
                if path.is_instance:
                    return await self._write(path, op)
        except LwM2MError:
            return None  # the store gives the proper error
        return None

    def _failure(self, exc: BaseException) -> OpResponse:
        if isinstance(exc, DeviceError):
            return OpResponse(exc.code, str(exc).encode()[:128])
        if isinstance(exc, ValueDecodeError):
            return OpResponse(SERVICE_UNAVAILABLE, f"device value unusable: {exc}".encode()[:128])
        return OpResponse(SERVICE_UNAVAILABLE, str(exc).encode()[:128])

    async def _read(self, paths: list[LwM2MPath]) -> OpResponse | None:
        maps = mapped_under(self._readable, paths)
        if not maps:
            return None
        results = await asyncio.gather(*(self.refresh(m) for m in maps), return_exceptions=True)
        for result in results:
            if isinstance(result, DeviceUnavailable | DeviceError | ValueDecodeError):
                return self._failure(result)
            if isinstance(result, BaseException):
                raise result
        return None

    async def _write(self, path: LwM2MPath, op: OpRequest) -> OpResponse | None:
        if op.content_format is None:
            return None
        try:
            entries = decode(op.content_format, path, op.payload, self.registry)
        except (CodecError, UnsupportedContentFormat, ValueError):
            return None
        forwards = []
        for p, value in entries:
            rmap = self.config.resources.get(p.resource_path) if p.depth >= 3 else None
            if rmap is None or rmap.write_target is None:
                continue
            rdef = self.registry.resource(p)
            if p.is_resource_instance or rdef is None or not rdef.writable:
                return None
            try:
                check_value(rdef.type, value)
            except ValueError:
                return None
            forwards.append((rmap, value))
        for rmap, value in forwards:
            method, target = rmap.write_target  # type: ignore[misc]
            payload, cf = encode_value(value, rmap.type, rmap.format, rmap.pointer)
            try:
                await self._request(Code.PUT if method == "PUT" else Code.POST, target, payload, cf)
            except (DeviceUnavailable, DeviceError) as exc:
                return self._failure(exc)
            self._fresh.pop(rmap.path, None)  # the next Read asks the device what it made of it
        return None

    async def _execute(self, path: LwM2MPath, args: bytes) -> OpResponse | None:
        rmap = self.config.resources.get(path)
        rdef = self.registry.resource(path)
        if rmap is None or rdef is None or not rdef.executable or not rmap.execute_target:
            return None
        try:
            await self._request(Code.POST, rmap.execute_target, args)
        except (DeviceUnavailable, DeviceError) as exc:
            return self._failure(exc)
        return OpResponse(CHANGED)

    # --- observations ------------------------------------------------------------------------------------
    def _reconcile(self) -> None:
        """Observe or poll exactly the mapped resources some server observation covers."""
        wanted: dict[LwM2MPath, tuple[float, float | None]] = {}
        for active in self.client.observations if self.client is not None else []:
            obs = active.obs
            for m in mapped_under(self._readable, obs.paths):
                pmin, pmax = obs.pmin, obs.pmax
                if m.path in wanted:
                    old_min, old_max = wanted[m.path]
                    pmin = min(pmin, old_min)
                    pmax = old_max if pmax is None else pmax if old_max is None else min(pmax, old_max)
                wanted[m.path] = (pmin, pmax)
        self._watch_attrs = wanted
        for path in [p for p in self._watchers if p not in wanted]:
            self._watchers.pop(path).cancel()
        for path in wanted:
            if path not in self._watchers:
                task = asyncio.get_running_loop().create_task(self._watch(self.config.resources[path]))
                self._watchers[path] = task

    def poll_interval(self, path: LwM2MPath) -> float:
        pmin, pmax = self._watch_attrs.get(path, (0.0, None))
        if pmin >= MIN_POLL:
            return pmin
        if pmax:
            return max(MIN_POLL, pmax / 2)
        return DEFAULT_POLL

    async def _watch(self, rmap: ResourceMap) -> None:
        try:
            while True:
                if rmap.observe and self._observable.get(rmap.path, True):
                    with contextlib.suppress(DeviceUnavailable, DeviceError, ValueDecodeError):
                        await self._observe_device(rmap)
                    if self._observable.get(rmap.path, True):
                        await asyncio.sleep(min(RETRY_OBSERVE, self.poll_interval(rmap.path)))
                        continue
                with contextlib.suppress(DeviceUnavailable, DeviceError, ValueDecodeError):
                    await self.refresh(rmap, force=True)
                await asyncio.sleep(self.poll_interval(rmap.path))
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: watching %s failed", self.endpoint, rmap.path)

    async def _observe_device(self, rmap: ResourceMap) -> None:
        """Observe the device's resource until the observation ends (or learn it cannot be observed)."""
        req, resp = await self._request(Code.GET, rmap.get, observe=True)
        self._apply(rmap, resp)
        if resp.opt.observe is None:
            self._observable[rmap.path] = False
            log.info("%s: %s cannot be observed on the device; polling it", self.endpoint, rmap.get)
            return
        self._observable[rmap.path] = True
        self._observing.add(rmap.path)
        try:
            async for note in req.observation:
                self.reach.answered()
                self.counters["notifications_in"] += 1
                if note.code.is_successful():
                    try:
                        self._apply(rmap, note)
                    except ValueDecodeError as exc:
                        log.warning("%s: notification for %s unusable: %s", self.endpoint, rmap.path, exc)
        except Exception as exc:  # aiocoap ends an observation by raising (error, timeout, cancel)
            log.debug("%s: observation of %s ended: %s", self.endpoint, rmap.get, exc)
        finally:
            self._observing.discard(rmap.path)
            with contextlib.suppress(Exception):
                req.observation.cancel()

    # --- status --------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        device = self.address or "?"
        if self.config.eui64:
            device = f"{self.config.eui64} → {device}"
        return {"adapter": self.adapter, "device": f"{device} port {self.config.port}", **self.reach.info()}

    def show(self) -> dict[str, Any]:
        now = time.monotonic()
        values = []
        for path, rmap in sorted(self.config.resources.items()):
            value = self.store.get(path)
            values.append({
                "path": str(path),
                "coap": rmap.get or rmap.execute_target,
                "value": value.hex() if isinstance(value, bytes) else value,
                "fresh_for": round(max(0.0, self._fresh.get(path, 0.0) - now), 1),
                "watch": ("observing" if path in self._observing else "polling") if path in self._watchers
                else "",
            })
        return {**self.info(), "values": values, **self.counters}
