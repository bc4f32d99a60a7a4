"""gatewayd's NAT64 and DNS64 against Tayga and unbound, in the same run on the same topology.

The end-to-end testbed (mesh ns ←Spinel pty→ br ns running gatewayd ←veth→ IPv4-only inet ns) runs
gatewayd with ``[nat64] backend = "builtin"`` and with ``"tayga"`` in turns, ``--rounds`` times each
(ABBA…: the first side alternates, so a drift of the shared machine hits both alike); every figure is
given per round and as the median of the rounds with their spread. Traffic starts in the br namespace
(the Spinel pty would be the bottleneck otherwise) and is translated by whichever backend runs:

- NAT64 CPU per translated packet: CPU time of the translator over a UDP flood of a few seconds at the
  sender's top rate, divided by the packets it translated; and packets/s delivered at an IPv4 sink.
  The translator is the builtin backend's datapath thread (``thread_id`` in its status) and the tayga
  process: the same work on both sides. The whole daemon's CPU (all of gatewayd's threads, plus tayga
  for the tayga backend) is given beside it. Ratio builtin/tayga (target: at most 1.0).
- Added latency: p50/p99 round trip of a UDP echo through NAT64 less the same over plain IPv4 (measured
  after each turn's; the median of all turns is the baseline of both sides) (target: builtin's added
  p99 at most Tayga's); and the translator's CPU per packet during the echoes, where every packet
  wakes it. The verdict is the p99 of all echoes of all turns pooled, with a 90 % interval from resampling
  whole rounds: "met" when that interval lies at or below zero, or holds zero (level: no difference the
  run can show), "MISSED" when it lies above. One turn's p99 swings ±45 µs on this machine, pinned or not
  (``--pin`` puts the translator and both echo ends on CPU 0 for both sides).
- DNS64 (once): cached AAAA answers/s measured by dnsperf from gatewayd's DNS64 against unbound with its
  dns64 module (same prefix, same upstream in the inet namespace, same query set as
  benchmarks/dns64.py), after checking both give the same AAAA sets. Ratio (target at least 1.0).

With ``--busy`` one process spins on one core for the whole run, both backends and both DNS64 servers
alike (benchmarks/_busy.py); the share of the translator's samples on that core is shown per round.

Run as root: ``.venv/bin/python benchmarks/nat64_vs_tayga.py [--busy] [--pin] [--rounds N] [--seconds S] [--pings N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import textwrap
import threading
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


def cpu_ns(pid: int, tid: int | None = None) -> int:
    """CPU time (ns, the scheduler's own sum) of one thread, or of every thread of a process."""
    tasks = [Path(f"/proc/{pid}/task/{tid}")] if tid else list(Path(f"/proc/{pid}/task").iterdir())
    total = 0
    for t in tasks:
        try:
            total += int((t / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


class CpuWatch:
    """Samples on which CPU a thread runs (every 10 ms): how much of it the busy core took."""

    def __init__(self, pid: int, tid: int | None) -> None:
        self.path = Path(f"/proc/{pid}/task/{tid or pid}/stat")
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                fields = self.path.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                return
            if fields[0] == "R":  # running or runnable: where it is, not where it slept
                self.samples.append(int(fields[36]))

    def __enter__(self) -> CpuWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def share(self, cpu: int) -> float:
        return sum(c == cpu for c in self.samples) / len(self.samples) if self.samples else float("nan")


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
        rounds, dns = measure(args, cpu)
    print(describe(cpu))
    report(rounds, dns, cpu)
    return 0


def measure(args: argparse.Namespace, busy_on: int | None) -> tuple[list[dict], dict | None]:
    from tests.e2e_nat64.conftest import INET4, Nat64Topology

    bench = dns64_bench()
    rounds: list[dict] = []
    dns = None
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
            for r in range(args.rounds):
                sides: dict[str, dict] = {}
                for backend in ("builtin", "tayga") if r % 2 == 0 else ("tayga", "builtin"):
                    with_dns = dns is None and backend == "builtin" and bench is not None and not args.no_dns
                    sides[backend] = side(topo, backend, args, busy_on, with_dns)
                    dns = sides[backend].pop("dns", dns)
                rounds.append(sides)
                b, t = sides["builtin"], sides["tayga"]
                print(f"round {r + 1}/{args.rounds}: CPU/pkt builtin/tayga {b['cpu'] / t['cpu']:.2f}x, echo RTT p99 "
                      f"builtin {b['rtt'][1]:.0f} µs tayga {t['rtt'][1]:.0f} µs", flush=True)
        finally:
            topo.close()
    return rounds, dns


def side(topo, backend: str, args: argparse.Namespace, busy_on: int | None, with_dns: bool) -> dict:
    """One backend's turn: a daemon started for it, the flood, the echoes (and DNS64 once), stopped."""
    from tests.conftest import wait_until
    from tests.e2e_nat64.conftest import INET4, INET6, PREFIX, UDP_PORT, nat64_toml

    extra = (f'listen = ["{DNS_LISTEN}"]\nport = {DNS_PORT}\nallowed = ["127.0.0.0/8"]\n'
             f'upstream = ["{INET4}:5353"]\n')
    gw = topo.start_daemon(nat64_toml(backend).replace(f'upstream = ["{INET4}"]\n', extra))
    try:
        wait_until(lambda: json.loads(gw.ctl("--json", "status").stdout)["components"]
                   .get("nat64", {}).get("running"), timeout=30, what=f"{backend} NAT64 running")
        status = json.loads(gw.ctl("--json", "status").stdout)["components"]["nat64"]
        # the translator: the builtin backend's datapath thread, or the tayga process
        pid, tid = (gw.proc.pid, status["thread_id"]) if backend == "builtin" else (status["pid"], None)
        daemon = [gw.proc.pid] + ([pid] if backend == "tayga" else [])
        wait_until(lambda: topo.run(topo.br, "ping", "-c1", "-W1", INET6, check=False).returncode == 0,
                   timeout=20, what="a ping through NAT64")  # the routes are in, the mapping exists
        meter = Meter(gw, backend, pid, tid, daemon)
        out = flood(topo, meter, INET6, args.seconds, busy_on)
        out["fast_path"] = status.get("fast_path", "-")
        pinned = pin_echo_path(pid, tid) if args.pin else None
        client = ("taskset", "-c", "0", PY) if args.pin else (PY,)
        meter.start()
        rtt = json.loads(topo.run(topo.br, *client, "-c", RTT, INET6, str(UDP_PORT), str(args.pings),
                                  timeout=120).stdout)
        pkts, cpu, _ = meter.stop()
        direct = json.loads(topo.run(topo.br, *client, "-c", RTT, INET4, str(UDP_PORT), str(args.pings),
                                     timeout=120).stdout)
        if pinned is not None:
            for task, cpus in pinned.items():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(task, cpus)
        out["echo_cpu"] = cpu / pkts if pkts else float("nan")
        out["rtt"] = tuple(pct(v, q) * 1e6 for v in (rtt, direct) for q in (50, 99))  # NAT64 p50, p99, IPv4 …
        out["echoes"] = len(rtt)
        out["rtt_all"], out["direct_all"] = rtt, direct  # pooled over the turns in report()
        if with_dns:
            res = topo.run(topo.br, PY, __file__, "--dns-child", f"{INET4}:5353", PREFIX, str(args.dns_seconds),
                           str(args.dns_rounds), timeout=600).stdout
            out["dns"] = json.loads(res.strip().splitlines()[-1])
        return out
    finally:
        gw.signal(signal.SIGTERM)
        gw.proc.wait(15)


def pin_echo_path(pid: int, tid: int | None) -> dict[int, set[int]]:
    """Put the translator (builtin's datapath thread, or tayga) and the UDP echo server on CPU 0; their
    affinities before, to put back."""
    tasks = [tid if tid is not None else pid]
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and b"udp-echo" in (proc / "cmdline").read_bytes():
                tasks += [int(t.name) for t in (proc / "task").iterdir()]
    before = {}
    for task in tasks:
        with contextlib.suppress(OSError):
            before[task] = os.sched_getaffinity(task)
            os.sched_setaffinity(task, {0})
    return before


class Meter:
    """Packets the backend translated and the CPU time its translator and the whole daemon spent, between
    start() and stop() (the CPU is read right next to the window, not around the gatewayctl calls)."""

    def __init__(self, gw, backend: str, pid: int, tid: int | None, daemon: list[int]) -> None:
        self.gw, self.backend, self.pid, self.tid, self.daemon = gw, backend, pid, tid, daemon

    def translated(self) -> int:
        c = json.loads(self.gw.ctl("--json", "nat64", "counters").stdout)
        if self.backend == "builtin":
            return sum(sum(c["translated"][d].values()) for d in ("6to4", "4to6"))
        return c["tun_rx_packets"]

    def _cpu(self) -> tuple[int, int]:
        return cpu_ns(self.pid, self.tid), sum(cpu_ns(p) for p in self.daemon)

    def start(self) -> None:
        self.pkts0 = self.translated()
        self.cpu0 = self._cpu()

    def stop(self) -> tuple[int, float, float]:
        """(packets, translator CPU s, daemon CPU s) since start()."""
        cpu = self._cpu()
        return self.translated() - self.pkts0, (cpu[0] - self.cpu0[0]) / 1e9, (cpu[1] - self.cpu0[1]) / 1e9


def flood(topo, meter: Meter, dst: str, seconds: float, busy_on: int | None) -> dict:
    sink = topo.spawn(topo.inet, PY, "-c", SINK)
    assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
    meter.start()
    with CpuWatch(meter.pid, meter.tid) as where:
        offered = float(topo.run(topo.br, PY, "-c", FLOOD, dst, str(seconds), "64", timeout=300).stdout)
    n, secs = sink.stdout.readline().split()
    sink.wait(10)
    time.sleep(0.2)
    pkts, cpu, whole = meter.stop()
    return {"offered": offered, "delivered": int(n), "pps": int(n) / float(secs) if float(secs) else 0.0,
            "cpu": cpu / pkts if pkts else float("nan"), "daemon_cpu": whole / pkts if pkts else float("nan"),
            "translated": pkts, "on_busy": where.share(busy_on) if busy_on is not None else None}


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """median (min–max)"""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def pooled_gap_interval(rounds: list[dict], draws: int = 400, seed: int = 1) -> tuple[float, float]:
    """90 % bootstrap interval (µs) of the pooled p99 difference builtin - tayga, rounds resampled whole (a
    round's two turns together): how much of the gap the turn-to-turn swing alone could make."""
    rng = random.Random(seed)
    sides = [(sorted(r["builtin"]["rtt_all"]), sorted(r["tayga"]["rtt_all"])) for r in rounds]
    gaps = []
    for _ in range(draws):
        pick = [sides[rng.randrange(len(sides))] for _ in sides]
        gaps.append(pct([v for b, _ in pick for v in b], 99) - pct([v for _, t in pick for v in t], 99))
    gaps.sort()
    return gaps[int(0.05 * draws)] * 1e6, gaps[int(0.95 * draws) - 1] * 1e6


def report(rounds: list[dict], dns: dict | None, busy_on: int | None) -> None:
    n = len(rounds)
    # Added latency: the NAT64 RTT less the plain IPv4 RTT of the whole run (the median of every turn's),
    # one baseline for both sides: a turn's own IPv4 p99 varies as much as the difference sought.
    base = [statistics.median(r[x]["rtt"][i] for r in rounds for x in r) for i in (2, 3)]
    for r in rounds:
        for x in r.values():
            x["added"] = (x["rtt"][0] - base[0], x["rtt"][1] - base[1])
    print(f"NAT64, {n} rounds, builtin and tayga in turns; 64-byte UDP flood from the border router to the"
          " IPv4-only namespace")
    print("(offered: sender's rate; translated: packets the backend turned into IPv4, the rest the kernel dropped"
          " at the TUN queue; CPU: the translator's (builtin's datapath thread, the tayga process), daemon: all"
          " of gatewayd's threads, plus tayga; echo: the translator's CPU per packet during the UDP echoes)")
    print(f"{'round':<6}{'backend':<9}{'offered/s':>10}{'translated':>11}{'deliv./s':>9}{'CPU µs/pkt':>11}"
          f"{'daemon':>8}{'echo':>7}{'+p50 µs':>8}{'+p99 µs':>8}{'RTT p50/p99 NAT64, IPv4':>25}"
          + ("  on busy CPU" if busy_on is not None else ""))
    for i, sides in enumerate(rounds, 1):
        for name in ("builtin", "tayga"):
            x = sides[name]
            busy_col = f"  {x['on_busy'] * 100:9.0f} %" if busy_on is not None else ""
            print(f"{i:<6}{name:<9}{x['offered']:>10.0f}{x['translated']:>11}{x['pps']:>9.0f}"
                  f"{x['cpu'] * 1e6:>11.2f}{x['daemon_cpu'] * 1e6:>8.2f}{x['echo_cpu'] * 1e6:>7.2f}"
                  f"{x['added'][0]:>+8.0f}{x['added'][1]:>+8.0f}{'{:.0f}/{:.0f}, {:.0f}/{:.0f}'.format(*x['rtt']):>25}"
                  + busy_col)
    print(f"builtin fast path: {rounds[0]['builtin']['fast_path']} (native = nat64/_fastpath.c built; python ="
          " its reference)")
    ratio = [r["builtin"]["cpu"] / r["tayga"]["cpu"] for r in rounds]
    med = statistics.median(ratio)
    print(f"CPU per packet builtin/tayga, median (min–max) of {n} rounds: {spread(ratio)}x (target <= 1.0)"
          f" -> {'met' if med <= 1 else 'MISSED'}{'' if max(ratio) <= 1 else ' (not in every round)'}")
    def ratios(key: str) -> str:
        return spread([r["builtin"][key] / r["tayga"][key] for r in rounds])

    print(f"  whole daemon (gatewayd's threads; + tayga): {ratios('daemon_cpu')}x; during the echoes:"
          f" {ratios('echo_cpu')}x")
    print(f"packets/s builtin/tayga: {ratios('pps')}x")
    echoes = rounds[0]["builtin"]["echoes"]
    print(f"added latency (UDP echo RTT through NAT64 less plain IPv4's, p50 {base[0]:.0f} µs p99 {base[1]:.0f} µs:"
          f" the median of the turns'; {echoes} echoes each), median (min–max) µs:")
    for name in ("builtin", "tayga"):
        print(f"  {name:<8} p50 {spread([r[name]['added'][0] for r in rounds], '{:+.0f}')}"
              f"   p99 {spread([r[name]['added'][1] for r in rounds], '{:+.0f}')}")
    diff = [r["builtin"]["added"][1] - r["tayga"]["added"][1] for r in rounds]
    print(f"added p99 builtin - tayga by round, median (min–max): {spread(diff, '{:+.0f}')} µs;"
          f" builtin's lower in {sum(d < 0 for d in diff)} of {n} rounds (one round's p99 swings ±45 µs: the"
          " verdict is the pooled figure's, below)")
    # One turn's p99 rests on its 50 slowest echoes and moves with where the scheduler put the echo's
    # three hops that turn; the p99 of every echo of every turn is the steadier figure.
    direct = [v for r in rounds for x in r.values() for v in x["direct_all"]]
    base99 = pct(direct, 99)
    pooled = {name: [v for r in rounds for v in r[name]["rtt_all"]] for name in ("builtin", "tayga")}
    added = {name: (pct(v, 50) - pct(direct, 50), pct(v, 99) - base99) for name, v in pooled.items()}
    gap = (added["builtin"][1] - added["tayga"][1]) * 1e6
    low, high = pooled_gap_interval(rounds)
    verdict = ("met: lower" if high <= 0 else "MISSED: higher" if low > 0
               else "met: level, no difference this run can show")
    print(f"all echoes of all rounds pooled ({len(pooled['builtin'])} a side, IPv4 p99 {base99 * 1e6:.0f} µs):"
          + "".join(f" {name} +p50 {a[0] * 1e6:+.0f} +p99 {a[1] * 1e6:+.0f} µs;" for name, a in added.items())
          + f" p99 builtin - tayga {gap:+.0f} µs, 90 % interval {low:+.0f}..{high:+.0f} µs"
          f" (rounds resampled) -> {verdict}")
    if dns is None:
        print("DNS64: skipped (--no-dns, or benchmarks/dns64.py not found)")
        return
    print(f"DNS64: {dns['same']}/{dns['names']} names give the same AAAA set as unbound's dns64")
    for name, (ours, theirs) in dns["differs"].items():
        print(f"  differs: {name}: gatewayd={ours} unbound={theirs}")
    dratio = dns["dns64"] / max(dns["unbound"], 1)
    print(f"DNS64 cached answers/s (dnsperf): gatewayd {dns['dns64']:.0f}, unbound {dns['unbound']:.0f}, "
          f"ratio {dratio:.2f} (target >= 1.0) -> {'met' if dratio >= 1 else 'MISSED'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="turns of each backend (the figures are their medians)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each flood")
    ap.add_argument("--pings", type=int, default=5000, help="UDP echoes per latency measurement")
    ap.add_argument("--busy", action="store_true", help="keep one core occupied for the whole run (both sides)")
    ap.add_argument("--dns-seconds", type=float, default=5.0, help="length of each dnsperf round")
    ap.add_argument("--dns-rounds", type=int, default=3)
    ap.add_argument("--no-dns", action="store_true", help="NAT64 only")
    ap.add_argument("--pin", action="store_true",
                    help="the echoes with the translator, the echo client and the echo server all on CPU 0 (both "
                         "sides): takes the scheduler's placement, which moves one turn's p99 by ±45 µs, out")
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
