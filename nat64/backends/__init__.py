"""NAT64 backends the daemon can run: ``builtin`` (gatewayd's own translator on a TUN) and ``tayga``
(Debian's tayga as a supervised child). Jool is not supported: it needs a kernel module that
neither the Raspberry Pi OS kernel nor these machines ship.
"""

BACKENDS = ("builtin", "tayga")

__all__ = ["BACKENDS"]
