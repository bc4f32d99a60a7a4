"""ICMPv6 Router Advertisement / Router Solicitation messages (RFC 4861 §4.1–4.2, §4.6) with the
Route Information Option (RFC 4191 §2.3) and the PREF64 option (RFC 8781 §4), sans-I/O.

The border router tells LAN hosts that the mesh's OMR prefix is reachable through it with a Route
Information Option in an RA whose Router Lifetime is 0: it is a router for that prefix, not a default
router. `parse` also decodes RAs of other routers and RSs, so one module speaks both directions: the
LAN's routers tell the border router their on-link prefixes (PIO), routes (RIO), whether they are
default routers, and the NAT64 prefix they translate (PREF64).

Bytes here are the ICMPv6 message alone (what a raw ICMPv6 socket reads and writes). The checksum
covers an IPv6 pseudo-header; the kernel fills and verifies it on raw ICMPv6 sockets, so it is only
computed or checked here when the caller passes the source and destination addresses.

Bad input raises `RaError` (a ValueError), never anything else.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from common.checksum import checksum, pseudo_sum_v6
from nat64.packets import IPPROTO_ICMPV6

# ICMPv6 message types (RFC 4861 §4)
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134

# Neighbor Discovery option types (RFC 4861 §4.6, RFC 4191 §2.3)
ND_OPT_SOURCE_LINKADDR = 1
ND_OPT_PREFIX_INFORMATION = 3
ND_OPT_MTU = 5
ND_OPT_ROUTE_INFORMATION = 24
ND_OPT_PREF64 = 38  # RFC 8781 §4

# Router constants (RFC 4861 §10)
MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MAX_FINAL_RTR_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS = 3.0
MAX_RA_DELAY_TIME = 0.5

#: AdvDefaultLifetime upper bound (RFC 4861 §6.2.1).
MAX_ROUTER_LIFETIME = 9000
#: A lifetime of all ones means "forever" (RFC 4191 §2.3, RFC 4861 §4.6.2).
INFINITY = 0xFFFFFFFF

_RA_HEADER = struct.Struct("!BBHBBHII")  # type, code, checksum, cur hop limit, flags, router lifetime,
#                                           reachable time, retrans timer
_RS_HEADER = struct.Struct("!BBHI")  # type, code, checksum, reserved

#: RFC 8781 §4 Prefix Length Code → NAT64 prefix length (RFC 6052's lengths); other codes void the option.
PREF64_PLC_TO_LENGTH = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}
_PREF64_LENGTH_TO_PLC = {v: k for k, v in PREF64_PLC_TO_LENGTH.items()}
#: The Scaled Lifetime counts units of 8 s in 13 bits (RFC 8781 §4).
PREF64_MAX_LIFETIME = 0x1FFF * 8


class RaError(ValueError):
    """A Router Advertisement/Solicitation that cannot be decoded or built."""


class RoutePreference(enum.IntEnum):
    """RFC 4191 §2.1 2-bit preference, as its wire value (a two's-complement number)."""

    MEDIUM = 0b00
    HIGH = 0b01
    RESERVED = 0b10  # never sent; received, it reads as medium (router) or voids the RIO (RFC 4191 §2.2-2.3)
    LOW = 0b11


@dataclass(frozen=True)
class RouteInformation:
    """Route Information Option: `prefix` reachable through the sender, for `lifetime` seconds."""

    prefix: IPv6Network
    lifetime: int = 1800
    preference: RoutePreference = RoutePreference.MEDIUM


@dataclass(frozen=True)
class PrefixInformation:
    """Prefix Information Option (RFC 4861 §4.6.2); decoded so other routers' RAs can be read."""

    prefix: IPv6Network
    on_link: bool = True
    autonomous: bool = True
    valid_lifetime: int = 2592000
    preferred_lifetime: int = 604800


@dataclass(frozen=True)
class Pref64:
    """PREF64 option (RFC 8781 §4): the NAT64 prefix a router on the link translates, for `lifetime` s.

    `lifetime` is in seconds, a multiple of 8 up to PREF64_MAX_LIFETIME (the option carries it / 8)."""

    prefix: IPv6Network
    lifetime: int = 1800


@dataclass(frozen=True)
class RouterAdvertisement:
    """RFC 4861 §4.2. Defaults describe a router that is not a default router (lifetime 0)."""

    router_lifetime: int = 0
    cur_hop_limit: int = 0
    managed: bool = False
    other: bool = False
    router_preference: RoutePreference = RoutePreference.MEDIUM
    reachable_time: int = 0
    retrans_timer: int = 0
    source_lladdr: bytes | None = None
    mtu: int | None = None
    routes: tuple[RouteInformation, ...] = ()
    prefixes: tuple[PrefixInformation, ...] = ()
    pref64: tuple[Pref64, ...] = ()
    #: Options this module does not decode, as (type, body after the type and length bytes).
    unknown_options: tuple[tuple[int, bytes], ...] = field(default=())


@dataclass(frozen=True)
class RouterSolicitation:
    """RFC 4861 §4.1."""

    source_lladdr: bytes | None = None
    unknown_options: tuple[tuple[int, bytes], ...] = field(default=())


# --- checksum -----------------------------------------------------------------------------------


def icmpv6_checksum(src: IPv6Address | str, dst: IPv6Address | str, message: bytes) -> int:
    """RFC 4443 §2.3 checksum over the pseudo-header and `message` (its checksum field taken as is)."""
    pseudo = pseudo_sum_v6(IPv6Address(src).packed, IPv6Address(dst).packed, IPPROTO_ICMPV6, len(message))
    return checksum(message, pseudo)


def _with_checksum(message: bytes, src: IPv6Address | str | None, dst: IPv6Address | str | None) -> bytes:
    if src is None or dst is None:
        return message
    csum = icmpv6_checksum(src, dst, message[:2] + b"\0\0" + message[4:])
    return message[:2] + struct.pack("!H", csum) + message[4:]


# --- building -----------------------------------------------------------------------------------


def _u32(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise RaError(f"{what} {value} out of range 0..2^32-1")
    return value


def _option(opt_type: int, body: bytes) -> bytes:
    """Type, length in units of 8 octets, body zero-padded to the unit."""
    total = 2 + len(body)
    units = (total + 7) // 8
    if units > 255:
        raise RaError(f"option {opt_type} too long ({total} bytes)")
    return bytes((opt_type, units)) + body + b"\0" * (units * 8 - total)


def route_information_option(route: RouteInformation) -> bytes:
    """RFC 4191 §2.3: the prefix is sent in 0, 8 or 16 octets, as short as its length allows."""
    prefix = route.prefix
    if not isinstance(prefix, IPv6Network):
        raise RaError(f"route prefix must be an IPv6Network, not {type(prefix).__name__}")
    if route.preference == RoutePreference.RESERVED:
        raise RaError("the reserved preference (10) must not be sent")
    plen = prefix.prefixlen
    size = 0 if plen == 0 else 8 if plen <= 64 else 16
    body = struct.pack("!BBI", plen, (int(route.preference) & 0b11) << 3, _u32(route.lifetime, "route lifetime"))
    return _option(ND_OPT_ROUTE_INFORMATION, body + prefix.network_address.packed[:size])


def _prefix_information_option(pio: PrefixInformation) -> bytes:
    flags = (0x80 if pio.on_link else 0) | (0x40 if pio.autonomous else 0)
    body = struct.pack("!BBII4x", pio.prefix.prefixlen, flags, _u32(pio.valid_lifetime, "valid lifetime"),
                       _u32(pio.preferred_lifetime, "preferred lifetime"))
    return _option(ND_OPT_PREFIX_INFORMATION, body + pio.prefix.network_address.packed)


def pref64_option(pref: Pref64) -> bytes:
    """RFC 8781 §4: 13-bit scaled lifetime and 3-bit prefix length code, then the prefix's top 96 bits."""
    if not isinstance(pref.prefix, IPv6Network):
        raise RaError(f"PREF64 prefix must be an IPv6Network, not {type(pref.prefix).__name__}")
    plc = _PREF64_LENGTH_TO_PLC.get(pref.prefix.prefixlen)
    if plc is None:
        raise RaError(f"PREF64 prefix length {pref.prefix.prefixlen} is not one of 32, 40, 48, 56, 64, 96")
    if not 0 <= pref.lifetime <= PREF64_MAX_LIFETIME or pref.lifetime % 8:
        raise RaError(f"PREF64 lifetime {pref.lifetime}: must be a multiple of 8 up to {PREF64_MAX_LIFETIME}")
    body = struct.pack("!H", (pref.lifetime // 8) << 3 | plc) + pref.prefix.network_address.packed[:12]
    return _option(ND_OPT_PREF64, body)


def _lladdr_option(lladdr: bytes) -> bytes:
    if not 1 <= len(lladdr) <= 254:
        raise RaError(f"link-layer address of {len(lladdr)} bytes")
    return _option(ND_OPT_SOURCE_LINKADDR, bytes(lladdr))


def _unknown(options: tuple[tuple[int, bytes], ...]) -> bytes:
    out = b""
    for opt_type, body in options:
        if not 0 <= opt_type <= 255:
            raise RaError(f"option type {opt_type}")
        out += _option(opt_type, body)
    return out


def build_ra(ra: RouterAdvertisement, *, src: IPv6Address | str | None = None,
             dst: IPv6Address | str | None = None) -> bytes:
    """Encode `ra`; the checksum is left 0 for the kernel unless both `src` and `dst` are given."""
    if not 0 <= ra.router_lifetime <= 0xFFFF:
        raise RaError(f"router lifetime {ra.router_lifetime} out of range")
    if not 0 <= ra.cur_hop_limit <= 255:
        raise RaError(f"cur hop limit {ra.cur_hop_limit} out of range")
    if ra.router_preference == RoutePreference.RESERVED:
        raise RaError("the reserved router preference (10) must not be sent")
    # RFC 4191 §2.2: the preference is sent as medium when the router lifetime is 0.
    prf = int(ra.router_preference) if ra.router_lifetime else 0
    flags = (0x80 if ra.managed else 0) | (0x40 if ra.other else 0) | (prf << 3)
    out = _RA_HEADER.pack(ND_ROUTER_ADVERT, 0, 0, ra.cur_hop_limit, flags, ra.router_lifetime,
                          _u32(ra.reachable_time, "reachable time"), _u32(ra.retrans_timer, "retrans timer"))
    if ra.source_lladdr is not None:
        out += _lladdr_option(ra.source_lladdr)
    if ra.mtu is not None:
        out += _option(ND_OPT_MTU, struct.pack("!HI", 0, _u32(ra.mtu, "MTU")))
    for pio in ra.prefixes:
        out += _prefix_information_option(pio)
    for route in ra.routes:
        out += route_information_option(route)
    for pref in ra.pref64:
        out += pref64_option(pref)
    out += _unknown(ra.unknown_options)
    return _with_checksum(out, src, dst)


def build_rs(rs: RouterSolicitation, *, src: IPv6Address | str | None = None,
             dst: IPv6Address | str | None = None) -> bytes:
    """Encode `rs` (checksum as for `build_ra`)."""
    out = _RS_HEADER.pack(ND_ROUTER_SOLICIT, 0, 0, 0)
    if rs.source_lladdr is not None:
        out += _lladdr_option(rs.source_lladdr)
    out += _unknown(rs.unknown_options)
    return _with_checksum(out, src, dst)


# --- parsing ------------------------------------------------------------------------------------


def _prefix(raw: bytes, plen: int) -> IPv6Network:
    """Bits past the prefix length are reserved: ignored, as the receiver rules say."""
    value = int.from_bytes(raw.ljust(16, b"\0"), "big")
    mask = ((1 << plen) - 1) << (128 - plen) if plen else 0
    return IPv6Network((value & mask, plen))


def _parse_rio(body: bytes, units: int) -> RouteInformation | None:
    plen, flags, lifetime = struct.unpack_from("!BBI", body)
    if plen > 128:
        raise RaError(f"route information prefix length {plen} > 128")
    # RFC 4191 §2.3: Length 1, 2 or 3; >64 needs 3, >0 needs at least 2.
    if units > 3 or (plen > 64 and units < 3) or (plen > 0 and units < 2):
        raise RaError(f"route information length {units} does not fit prefix length {plen}")
    preference = RoutePreference((flags >> 3) & 0b11)
    if preference == RoutePreference.RESERVED:
        return None  # RFC 4191 §2.3: the option MUST be ignored
    return RouteInformation(_prefix(body[6:], plen), lifetime, preference)


def _parse_pio(body: bytes, units: int) -> PrefixInformation:
    if units != 4:
        raise RaError(f"prefix information length {units}, expected 4")
    plen, flags, valid, preferred = struct.unpack_from("!BBII", body)
    if plen > 128:
        raise RaError(f"prefix information prefix length {plen} > 128")
    return PrefixInformation(_prefix(body[14:30], plen), bool(flags & 0x80), bool(flags & 0x40), valid, preferred)


def _parse_pref64(body: bytes, units: int) -> Pref64 | None:
    """RFC 8781 §4: an option whose Length is not 2 or whose PLC is not listed is ignored (None)."""
    if units != 2:
        return None
    scaled_plc = struct.unpack_from("!H", body)[0]
    plen = PREF64_PLC_TO_LENGTH.get(scaled_plc & 0b111)
    if plen is None:
        return None
    return Pref64(_prefix(body[2:14], plen), (scaled_plc >> 3) * 8)


def _options(data: bytes) -> list[tuple[int, int, bytes]]:
    """Split the option area into (type, length in units, body after type/length)."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 2:
            raise RaError("truncated option header")
        opt_type, units = data[pos], data[pos + 1]
        if units == 0:
            raise RaError(f"option {opt_type} with length 0")  # RFC 4861 §4.6: silently discard the packet
        end = pos + units * 8
        if end > len(data):
            raise RaError(f"option {opt_type} runs past the end of the message")
        out.append((opt_type, units, data[pos + 2 : end]))
        pos = end
    return out


def parse(data: bytes, *, src: IPv6Address | str | None = None,
          dst: IPv6Address | str | None = None) -> RouterAdvertisement | RouterSolicitation:
    """Decode an RA or RS per the validity checks of RFC 4861 §6.1 that the bytes alone allow.

    Preferences are read as RFC 4191 §2.2-2.3 say: the router preference is medium when the router
    lifetime is 0 or the value is reserved, and a Route Information Option with the reserved preference
    is left out. The checksum is verified only when `src` and `dst` are both given. Hop limit 255 and a link-local
    source are properties of the IPv6 header, checked by whoever received the packet.
    """
    data = bytes(data)
    if len(data) < 8:
        raise RaError(f"{len(data)} bytes: too short for an ICMPv6 RS/RA")
    msg_type, code = data[0], data[1]
    if msg_type not in (ND_ROUTER_SOLICIT, ND_ROUTER_ADVERT):
        raise RaError(f"ICMPv6 type {msg_type} is not a Router Solicitation/Advertisement")
    if code != 0:
        raise RaError(f"ICMPv6 code {code}, expected 0")
    if src is not None and dst is not None:
        try:
            ok = icmpv6_checksum(src, dst, data) == 0
        except ipaddress.AddressValueError as exc:
            raise RaError(f"bad address for checksum: {exc}") from None
        if not ok:
            raise RaError("bad ICMPv6 checksum")
    if msg_type == ND_ROUTER_SOLICIT:
        lladdr = None
        unknown = []
        for opt_type, _units, body in _options(data[_RS_HEADER.size :]):
            if opt_type == ND_OPT_SOURCE_LINKADDR:
                lladdr = body
            else:
                unknown.append((opt_type, body))
        return RouterSolicitation(lladdr, tuple(unknown))

    if len(data) < _RA_HEADER.size:
        raise RaError(f"{len(data)} bytes: too short for a Router Advertisement")
    _, _, _, hop_limit, flags, lifetime, reachable, retrans = _RA_HEADER.unpack_from(data)
    # RFC 4191 §2.2: ignored when the router lifetime is 0; the reserved value reads as medium.
    router_preference = RoutePreference((flags >> 3) & 0b11) if lifetime else RoutePreference.MEDIUM
    if router_preference == RoutePreference.RESERVED:
        router_preference = RoutePreference.MEDIUM
    lladdr = None
    mtu = None
    routes: list[RouteInformation] = []
    prefixes: list[PrefixInformation] = []
    pref64: list[Pref64] = []
    unknown = []
    for opt_type, units, body in _options(data[_RA_HEADER.size :]):
        if opt_type == ND_OPT_SOURCE_LINKADDR:
            lladdr = body
        elif opt_type == ND_OPT_MTU:
            if units != 1:
                raise RaError(f"MTU option length {units}, expected 1")
            mtu = struct.unpack_from("!I", body, 2)[0]
        elif opt_type == ND_OPT_ROUTE_INFORMATION:
            route = _parse_rio(body, units)
            if route is not None:
                routes.append(route)
        elif opt_type == ND_OPT_PREFIX_INFORMATION:
            prefixes.append(_parse_pio(body, units))
        elif opt_type == ND_OPT_PREF64:
            pref = _parse_pref64(body, units)
            if pref is not None:
                pref64.append(pref)
        else:
            unknown.append((opt_type, body))
    return RouterAdvertisement(
        router_lifetime=lifetime, cur_hop_limit=hop_limit, managed=bool(flags & 0x80), other=bool(flags & 0x40),
        router_preference=router_preference, reachable_time=reachable, retrans_timer=retrans,
        source_lladdr=lladdr, mtu=mtu, routes=tuple(routes), prefixes=tuple(prefixes), pref64=tuple(pref64),
        unknown_options=tuple(unknown))
