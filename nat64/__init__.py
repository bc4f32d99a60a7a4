"""NAT64 for the border router: RFC 6052 addressing, RFC 7915 translation, RFC 6146 state."""

from nat64.rfc6052 import WELL_KNOWN_PREFIX, Nat64Prefix, Rfc6052Error
from nat64.state import Caps, Timeouts
from nat64.translator import Nat64, Output, Side

__all__ = ["WELL_KNOWN_PREFIX", "Caps", "Nat64", "Nat64Prefix", "Output", "Rfc6052Error", "Side", "Timeouts"]
