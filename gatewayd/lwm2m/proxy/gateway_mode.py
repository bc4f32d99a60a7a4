"""Gateway mode (``[lwm2m] proxy_mode = "gateway"``): every proxied device behind the gateway's one
registration, as the LwM2M Gateway enabler (OMA-TS-LWM2M_Gateway-V1_1_1, object 25 v2.0) has it.

:class:`GatewayEngine` stands in for :class:`~gatewayd.lwm2m.client.LwM2MEngine` under the proxy's
adapters (CoAP devices, Thread nodes): a device it is given gets no registration of its own but an
instance of the LwM2M Gateway object in the gateway client's store, with Device ID (the endpoint name the
device would have registered as), Prefix (``dev<instance>``) and IoT Device Objects (its objects in the
link format of a Register). Devices arriving and leaving change the gateway's object list, which the
gateway reports with an Update; the devices' own objects are never in Register or Update (§6, §8.2): the
server reads ``/25`` to learn them.

The server's requests reach a device under its prefix (``GET /dev1/3303/0/5700``, §8.3.1): the engine sits
in front of the gateway client's CoAP site, strips the prefix (and the prefix in SenML and LwM2M CBOR
names, §9) and hands the request to the device's own client object, which answers as that device would
in registrations mode (read-through, Write/Execute forwarded, Observe); the answer's names get the prefix
back. An unknown prefix is 4.04, as are a device's Security, Server and OSCORE objects, which are the
gateway's business. Each device keeps its instance (so its prefix) across restarts: the assignment is
saved in the LwM2M state directory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiocoap.numbers.codes import Code

from ..client import ClientSettings, LwM2MClient, OpRequest, OpResponse
from ..client.operations import error_response
from ..codecs import encode_links, registration_links
from ..errors import LwM2MError
from ..paths import LwM2MPath
from ..persist import StateStore
from ..prefixed import PrefixError, add_prefix, split_prefix, strip_prefix
from ..store import ObjectStore, Origin

log = logging.getLogger("gatewayd.lwm2m.proxy")

GATEWAY_OBJECT = 25
DEVICE_ID, PREFIX, DEVICE_OBJECTS = 0, 1, 3
#: objects of a device store that belong to the gateway's account, not to the device (not routed)
ACCOUNT_OBJECTS = frozenset({0, 1, 21})
#: instance assignments remembered for devices that left (so a returning node gets its prefix back)
REMEMBERED = 4096
SAVE_DELAY = 1.0


def device_objects(store: ObjectStore) -> str:
    """IoT Device Objects (/25/x/3): the device's objects as a Register lists them, accounts left out."""
    objects, versions = store.registered_objects()
    objects = {oid: iids for oid, iids in objects.items() if oid not in ACCOUNT_OBJECTS}
    return encode_links(registration_links(objects, versions)).decode()


@dataclass(eq=False)
class EndDevice:
    """One IoT device behind the gateway: its /25 instance and the client object that answers for it."""

    endpoint: str
    instance: int
    prefix: str
    client: LwM2MClient
    unsubscribe: Callable[[], None]
    added: float = dataclasses.field(default_factory=time.time)


class GatewayEngine:
    """The proxy's devices as instances of object 25 under ``gateway``'s registration."""

    mode = "gateway"

    def __init__(self, gateway: LwM2MClient, state: StateStore | None = None) -> None:
        self.gateway = gateway
        self.state = state
        #: what the proxy's adapters look endpoints up in (the same as LwM2MEngine.clients)
        self.clients: dict[str, LwM2MClient] = {}
        self.devices: dict[str, EndDevice] = {}
        self.by_prefix: dict[str, EndDevice] = {}
        self.counters = {"routed": 0, "unknown_prefix": 0}
        self._state_key = f"{gateway.endpoint}#gateway-devices"
        self._assigned: dict[str, int] = self._load_assignments()
        #: how many endpoints in _assigned hold each instance id, and an id below which none is free (so
        #: choosing an instance does not scan every device: adding 10,000 would be quadratic)
        self._reserved: dict[int, int] = {}
        for iid in self._assigned.values():
            self._reserved[iid] = self._reserved.get(iid, 0) + 1
        self._lowest_free = 0
        self._save_handle: asyncio.TimerHandle | None = None
        site = gateway.site
        self._own = (site.handler, site.observe, site.prepare)
        site.handler, site.observe, site.prepare = self._handle, self._observe, self._prepare

    # --- devices (the LwM2MEngine interface the adapters use) --------------------------------------------
    async def add(self, endpoint: str, store: ObjectStore, settings: ClientSettings | None = None) -> LwM2MClient:
        """Make ``store`` a device behind the gateway: a /25 instance, an Update telling the server."""
        if endpoint in self.devices:
            raise KeyError(f"endpoint {endpoint!r} already exists")
        client = LwM2MClient(endpoint, store, settings or self.gateway.settings)  # never started: no registration
        iid = self._instance_for(endpoint)
        device = EndDevice(endpoint, iid, f"dev{iid}", client, lambda: None)
        self.gateway.store.add_instance(GATEWAY_OBJECT, iid, {DEVICE_ID: endpoint, PREFIX: device.prefix,
                                                              DEVICE_OBJECTS: device_objects(store)})
        device.unsubscribe = store.on_change(lambda paths, origin: self._device_changed(device, paths, origin))
        self.devices[endpoint] = device
        self.by_prefix[device.prefix] = device
        self.clients[endpoint] = client
        self._assign(endpoint, iid)
        self._save_later()
        log.info("LwM2M gateway: %s is /25/%d, prefix /%s", endpoint, iid, device.prefix,
                 extra={"fields": {"LWM2M_ENDPOINT": endpoint, "LWM2M_PREFIX": device.prefix}})
        return client

    async def remove(self, endpoint: str, deregister: bool = True, forget: bool = False) -> None:
        """The device left: its /25 instance goes (an Update tells the server), its observations end."""
        device = self.devices.pop(endpoint)
        self.clients.pop(endpoint, None)
        self.by_prefix.pop(device.prefix, None)
        device.unsubscribe()
        await device.client.stop(deregister=False)
        if self.gateway.store.instance(GATEWAY_OBJECT, device.instance) is not None:
            self.gateway.store.remove_instance(GATEWAY_OBJECT, device.instance)
            self._lowest_free = min(self._lowest_free, device.instance)

    async def stop(self) -> None:
        """Let go of the devices and the gateway's site (shutdown: the gateway's store is left as it is)."""
        for device in list(self.devices.values()):
            device.unsubscribe()
            await device.client.stop(deregister=False)
        self.devices.clear()
        self.clients.clear()
        self.by_prefix.clear()
        site = self.gateway.site
        if site.handler == self._handle:
            site.handler, site.observe, site.prepare = self._own
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save()

    def _device_changed(self, device: EndDevice, paths: list[LwM2MPath], origin: Origin) -> None:
        # instances came or went on the device: its IoT Device Objects change (observable on /25)
        if any(p.is_instance for p in paths) and self.devices.get(device.endpoint) is device:
            self.gateway.store.set(LwM2MPath(GATEWAY_OBJECT, device.instance, DEVICE_OBJECTS),
                                   device_objects(device.client.store))

    # --- instance (prefix) assignment, kept across restarts --------------------------------------------------
    def _instance_for(self, endpoint: str) -> int:
        """The endpoint's remembered instance if free, else the lowest neither in use nor remembered for
        another device, else (all 65535 remembered) the lowest not in use."""
        store = self.gateway.store
        mine = self._assigned.get(endpoint)
        if mine is not None and store.instance(GATEWAY_OBJECT, mine) is None:
            return mine
        iid = self._lowest_free
        while iid < 65535 and (iid in self._reserved or store.instance(GATEWAY_OBJECT, iid) is not None):
            iid += 1
        self._lowest_free = iid
        if iid < 65535:
            return iid
        found = next((i for i in range(65535) if store.instance(GATEWAY_OBJECT, i) is None), None)
        if found is None:
            raise LwM2MError(Code.SERVICE_UNAVAILABLE, "no /25 instance id left")
        return found

    def _assign(self, endpoint: str, iid: int) -> None:
        old = self._assigned.pop(endpoint, None)
        if old is not None:
            self._release(old)
        self._assigned[endpoint] = iid  # most recent last: the oldest are forgotten first
        self._reserved[iid] = self._reserved.get(iid, 0) + 1

    def _release(self, iid: int) -> None:
        left = self._reserved.pop(iid, 0) - 1
        if left > 0:
            self._reserved[iid] = left
        self._lowest_free = min(self._lowest_free, iid)

    def _load_assignments(self) -> dict[str, int]:
        data = self.state.load(self._state_key) if self.state is not None else None
        raw = data.get("instances", {}) if data else {}
        if not isinstance(raw, dict):
            return {}
        return {str(k): int(v) for k, v in raw.items() if isinstance(v, int) and 0 <= v < 65535}

    def _save_later(self) -> None:
        if self.state is None or self._save_handle is not None:
            return
        self._save_handle = asyncio.get_running_loop().call_later(SAVE_DELAY, self._save)

    def _save(self) -> None:
        self._save_handle = None
        if self.state is None:
            return
        present = set(self.devices)
        gone = [ep for ep in self._assigned if ep not in present]
        for ep in gone[:max(0, len(gone) - REMEMBERED)]:
            self._release(self._assigned.pop(ep))
        try:
            self.state.save(self._state_key, {"instances": self._assigned})
        except OSError as exc:
            log.error("cannot save the LwM2M gateway's device prefixes: %s", exc)

    # --- routing the server's requests by prefix ----------------------------------------------------------
    def _route(self, req: OpRequest) -> tuple[EndDevice, OpRequest] | OpResponse | None:
        """The device and its request for a prefixed path; an error response; None for the gateway's own."""
        prefix, rest = split_prefix(req.uri_path)
        if not prefix:
            return None
        device = self.by_prefix.get(prefix)
        if device is None:
            self.counters["unknown_prefix"] += 1
            return error_response(LwM2MError(Code.NOT_FOUND, f"no IoT device with prefix {prefix}"))
        if rest and rest[0].isdigit() and int(rest[0]) in ACCOUNT_OBJECTS:
            return error_response(LwM2MError(Code.NOT_FOUND, f"/{prefix}/{rest[0]}: not a device object"))
        try:
            payload = strip_prefix(req.content_format, req.payload, prefix)
        except PrefixError as exc:
            return error_response(LwM2MError(Code.BAD_REQUEST, str(exc)))
        self.counters["routed"] += 1
        return device, dataclasses.replace(req, uri_path=rest, payload=payload)

    @staticmethod
    def _prefixed(resp: OpResponse, prefix: str) -> OpResponse:
        if not resp.ok or not resp.payload:
            return resp
        try:
            return dataclasses.replace(resp, payload=add_prefix(resp.content_format, resp.payload, prefix))
        except PrefixError as exc:  # our own encoders wrote it: a bug, answered rather than raised
            log.error("cannot prefix the answer of /%s: %s", prefix, exc)
            return error_response(LwM2MError(Code.INTERNAL_SERVER_ERROR, "cannot prefix the answer"))

    def _handle(self, req: OpRequest, remote: Any) -> OpResponse:
        routed = self._route(req)
        if routed is None:
            return self._own[0](req, remote)
        if isinstance(routed, OpResponse):
            return routed
        device, sub = routed
        return self._prefixed(device.client.site.handler(sub, remote), device.prefix)

    def _observe(self, req: OpRequest, remote: Any, notify: Callable[[], None]) -> Callable[[], None] | None:
        routed = self._route(req)
        if routed is None:
            return self._own[1](req, remote, notify)
        if isinstance(routed, OpResponse):
            return None  # the handler answers the error
        device, sub = routed
        return device.client.site.observe(sub, remote, notify)

    async def _prepare(self, req: OpRequest, remote: Any) -> OpResponse | None:
        routed = self._route(req)
        if routed is None:
            own = self._own[2]
            return await own(req, remote) if own is not None else None
        if isinstance(routed, OpResponse):
            return routed
        device, sub = routed
        prepare = device.client.site.prepare
        resp = await prepare(sub, remote) if prepare is not None else None
        return self._prefixed(resp, device.prefix) if resp is not None else None

    # --- status -----------------------------------------------------------------------------------------------
    def info(self, endpoint: str) -> dict[str, Any] | None:
        """A device's row: the gateway's registration, the device's prefix and instance."""
        device = self.devices.get(endpoint)
        if device is None:
            return None
        row = self.gateway.info()
        row.pop("error", None)
        row.update({"endpoint": endpoint, "mode": "gateway", "gateway": self.gateway.endpoint,
                    "prefix": f"/{device.prefix}", "instance": f"/{GATEWAY_OBJECT}/{device.instance}",
                    "observations": len(device.client.observations)})
        return row

    def rows(self) -> list[dict[str, Any]]:
        return [row for ep in sorted(self.devices) if (row := self.info(ep)) is not None]
