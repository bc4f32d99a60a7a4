"""The shared radio's air: UDP datagrams on 127.0.0.1 inside the mesh namespace.

Simulated NCPs started with the same ``--radio PORT`` in the same namespace hear each other: each binds
the first free port of PORT .. PORT+SLOTS-1 and sends every announcement to the others, as OpenThread's
simulated radio uses one loopback UDP port per node.  The socket is made inside the mesh namespace (the
NCP process itself runs in its host's), so different meshes with the same PORT stay apart.
"""

from __future__ import annotations

import contextlib
import logging
import socket

__all__ = ["SLOTS", "RadioSocket"]

log = logging.getLogger(__name__)

SLOTS = 8
HOST = "127.0.0.1"


class RadioSocket:
    def __init__(self, port: int, netns: str | None = None) -> None:
        if not 1 <= port <= 65535 - SLOTS:
            raise ValueError(f"radio port must be in 1..{65535 - SLOTS}")
        self.port = port
        self.netns = netns
        self.sock: socket.socket | None = None
        self.slot: int | None = None

    def open(self) -> int:
        if self.netns:
            from pyroute2.netns import popns, pushns  # a socket belongs to the namespace it was made in

            pushns(self.netns)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            finally:
                popns()
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for slot in range(SLOTS):
            try:
                sock.bind((HOST, self.port + slot))
            except OSError:
                continue
            self.slot = slot
            break
        else:
            sock.close()
            raise OSError(f"all {SLOTS} radio ports from {self.port} are taken: use another --radio port")
        sock.setblocking(False)
        self.sock = sock
        log.info("shared radio on %s:%d (ports %d..%d)", HOST, self.port + self.slot, self.port,
                 self.port + SLOTS - 1)
        return sock.fileno()

    def send(self, datagram: bytes) -> None:
        if self.sock is None:
            return
        for slot in range(SLOTS):
            if slot != self.slot:
                with contextlib.suppress(OSError):  # nobody there: the air does not care
                    self.sock.sendto(datagram, (HOST, self.port + slot))

    def recv(self) -> bytes | None:
        if self.sock is None:
            return None
        while True:
            try:
                return self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return None
            except ConnectionRefusedError:
                continue

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
