"""The configuration's tables as typed classes: what ``config.nat64.prefix`` is, to a reader and a type checker.

One frozen dataclass per table of the schema (schema.py), each key annotated with the Python type
the loader hands over after validation (types.py: an ``IPV6_NETWORK`` string becomes an
``IPv6Network``, a secret key a :class:`~gatewayd.secrets.Secret`, a key with ``choices`` one of
those strings). The loader builds them from the validated values, so an attribute read is an
ordinary dataclass field. Arrays of tables (``[[lwm2m.device]]``) are lists of their own class;
free tables (``[log.components]``, names chosen by the user) stay a :class:`Node`.

tests/gatewayd/test_config_sections.py walks the schema and fails when a key is added there without
its typed field here (or a field is declared that the schema lacks).
"""

from __future__ import annotations

from collections.abc import ItemsView
from dataclasses import Field, dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, ClassVar, Generic, Literal, TypedDict, TypeVar

from gatewayd.secrets import Secret

V = TypeVar("V")

Level = Literal["debug", "info", "notice", "warning", "error"]


class Table:
    """Base of the section classes. Besides attributes, the read-only mapping access every table had
    (``name in table``, ``table[name]``, ``table.items()`` in schema order), for code that walks any
    table (render.dump, loader.flatten)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def items(self) -> ItemsView[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}.items()

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.__dataclass_fields__


class Node(Generic[V]):
    """A free table (``[log.components]``): whatever names the user wrote, every value of type ``V``;
    attribute and mapping access, in file order."""

    def __init__(self, values: dict[str, V]):
        self._values = values

    def __getattr__(self, name: str) -> V:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> V:
        return self._values[name]

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._values == self._values

    def __repr__(self) -> str:
        return f"Node({sorted(self._values)})"

    def items(self) -> ItemsView[str, V]:
        return self._values.items()


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonSection(Table):
    """``[daemon]``"""

    state_dir: str
    stop_timeout: float
    retry_max_backoff: float


@dataclass(frozen=True, slots=True, kw_only=True)
class NcpSection(Table):
    """``[ncp]``"""

    url: str
    request_timeout: float
    request_retries: int
    reconnect_max_backoff: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadSection(Table):
    """``[thread]``"""

    interface: str
    network_name: str
    channel: int
    dataset: Secret
    joiner_pskd: Secret


@dataclass(frozen=True, slots=True, kw_only=True)
class BorderSection(Table):
    """``[border]``"""

    infra_interface: str
    forwarding: bool
    omr_prefix: IPv6Network | None  # None: derived from the ULA prefix in state_dir
    router_advertisements: bool
    lan_routes: bool
    ingress_filter: bool
    meshcop_mdns: bool
    vendor_name: str
    model_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Nat64Section(Table):
    """``[nat64]``"""

    enabled: bool
    backend: Literal["builtin", "tayga"]
    prefix: IPv6Network
    interface: str
    pool: list[IPv4Network]
    infrastructure: Literal["auto", "ignore", "only"]
    masquerade: bool
    uplink: str
    udp_timeout: int
    tcp_established_timeout: int
    tcp_transitory_timeout: int
    icmp_timeout: int
    max_sessions: int
    max_sessions_per_host: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dns64Section(Table):
    """``[dns64]``"""

    enabled: bool
    listen: list[IPv4Address | IPv6Address]
    mesh_address: str  # an IPv6 address as text, or ""
    port: int
    upstream: list[str]
    allowed: list[IPv4Network | IPv6Network]
    cache_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LwM2MServerSection(Table):
    """``[lwm2m.server]``"""

    uri: str
    psk_identity: str
    psk_key: Secret
    security_mode: Literal["", "psk", "rpk", "certificate"]
    certificate: str
    private_key: Secret
    server_public_key: str
    certificate_usage: int
    lifetime: int
    bootstrap: bool


class ResourceMapping(TypedDict, total=False):
    """One value of ``[[lwm2m.device]] resources``: only the fields the user wrote."""

    get: str
    put: str
    post: str
    type: Literal["float", "integer", "unsigned", "boolean", "string", "opaque", "time"]
    format: Literal["text", "json", "cbor"]
    pointer: str
    observe: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LwM2MDeviceSection(Table):
    """One ``[[lwm2m.device]]``."""

    endpoint: str
    adapter: Literal["coap"]
    address: str  # an IPv6 address as text, or ""
    eui64: bytes  # 8 bytes, or b""
    port: int
    timeout: float
    server: str
    psk_identity: str
    psk_key: Secret
    security_mode: Literal["", "psk", "rpk", "certificate"]
    certificate: str
    private_key: Secret
    server_public_key: str
    certificate_usage: int
    lifetime: int
    queue_mode: bool
    resources: dict[str, ResourceMapping]  # LwM2M resource path → mapping


@dataclass(frozen=True, slots=True, kw_only=True)
class LwM2MThreadDevicesSection(Table):
    """``[lwm2m.thread_devices]``"""

    enabled: bool
    prefix: str
    absence_timeout: float
    poll_interval: float
    psk: Literal["shared", "per-node"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LwM2MGatewaySection(Table):
    """``[lwm2m.gateway]``"""

    enabled: bool
    endpoint: str
    manufacturer: str
    model: str
    firmware_update: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LwM2MSection(Table):
    """``[lwm2m]`` and its tables."""

    enabled: bool
    models_dir: str
    lwm2m_version: Literal["1.0", "1.1", "1.2"]
    queue_mode: bool
    queue_limit: int
    awake_time: float
    update_margin: float
    keepalive: float
    request_timeout: float
    retry_max_backoff: float
    bootstrap_after: int
    register_concurrency: int
    proxy_mode: Literal["registrations", "gateway"]
    server: LwM2MServerSection
    device: list[LwM2MDeviceSection]
    thread_devices: LwM2MThreadDevicesSection
    gateway: LwM2MGatewaySection


@dataclass(frozen=True, slots=True, kw_only=True)
class CommissioningJoinerSection(Table):
    """One ``[[commissioning.joiner]]``."""

    eui64: str  # "*" or 16 hex digits
    pskd: Secret
    timeout: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommissioningSection(Table):
    """``[commissioning]``"""

    commissioner: bool
    provisioning_url: str
    joiner: list[CommissioningJoinerSection]


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlSection(Table):
    """``[control]``"""

    socket: str
    mode: int
    max_connections: int
    idle_timeout: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RestSection(Table):
    """``[rest]``"""

    enabled: bool
    listen: list[str]
    token: Secret
    metrics: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSection(Table):
    """``[log]``"""

    level: Level
    target: Literal["auto", "journal", "stderr"]
    rate_limit_interval: float
    components: Node[Level]  # component name → level


@dataclass(frozen=True, slots=True, kw_only=True)
class RootSection(Table):
    """The whole file: one field per top-level table."""

    daemon: DaemonSection
    ncp: NcpSection
    thread: ThreadSection
    border: BorderSection
    nat64: Nat64Section
    dns64: Dns64Section
    lwm2m: LwM2MSection
    commissioning: CommissioningSection
    rest: RestSection
    control: ControlSection
    log: LogSection


#: The class the loader builds for each table of the schema, by dotted schema path ("" is the root).
#: Free tables are absent: they are a Node.
SECTION_TYPES: dict[str, type[Table]] = {
    "": RootSection,
    "daemon": DaemonSection,
    "ncp": NcpSection,
    "thread": ThreadSection,
    "border": BorderSection,
    "nat64": Nat64Section,
    "dns64": Dns64Section,
    "lwm2m": LwM2MSection,
    "lwm2m.server": LwM2MServerSection,
    "lwm2m.device": LwM2MDeviceSection,
    "lwm2m.thread_devices": LwM2MThreadDevicesSection,
    "lwm2m.gateway": LwM2MGatewaySection,
    "commissioning": CommissioningSection,
    "commissioning.joiner": CommissioningJoinerSection,
    "rest": RestSection,
    "control": ControlSection,
    "log": LogSection,
}
