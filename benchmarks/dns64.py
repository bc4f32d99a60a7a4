"""Cached-answer throughput of the DNS64 server against Debian unbound's dns64 module.

Both forward to the same loopback authoritative test server and use 64:ff9b::/96.
First both must give the same AAAA sets for every name; then dnsperf (a C load generator,
64 queries in flight, EDNS) replays the query set against each in turn, alternating for
--rounds rounds, and the figure is the best answered queries/s of each: the ratio
dns64/unbound is the primary result (target >= 1.0). A Python load generator then gives
the speed-up of the wire fast path over the parsed cache path. The server runs in its own
process, as does unbound (num-threads 1). With --busy one process spins on one core for the
whole run, the same for both sides (benchmarks/_busy.py).

    .venv/bin/python benchmarks/dns64.py [--busy] [--seconds S] [--rounds N]
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
from _busy import busy, describe  # noqa: E402  (this script's folder is on sys.path)

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


def dnsperf(port: int, seconds: float, host: str = "127.0.0.1") -> tuple[float, int]:
    """Queries/s dnsperf reaches on the query set, and how many of its queries were lost."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("".join(f"{name}.example.test AAAA\n" for name in NAMES))
        f.flush()
        cmd = ["dnsperf", "-s", host, "-p", str(port), "-d", f.name, "-l", str(seconds), "-e", "-q", "64"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    qps, lost = 0.0, 0
    for line in run.stdout.splitlines():
        if "Queries per second:" in line:
            qps = float(line.split(":")[1])
        elif "Queries lost:" in line:
            lost = int(line.split(":")[1].split()[0])
    if qps <= 0:
        print(f"  dnsperf failed on port {port}: {run.stdout[-400:]} {run.stderr[-400:]}")
    return qps, lost


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
    if not shutil.which("dnsperf"):
        print("dnsperf is not installed (scripts/setup.sh installs it)")
        return 1
    with busy(args.busy) as cpu:
        print(describe(cpu))
        return await measure(args)


async def measure(args: argparse.Namespace) -> int:
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
                if same != len(NAMES):
                    print("not measuring: the answers differ")
                    return 2
                wires = queries()
                for port in (ours, parsed, unbound.port):  # warm the EDNS variants into every cache
                    await asyncio.to_thread(load, "127.0.0.1", port, wires, len(wires), 5)
                # The primary figure: dnsperf, alternating sides, best round of each.
                perf: dict[str, list[tuple[float, int]]] = {"dns64": [], "unbound": []}
                for _ in range(args.rounds):
                    for label, port in (("dns64", ours), ("unbound", unbound.port)):
                        perf[label].append(await asyncio.to_thread(dnsperf, port, args.seconds))
                # Secondary: the fast path against the parsed cache path, with the Python load generator.
                results: dict[str, list[float]] = {"dns64": [], "dns64-no-fast-path": []}
                for _ in range(args.py_rounds):
                    for label, port in (("dns64", ours), ("dns64-no-fast-path", parsed)):
                        count = args.count if label == "dns64" else args.count // 10
                        qps, bad = await asyncio.to_thread(load, "127.0.0.1", port, wires, count, 10.0)
                        if bad:
                            print(f"  {label}: {bad} answers with an error RCODE")
                        results[label].append(qps)
            print(f"dnsperf, {args.seconds:g} s per round, 64 queries in flight, {len(NAMES)} cached AAAA names:")
            for k, v in perf.items():
                rounds = " ".join(f"{q:.0f}" + (f" ({lost} lost)" if lost else "") for q, lost in v)
                print(f"  {k:9s} {max(q for q, _ in v):8.0f} queries/s best (rounds: {rounds})")
            ratio = max(q for q, _ in perf["dns64"]) / max(max(q for q, _ in perf["unbound"]), 1)
            print(f"ratio dns64/unbound (dnsperf, cached AAAA over UDP): {ratio:.2f} (target >= 1.0) -> "
                  f"{'met' if ratio >= 1.0 else 'MISSED'}")
            best = {k: max(v) for k, v in results.items()}
            print(f"Python load generator: dns64 {best['dns64']:.0f} q/s, parsed cache path "
                  f"{best['dns64-no-fast-path']:.0f} q/s: fast path speed-up "
                  f"{best['dns64'] / best['dns64-no-fast-path']:.1f}x")
            return 0
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
    p.add_argument("--busy", action="store_true", help="keep one core occupied for the whole run (both sides)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each dnsperf round")
    p.add_argument("--rounds", type=int, default=3, help="dnsperf rounds per side")
    p.add_argument("--count", type=int, default=20000, help="queries per Python load generator measurement")
    p.add_argument("--py-rounds", type=int, default=2, help="Python load generator rounds")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--no-fast-path", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        asyncio.run(serve(a.serve, not a.no_fast_path))
    else:
        sys.exit(asyncio.run(main(a)))
