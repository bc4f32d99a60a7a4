"""The one configuration schema.

Validation, the shipped ``config/gatewayd.toml``, ``docs/configuration.md`` and
the gatewayd.toml(5) man page are all generated from the tables below, so a key
documented anywhere is a key the daemon accepts, with the same default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gatewayd.config import types as t

if TYPE_CHECKING:
    from gatewayd.config.sections import LwM2MDeviceSection, LwM2MSection, RestSection


@dataclass(frozen=True)
class Key:
    """One setting.

    ``secret`` keys also accept ``<name>_file`` naming a file that holds the
    value, and are masked in logs and ``gatewayctl config``. ``live`` keys are
    applied on SIGHUP; changing any other key is logged as needing a restart.
    """

    name: str
    type: t.ValueType
    default: Any
    doc: str
    secret: bool = False
    live: bool = False
    example: Any = None


@dataclass(frozen=True)
class Section:
    """A TOML table (``[name]``), or an array of tables (``[[name]]``) when ``array``.

    ``free`` sections take any key names whose values all have type ``free``
    (e.g. per-component log levels, LwM2M resource mappings).
    """

    name: str
    doc: str
    keys: tuple[Key, ...] = ()
    sections: tuple[Section, ...] = ()
    array: bool = False
    free: t.ValueType | None = None
    free_names: tuple[str, ...] = ()
    free_doc: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    #: Rules across keys of one table: returns (key, message) for each problem.
    check: Callable[[Any], list[tuple[str, str]]] | None = None

    def key(self, name: str) -> Key | None:
        for k in self.keys:
            if k.name == name:
                return k
        return None

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None


def _check_device(device: LwM2MDeviceSection) -> list[tuple[str, str]]:
    problems = []
    if not device.endpoint:
        problems.append(("endpoint", "required: the endpoint client name the server will see"))
    if bool(device.address) == bool(device.eui64):
        problems.append(("address", "give exactly one of address and eui64"))
    return problems


def _check_server(server: Any) -> list[tuple[str, str]]:
    from gatewayd.lwm2m.dtls_pki import check_security

    return check_security(server)


def _file_path(text: str) -> str:
    if "://" in text:
        raise ValueError("a file path, not a URI")
    return text


#: a certificate or public key file ([lwm2m.server] certificate, server_public_key); read when checked
_CREDENTIAL_FILE = t.Str(validate=_file_path, what="a file path (PEM or DER)")


def _security_keys(whose: str) -> tuple[Key, ...]:
    """The DTLS security keys, one definition for ``[lwm2m.server]`` (``whose`` "gateway") and
    ``[[lwm2m.device]]`` ("device", applied on reload); checked together by :func:`_check_server` and
    :func:`_check_lwm2m` (gatewayd.lwm2m.dtls_pki.check_security)."""
    own, live = ("the gateway's", False) if whose == "gateway" else ("the device's own", True)
    inherit = ("" if whose == "gateway" else
               " Empty toward [lwm2m.server] (server = \"\"): [lwm2m.server]'s server_public_key and "
               "certificate_usage.")
    return (
        Key("psk_identity", t.Str(), "", f"{own.capitalize()} DTLS-PSK identity (coaps:// only).", live=live),
        Key("psk_key", t.HEX, "", f"{own.capitalize()} DTLS-PSK key as hex (coaps:// only).", secret=True,
            live=live),
        Key("security_mode", t.Str(choices=("", "psk", "rpk", "certificate")), "",
            "DTLS security mode for a coaps:// URI (Security object /0/x/2): \"psk\" (psk_identity, psk_key), "
            "\"rpk\" (raw public keys, RFC 7250: private_key, server_public_key) or \"certificate\" (X.509: "
            "certificate, private_key, server_public_key, certificate_usage). Empty: psk. See "
            "docs/lwm2m-security.md.", live=live),
        Key("certificate", _CREDENTIAL_FILE, "",
            f"File (PEM or DER) with {own} X.509 certificate (/0/x/3; security_mode \"certificate\").",
            live=live),
        Key("private_key", t.Str(), "",
            f"{own.capitalize()} private key (/0/x/5) as PEM, for security_mode \"rpk\" or \"certificate\"; in "
            f"rpk mode its public key is {own.removesuffix(' own')} raw public key.", secret=True, live=live),
        Key("server_public_key", _CREDENTIAL_FILE, "",
            "File (PEM or DER) with what the server is checked against (/0/x/4): its raw public key (rpk), or "
            "for certificate mode its certificate (usage 1, 3) or its CA (usage 0, 2). For a coaps+tcp:// "
            "uri: the certificate (or its CA) the TLS server is checked against; empty, the system's trust "
            f"store.{inherit}", live=live),
        Key("certificate_usage", t.Int(min=0, max=3), 3,
            "How the server's certificate is checked (/0/x/15, RFC 6698): 0 CA constraint and 1 service "
            "certificate constraint (system trust store plus server_public_key), 2 trust anchor assertion "
            "(server_public_key is the only CA), 3 domain-issued certificate (the server's certificate is "
            "server_public_key).", live=live),
    )


def _check_joiner(joiner: Any) -> list[tuple[str, str]]:
    return [] if joiner.pskd else [("pskd", "required: the joiner's credential (give pskd_file)")]


def _check_lwm2m(lwm2m: LwM2MSection) -> list[tuple[str, str]]:
    seen: set[str] = set()
    problems = []
    for i, device in enumerate(lwm2m.device):
        if device.endpoint and device.endpoint in seen:
            problems.append((f"device[{i}].endpoint", f'"{device.endpoint}" is already used by another device'))
        seen.add(device.endpoint)
    if lwm2m.proxy_mode == "gateway":
        if not lwm2m.gateway.enabled:
            problems.append(("proxy_mode", 'gateway mode puts the devices under the gateway\'s registration: '
                                           'set [lwm2m.gateway] enabled = true'))
        if lwm2m.lwm2m_version == "1.0":
            problems.append(("proxy_mode", "the LwM2M Gateway enabler needs LwM2M 1.1 or later: set "
                                           'lwm2m_version = "1.1"'))
        problems += _unused_in_gateway_mode(lwm2m)
    else:
        problems += _check_device_security(lwm2m)
    mode = lwm2m.server.security_mode
    if lwm2m.thread_devices.psk == "per-node" and mode in ("rpk", "certificate"):
        problems.append(("thread_devices.psk", f'"per-node" derives a PSK per node, but [lwm2m.server] '
                                               f'security_mode is "{mode}": the nodes share its credentials '
                                               '(set psk = "shared")'))
    return problems


def _unused_in_gateway_mode(lwm2m: LwM2MSection) -> list[tuple[str, str]]:
    """A device's keys for a registration of its own: in gateway mode it has none, so they would be ignored."""
    from gatewayd.lwm2m.dtls_pki import SECURITY_KEYS

    return [(f"device[{i}].{key}", 'is for a registration of the device\'s own; in proxy_mode "gateway" it is '
                                   'reached through the gateway\'s registration: remove it or set proxy_mode = '
                                   '"registrations"')
            for i, device in enumerate(lwm2m.device) for key in ("server", *SECURITY_KEYS) if getattr(device, key)]


def _check_device_security(lwm2m: LwM2MSection) -> list[tuple[str, str]]:
    """Each device's security as it registers: its own keys toward its server (or [lwm2m.server]'s uri),
    by the same rules as [lwm2m.server] (checked there when the device shares its keys)."""
    from gatewayd.lwm2m.dtls_pki import check_security, device_security

    problems = []
    for i, device in enumerate(lwm2m.device):
        security = device_security(lwm2m.server, device)
        if security is not lwm2m.server:
            problems += [(f"device[{i}].{key}", message) for key, message in check_security(security)]
    return problems


def _check_rest(rest: RestSection) -> list[tuple[str, str]]:
    from gatewayd.rest.listen import is_loopback, parse_listen

    problems = []
    for i, text in enumerate(rest.listen):
        try:
            host, _port = parse_listen(text)
        except ValueError as exc:
            problems.append((f"listen[{i}]", str(exc)))
            continue
        if rest.enabled and not rest.token and not is_loopback(host):
            problems.append(("token", f"listen {text} is not a loopback address: set token (or token_file), which "
                                      "every request reading the dataset or changing the network must then carry"))
    return problems


def _txt_name(value: str) -> str:
    """otbr-agent's limit for the vendor and product names (kMaxVendorNameLength, kMaxProductNameLength)."""
    if len(value.encode()) > 24:
        raise ValueError(f"{len(value.encode())} bytes")
    return value


COMPONENTS = ("daemon", "control", "ncp", "thread", "border", "border_agent",
              "nat64", "dns64", "lwm2m", "commissioning")

SCHEMA = Section(
    name="",
    doc="gatewayd configuration",
    sections=(
        Section(
            name="daemon",
            doc="Process-wide settings.",
            keys=(
                Key("state_dir", t.Str(what="a directory path"), "/var/lib/gatewayd",
                    "Where the daemon keeps state that must survive restarts (Thread dataset, ULA prefix, "
                    "LwM2M registrations). Created with mode 0700."),
                Key("stop_timeout", t.Float(min=0.5, max=60), 5.0,
                    "Seconds an orderly stop (SIGTERM) may take before remaining components are abandoned.",
                    live=True),
                Key("retry_max_backoff", t.Float(min=1, max=3600), 60.0,
                    "Longest wait, in seconds, between retries of a failed component.", live=True),
            ),
        ),
        Section(
            name="ncp",
            doc="The Thread radio: an OpenThread NCP spoken to over Spinel.",
            keys=(
                Key("url", t.NCP_URL, "cascoda+uart:///dev/serial0?baudrate=1000000",
                    "How to reach the NCP. spinel+hdlc+uart:///dev/ttyACM0?baudrate=115200"
                    "&flow-control=none|rtscts for a plain UART or USB CDC NCP; "
                    "cascoda+uart:///dev/serial0?baudrate=1000000 for a Cascoda Chili2 on the Pi's UART; "
                    "spinel+hdlc+forkpty:///usr/bin/ot-ncp-ftd?args=1 to spawn a simulation NCP on a pty. "
                    "Any of them takes &record=/path/file.jsonl to record the Spinel stream both ways "
                    "(test data; the file holds the network key)."),
                Key("request_timeout", t.Float(min=0.1, max=60), 2.0,
                    "Seconds to wait for the NCP to answer one request.", live=True),
                Key("request_retries", t.Int(min=0, max=10), 2,
                    "How often a timed-out property read is retried.", live=True),
                Key("reconnect_max_backoff", t.Float(min=1, max=3600), 30.0,
                    "Longest wait, in seconds, between attempts to reopen a lost NCP link.", live=True),
            ),
        ),
        Section(
            name="thread",
            doc="The Thread network the border router forms or joins.",
            keys=(
                Key("interface", t.INTERFACE, "wpan0", "Name of the host network interface for the mesh."),
                Key("network_name", t.Str(), "",
                    'Network name used when forming a new network; "" gives gatewayd-XXXX.'),
                Key("channel", t.Int(min=11, max=26), 15, "IEEE 802.15.4 channel used when forming."),
                Key("dataset", t.HEX, "",
                    "Active operational dataset to join, as hex TLVs (what `ot-ctl dataset active -x` "
                    'prints). "" forms a new network on first start and keeps it in state_dir.',
                    secret=True),
                Key("joiner_pskd", t.PSKD_OR_EMPTY, "",
                    "Join an existing network as a joiner with this PSKd instead of forming one, when there is no "
                    "dataset (neither above nor kept in state_dir): that network's commissioner must hold a "
                    "joiner entry for this NCP's EUI-64 (gatewayctl ncp shows it) or *. The dataset it gets is "
                    "kept in state_dir, so later starts rejoin without joining again.", secret=True),
            ),
        ),
        Section(
            name="border",
            doc="Border routing between the mesh and the LAN.",
            keys=(
                Key("infra_interface", t.Str(what="an interface name, or \"\""), "eth0",
                    'The LAN interface: Router Advertisements for the mesh prefix are sent here. "" '
                    "disables LAN-side advertisement."),
                Key("forwarding", t.Bool(), True,
                    "Enable IPv6 forwarding on the mesh and LAN interfaces. Without it mesh devices "
                    "cannot leave the mesh."),
                Key("omr_prefix", t.IPV6_NETWORK_OR_EMPTY, "",
                    'Off-mesh-routable /64 published to the mesh; "" derives one from a ULA /48 generated '
                    "once and kept in state_dir."),
                Key("router_advertisements", t.Bool(), True,
                    "Send Router Advertisements with a Route Information Option for the mesh prefix."),
                Key("lan_routes", t.Bool(), True,
                    "Listen to the LAN's Router Advertisements on infra_interface and publish into the mesh "
                    "what they offer: on-link prefixes and routes (RFC 4191) as external routes, ::/0 when a "
                    "LAN router is a default router, and its NAT64 prefix (PREF64, RFC 8781; see [nat64] "
                    "infrastructure, which needs this). Each is withdrawn when its lifetime ends or a router "
                    "withdraws it."),
                Key("ingress_filter", t.Bool(), True,
                    "Drop, and count, packets from infra_interface with a mesh-local or OMR source and LAN "
                    "packets to mesh-local addresses (nftables table inet gatewayd_ingress, installed in one "
                    "transaction at start and removed at stop; `gatewayctl border counters` shows the drops)."),
                Key("meshcop_mdns", t.Bool(), True,
                    "Publish the border agent as _meshcop._udp on infra_interface over mDNS, as otbr-agent does: "
                    "commissioner apps and Home Assistant find the border router and its network (name, "
                    "extended PAN ID, role, border agent id) by it. Re-announced when the network changes, "
                    "withdrawn at stop. An NCP with a border agent of its own (OpenThread since 2024) that "
                    "forwards UDP is made reachable on the LAN at the port published; otherwise port 49152 "
                    "with connections marked disabled (`gatewayctl ba` shows the record and the relay)."),
                Key("vendor_name", t.Str(validate=_txt_name, what="at most 24 bytes"), "gatewayd",
                    "The vendor (vn) in the _meshcop._udp record; with model_name it also names the service "
                    '("gatewayd BorderRouter #C3A2", the last bytes of the extended address).'),
                Key("model_name", t.Str(validate=_txt_name, what="at most 24 bytes"), "BorderRouter",
                    "The model (mn) in the _meshcop._udp record."),
            ),
        ),
        Section(
            name="nat64",
            doc="Stateful NAT64 so IPv6-only mesh devices reach IPv4 hosts.",
            keys=(
                Key("enabled", t.Bool(), True, "Translate traffic to the NAT64 prefix."),
                Key("backend", t.Str(choices=("builtin", "tayga")), "builtin",
                    "builtin: gatewayd's own translator on a TUN device. tayga: run Debian's tayga as a "
                    "supervised child (restarted when it dies), with its config and dynamic.map in the state "
                    "directory. Jool is not supported (it needs a kernel module the Pi's kernel lacks)."),
                Key("prefix", t.NAT64_PREFIX, "64:ff9b::/96",
                    "NAT64 prefix (RFC 6052: /32, /40, /48, /56, /64 or /96), published into the mesh as "
                    "an off-mesh route with the NAT64 flag."),
                Key("interface", t.INTERFACE, "nat64", "Name of the translator's TUN interface."),
                Key("pool", t.List(t.IPV4_NETWORK), ["192.168.255.0/24"],
                    "IPv4 source addresses for translated traffic, routed to the translator's interface. "
                    "builtin: mesh devices share them by port; tayga: each mesh device gets an address of its "
                    "own from the first network, so it must be a network (/30 or larger)."),
                Key("infrastructure", t.Str(choices=("auto", "ignore", "only")), "auto",
                    "A NAT64 the LAN already has, found from its routers' PREF64 option (RFC 8781) or, failing "
                    "that, from the system resolver's answer for ipv4only.arpa (RFC 7050). auto: when there is "
                    "one, its prefix is published into the mesh and our translator stays off; otherwise ours "
                    "runs. ignore: always our own translator. only: never ours; the LAN's prefix is published "
                    "when there is one, and none otherwise."),
                Key("masquerade", t.Bool(), True,
                    "Install an nftables masquerade for the pool on the uplink interface."),
                Key("uplink", t.Str(what="an interface name, or \"\""), "",
                    '"" uses the interface of the IPv4 default route.'),
                Key("udp_timeout", t.Int(min=1), 300, "UDP session lifetime in seconds.", live=True),
                Key("tcp_established_timeout", t.Int(min=1), 7440,
                    "Established TCP session lifetime in seconds.", live=True),
                Key("tcp_transitory_timeout", t.Int(min=1), 240,
                    "Transitory (opening/closing) TCP session lifetime in seconds.", live=True),
                Key("icmp_timeout", t.Int(min=1), 60, "ICMP echo session lifetime in seconds.", live=True),
                Key("max_sessions", t.Int(min=1), 65536, "Cap on all sessions.", live=True),
                Key("max_sessions_per_host", t.Int(min=1), 4096,
                    "Cap on sessions of one IPv6 source address.", live=True),
            ),
        ),
        Section(
            name="dns64",
            doc="DNS64 resolver for the mesh (RFC 6147).",
            keys=(
                Key("enabled", t.Bool(), True, "Answer DNS queries from the mesh."),
                Key("listen", t.List(t.IP_ADDRESS), [],
                    "Extra addresses to answer on, besides the border router's mesh addresses."),
                Key("mesh_address", t.IPV6_ADDRESS_OR_EMPTY, "",
                    "The address mesh devices ask (`dns config ADDRESS` on an OpenThread node). It lies "
                    "outside the mesh's prefixes and its /64 is published as an off-mesh route, so the NCP "
                    "forwards queries to the host even when its firmware runs a DNS-SD server of its own, "
                    "which answers port 53 on every address the NCP owns. \"\" uses <ULA /48>:53::53 of the "
                    "border router's ULA prefix."),
                Key("port", t.Int(min=1, max=65535), 53, "UDP and TCP port."),
                Key("upstream", t.List(t.HOST_PORT), [],
                    'Resolvers to forward to ("addr" or "addr:port"); [] uses /etc/resolv.conf.',
                    live=True),
                Key("allowed", t.List(t.IP_NETWORK), [],
                    "Client prefixes served besides the mesh-local and OMR prefixes; others get REFUSED.",
                    live=True),
                Key("cache_size", t.Int(min=0), 10000, "Answers kept in the cache.", live=True),
            ),
        ),
        Section(
            name="lwm2m",
            check=_check_lwm2m,
            doc="LwM2M: the gateway's own client and virtual clients for mesh devices.",
            keys=(
                Key("enabled", t.Bool(), False, "Run the LwM2M engine."),
                Key("models_dir", t.Str(what="a directory path, or \"\""), "",
                    "Extra OMA DDF XML object definitions to load."),
                Key("lwm2m_version", t.Str(choices=("1.0", "1.1", "1.2")), "1.1",
                    "LwM2M version clients register with (1.0 servers accept 1.1 clients' 1.0 subset). 1.2 "
                    "clients register LwM2M CBOR (11544) as their format and answer Reads in it."),
                Key("queue_mode", t.Bool(), False,
                    "Register in queue mode (b=UQ for 1.0, Q for 1.1): the server holds requests until the "
                    "client's next Update, and notifications that fall due while the client is offline (past "
                    "awake_time) are kept and sent right after that Update."),
                Key("queue_limit", t.Int(min=1, max=100000), 100,
                    "Queue mode: notifications one client keeps while offline; beyond this the oldest is "
                    "dropped and counted (queue_dropped in gatewayctl lwm2m show)."),
                Key("awake_time", t.Float(min=1, max=86400), 93.0,
                    "Queue mode: seconds a client stays reachable after its Register or Update "
                    "(MAX_TRANSMIT_WAIT); notifications due later wait for the next Update."),
                Key("update_margin", t.Float(min=1, max=3600), 15.0,
                    "Seconds before the registration lifetime ends that the Update goes out."),
                Key("keepalive", t.Float(min=0, max=3600), 60.0,
                    "Send an Update at least this often (seconds) so UDP NAT bindings, which die after about "
                    "5 minutes idle, keep the server able to reach the client. 0 turns this off."),
                Key("request_timeout", t.Float(min=1, max=300), 30.0,
                    "Seconds to wait for the server to answer Register, Update or Bootstrap-Request."),
                Key("retry_max_backoff", t.Float(min=1, max=86400), 300.0,
                    "Longest wait, in seconds, between registration attempts (exponential backoff with jitter)."),
                Key("bootstrap_after", t.Int(min=0, max=100), 3,
                    "Failed registration attempts before falling back to the Bootstrap-Server, if one is "
                    "configured. 0: never."),
                Key("register_concurrency", t.Int(min=0, max=100000), 64,
                    "Registers and Bootstrap-Requests the clients may have in flight at once; the others "
                    "wait their turn, so thousands of clients starting together do not time out at the "
                    "server. 0: no cap."),
                Key("proxy_mode", t.Str(choices=("registrations", "gateway")), "registrations",
                    "How devices behind the gateway ([[lwm2m.device]], [lwm2m.thread_devices]) appear upstream: "
                    "\"registrations\", each as a client with a registration of its own (servers such as "
                    "Leshan bind identities to endpoints); \"gateway\", as instances of the LwM2M Gateway "
                    "object (25) under the gateway's one registration, their objects reached under a prefix "
                    "(/dev1/3303/0/5700), as the OMA LwM2M Gateway enabler has it. Needs [lwm2m.gateway] "
                    "enabled and LwM2M 1.1 or later."),
            ),
            sections=(
                Section(
                    name="server",
                    check=_check_server,
                    doc="The default upstream LwM2M server (factory bootstrap).",
                    keys=(
                        Key("uri", t.LWM2M_URI_OR_EMPTY, "",
                            "coap://host:5683 or coaps://host:5684."),
                        *_security_keys("gateway"),
                        Key("lifetime", t.Int(min=30), 300, "Registration lifetime in seconds."),
                        Key("bootstrap", t.Bool(), False,
                            "The URI names a LwM2M Bootstrap-Server: clients request bootstrap (POST /bs) and "
                            "register with the server it writes."),
                    ),
                ),
                Section(
                    name="device",
                    check=_check_device,
                    doc="A non-LwM2M device behind the gateway, registered upstream as a LwM2M client of its own "
                        "(one registration per device). Devices added, removed or changed here are applied on "
                        "reload without disturbing the others. With none of the security keys (psk_identity to "
                        "server_public_key) and no server of its own, a device registers with [lwm2m.server]'s "
                        "credentials; with any, with its own (a certificate or raw public key of its own: "
                        "docs/lwm2m-security.md). See docs/lwm2m-proxy.md.",
                    array=True,
                    keys=(
                        Key("endpoint", t.Str(), "", "Endpoint client name of the device (required, unique).",
                            live=True),
                        Key("adapter", t.Str(choices=("coap",)), "coap",
                            "How the gateway talks to the device: coap (plain CoAP over UDP).", live=True),
                        Key("address", t.IPV6_ADDRESS_OR_EMPTY, "",
                            "The device's IPv6 address (or give eui64).", live=True),
                        Key("eui64", t.EUI64_OR_EMPTY, "",
                            "The device's Thread extended address, resolved to its current IPv6 address through "
                            "the NCP's child table, so a device that changes address keeps its client.",
                            live=True),
                        Key("port", t.Int(min=1, max=65535), 5683, "The device's CoAP port.", live=True),
                        Key("timeout", t.Float(min=0.5, max=60), 5.0,
                            "Seconds a device request may take; a Read it does not answer in time fails with "
                            "5.03 Service Unavailable.", live=True),
                        Key("server", t.LWM2M_URI_OR_EMPTY, "",
                            '"" registers with [lwm2m.server]; a URI names another LwM2M server for this device.',
                            live=True),
                        *_security_keys("device"),
                        Key("lifetime", t.Int(min=0), 0,
                            "Registration lifetime in seconds; 0 uses [lwm2m.server] lifetime.", live=True),
                        Key("queue_mode", t.Bool(), False, "Register this device in queue mode.", live=True),
                        Key("resources", t.Table(
                            t.InlineTable((
                                ("get", t.COAP_PATH), ("put", t.COAP_PATH), ("post", t.COAP_PATH),
                                ("type", t.Str(choices=("float", "integer", "unsigned", "boolean", "string",
                                                        "opaque", "time"))),
                                ("format", t.Str(choices=("text", "json", "cbor"))),
                                ("pointer", t.JSON_POINTER), ("observe", t.Bool()),
                            )),
                            key=t.LWM2M_RESOURCE_PATH, what_key="LwM2M resource path"), {},
                            'Mapping of LwM2M resources to the device\'s CoAP resources, e.g. '
                            '"/3303/0/5700" = { get = "/sensors/temp", type = "float" }: get serves Read '
                            "(cached for the response's Max-Age), put (else post) Write, post Execute; type "
                            "defaults to the object model's; format text, json or cbor (default: by "
                            "Content-Format) with pointer, a JSON pointer into the document; observe = false "
                            "when the device cannot observe the resource (it is polled instead).", live=True),
                    ),
                ),
                Section(
                    name="thread_devices",
                    doc="Every Thread node the NCP knows (children and routers) as a virtual LwM2M client "
                        "<prefix><eui64> with Device and Connectivity Monitoring objects, registered with "
                        "[lwm2m.server].",
                    keys=(
                        Key("enabled", t.Bool(), False, "Register Thread nodes.", live=True),
                        Key("prefix", t.Str(), "thread-", "Endpoint name prefix.", live=True),
                        Key("absence_timeout", t.Float(min=1), 120.0,
                            "Seconds a node may be missing from the NCP's tables before it is deregistered.",
                            live=True),
                        Key("poll_interval", t.Float(min=0.5, max=3600), 30.0,
                            "Seconds between reads of the NCP's child, neighbor and router tables (for signal "
                            "strength and routers further away); a child or neighbor arriving or leaving is "
                            "read at once, as the NCP announces it.", live=True),
                        Key("psk", t.Str(choices=("shared", "per-node")), "shared",
                            "Toward a coaps:// server: \"shared\" registers every node with [lwm2m.server]'s "
                            "PSK identity and key; \"per-node\" gives each node the identity <endpoint> and a "
                            "key derived from [lwm2m.server] psk_key and the endpoint (for servers such as "
                            "Leshan that bind an identity to one endpoint; gatewayctl lwm2m psk EP "
                            "--show-secrets prints it).", live=True),
                    ),
                ),
                Section(
                    name="gateway",
                    doc="The gateway's own LwM2M client (Device, Connectivity Monitoring, Server, Security).",
                    keys=(
                        Key("enabled", t.Bool(), True, "Register the gateway itself with [lwm2m.server]."),
                        Key("endpoint", t.Str(), "",
                            "Endpoint client name; \"\" makes urn:dev:ops:gatewayd-<NCP EUI-64>."),
                        Key("manufacturer", t.Str(), "", "Device manufacturer; \"\" uses the NCP's platform string."),
                        Key("model", t.Str(), "", "Device model number; \"\" uses the NCP's platform string."),
                        Key("firmware_update", t.Bool(), True,
                            "Offer the Firmware Update object (5) for the NCP: a server pushes or names a "
                            "firmware image, and Update writes it to a Cascoda Chili2 through its EVBME DFU "
                            "commands and restarts it (other NCPs refuse the Update). See docs/lwm2m-firmware.md."),
                    ),
                ),
            ),
        ),
        Section(
            name="commissioning",
            doc="The on-mesh commissioner in the NCP: lets Thread devices join with a PSKd (`joiner start PSKD` "
                "on an OpenThread node) instead of being given the whole dataset. See docs/raspberry-pi.md.",
            keys=(
                Key("commissioner", t.Bool(), False,
                    "Start the commissioner once Thread is attached even when no joiner is configured below "
                    "(gatewayctl joiner add, and any [[commissioning.joiner]], start it anyway).", live=True),
                Key("provisioning_url", t.URL_OR_EMPTY, "",
                    'Provisioning URL the commissioner offers joiners; "" offers none.', live=True),
            ),
            sections=(
                Section(
                    name="joiner",
                    check=_check_joiner,
                    array=True,
                    doc="A device allowed to join, added when the commissioner starts and again on every reload "
                        "(removed when its table goes). The PSKd is a secret: give pskd_file.",
                    keys=(
                        Key("eui64", t.JOINER, "*", '"*" for any device, or the joiner\'s EUI-64.', live=True),
                        Key("pskd", t.PSKD_OR_EMPTY, "", "The joiner's credential (required).", secret=True,
                            live=True),
                        Key("timeout", t.Int(min=1, max=2_000_000), 3600,
                            "Seconds the device may join, counted from when the entry is added.", live=True),
                    ),
                ),
            ),
        ),
        Section(
            name="rest",
            check=_check_rest,
            doc="The REST API of otbr-agent (what Home Assistant's OpenThread Border Router integration, "
                "python-otbr-api, calls): node state, active and pending datasets, border agent id, extended "
                "address, coprocessor version, factory reset. See docs/home-assistant.md.",
            keys=(
                Key("enabled", t.Bool(), False, "Serve the REST API."),
                Key("listen", t.List(t.HOST_PORT), ["127.0.0.1:8081"],
                    'Addresses to serve on ("address:port", "[v6]:port"; the port defaults to 8081, '
                    "otbr-agent's). On a loopback address the API answers as otbr-agent does; on any other every "
                    "request that reads the dataset (it holds the network key) or changes the network needs "
                    "Authorization: Bearer <token>, and is answered 401 without it."),
                Key("token", t.Str(), "",
                    "The bearer token requests on a non-loopback listen address must carry to read the dataset "
                    "or change the network (required when one is configured).", secret=True),
                Key("metrics", t.Bool(), True,
                    "Serve Prometheus metrics at /metrics (the counters gatewayctl shows; no secrets, so no token "
                    "on any listen address). Only with enabled = true. See docs/metrics.md."),
            ),
        ),
        Section(
            name="control",
            doc="The local control socket gatewayctl talks to.",
            keys=(
                Key("socket", t.Str(what="a socket path"), "/run/gatewayd/control.sock",
                    "Path of the Unix socket."),
                Key("mode", t.Int(min=0, max=0o777, octal=True), 0o660,
                    "Permissions of the socket; members of its group may use gatewayctl."),
                Key("max_connections", t.Int(min=1, max=1000), 64,
                    "Connections served at once (gatewayctl opens one per command and closes it when "
                    'answered). One more is answered {"ok": false, "busy": true, "error": "gatewayd is busy: '
                    '..."} and closed, and gatewayctl tries again until its --timeout, so clients that hold '
                    "or flood the socket cannot take the daemon's file descriptors. Root has 4 places more, so "
                    "an administrator is answered while the socket's group holds every place."),
                Key("idle_timeout", t.Float(min=0.1, max=3600), 10.0,
                    "Seconds a connection may wait without sending a request, or without reading an answer, "
                    "before it is closed, so idle connections do not hold a place under max_connections."),
            ),
        ),
        Section(
            name="log",
            doc="Logging. Under systemd records go to the journal with structured fields.",
            keys=(
                Key("level", t.LEVEL, "info", "Level for all components.", live=True),
                Key("target", t.Str(choices=("auto", "journal", "stderr")), "auto",
                    "auto: the journal when started by systemd, stderr otherwise."),
                Key("rate_limit_interval", t.Float(min=0), 10.0,
                    "Identical repeated errors within this many seconds are summarised as "
                    '"repeated N times". 0 disables.', live=True),
            ),
            sections=(
                Section(
                    name="components",
                    doc="Per-component levels, overriding level.",
                    free=t.LEVEL,
                    free_names=COMPONENTS,
                    free_doc="component name (" + ", ".join(COMPONENTS) + ") = level",
                    example={"ncp": "debug"},
                ),
            ),
        ),
    ),
)


def walk(section: Section = SCHEMA, prefix: str = "") -> Iterator[tuple[str, Section]]:
    """Every table below ``section`` with its dotted path, parents first (the order of the docs)."""
    for sub in section.sections:
        path = f"{prefix}{sub.name}"
        yield path, sub
        yield from walk(sub, f"{path}.")


def find(path: str) -> Key | Section | None:
    """The schema entry for a dotted path such as ``ncp.url``."""
    node: Section = SCHEMA
    parts = path.split(".")
    for i, part in enumerate(parts):
        child = node.section(part)
        if child is not None:
            node = child
            continue
        if i == len(parts) - 1:
            return node.key(part)
        return None
    return node
