"""Spinel property ids with their value formats (spinel.h ``SPINEL_PROP_*``).

``Prop.NET_ROLE`` is ``SPINEL_PROP_NET_ROLE``; ``Prop.NET_ROLE.fmt`` its format string (None where the
format varies by build and the value is handled as raw bytes); ``.secret`` marks values that must never
be logged.  Ids that are not in this table pass through as plain ints with raw-bytes values.
"""

from __future__ import annotations

import enum
from typing import Any

from .format import element_format, pack_value, unpack, unpack_value
from .tables import (
    AddressEntry,
    ChildAddressesEntry,
    ChildEntry,
    NeighborEntry,
    OffMeshRoute,
    OnMeshNet,
    RouterEntry,
    record,
)

__all__ = [
    "INTERFACE_TYPE_THREAD",
    "NET_FLAG_CONFIGURE",
    "NET_FLAG_DEFAULT_ROUTE",
    "NET_FLAG_DHCP",
    "NET_FLAG_ON_MESH",
    "NET_FLAG_PREFERRED",
    "NET_FLAG_SLAAC",
    "ROUTE_FLAG_NAT64",
    "NetRole",
    "Prop",
    "pack_prop",
    "prop_fmt",
    "prop_name",
    "unpack_prop",
]

INTERFACE_TYPE_THREAD = 3  # SPINEL_PROTOCOL_TYPE_THREAD

# SPINEL_NET_FLAG_* (flags of THREAD_ON_MESH_NETS entries; the Border Router sub-TLV's flag byte).
NET_FLAG_ON_MESH = 1 << 0
NET_FLAG_DEFAULT_ROUTE = 1 << 1
NET_FLAG_CONFIGURE = 1 << 2
NET_FLAG_DHCP = 1 << 3
NET_FLAG_SLAAC = 1 << 4
NET_FLAG_PREFERRED = 1 << 5
# SPINEL_ROUTE_FLAG_* (flags of THREAD_OFF_MESH_ROUTES entries).
ROUTE_FLAG_NAT64 = 1 << 5


class NetRole(enum.IntEnum):
    """Values of PROP_NET_ROLE (``SPINEL_NET_ROLE_*``)."""

    DETACHED = 0
    CHILD = 1
    ROUTER = 2
    LEADER = 3
    DISABLED = 4


class Prop(enum.IntEnum):
    """``SPINEL_PROP_*`` without the prefix."""

    # core
    LAST_STATUS = 0
    PROTOCOL_VERSION = 1
    NCP_VERSION = 2
    INTERFACE_TYPE = 3
    VENDOR_ID = 4
    CAPS = 5
    INTERFACE_COUNT = 6
    POWER_STATE = 7
    HWADDR = 8
    LOCK = 9
    HBO_MEM_MAX = 10
    HBO_BLOCK_MAX = 11
    HOST_POWER_STATE = 12
    MCU_POWER_STATE = 13
    UNSOL_UPDATE_FILTER = 0x1008
    UNSOL_UPDATE_LIST = 0x1009
    # PHY
    PHY_ENABLED = 0x20
    PHY_CHAN = 0x21
    PHY_CHAN_SUPPORTED = 0x22
    PHY_FREQ = 0x23
    PHY_CCA_THRESHOLD = 0x24
    PHY_TX_POWER = 0x25
    PHY_RSSI = 0x26
    PHY_RX_SENSITIVITY = 0x27
    PHY_PCAP_ENABLED = 0x28
    PHY_CHAN_PREFERRED = 0x29
    # MAC
    MAC_SCAN_STATE = 0x30
    MAC_SCAN_MASK = 0x31
    MAC_SCAN_PERIOD = 0x32
    MAC_SCAN_BEACON = 0x33
    MAC_15_4_LADDR = 0x34
    MAC_15_4_SADDR = 0x35
    MAC_15_4_PANID = 0x36
    MAC_RAW_STREAM_ENABLED = 0x37
    MAC_PROMISCUOUS_MODE = 0x38
    MAC_ENERGY_SCAN_RESULT = 0x39
    MAC_DATA_POLL_PERIOD = 0x3A
    # NET
    NET_SAVED = 0x40
    NET_IF_UP = 0x41
    NET_STACK_UP = 0x42
    NET_ROLE = 0x43
    NET_NETWORK_NAME = 0x44
    NET_XPANID = 0x45
    NET_NETWORK_KEY = 0x46
    NET_KEY_SEQUENCE_COUNTER = 0x47
    NET_PARTITION_ID = 0x48
    NET_REQUIRE_JOIN_EXISTING = 0x49
    NET_KEY_SWITCH_GUARDTIME = 0x4A
    NET_PSKC = 0x4B
    # THREAD
    THREAD_LEADER_ADDR = 0x50
    THREAD_PARENT = 0x51
    THREAD_CHILD_TABLE = 0x52
    THREAD_LEADER_RID = 0x53
    THREAD_LEADER_WEIGHT = 0x54
    THREAD_LOCAL_LEADER_WEIGHT = 0x55
    THREAD_NETWORK_DATA = 0x56
    THREAD_NETWORK_DATA_VERSION = 0x57
    THREAD_STABLE_NETWORK_DATA = 0x58
    THREAD_STABLE_NETWORK_DATA_VERSION = 0x59
    THREAD_ON_MESH_NETS = 0x5A
    THREAD_OFF_MESH_ROUTES = 0x5B
    THREAD_ASSISTING_PORTS = 0x5C
    THREAD_ALLOW_LOCAL_NET_DATA_CHANGE = 0x5D
    THREAD_MODE = 0x5E
    THREAD_CHILD_TIMEOUT = 0x1500
    THREAD_RLOC16 = 0x1501
    THREAD_ROUTER_UPGRADE_THRESHOLD = 0x1502
    THREAD_CONTEXT_REUSE_DELAY = 0x1503
    THREAD_NETWORK_ID_TIMEOUT = 0x1504
    THREAD_ACTIVE_ROUTER_IDS = 0x1505
    THREAD_RLOC16_DEBUG_PASSTHRU = 0x1506
    THREAD_ROUTER_ROLE_ENABLED = 0x1507
    THREAD_ROUTER_DOWNGRADE_THRESHOLD = 0x1508
    THREAD_ROUTER_SELECTION_JITTER = 0x1509
    THREAD_PREFERRED_ROUTER_ID = 0x150A
    THREAD_NEIGHBOR_TABLE = 0x150B
    THREAD_CHILD_COUNT_MAX = 0x150C
    THREAD_LEADER_NETWORK_DATA = 0x150D
    THREAD_STABLE_LEADER_NETWORK_DATA = 0x150E
    THREAD_ROUTER_TABLE = 0x1517
    THREAD_CHILD_TABLE_ADDRESSES = 0x1521
    THREAD_UDP_FORWARD_STREAM = 0x1524  # CAP_THREAD_UDP_FORWARD: UDP between the host and the NCP's own sockets
    THREAD_ACTIVE_DATASET = 0x1518
    THREAD_PENDING_DATASET = 0x1519
    THREAD_ACTIVE_DATASET_TLVS = 0x153C
    THREAD_PENDING_DATASET_TLVS = 0x153D  # OpenThread since 2024, as THREAD_ACTIVE_DATASET_TLVS
    # IPV6
    IPV6_LL_ADDR = 0x60
    IPV6_ML_ADDR = 0x61
    IPV6_ML_PREFIX = 0x62
    IPV6_ADDRESS_TABLE = 0x63
    IPV6_ROUTE_TABLE = 0x64
    IPV6_ICMP_PING_OFFLOAD = 0x65
    IPV6_MULTICAST_ADDRESS_TABLE = 0x66
    IPV6_ICMP_PING_OFFLOAD_MODE = 0x67
    # STREAM
    STREAM_DEBUG = 0x70
    STREAM_RAW = 0x71
    STREAM_NET = 0x72
    STREAM_NET_INSECURE = 0x73
    STREAM_LOG = 0x74
    # MESHCOP
    MESHCOP_JOINER_STATE = 0x80
    MESHCOP_JOINER_COMMISSIONING = 0x81
    MESHCOP_COMMISSIONER_STATE = 0x82
    MESHCOP_COMMISSIONER_JOINERS = 0x83
    MESHCOP_COMMISSIONER_PROVISIONING_URL = 0x84
    MESHCOP_COMMISSIONER_SESSION_ID = 0x85
    # BORDER_AGENT (OpenThread since 2024)
    BORDER_AGENT_MESHCOP_SERVICE_STATE = 0x951
    # counters (CNTR__BEGIN = 1280)
    CNTR_RESET = 1280
    CNTR_TX_PKT_TOTAL = 1281
    CNTR_RX_PKT_TOTAL = 1380
    CNTR_TX_IP_SEC_TOTAL = 1480
    CNTR_TX_IP_INSEC_TOTAL = 1481
    CNTR_TX_IP_DROPPED = 1482
    CNTR_RX_IP_SEC_TOTAL = 1483
    CNTR_RX_IP_INSEC_TOTAL = 1484
    CNTR_RX_IP_DROPPED = 1485
    CNTR_TX_SPINEL_TOTAL = 1580
    CNTR_RX_SPINEL_TOTAL = 1581
    CNTR_RX_SPINEL_ERR = 1582
    CNTR_RX_SPINEL_OUT_OF_ORDER_TID = 1583
    CNTR_IP_TX_SUCCESS = 1584
    CNTR_IP_RX_SUCCESS = 1585
    CNTR_IP_TX_FAILURE = 1586
    CNTR_IP_RX_FAILURE = 1587

    @property
    def fmt(self) -> str | None:
        return _FORMATS.get(self)

    @property
    def secret(self) -> bool:
        return self in _SECRET

    @property
    def spinel_name(self) -> str:
        return f"SPINEL_PROP_{self.name}"


_FORMATS: dict[int, str | None] = {
    Prop.LAST_STATUS: "i",
    Prop.PROTOCOL_VERSION: "ii",
    Prop.NCP_VERSION: "U",
    Prop.INTERFACE_TYPE: "i",
    Prop.VENDOR_ID: "i",
    Prop.CAPS: "A(i)",
    Prop.INTERFACE_COUNT: "C",
    Prop.POWER_STATE: "C",
    Prop.HWADDR: "E",
    Prop.LOCK: "b",
    Prop.HBO_MEM_MAX: "L",
    Prop.HBO_BLOCK_MAX: "S",
    Prop.HOST_POWER_STATE: "C",
    Prop.MCU_POWER_STATE: "C",
    Prop.UNSOL_UPDATE_FILTER: "A(i)",
    Prop.UNSOL_UPDATE_LIST: "A(i)",
    Prop.PHY_ENABLED: "b",
    Prop.PHY_CHAN: "C",
    Prop.PHY_CHAN_SUPPORTED: "A(C)",
    Prop.PHY_FREQ: "L",
    Prop.PHY_CCA_THRESHOLD: "c",
    Prop.PHY_TX_POWER: "c",
    Prop.PHY_RSSI: "c",
    Prop.PHY_RX_SENSITIVITY: "c",
    Prop.PHY_PCAP_ENABLED: "b",
    Prop.PHY_CHAN_PREFERRED: "A(C)",
    Prop.MAC_SCAN_STATE: "C",
    Prop.MAC_SCAN_MASK: "A(C)",
    Prop.MAC_SCAN_PERIOD: "S",
    Prop.MAC_SCAN_BEACON: None,
    Prop.MAC_15_4_LADDR: "E",
    Prop.MAC_15_4_SADDR: "S",
    Prop.MAC_15_4_PANID: "S",
    Prop.MAC_RAW_STREAM_ENABLED: "b",
    Prop.MAC_PROMISCUOUS_MODE: "C",
    Prop.MAC_ENERGY_SCAN_RESULT: "Cc",
    Prop.MAC_DATA_POLL_PERIOD: "L",
    Prop.NET_SAVED: "b",
    Prop.NET_IF_UP: "b",
    Prop.NET_STACK_UP: "b",
    Prop.NET_ROLE: "C",
    Prop.NET_NETWORK_NAME: "U",
    Prop.NET_XPANID: "D",
    Prop.NET_NETWORK_KEY: "D",
    Prop.NET_KEY_SEQUENCE_COUNTER: "L",
    Prop.NET_PARTITION_ID: "L",
    Prop.NET_REQUIRE_JOIN_EXISTING: "b",
    Prop.NET_KEY_SWITCH_GUARDTIME: "L",
    Prop.NET_PSKC: "D",
    Prop.THREAD_LEADER_ADDR: "6",
    Prop.THREAD_PARENT: "ESLccCC",
    # ext address, RLOC16, timeout, age, network data version, link quality in, average RSS, mode,
    # last RSSI
    Prop.THREAD_CHILD_TABLE: "A(t(ESLLCCcCc))",
    Prop.THREAD_LEADER_RID: "C",
    Prop.THREAD_LEADER_WEIGHT: "C",
    Prop.THREAD_LOCAL_LEADER_WEIGHT: "C",
    Prop.THREAD_NETWORK_DATA: "D",
    Prop.THREAD_NETWORK_DATA_VERSION: "C",
    Prop.THREAD_STABLE_NETWORK_DATA: "D",
    Prop.THREAD_STABLE_NETWORK_DATA_VERSION: "C",
    # prefix, prefix length, stable, flags, is local, RLOC16, extended flags
    Prop.THREAD_ON_MESH_NETS: "A(t(6CbCbSC))",
    # prefix, prefix length, stable, flags, is local, next hop is this device, RLOC16
    Prop.THREAD_OFF_MESH_ROUTES: "A(t(6CbCbbS))",
    Prop.THREAD_ASSISTING_PORTS: "A(S)",
    Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE: "b",
    Prop.THREAD_MODE: "C",
    Prop.THREAD_CHILD_TIMEOUT: "L",
    Prop.THREAD_RLOC16: "S",
    Prop.THREAD_ROUTER_UPGRADE_THRESHOLD: "C",
    Prop.THREAD_CONTEXT_REUSE_DELAY: "L",
    Prop.THREAD_NETWORK_ID_TIMEOUT: "C",
    Prop.THREAD_ACTIVE_ROUTER_IDS: "A(C)",
    Prop.THREAD_RLOC16_DEBUG_PASSTHRU: "b",
    Prop.THREAD_ROUTER_ROLE_ENABLED: "b",
    Prop.THREAD_ROUTER_DOWNGRADE_THRESHOLD: "C",
    Prop.THREAD_ROUTER_SELECTION_JITTER: "C",
    Prop.THREAD_PREFERRED_ROUTER_ID: "C",
    # ext address, RLOC16, age, link quality in, average RSS, mode, is child, link frame counter,
    # MLE frame counter, last RSSI
    Prop.THREAD_NEIGHBOR_TABLE: "A(t(ESLCcCbLLc))",
    Prop.THREAD_CHILD_COUNT_MAX: "C",
    Prop.THREAD_LEADER_NETWORK_DATA: "D",
    Prop.THREAD_STABLE_LEADER_NETWORK_DATA: "D",
    # ext address, RLOC16, router id, next hop, path cost, link quality in, link quality out, age,
    # link established
    Prop.THREAD_ROUTER_TABLE: "A(t(ESCCCCCCb))",
    Prop.THREAD_CHILD_TABLE_ADDRESSES: "A(t(ESA(6)))",
    Prop.THREAD_UDP_FORWARD_STREAM: "dS6S",  # payload, remote port, remote address, the NCP socket's port
    Prop.THREAD_ACTIVE_DATASET: "A(t(iD))",
    Prop.THREAD_PENDING_DATASET: "A(t(iD))",
    Prop.THREAD_ACTIVE_DATASET_TLVS: "D",
    Prop.THREAD_PENDING_DATASET_TLVS: "D",
    Prop.IPV6_LL_ADDR: "6",
    Prop.IPV6_ML_ADDR: "6",
    Prop.IPV6_ML_PREFIX: "6C",
    # address, prefix length, preferred lifetime, valid lifetime, flags (OpenThread omits the flags)
    Prop.IPV6_ADDRESS_TABLE: "A(t(6CLLC))",
    Prop.IPV6_ROUTE_TABLE: None,
    Prop.IPV6_ICMP_PING_OFFLOAD: "b",
    Prop.IPV6_MULTICAST_ADDRESS_TABLE: "A(t(6))",
    Prop.IPV6_ICMP_PING_OFFLOAD_MODE: "C",
    Prop.STREAM_DEBUG: "U",
    Prop.STREAM_RAW: "dD",
    Prop.STREAM_NET: "dD",
    Prop.STREAM_NET_INSECURE: "dD",
    Prop.STREAM_LOG: "UD",
    Prop.MESHCOP_JOINER_STATE: "C",
    Prop.MESHCOP_JOINER_COMMISSIONING: None,
    Prop.MESHCOP_COMMISSIONER_STATE: "C",
    Prop.MESHCOP_COMMISSIONER_JOINERS: None,
    Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL: "U",
    Prop.MESHCOP_COMMISSIONER_SESSION_ID: "S",
    Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE: "bSD",  # running, UDP port, TXT data (ncp.border_agent)
    Prop.CNTR_RESET: "C",
}
for _p in Prop:
    if _p.name.startswith("CNTR_") and _p not in _FORMATS:
        _FORMATS[_p] = "L"
del _p
_missing = [p.name for p in Prop if p not in _FORMATS]
assert not _missing, f"properties without a format entry: {_missing}"

_SECRET = frozenset(
    {
        Prop.NET_NETWORK_KEY,
        Prop.NET_PSKC,
        Prop.THREAD_ACTIVE_DATASET,
        Prop.THREAD_PENDING_DATASET,
        Prop.THREAD_ACTIVE_DATASET_TLVS,
        Prop.THREAD_PENDING_DATASET_TLVS,
    }
)

# Table properties whose rows decode to named records (ncp.spinel.tables).
_RECORDS: dict[int, Any] = {
    Prop.IPV6_ADDRESS_TABLE: AddressEntry,
    Prop.THREAD_CHILD_TABLE: ChildEntry,
    Prop.THREAD_NEIGHBOR_TABLE: NeighborEntry,
    Prop.THREAD_ROUTER_TABLE: RouterEntry,
    Prop.THREAD_CHILD_TABLE_ADDRESSES: ChildAddressesEntry,
    Prop.THREAD_ON_MESH_NETS: OnMeshNet,
    Prop.THREAD_OFF_MESH_ROUTES: OffMeshRoute,
}

# Tables whose single-entry INSERTED/REMOVED keeps the entry's struct length, as OpenThread's
# EncodeNeighborInfo writes it (EncodeChildInfo, for the child table, does not).
_ELEMENT_IN_STRUCT = frozenset({Prop.THREAD_NEIGHBOR_TABLE})

_BY_VALUE: dict[int, Prop] = {int(p): p for p in Prop}


def as_prop(prop: int) -> Prop | int:
    """The table entry for ``prop``, or the plain int for an id this table does not know."""
    return _BY_VALUE.get(prop, prop)


def prop_fmt(prop: int) -> str | None:
    """Format string for ``prop``; None means raw bytes."""
    return _FORMATS.get(prop)


def prop_name(prop: int) -> str:
    p = _BY_VALUE.get(prop)
    return p.name if p is not None else f"PROP_{prop}"


def is_secret(prop: int) -> bool:
    return prop in _SECRET


def pack_prop(prop: int, value: Any, *, element: bool = False) -> bytes:
    """Encode ``value`` as ``prop`` expects it; ``element`` for one array item (INSERT/REMOVE).

    Unknown properties (and those with a build-dependent format) need ``bytes``.
    """
    fmt = _FORMATS.get(prop)
    if fmt is None:
        return pack_value("D", value)
    if element and prop in _ELEMENT_IN_STRUCT:
        return pack_value(fmt[2:-1], value)
    return pack_value(element_format(fmt) if element else fmt, value)


def unpack_prop(prop: int, data: bytes, *, element: bool = False) -> Any:
    """Decode ``data`` of ``prop``; raw bytes for unknown properties.  Raises SpinelError."""
    fmt = _FORMATS.get(prop)
    if fmt is None:
        return bytes(data)
    cls = _RECORDS.get(prop)
    if cls is None:
        return unpack_value(element_format(fmt) if element else fmt, data)
    name = prop_name(prop)
    if element and prop in _ELEMENT_IN_STRUCT:
        (fields,) = unpack(fmt[2:-1], data, partial=True) or ((),)
        return record(cls, fields, name)
    if element:
        return record(cls, unpack(element_format(fmt), data, partial=True), name)
    return [record(cls, fields, name) for fields in unpack(fmt, data, partial=True)[0]]
