"""Traffic through NAT64: servers for the IPv4 side, clients for the IPv6 side, run inside a testbed
namespace (``python -m devtools.testbed.nat64_peer``).

Each client subcommand prints one JSON object. Servers print "ready" once listening.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time


def _blob(n: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


def udp_echo(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(65535)
        s.sendto(data, addr)


def _tcp_conn(c: socket.socket) -> None:
    with c:
        hdr = b""
        while len(hdr) < 8:
            chunk = c.recv(8 - len(hdr))
            if not chunk:
                return
            hdr += chunk
        n_in, n_out = int.from_bytes(hdr[:4], "big"), int.from_bytes(hdr[4:], "big")
        h = hashlib.sha256()
        got = 0
        while got < n_in:
            chunk = c.recv(65536)
            if not chunk:
                return
            h.update(chunk)
            got += len(chunk)
        c.sendall(h.digest() + _blob(n_out, 2))


def tcp_server(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(8)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=_tcp_conn, args=(c,), daemon=True).start()


def _udp6(sport: int) -> socket.socket:
    """A UDP socket, bound to ``sport`` when not 0: a test that counts flows names them by their
    source ports, since two clients run one after the other may be given the same ephemeral port
    (the same 5-tuple, so the same NAT64 session)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if sport:
        s.bind(("::", sport))
    return s


def udp_client(addr: str, port: int, count: int, sport: int = 0) -> dict:
    s = _udp6(sport)
    s.settimeout(2.0)
    s.connect((addr, port))
    ok = 0
    for i in range(count):
        msg = f"datagram {i}".encode() * 10
        s.send(msg)
        try:
            if s.recv(65535) == msg:
                ok += 1
        except OSError:
            pass
    return {"sent": count, "echoed": ok, "local_port": s.getsockname()[1]}


def udp_error(addr: str, port: int, sport: int = 0) -> dict:
    """Send to a port and report the socket error the kernel derived from an ICMPv6 error."""
    s = _udp6(sport)
    s.settimeout(3.0)
    s.connect((addr, port))
    for _ in range(3):
        s.send(b"anyone?")
        try:
            s.recv(100)
            return {"error": None}
        except ConnectionRefusedError:
            return {"error": "ECONNREFUSED"}
        except PermissionError:
            return {"error": "EACCES"}
        except TimeoutError:
            continue
        except OSError as exc:
            return {"error": f"errno {exc.errno}"}
    return {"error": "timeout"}


def tcp_client(addr: str, port: int, n_out: int, n_in: int) -> dict:
    t0 = time.monotonic()
    with socket.create_connection((addr, port), timeout=30) as c:
        data = _blob(n_out, 1)
        c.sendall(n_out.to_bytes(4, "big") + n_in.to_bytes(4, "big") + data)
        buf = bytearray()
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
    return {
        "sent_intact": bytes(buf[:32]) == hashlib.sha256(data).digest(),
        "received_intact": bytes(buf[32:]) == _blob(n_in, 2),
        "received": len(buf) - 32,
        "seconds": round(time.monotonic() - t0, 3),
    }


def main() -> None:
    cmd, *args = sys.argv[1:]
    if cmd == "udp-echo":
        udp_echo(int(args[0]))
    elif cmd == "tcp-server":
        tcp_server(int(args[0]))
    elif cmd == "udp-client":
        print(json.dumps(udp_client(args[0], int(args[1]), int(args[2]), *map(int, args[3:4]))))
    elif cmd == "udp-error":
        print(json.dumps(udp_error(args[0], int(args[1]), *map(int, args[2:3]))))
    elif cmd == "tcp-client":
        print(json.dumps(tcp_client(args[0], int(args[1]), int(args[2]), int(args[3]))))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
