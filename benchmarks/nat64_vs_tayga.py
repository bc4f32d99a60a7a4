"""gatewayd's NAT64 and DNS64 against Tayga and unbound, in the same run on the same topology.

The end-to-end testbed (mesh ns ←Spinel pty→ br ns running gatewayd ←veth→ IPv4-only inet ns) runs
gatewayd twice, ``[nat64] backend = "builtin"`` then ``"tayga"``. Traffic starts in the br namespace
(the Spinel pty would be the bottleneck otherwise) and is translated by whichever backend runs:

- NAT64 CPU per translated packet: CPU time of the translating process (gatewayd for builtin, tayga
  for tayga) over a UDP flood of a few seconds at the sender's top rate, divided by the packets it
  translated; and packets/s delivered at an IPv4 sink. Ratio builtin/tayga (target: at most 1.0).
- Added latency: p50/p99 round trip of a UDP echo through NAT64 less the same over plain IPv4
  (target: builtin's added p99 at most Tayga's).
- DNS64: cached AAAA answers/s measured by dnsperf from gatewayd's DNS64 against unbound with its
  dns64 module (same prefix, same upstream in the inet namespace, same query set as
  benchmarks/dns64.py), after checking both give the same AAAA sets. Ratio (target at least 1.0).

With ``--busy`` one process spins on one core for the whole run, both backends and both DNS64 servers
alike (benchmarks/_busy.py).

Run as root: ``.venv/bin/python benchmarks/nat64_vs_tayga.py [--busy] [--seconds S] [--pings N]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _busy import busy, describe  # noqa: E402  (this script's folder is on sys.path)
from nat64_translator import SINK, SINK_PORT  # noqa: E402  (the same UDP sink)

PY = sys.executable
DNS_LISTEN = "127.0.0.53"
DNS_PORT = 5300

FLOOD = textwrap.dedent("""
    import socket, sys, time
    dst, seconds, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.connect((dst, SINK_PORT))
    data = b"f" * size
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < seconds:
        for _ in range(256):
            try:
                s.send(data)
            except OSError:
                pass
        sent += 256
    print(sent / (time.monotonic() - t0), flush=True)
""").replace("SINK_PORT", str(SINK_PORT))

RTT = textwrap.dedent("""
    import json, socket, sys, time
    dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.connect((dst, port))
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        s.send(b"rtt %d" % i)
        try:
            s.recv(100)
        except TimeoutError:
            continue
        out.append(time.perf_counter() - t0)
    print(json.dumps(out))
""")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def dns64_bench():
    path = ROOT / "benchmarks" / "dns64.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("dns64_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# --- the DNS64 half runs inside the br namespace ------------------------------------------------------

async def dns_child(upstream: str, prefix: str, seconds: float, rounds: int) -> dict:
    from devtools.dns_zone import Unbound

    bench = dns64_bench()
    host, port = upstream.rsplit(":", 1)
    async with Unbound((host, int(port)), dns64_prefix=prefix) as unbound:
        ours = await bench.answers(DNS_LISTEN, DNS_PORT)
        theirs = await bench.answers("127.0.0.1", unbound.port)
        same = sum(ours[n] == theirs[n] for n in bench.NAMES)
        differs = {n: (sorted(ours[n]), sorted(theirs[n])) for n in bench.NAMES if ours[n] != theirs[n]}
        wires = bench.queries()
        bench.load(DNS_LISTEN, DNS_PORT, wires, len(wires), 5)  # warm the EDNS variants into both caches
        bench.load("127.0.0.1", unbound.port, wires, len(wires), 5)
        best = {"dns64": 0.0, "unbound": 0.0}
        for _ in range(rounds):
            for label, (h, p) in (("dns64", (DNS_LISTEN, DNS_PORT)), ("unbound", ("127.0.0.1", unbound.port))):
                qps, _lost = bench.dnsperf(p, seconds, host=h)
                best[label] = max(best[label], qps)
    return {"names": len(bench.NAMES), "same": same, "differs": differs, **best}


# --- orchestration --------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    with busy(args.busy) as cpu:
        results, direct = measure(args)
    print(describe(cpu))
    report(results, direct)
    return 0


def measure(args: argparse.Namespace) -> tuple[dict, list[float]]:
    from tests.conftest import wait_until
    from tests.e2e_nat64.conftest import INET4, INET6, PREFIX, UDP_PORT, Nat64Topology, nat64_toml

    bench = dns64_bench()
    with tempfile.TemporaryDirectory() as tmp:
        topo = Nat64Topology(Path(tmp))
        try:
            topo.setup()
            if bench is not None:  # the benchmark's zone, served next to the test zone's server
                zone = topo.spawn(topo.inet, PY, "-c", "import asyncio,sys\n"
                                  f"sys.path.insert(0, {str(ROOT)!r})\n"
                                  "from devtools.dns_zone import ZoneServer\n"
                                  f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
                                  "import dns64\n"
                                  "async def main():\n"
                                  f"    async with ZoneServer({{'example.test.': dns64.ZONE}}, '{INET4}', 5353):\n"
                                  "        print('ready', flush=True); await asyncio.Event().wait()\n"
                                  "asyncio.run(main())\n")
                assert zone.stdout.readline().strip() == b"ready"
            sink_rtt_direct = None
            results: dict[str, dict] = {}
            for backend in ("builtin", "tayga"):
                extra = (f'listen = ["{DNS_LISTEN}"]\nport = {DNS_PORT}\nallowed = ["127.0.0.0/8"]\n'
                         f'upstream = ["{INET4}:5353"]\n')
                gw = topo.start_daemon(nat64_toml(backend).replace(f'upstream = ["{INET4}"]\n', extra))
                try:
                    wait_until(lambda gw=gw: json.loads(gw.ctl("--json", "status").stdout)["components"]
                               .get("nat64", {}).get("running"), timeout=30, what=f"{backend} NAT64 running")
                    status = json.loads(gw.ctl("--json", "status").stdout)["components"]["nat64"]
                    pid = gw.proc.pid if backend == "builtin" else status["pid"]
                    wait_until(lambda: topo.run(topo.br, "ping", "-c1", "-W1", INET6, check=False).returncode == 0,
                               timeout=20, what="a ping through NAT64")  # the routes are in, the mapping exists
                    results[backend] = flood(topo, gw, backend, pid, INET6, args.seconds)
                    results[backend]["fast_path"] = status.get("fast_path", "-")
                    rtt = json.loads(topo.run(topo.br, PY, "-c", RTT, INET6, str(UDP_PORT), str(args.pings),
                                              timeout=120).stdout)
                    if sink_rtt_direct is None:
                        sink_rtt_direct = json.loads(topo.run(topo.br, PY, "-c", RTT, INET4, str(UDP_PORT),
                                                              str(args.pings), timeout=120).stdout)
                    results[backend]["rtt"] = rtt
                    if backend == "builtin" and bench is not None:
                        out = topo.run(topo.br, PY, __file__, "--dns-child", f"{INET4}:5353", PREFIX,
                                       str(args.dns_seconds), str(args.dns_rounds),
                                       timeout=600).stdout
                        results["dns"] = json.loads(out.strip().splitlines()[-1])
                finally:
                    gw.signal(signal.SIGTERM)
                    gw.proc.wait(15)
        finally:
            topo.close()
    return results, sink_rtt_direct or []


def flood(topo, gw, backend: str, pid: int, dst: str, seconds: float) -> dict:
    def translated() -> int:
        c = json.loads(gw.ctl("--json", "nat64", "counters").stdout)
        return sum(c["translated"]["6to4"].values()) if backend == "builtin" else c["tun_rx_packets"]

    sink = topo.spawn(topo.inet, PY, "-c", SINK)
    assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
    before_pkts, before_cpu = translated(), cpu_seconds(pid)
    offered = float(topo.run(topo.br, PY, "-c", FLOOD, dst, str(seconds), "64", timeout=300).stdout)
    n, secs = sink.stdout.readline().split()
    sink.wait(10)
    time.sleep(0.2)
    pkts, cpu = translated() - before_pkts, cpu_seconds(pid) - before_cpu
    return {"offered": offered, "delivered": int(n), "pps": int(n) / float(secs) if float(secs) else 0.0,
            "cpu_per_packet": cpu / pkts if pkts else float("nan"), "translated": pkts}


def report(r: dict, direct: list[float]) -> None:
    b, t = r["builtin"], r["tayga"]
    print("NAT64, 64-byte UDP flood from the border router to the IPv4-only namespace")
    print("(offered: sender's rate; translated: packets the backend turned into IPv4, the rest the kernel dropped"
          " at the TUN queue; delivered/s: received at the IPv4 sink)")
    print(f"{'backend':<10}{'offered/s':>11}{'translated':>12}{'delivered/s':>13}{'CPU µs/pkt':>12}")
    for name, x in (("builtin", b), ("tayga", t)):
        print(f"{name:<10}{x['offered']:>11.0f}{x['translated']:>12}{x['pps']:>13.0f}"
              f"{x['cpu_per_packet'] * 1e6:>12.2f}")
    print(f"builtin fast path: {b['fast_path']} (native = nat64/_fastpath.c built; python = its reference)")
    ratio = b["cpu_per_packet"] / t["cpu_per_packet"]
    print(f"CPU per packet builtin/tayga: {ratio:.2f}x (target <= 1.0) -> {'met' if ratio <= 1 else 'MISSED'}")
    print(f"packets/s builtin/tayga: {b['pps'] / t['pps']:.2f}x")
    if direct:
        d50, d99 = pct(direct, 50), pct(direct, 99)
        print(f"added latency (UDP echo RTT through NAT64 less plain IPv4 p50 {d50 * 1e6:.0f} µs, "
              f"p99 {d99 * 1e6:.0f} µs):")
        added = {}
        for name, x in (("builtin", b), ("tayga", t)):
            added[name] = p50, p99 = (pct(x["rtt"], 50) - d50) * 1e6, (pct(x["rtt"], 99) - d99) * 1e6
            print(f"  {name:<8} p50 {p50:+.0f} µs   p99 {p99:+.0f} µs   ({len(x['rtt'])} echoes)")
        mine, ref = added["builtin"][1], added["tayga"][1]
        print(f"added p99 builtin - tayga: {mine - ref:+.0f} µs (target <= 0) -> {'met' if mine <= ref else 'MISSED'}")
    dns = r.get("dns")
    if dns is None:
        print("DNS64: skipped (benchmarks/dns64.py not found)")
        return
    print(f"DNS64: {dns['same']}/{dns['names']} names give the same AAAA set as unbound's dns64")
    for name, (ours, theirs) in dns["differs"].items():
        print(f"  differs: {name}: gatewayd={ours} unbound={theirs}")
    dratio = dns["dns64"] / max(dns["unbound"], 1)
    print(f"DNS64 cached answers/s (dnsperf): gatewayd {dns['dns64']:.0f}, unbound {dns['unbound']:.0f}, "
          f"ratio {dratio:.2f} (target >= 1.0) -> {'met' if dratio >= 1 else 'MISSED'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each flood")
    ap.add_argument("--pings", type=int, default=2000, help="UDP echoes per latency measurement")
    ap.add_argument("--busy", action="store_true", help="keep one core occupied for the whole run (both sides)")
    ap.add_argument("--dns-seconds", type=float, default=5.0, help="length of each dnsperf round")
    ap.add_argument("--dns-rounds", type=int, default=3)
    ap.add_argument("--dns-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dns_child:
        import asyncio

        upstream, prefix, seconds, rounds = args.dns_child
        print(json.dumps(asyncio.run(dns_child(upstream, prefix, float(seconds), int(rounds)))))
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespaces, TUN devices)")
        return 1
    for tool in ("tayga", "dnsperf"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (scripts/setup.sh installs it)")
            return 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
