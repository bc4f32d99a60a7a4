"""A _meshcop._udp browser in a LAN namespace (devtools.testbed.mdns_browser), for the border agent's tests."""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import Any

from devtools.testbed import Testbed
from ncp.border_agent import StateBitmap


class Browser:
    """devtools.testbed.mdns_browser in a namespace: the changes it reports, one JSON object each."""

    def __init__(self, bed: Testbed, ns: str):
        self.proc = bed.spawn(ns, sys.executable, "-m", "devtools.testbed.mdns_browser", "_meshcop._udp.local.")
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != b"ready":
            raise AssertionError(f"the browser did not start: {line!r} {self.proc.stderr.read().decode()[-800:]}")
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait(self, *changes: str, timeout: float = 20, where: Any = None) -> dict[str, Any]:
        """The next reported change of one of those kinds (for which ``where(event)`` holds, if given)."""
        while True:
            try:
                event = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"the browser reported no {'/'.join(changes)} within {timeout} s") from None
            if event["change"] in changes and (where is None or where(event)):
                return event


def bitmap(event: dict[str, Any]) -> StateBitmap:
    return StateBitmap.from_int(int.from_bytes(txt(event)["sb"], "big"))


def txt(event: dict[str, Any]) -> dict[str, bytes | None]:
    return {k: bytes.fromhex(v) if v is not None else None for k, v in event["txt"]}


# A DTLS 1.2 ClientHello offering TLS_ECJPAKE_WITH_AES_128_CCM_8 (Thread's commissioning suite), no cookie.
_HELLO_BODY = bytes.fromhex("fefd") + bytes(32) + bytes.fromhex("00" "00" "0002c0ff" "0100")
_HANDSHAKE = bytes([1]) + len(_HELLO_BODY).to_bytes(3, "big") + bytes(2) + bytes(3) \
    + len(_HELLO_BODY).to_bytes(3, "big") + _HELLO_BODY
CLIENT_HELLO = bytes([22]) + bytes.fromhex("fefd") + bytes(8) + len(_HANDSHAKE).to_bytes(2, "big") + _HANDSHAKE

# OpenThread's DTLS server (mbedTLS) answers that hello, which lacks EC-JPAKE's key share, with a fatal
# handshake_failure alert: DTLS 1.2 record, epoch 0, sequence 0.
DTLS_HANDSHAKE_FAILURE = bytes.fromhex("15" "fefd" "0000" "000000000000" "0002" "02" "28")

_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[4]))
for _ in range(3):  # DTLS's own retransmission, in short
    s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recv(2048).hex())
        break
    except TimeoutError:
        pass
"""


def dtls_hello(bed: Testbed, ns: str, host: str, port: int, timeout: float = 3.0) -> bytes:
    """What a DTLS server at [host]:port answers a ClientHello with, from namespace ``ns`` (b"" for nothing)."""
    out = bed.run(ns, sys.executable, "-c", _SEND, host, str(port), CLIENT_HELLO.hex(), str(timeout)).stdout
    return bytes.fromhex(out.strip())
