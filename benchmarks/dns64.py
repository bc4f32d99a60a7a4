"""Cached-answer throughput of the DNS64 server against Debian unbound's dns64 module.

Both forward to the same loopback authoritative test server and use 64:ff9b::/96.
After one warm-up pass (which also checks both give the same AAAA sets), a UDP load
generator replays the query set against each; the figure is answered queries/s.
The server runs in its own process, as does unbound (num-threads 1).

    .venv/bin/python benchmarks/dns64.py [--count N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dns.asyncquery  # noqa: E402
import dns.message  # noqa: E402
import dns.rdatatype  # noqa: E402

from devtools.dns_zone import Unbound, ZoneServer  # noqa: E402
from nat64.dns64 import Dns64Config, Dns64Server  # noqa: E402

N_V4 = 200
ZONE = "\n".join(
    [
        "$TTL 3600",
        "@ SOA ns host 1 3600 600 86400 3600",
        "@ NS ns",
        "ns A 93.184.216.1",
        *(f"h{i} A 93.184.{i // 200 + 100}.{i % 200 + 1}" for i in range(N_V4)),
        *(f"d{i} A 93.184.99.{i + 1}\nd{i} AAAA 2001:db8::{i + 1:x}" for i in range(20)),
        *(f"c{i} CNAME h{i}" for i in range(20)),
        "multi A 93.184.98.1\nmulti A 93.184.98.2\nmulti A 93.184.98.3",
    ]
)
NAMES = [f"h{i}" for i in range(N_V4)] + [f"d{i}" for i in range(20)] + [f"c{i}" for i in range(20)] + ["multi"]


def queries() -> list[bytes]:
    """An EDNS AAAA query for every name."""
    return [
        dns.message.make_query(f"{name}.example.test", "AAAA", use_edns=0, payload=1232).to_wire() for name in NAMES
    ]


def load(host: str, port: int, wires: list[bytes], count: int, seconds: float, window: int = 64) -> tuple[float, int]:
    """Answered queries/s and the number of non-NOERROR answers, `window` queries in flight."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(0.5)
    sent = got = bad = outstanding = 0
    n = len(wires)

    def send() -> None:
        nonlocal sent, outstanding
        s.send(struct.pack("!H", sent & 0xFFFF) + wires[sent % n][2:])
        sent += 1
        outstanding += 1

    t0 = time.perf_counter()
    deadline = t0 + seconds
    while outstanding < window and sent < count:
        send()
    while outstanding and time.perf_counter() < deadline:
        try:
            data = s.recv(65535)
        except TimeoutError:
            outstanding = 0  # answers lost in flight: refill the window
            while outstanding < window and sent < count:
                send()
            continue
        got += 1
        outstanding -= 1
        if data[3] & 0x0F:
            bad += 1
        if sent < count:
            send()
    elapsed = time.perf_counter() - t0
    s.close()
    return got / elapsed, bad


def dnsperf(port: int, seconds: float) -> float:
    """Queries/s dnsperf reaches on the same query set (a C load generator, as a cross-check)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("".join(f"{name}.example.test AAAA\n" for name in NAMES))
        f.flush()
        cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", f.name, "-l", str(seconds), "-e", "-q", "64"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    for line in run.stdout.splitlines():
        if "Queries per second:" in line and float(line.split(":")[1]) > 0:
            return float(line.split(":")[1])
    print(f"  dnsperf failed on port {port}: {run.stdout[-400:]} {run.stderr[-400:]}")
    return 0.0


async def answers(host: str, port: int) -> dict[str, frozenset[str]]:
    out = {}
    for name in NAMES:
        q = dns.message.make_query(f"{name}.example.test", "AAAA")
        r = await dns.asyncquery.udp(q, host, port=port, timeout=3)
        out[name] = frozenset(rd.address for rr in r.answer if rr.rdtype == dns.rdatatype.AAAA for rd in rr)
    return out


async def serve(upstream: str, fast_path: bool) -> None:
    """Child-process mode: run the DNS64 server until stdin closes."""
    config = Dns64Config(
        upstreams=[upstream], listen=[("127.0.0.1", 0)], allowed=["127.0.0.0/8"], fast_path=fast_path
    )
    server = Dns64Server(config)
    await server.start()
    print(server.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()


async def main(args: argparse.Namespace) -> int:
    if Unbound.available() is None:
        print("unbound is not installed (scripts/setup.sh installs it)")
        return 1
    async with ZoneServer({"example.test.": ZONE}) as zone:
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--serve", zone.address, *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            for extra in ([], ["--no-fast-path"])
        ]
        try:
            ours, parsed = [
                int(await asyncio.wait_for(asyncio.to_thread(c.stdout.readline), 10)) for c in children
            ]
            async with Unbound(("127.0.0.1", zone.port), dns64_prefix="64:ff9b::/96") as unbound:
                a, b = await answers("127.0.0.1", ours), await answers("127.0.0.1", unbound.port)
                await answers("127.0.0.1", parsed)
                same = sum(a[n] == b[n] for n in NAMES)
                synthesized = sum(any(x.startswith("64:ff9b::") for x in a[n]) for n in NAMES)
                print(f"answers: {same}/{len(NAMES)} names give the same AAAA set ({synthesized} synthesized)")
                for n in NAMES:
                    if a[n] != b[n]:
                        print(f"  differs: {n}: dns64={sorted(a[n])} unbound={sorted(b[n])}")
                wires = queries()
                for port in (ours, parsed, unbound.port):  # warm the EDNS variants into every cache
                    await asyncio.to_thread(load, "127.0.0.1", port, wires, len(wires), 5)
                results: dict[str, list[float]] = {"dns64": [], "dns64-no-fast-path": [], "unbound": []}
                for _ in range(args.rounds):
                    for label, port in (("dns64", ours), ("unbound", unbound.port), ("dns64-no-fast-path", parsed)):
                        count = args.count if label != "dns64-no-fast-path" else args.count // 10
                        qps, bad = await asyncio.to_thread(load, "127.0.0.1", port, wires, count, args.seconds)
                        if bad:
                            print(f"  {label}: {bad} answers with an error RCODE")
                        results[label].append(qps)
                perf = {}
                if shutil.which("dnsperf"):
                    for label, port in (("dns64", ours), ("unbound", unbound.port)):
                        perf[label] = await asyncio.to_thread(dnsperf, port, min(args.seconds, 5.0))
            for k, v in results.items():
                rounds = " ".join(f"{x:.0f}" for x in v)
                print(f"{k:19s} {max(v):8.0f} queries/s best (rounds: {rounds})")
            best = {k: max(v) for k, v in results.items()}
            ratio = best["dns64"] / best["unbound"]
            print(f"ratio dns64/unbound (cached AAAA over UDP, same load generator): {ratio:.2f} (target >= 0.5)")
            print(f"fast path speed-up over the parsed cache path: {best['dns64'] / best['dns64-no-fast-path']:.1f}x")
            if perf:
                print(f"dnsperf: dns64 {perf['dns64']:.0f} q/s, unbound {perf['unbound']:.0f} q/s, "
                      f"ratio {perf['dns64'] / max(perf['unbound'], 1):.2f}")
            else:
                print("dnsperf not installed: skipped its cross-check")
            return 0 if same == len(NAMES) else 2
        finally:
            for c in children:
                c.stdin.close()
                try:
                    c.wait(5)
                except subprocess.TimeoutExpired:
                    c.kill()
                    c.wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20000, help="queries per measurement")
    p.add_argument("--seconds", type=float, default=10.0, help="time limit per measurement")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--no-fast-path", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        asyncio.run(serve(a.serve, not a.no_fast_path))
    else:
        sys.exit(asyncio.run(main(a)))
