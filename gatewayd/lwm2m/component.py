"""The daemon's LwM2M component: the client engine, the gateway's own client, gatewayctl commands.

Reboot (/3/0/4) restarts the daemon in order (Component.restart_daemon): components stop, clients
deregister, then the process exits non-zero so systemd's ``Restart=on-failure`` starts it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatewayd.component import Command, Component
from gatewayd.config import Config
from gatewayd.control import CommandError, Request
from gatewayd.secrets import mask, reveal

from .bootstrap import SecurityMode, factory_bootstrap
from .client import ClientSettings, LwM2MClient, LwM2MEngine
from .client.state import SEND_FORMATS
from .ddf import load_registry
from .gateway import GatewayDevice
from .persist import StateStore

if TYPE_CHECKING:
    from gatewayd.ncp.component import NcpComponent


#: Security Mode (/0/x/2) as ``gatewayctl lwm2m psk`` shows it (the names of security_mode)
_SECURITY_NAMES = {SecurityMode.PSK: "psk", SecurityMode.RPK: "rpk", SecurityMode.CERTIFICATE: "certificate",
                   SecurityMode.NO_SEC: "nosec"}
#: gatewayctl lwm2m send --format NAME → content format
_SEND_FORMATS = {name: cf for cf, name in SEND_FORMATS.items()}
_SEND_USAGE = f"lwm2m send EP PATH... [--format {'|'.join(_SEND_FORMATS)}]"
#: how long gatewayctl lwm2m send waits for the server's answer: inside gatewayctl's own 10 s
SEND_TIMEOUT = 8.0


def settings_from_config(config: Config) -> ClientSettings:
    lw = config.lwm2m
    return ClientSettings(
        lifetime=lw.server.lifetime,
        queue_mode=lw.queue_mode,
        queue_limit=lw.queue_limit,
        awake_time=lw.awake_time,
        lwm2m_version=lw.lwm2m_version,
        update_margin=lw.update_margin,
        keepalive=lw.keepalive,
        request_timeout=lw.request_timeout,
        backoff_max=lw.retry_max_backoff,
        bootstrap_after=lw.bootstrap_after,
    )


class LwM2MComponent(Component):
    name = "lwm2m"

    def __init__(self, config: Config, ncp: NcpComponent | None = None) -> None:
        super().__init__(config)
        self.ncp = ncp
        self.engine: LwM2MEngine | None = None
        self.gateway: GatewayDevice | None = None
        self.gateway_endpoint = ""
        #: Firmware Update (5) of the NCP in the gateway's own client, see .firmware
        self.firmware: Any = None
        self.registry: Any = None
        #: virtual clients for non-LwM2M devices ([[lwm2m.device]], [lwm2m.thread_devices]), see .proxy
        self.proxy: Any = None

    def _ncp_info(self) -> dict[str, Any]:
        client = self.ncp.client if self.ncp is not None else None
        return dict(client.info) if client is not None else {}

    async def start(self) -> None:
        lw = self.config.lwm2m
        registry = self.registry = load_registry([lw.models_dir] if lw.models_dir else [])
        state = StateStore(Path(self.config.daemon.state_dir) / "lwm2m")
        self.engine = LwM2MEngine(state, settings_from_config(self.config),
                                  register_concurrency=self.config.lwm2m.register_concurrency)
        if lw.gateway.enabled and lw.server.uri:
            gateway = GatewayDevice(registry, manufacturer=lw.gateway.manufacturer, model=lw.gateway.model,
                                    ncp_info=self._ncp_info,
                                    on_reboot=lambda: self.restart_daemon("LwM2M Reboot (/3/0/4)"))
            server = lw.server
            from .dtls_pki import account_from_config  # raw public key or certificate, if configured

            credentials = {"identity": server.psk_identity.encode(), "key": reveal(server.psk_key)}
            factory_bootstrap(gateway.store, server.uri, **(credentials | account_from_config(server)),
                              bootstrap=server.bootstrap, lifetime=server.lifetime)
            self.gateway_endpoint = lw.gateway.endpoint or f"urn:dev:ops:gatewayd-{gateway.eui64 or 'unknown'}"
            if lw.gateway.firmware_update:
                self.firmware = self._firmware_update(gateway)
            gateway.start()
            self.gateway = gateway
            await self.engine.add(self.gateway_endpoint, gateway.store)
        await self._apply_proxy()
        self.changed()

    def _firmware_update(self, gateway: GatewayDevice) -> Any:
        """Firmware Update (5) in the gateway's store: the NCP's firmware, by its EVBME DFU commands."""
        from gatewayd.ncp.firmware import NcpFirmwareInstaller

        from .firmware import CoapsCredentials, FirmwareUpdate, fetch_package

        server = self.config.lwm2m.server
        psk = CoapsCredentials(server.psk_identity.encode(), reveal(server.psk_key)) if server.psk_identity else None
        installer = NcpFirmwareInstaller(lambda: self.ncp.client if self.ncp is not None else None)
        return FirmwareUpdate(gateway.store, installer, fetch=lambda uri, limit: fetch_package(uri, limit, psk),
                              on_installed=lambda version: gateway.refresh(full=True))

    async def _apply_proxy(self) -> None:
        from .proxy.component import LwM2MProxy

        if self.proxy is None and self.engine is not None:
            engine: Any = self.engine
            if self.config.lwm2m.proxy_mode == "gateway" and self.gateway_endpoint in self.engine.clients:
                from .proxy.gateway_mode import GatewayEngine  # devices under the gateway's registration

                engine = GatewayEngine(self.engine.clients[self.gateway_endpoint], self.engine.state)
            proxy = LwM2MProxy(engine, self.registry, settings_from_config(self.config), self.ncp)
            if not proxy.wanted(self.config):
                return
            self.proxy = proxy
        if self.proxy is not None:
            await self.proxy.apply(self.config)

    async def reload(self, config: Config) -> None:
        self.config = config
        await self._apply_proxy()
        self.changed()

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy = None
        if self.engine is not None:
            await self.engine.stop(deregister=True)
            self.engine = None
        if self.firmware is not None:
            await self.firmware.stop()
            self.firmware = None
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None

    def status(self) -> dict[str, Any]:
        if self.engine is None:
            return {}
        return {"clients": len(self.engine.clients), **self.engine.counts()}

    def status_line(self) -> str | None:
        if self.engine is None or not self.engine.clients:
            return None
        counts = self.engine.counts()
        registered = counts.get("registered", 0) + counts.get("updating", 0)
        return f"LwM2M {registered}/{len(self.engine.clients)} registered"

    def commands(self) -> list[Command]:
        return [
            Command("lwm2m clients", self._cmd_clients, "LwM2M clients with their registration state"),
            Command("lwm2m show", self._cmd_show, "One LwM2M client: registration, counters, objects", "EP"),
            Command("lwm2m observations", self._cmd_observations, "Observations servers hold on our clients"),
            Command("lwm2m psk", self._cmd_psk,
                    "A client's server accounts, security modes and identities (PSK identity, certificate subject "
                    "or public key hash), to enter on the server (--show-secrets: root only)",
                    "EP [--show-secrets]"),
            Command("lwm2m send", self._cmd_send,
                    "Send (LwM2M 1.1 POST /dp) a client's current values of PATHs to its server now, in the "
                    "--format given or the client's own choice", _SEND_USAGE.removeprefix("lwm2m send ")),
        ]

    def _engine(self) -> LwM2MEngine:
        if self.engine is None:
            raise CommandError("the LwM2M engine is not running (see: gatewayctl status)")
        return self.engine

    def _client(self, endpoint: str) -> LwM2MClient:
        client = self._engine().clients.get(endpoint)
        if client is None and self.proxy is not None:
            client = self.proxy.gateway_client(endpoint)
        if client is None:
            raise CommandError(f"no LwM2M client {endpoint!r} (see: gatewayctl lwm2m clients)")
        return client

    async def _cmd_clients(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        rows = self._engine().rows()
        gateway_mode = self.config.lwm2m.proxy_mode == "gateway"
        for row in rows:
            extra = self.proxy.info(row["endpoint"]) if self.proxy is not None else None
            row.update(extra or {"adapter": "gateway" if row["endpoint"] == self.gateway_endpoint else ""})
            row["mode"] = "gateway" if gateway_mode and row["endpoint"] == self.gateway_endpoint else "registration"
        if self.proxy is not None:  # gateway mode: the devices behind the gateway's registration
            rows.extend(self.proxy.gateway_rows())
        return rows

    async def _cmd_show(self, request: Request) -> dict[str, Any]:
        if len(request.args) != 1:
            raise CommandError("usage: lwm2m show EP")
        endpoint = request.args[0]
        client = self._client(endpoint)
        out = client.info()
        if self.proxy is not None and self.proxy.gateway_client(endpoint) is not None:
            out.update(self.proxy.engine.info(endpoint) or {})
        objects, _ = client.store.registered_objects()
        out["objects"] = " ".join(f"/{o}" + (f"/{','.join(map(str, i))}" if i else "")
                                  for o, i in sorted(objects.items()))
        out.update(client.counters)
        if self.proxy is not None:
            out.update(self.proxy.show(endpoint) or {})
        if endpoint == self.gateway_endpoint and self.firmware is not None:
            out["firmware"] = self.firmware.info()
        if client.transport is not None:
            out["local_port"] = client.transport.local_port
            out["dtls"] = client.transport.secure
        return out

    async def _cmd_psk(self, request: Request) -> list[dict[str, Any]]:
        show = request.flag("--show-secrets")
        if len(request.args) != 1:
            raise CommandError("usage: lwm2m psk EP [--show-secrets]")
        if show:
            request.require_root("--show-secrets")
        endpoint = request.args[0]
        client = self._client(endpoint)
        rows = []
        for iid in client.store.instance_ids(0):  # LwM2M Security: 0 URI, 1 bootstrap, 3 identity, 5 key
            inst = client.store.instance(0, iid)
            if inst is None:
                continue
            v = inst.values
            identity, key = bytes(v.get(3) or b""), bytes(v.get(5) or b"")
            mode = v.get(2, SecurityMode.NO_SEC)
            if mode in (SecurityMode.RPK, SecurityMode.CERTIFICATE):  # a DER certificate or key: described
                from .dtls_pki import identity_text

                text = identity_text(mode, identity)
            else:
                text = identity.decode("utf-8", "replace")
            rows.append({"endpoint": endpoint, "server": v.get(0, ""), "bootstrap": bool(v.get(1, False)),
                         "security": _SECURITY_NAMES.get(mode, str(mode)), "identity": text,
                         "key": key.hex() if show and key else mask(key)})
        return rows

    async def _cmd_send(self, request: Request) -> dict[str, Any]:
        from .errors import LwM2MError
        from .paths import LwM2MPath, PathError
        from .transport import TransportError

        fmt = request.option("--format")
        if len(request.args) < 2:
            raise CommandError(f"usage: {_SEND_USAGE}")
        content_format = None
        if fmt is not None:
            content_format = _SEND_FORMATS.get(fmt)
            if content_format is None:
                raise CommandError(f"--format {fmt!r}: expected one of {', '.join(_SEND_FORMATS)}")
        endpoint, texts = request.args[0], request.args[1:]
        try:
            paths = [LwM2MPath.parse(t) for t in texts]
        except PathError as exc:
            raise CommandError(f"{exc} (a path is /OBJECT[/INSTANCE[/RESOURCE]], e.g. /3/0/13)") from None
        if any(p.depth == 0 for p in paths):
            raise CommandError("Send needs an object, instance or resource path, not the root")
        client = self._client(endpoint)
        if endpoint not in self._engine().clients:  # found by _client among the devices behind the gateway
            raise CommandError(f"{endpoint} is behind the gateway's registration (proxy_mode = \"gateway\"), "
                               "which has no Send for its devices")
        try:
            response = await client.send(paths, content_format, timeout=SEND_TIMEOUT)
        except (LwM2MError, TransportError) as exc:
            raise CommandError(f"{endpoint}: not sent: {exc}") from None
        if not response.ok:
            raise CommandError(f"{endpoint}: the server answered Send with {response.dotted}")
        used = content_format if content_format is not None else client.settings.send_format
        return {"endpoint": endpoint, "paths": [str(p) for p in paths], "format": SEND_FORMATS[used],
                "code": response.dotted}

    async def _cmd_observations(self, request: Request) -> list[dict[str, Any]]:
        request.no_more_args()
        rows: list[dict[str, Any]] = []
        clients = list(self._engine().clients.values())
        if self.proxy is not None and self.config.lwm2m.proxy_mode == "gateway":
            clients += self.proxy.engine.clients.values()
        for client in clients:
            rows.extend(client.observation_rows())
        return rows
