"""The proxy inside the LwM2M component: one virtual client (one registration) per device.

:class:`LwM2MProxy` turns ``[[lwm2m.device]]`` entries and ``[lwm2m.thread_devices]`` into virtual
clients on the component's engine, and on reload adds, removes and replaces exactly the devices whose
entry changed; the others keep their registration. In gateway mode (``proxy_mode = "gateway"``) the
engine is a :class:`~.gateway_mode.GatewayEngine`: the same devices become instances of the LwM2M
Gateway object (25) under the gateway's own registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import aiocoap

from gatewayd.secrets import reveal

from ..client import ClientSettings, LwM2MEngine
from ..definitions import ObjectRegistry
from .coap_adapter import PREFETCH_CONCURRENCY, CoapDevice, CoapDeviceConfig
from .gateway_mode import GatewayEngine
from .mapping import MappingError, parse_mappings
from .thread_adapter import NcpTables, ThreadDevices, ThreadDevicesConfig
from .virtual import UpstreamAccount

if TYPE_CHECKING:
    from gatewayd.config import Config
    from gatewayd.config.sections import LwM2MDeviceSection, LwM2MSection
    from gatewayd.ncp.component import NcpComponent
    from ncp.client import NcpClient

log = logging.getLogger("gatewayd.lwm2m.proxy")


class ProxyConfigError(ValueError):
    """A ``[[lwm2m.device]]`` entry the proxy cannot use; names the entry."""


def _account(lw: LwM2MSection, dev: LwM2MDeviceSection | None) -> UpstreamAccount:
    """The account a device's virtual client registers with: [lwm2m.server]'s, or the device's own
    security (PSK, raw public key or certificate) toward its server (see dtls_pki.device_security)."""
    from ..dtls_pki import account_from_config, device_security

    security = lw.server if dev is None else device_security(lw.server, dev)
    lifetime = (dev.lifetime if dev is not None else 0) or lw.server.lifetime
    return UpstreamAccount(security.uri, security.psk_identity, reveal(security.psk_key), lifetime,
                           pki=account_from_config(security))


def device_configs(config: Config, registry: ObjectRegistry) -> tuple[list[CoapDeviceConfig], list[str]]:
    """The usable ``[[lwm2m.device]]`` entries, and one error line for each unusable one."""
    lw = config.lwm2m
    out: list[CoapDeviceConfig] = []
    errors: list[str] = []
    seen: set[str] = set()
    for i, dev in enumerate(lw.device):
        where = f"lwm2m.device[{i}]"
        try:
            if not dev.endpoint:
                raise ProxyConfigError("endpoint is empty")
            if dev.endpoint in seen:
                raise ProxyConfigError(f"endpoint {dev.endpoint!r} is used twice")
            account = _account(lw, dev)
            if not account.uri:
                raise ProxyConfigError("no server: set server here or [lwm2m.server] uri")
            if account.uri.startswith("coaps://") and not ((account.identity and account.key) or account.pki):
                raise ProxyConfigError("a coaps:// server needs psk_identity and psk_key")
            if bool(dev.address) == bool(dev.eui64):
                raise ProxyConfigError("give exactly one of address and eui64")
            resources = parse_mappings(dev.resources, registry)
        except (ProxyConfigError, MappingError, OSError, ValueError) as exc:  # (a key file gone since the check)
            errors.append(f"{where} ({dev.endpoint or '?'}): {exc}")
            continue
        seen.add(dev.endpoint)
        out.append(CoapDeviceConfig(
            endpoint=dev.endpoint, account=account, resources=resources, address=str(dev.address or ""),
            eui64=dev.eui64.hex() if dev.eui64 else "", port=dev.port, timeout=dev.timeout,
            queue_mode=dev.queue_mode))
    return out, errors


def thread_config(config: Config) -> ThreadDevicesConfig:
    td = config.lwm2m.thread_devices
    return ThreadDevicesConfig(enabled=td.enabled, prefix=td.prefix, absence_timeout=td.absence_timeout,
                               poll_interval=td.poll_interval, account=_account(config.lwm2m, None),
                               per_node_psk=td.psk == "per-node")


class LwM2MProxy:
    """Virtual clients for the devices of the configuration, on ``engine``."""

    def __init__(self, engine: LwM2MEngine | GatewayEngine, registry: ObjectRegistry, settings: ClientSettings,
                 ncp: NcpComponent | None = None) -> None:
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self.ncp = ncp
        self.devices: dict[str, CoapDevice] = {}
        self.tables = NcpTables(self._ncp_client)
        self.thread: ThreadDevices | None = None
        self.errors: list[str] = []
        self._context: aiocoap.Context | None = None
        self._prefetch_slots = asyncio.Semaphore(PREFETCH_CONCURRENCY)

    def _ncp_client(self) -> NcpClient | None:
        return self.ncp.client if self.ncp is not None else None

    def wanted(self, config: Config) -> bool:
        lw = config.lwm2m
        return bool(lw.device) or bool(lw.thread_devices.enabled)

    async def context(self) -> aiocoap.Context:
        if self._context is None:
            self._context = await aiocoap.Context.create_client_context(loggername="gatewayd.lwm2m.proxy.coap",
                                                                         transports=["udp6"])
        return self._context

    # --- devices ----------------------------------------------------------------------------------------
    async def apply(self, config: Config) -> None:
        """Make the running virtual clients match ``config``; unchanged devices are left alone."""
        configs, self.errors = device_configs(config, self.registry)
        for line in self.errors:
            log.error("LwM2M proxy: %s; skipping this device", line)
        wanted = {c.endpoint: c for c in configs}
        for endpoint, device in list(self.devices.items()):
            if wanted.get(endpoint) != device.config:
                await self.remove_device(endpoint)
        for endpoint, cfg in wanted.items():
            if endpoint not in self.devices:
                await self.add_device(cfg)
        await self._apply_thread(thread_config(config))

    async def add_device(self, cfg: CoapDeviceConfig) -> CoapDevice:
        if cfg.endpoint in self.engine.clients:
            raise ProxyConfigError(f"endpoint {cfg.endpoint!r} is already a client")
        device = CoapDevice(cfg, self.registry, await self.context(), self.tables.address_of, self._prefetch_slots)
        settings = dataclasses.replace(self.settings, queue_mode=cfg.queue_mode, lifetime=cfg.account.lifetime)
        client = await self.engine.add(cfg.endpoint, device.store, settings)
        device.attach(client)
        device.start()
        self.devices[cfg.endpoint] = device
        log.info("LwM2M proxy: %s for CoAP device %s", cfg.endpoint, cfg.target,
                 extra={"fields": {"LWM2M_ENDPOINT": cfg.endpoint}})
        return device

    async def remove_device(self, endpoint: str) -> None:
        device = self.devices.pop(endpoint)
        await device.stop()
        if endpoint in self.engine.clients:
            await self.engine.remove(endpoint, deregister=True, forget=True)
        log.info("LwM2M proxy: %s removed", endpoint, extra={"fields": {"LWM2M_ENDPOINT": endpoint}})

    async def _apply_thread(self, cfg: ThreadDevicesConfig) -> None:
        if self.thread is not None and self.thread.config != cfg:
            await self.thread.stop()
            self.thread = None
        if self.thread is None and cfg.enabled and cfg.account.uri:
            self.thread = ThreadDevices(cfg, self.engine, self.registry, self.settings, self.tables)
            self.thread.start()

    async def stop(self) -> None:
        if isinstance(self.engine, GatewayEngine):
            await self.engine.stop()  # shutting down: no Updates for each device leaving
        if self.thread is not None:
            await self.thread.stop()
            self.thread = None
        for endpoint in list(self.devices):
            with contextlib.suppress(Exception):
                await self.remove_device(endpoint)
        ctx, self._context = self._context, None
        if ctx is not None:
            with contextlib.suppress(Exception):
                await ctx.shutdown()

    # --- status -------------------------------------------------------------------------------------------
    def gateway_rows(self) -> list[dict[str, Any]]:
        """In gateway mode, one row per device behind the gateway's registration (with the adapter's)."""
        if not isinstance(self.engine, GatewayEngine):
            return []
        return [{**row, **(self.info(row["endpoint"]) or {})} for row in self.engine.rows()]

    def gateway_client(self, endpoint: str) -> Any:
        """The client object answering for a device behind the gateway (gateway mode), else None."""
        return self.engine.clients.get(endpoint) if isinstance(self.engine, GatewayEngine) else None

    def info(self, endpoint: str) -> dict[str, Any] | None:
        """Adapter, device address, reachability and last contact of a virtual client."""
        device = self.devices.get(endpoint)
        if device is not None:
            return device.info()
        if self.thread is not None:
            return self.thread.info(endpoint)
        return None

    def show(self, endpoint: str) -> dict[str, Any] | None:
        device = self.devices.get(endpoint)
        if device is not None:
            return device.show()
        if self.thread is not None:
            return self.thread.info(endpoint)
        return None
