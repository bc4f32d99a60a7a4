"""DNS64 (RFC 6147): synthesizes AAAA records in the NAT64 prefix for IPv4-only names."""

from nat64.dns64 import _dnspython  # noqa: F401  (first: before dnspython is imported)
from nat64.dns64.config import WELL_KNOWN_PREFIX, Dns64Config, Dns64ConfigError
from nat64.dns64.server import Dns64Server
from nat64.dns64.synthesis import Dns64Policy
from nat64.dns64.wire import Dns64WireError

__all__ = [
    "WELL_KNOWN_PREFIX",
    "Dns64Config",
    "Dns64ConfigError",
    "Dns64Policy",
    "Dns64Server",
    "Dns64WireError",
]
