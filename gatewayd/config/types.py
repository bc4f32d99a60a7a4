"""Value types for the configuration schema.

Each type turns a TOML value into the value the daemon uses, or raises
``ValueError`` with the "expected ..., got ..." half of the error message; the
loader adds file, line and key path.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


def shown(value: Any) -> str:
    """The value as the user wrote it, TOML-ish, for error messages."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


class ValueType:
    """Base class: `expected` names the type in errors and in the documentation."""

    expected: str = "a value"

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def fail(self, value: Any, expected: str | None = None) -> ValueError:
        return ValueError(f"expected {expected or self.expected}, got {shown(value)}")


@dataclass(frozen=True)
class Int(ValueType):
    min: int | None = None
    max: int | None = None
    octal: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        if self.min is not None and self.max is not None:
            return f"an integer from {self.min} to {self.max}"
        if self.min is not None:
            return f"an integer ≥ {self.min}"
        return "an integer"

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise self.fail(value)
        return value


@dataclass(frozen=True)
class Float(ValueType):
    """A number; NaN and ±infinity (TOML's nan, inf, -inf) are never accepted, whatever the range."""

    min: float | None = None
    max: float | None = None

    @property
    def expected(self) -> str:  # type: ignore[override]
        if self.min is not None and self.max is not None:
            return f"a number from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"a number ≥ {self.min:g} (not inf or nan)"
        return "a number (not inf or nan)"

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(value)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise self.fail(value) from None
        if not math.isfinite(number):
            raise self.fail(value)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise self.fail(value)
        return number


@dataclass(frozen=True)
class Bool(ValueType):
    expected = "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(value)
        return value


@dataclass(frozen=True)
class Str(ValueType):
    choices: tuple[str, ...] = ()
    validate: Callable[[str], Any] | None = None
    what: str = "a string"

    @property
    def expected(self) -> str:  # type: ignore[override]
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        return self.what

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self.fail(value)
        if self.choices and value not in self.choices:
            raise self.fail(value)
        if self.validate is not None:
            try:
                return self.validate(value)
            except ValueError as exc:
                raise ValueError(f"expected {self.what}, got {shown(value)} ({exc})") from None
        return value


@dataclass(frozen=True)
class List(ValueType):
    item: ValueType

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"an array, each {self.item.expected}"

    def check(self, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(value)
        out = []
        for element in value:
            try:
                out.append(self.item.check(element))
            except ValueError:
                raise self.fail(element, f"{self.expected} (bad element)") from None
        return out


@dataclass(frozen=True)
class InlineTable(ValueType):
    """A TOML inline table with known fields, e.g. ``{ get = "/sensors/temp", type = "float" }``."""

    fields: tuple[tuple[str, ValueType], ...]
    what: str = "an inline table"

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"{self.what} with fields " + ", ".join(name for name, _ in self.fields)

    def check(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(value)
        types = dict(self.fields)
        out = {}
        for name, item in value.items():
            if name not in types:
                import difflib

                close = difflib.get_close_matches(name, list(types), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValueError(f"unknown field {name!r}{hint}; fields are " + ", ".join(types))
            try:
                out[name] = types[name].check(item)
            except ValueError as exc:
                raise ValueError(f"field {name}: {exc}") from None
        return out


@dataclass(frozen=True)
class Table(ValueType):
    """A table whose key names are free (each checked by ``key``) and whose values all have type ``value``."""

    value: ValueType
    key: Callable[[str], Any] | None = None
    what_key: str = "name"

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"a table of {self.what_key} = {self.value.expected}"

    def check(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(value)
        out = {}
        for name, item in value.items():
            if self.key is not None:
                try:
                    self.key(name)
                except ValueError as exc:
                    raise ValueError(f"{name!r}: expected a {self.what_key} ({exc})") from None
            try:
                out[name] = self.value.check(item)
            except ValueError as exc:
                raise ValueError(f"{name!r}: {exc}") from None
        return out


@dataclass(frozen=True)
class NcpUrl(ValueType):
    """``[ncp] url``: checked by the ncp library's own parser, so only URLs the daemon can open pass."""

    @property
    def expected(self) -> str:  # type: ignore[override]
        from ncp.links.url import SCHEMES  # imported late: ncp.links brings asyncio, gatewayctl need not

        schemes = [f"{scheme}://" for scheme in SCHEMES]
        return f"a {', '.join(schemes[:-1])} or {schemes[-1]} URL"

    def check(self, value: Any) -> str:
        from ncp.links.url import SCHEMES, parse_link_url

        if not isinstance(value, str):
            raise self.fail(value)
        if not value.strip():
            raise ValueError(f"expected {self.expected}, got {shown(value)} (empty)")
        scheme = urlsplit(value.strip()).scheme
        if not scheme:
            raise ValueError(f"expected {self.expected}, got {shown(value)} (no scheme)")
        if scheme.lower() not in SCHEMES:
            raise ValueError(f"expected {self.expected}, got {shown(value)} (unknown scheme {scheme})")
        try:
            parse_link_url(value)
        except ValueError as exc:
            reason = str(exc).removeprefix(f"NCP url {value!r}: ")
            raise ValueError(f"expected {self.expected}, got {shown(value)} ({reason})") from None
        return value


#: UDP, DTLS, and CoAP over TCP and TLS (RFC 8323)
LWM2M_SCHEMES = ("coap", "coaps", "coap+tcp", "coaps+tcp")


def _lwm2m_uri_or_empty(text: str) -> str:
    """A LwM2M (bootstrap) server URI: coap://, coaps://, coap+tcp:// or coaps+tcp:// and a host, the scheme in
    lower case."""
    if not text:
        return text
    if any(c.isspace() for c in text):
        raise ValueError("contains spaces")
    parts = urlsplit(text)  # ValueError for a broken [IPv6] host
    if not parts.scheme:
        raise ValueError("no scheme")
    if parts.scheme not in LWM2M_SCHEMES:
        raise ValueError(f"scheme {text.partition(':')[0]} is not coap, coaps, coap+tcp or coaps+tcp")
    if not parts.hostname:
        raise ValueError("no host")
    if parts.port == 0:  # .port raises ValueError for a port out of range or not a number
        raise ValueError("port 0")
    return parts.scheme + text[len(parts.scheme):]


def _ipv6_network(text: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(text)


def _nat64_prefix(text: str) -> ipaddress.IPv6Network:
    prefix = ipaddress.IPv6Network(text)
    if prefix.prefixlen not in (32, 40, 48, 56, 64, 96):
        raise ValueError("RFC 6052 allows /32, /40, /48, /56, /64 or /96")
    return prefix


def _ipv6_network_or_empty(text: str) -> ipaddress.IPv6Network | None:
    return ipaddress.IPv6Network(text) if text else None


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def _ip_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def _ipv4_network(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def _hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError("not hexadecimal") from None


def _endpoint(text: str) -> str:
    """host, host:port, [v6]:port or a bare IPv6 address."""
    if not text or any(c.isspace() for c in text):
        raise ValueError("empty or contains spaces")
    return text


def _interface(text: str) -> str:
    if not 0 < len(text) < 16 or "/" in text or any(c.isspace() for c in text):
        raise ValueError("1 to 15 characters, no / or space")
    return text


def _lwm2m_resource_path(text: str) -> str:
    from gatewayd.lwm2m.paths import LwM2MPath

    if not LwM2MPath.parse(text).is_resource:
        raise ValueError("not /object/instance/resource")
    return text


def _coap_path(text: str) -> str:
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise ValueError("starts with / and has no spaces")
    return text


def _json_pointer(text: str) -> str:
    if text and not text.startswith("/"):
        raise ValueError('"" or starting with /')
    return text


def _ipv6_address_or_empty(text: str) -> str:
    if text:
        ipaddress.IPv6Address(text)
    return text


def _eui64_or_empty(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", "").replace("-", "")) if text else b""
    if text and len(raw) != 8:
        raise ValueError("8 bytes")
    return raw


def _pskd_or_empty(text: str) -> str:
    from ncp.commissioning import check_pskd

    return check_pskd(text) if text else text


def _url_or_empty(text: str) -> str:
    """A provisioning URL (Thread: at most 64 bytes of UTF-8), or ""."""
    if text and (not urlsplit(text).scheme or any(c.isspace() for c in text)):
        raise ValueError("not scheme://...")
    if len(text.encode()) > 64:
        raise ValueError("longer than 64 bytes")
    return text


def _joiner(text: str) -> str:
    from ncp.commissioning import parse_joiner

    eui64 = parse_joiner(text)
    return eui64.hex() if eui64 is not None else text


NCP_URL = NcpUrl()
LWM2M_URI_OR_EMPTY = Str(validate=_lwm2m_uri_or_empty,
                         what='a coap://, coaps://, coap+tcp:// or coaps+tcp:// URI such as coap://host:5683, or ""')
IPV6_NETWORK = Str(validate=_ipv6_network, what="an IPv6 prefix such as 64:ff9b::/96")
NAT64_PREFIX = Str(validate=_nat64_prefix, what="an IPv6 prefix such as 64:ff9b::/96")
IPV6_NETWORK_OR_EMPTY = Str(validate=_ipv6_network_or_empty, what='an IPv6 prefix, or "" for automatic')
IPV4_NETWORK = Str(validate=_ipv4_network, what="an IPv4 address or prefix such as 192.168.255.1/32")
IP_ADDRESS = Str(validate=_ip_address, what="an IP address")
IP_NETWORK = Str(validate=_ip_network, what="an IP prefix such as fd00::/8")
HEX = Str(validate=_hex, what="hexadecimal bytes")
HOST_PORT = Str(validate=_endpoint, what='"address" or "address:port"')
INTERFACE = Str(validate=_interface, what="an interface name")
LWM2M_RESOURCE_PATH = _lwm2m_resource_path
COAP_PATH = Str(validate=_coap_path, what='a CoAP path such as "/sensors/temp"')
JSON_POINTER = Str(validate=_json_pointer, what='a JSON pointer such as "/temp"')
IPV6_ADDRESS_OR_EMPTY = Str(validate=_ipv6_address_or_empty, what='an IPv6 address, or ""')
EUI64_OR_EMPTY = Str(validate=_eui64_or_empty, what='an EUI-64 such as "0011223344556677", or ""')
LEVEL = Str(choices=("debug", "info", "notice", "warning", "error"))
PSKD_OR_EMPTY = Str(validate=_pskd_or_empty,
                    what='a Thread joiner credential (PSKd: 6 to 32 uppercase letters and digits without I, O, Q, '
                         'Z), or ""')
JOINER = Str(validate=_joiner, what='"*" (any device) or an EUI-64 such as "0011223344556677"')
URL_OR_EMPTY = Str(validate=_url_or_empty, what='a URL of at most 64 bytes such as "https://example.com/join", or ""')
