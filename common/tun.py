"""TUN devices: the host side of the mesh (wpan0) and of the NAT64 translator.

One place for the ioctls so every TUN gatewayd makes behaves the same: layer 3 only
(IFF_TUN), no packet-information header (IFF_NO_PI), non-blocking.
"""

from __future__ import annotations

import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
TUNSETCARRIER = 0x400454E2
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_DEVICE = "/dev/net/tun"


def open_tun(name: str) -> int:
    """Create (or attach to) TUN ``name``; returns a non-blocking fd. Closing it removes the device."""
    fd = os.open(CLONE_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def set_carrier(fd: int, up: bool) -> bool:
    """Carrier on/off without taking the interface down, so addresses and routes stay
    configured while the mesh is unreachable. False when the kernel lacks TUNSETCARRIER."""
    try:
        fcntl.ioctl(fd, TUNSETCARRIER, struct.pack("i", int(up)))
    except OSError:
        return False
    return True
