"""NAT64 translator speed, against references measured in the same run.

1. In-process (always): CPU time per translated UDP packet, 6→4 and 4→6, with 64-byte and 1280-byte
   packets, against the floor of any Python translator: copying the packet and computing one Internet
   checksum over it with the same helper (``common.checksum.checksum``); and the fast path alone, native
   (``nat64/_fastpath.c``) against its Python reference.
2. Through namespaces (root and ``tayga`` installed; skipped otherwise): a bounded UDP flood from an
   IPv6-only namespace through a gateway namespace running the builtin backend (datapath thread, or
   event-loop reader with ``--io asyncio``) or Tayga (all on a TUN, same routes), counting datagrams
   delivered per second at an IPv4-only sink and the translator's CPU time per packet it read from the
   TUN (the TUN's tx counter), against Tayga's.

Run: ``.venv/bin/python benchmarks/nat64_translator.py [--count N] [--no-netns]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.checksum import checksum  # noqa: E402
from nat64.packets import build_ipv4, build_ipv6  # noqa: E402
from nat64.translator import Nat64  # noqa: E402

PREFIX = "2001:db8:64::/96"
HOST6 = bytes.fromhex("fd000064000000000000000000000002")
SERVER4 = bytes([100, 64, 0, 10])
POOL = "100.64.1.1"


def _udp(payload: bytes, sport: int, dport: int) -> bytes:
    # checksum value is irrelevant for speed; non-zero so IPv6 accepts it
    head = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big")
    return head + b"\x12\x34" + payload


def _time(fn, packets: list[bytes]) -> float:
    """CPU seconds per packet (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for p in packets:
            fn(p)
        best = min(best, (time.process_time() - t0) / len(packets))
    return best


def in_process(count: int) -> None:
    nat = Nat64(PREFIX, [POOL])
    server6 = nat.prefix.embed_packed(SERVER4)
    print(f"in-process, {count} packets per case, CPU time per packet (best of 3); established flow, so the"
          " fast path")
    print(f"{'case':<22}{'nat64 µs':>10}{'pps':>11}{'ref µs':>9}{'ratio':>8}   reference = bytes copy + checksum")
    for size in (64, 1280):
        v6 = build_ipv6(HOST6, server6, 17, _udp(b"x" * (size - 48), 5000, 7))
        out = nat.from_v6(v6, 0.0)
        assert out and out[0].packet[0] >> 4 == 4, nat.counters.as_dict()
        pool_port = int.from_bytes(out[0].packet[20:22], "big")
        v4 = build_ipv4(SERVER4, bytes(map(int, POOL.split("."))), 17, _udp(b"y" * (size - 28 - 20), 7, pool_port))
        for direction, pkt, fn in (("6to4", v6, lambda p: nat.from_v6(p, 1.0)),
                                   ("4to6", v4, lambda p: nat.from_v4(p, 1.0))):
            packets = [pkt] * count
            t_nat = _time(fn, packets)
            t_ref = _time(lambda p: checksum(bytes(bytearray(p))), packets)
            name = f"UDP {direction} {len(pkt)}B"
            print(f"{name:<22}{t_nat * 1e6:>10.2f}{1 / t_nat:>11.0f}{t_ref * 1e6:>9.2f}{t_nat / t_ref:>7.1f}x")
    assert nat.counters.dropped.total() == 0, nat.counters.as_dict()
    fast_path_alone(count)


def fast_path_alone(count: int) -> None:
    """FastPath.from_v6 itself, native (nat64/_fastpath.c) against its Python reference."""
    print("\nfast path alone (FastPath.from_v6, 64-byte UDP), CPU µs per packet; reference = the Python fast path")
    times = {}
    for native in (True, False):
        nat = Nat64(PREFIX, [POOL], native_fast_path=native)
        assert nat.fast is not None
        if native and not nat.fast.native:
            print("  skipped: nat64/_fastpath.c is not built (no C compiler at install)")
            return
        v6 = build_ipv6(HOST6, nat.prefix.embed_packed(SERVER4), 17, _udp(b"x" * 16, 5000, 7))
        nat.from_v6(v6, 0.0)  # the full path learns the flow
        times[native] = _time(lambda p, f=nat.fast.from_v6: f(p, 1.0), [v6] * count)
    native_us, python_us = times[True] * 1e6, times[False] * 1e6
    print(f"  native {native_us:.2f}   python {python_us:.2f}   ratio {native_us / python_us:.2f}x")


# --- namespace flood: builtin vs Tayga -----------------------------------------------------------

SINK_PORT = 9999
# Counts UDP datagrams on SINK_PORT until 1 s of silence; prints "count seconds" (nat64_vs_tayga.py uses it too).
SINK = textwrap.dedent("""
    import socket, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("0.0.0.0", SINK_PORT))
    print("ready", flush=True)
    s.settimeout(30)
    n, first, last = 0, None, None
    while True:
        try:
            s.recv(2048)
        except TimeoutError:
            break
        last = time.monotonic()
        if first is None:
            first = last
            s.settimeout(1.0)
        n += 1
    print(n, (last - first) if n > 1 else 0.0, flush=True)
""").replace("SINK_PORT", str(SINK_PORT))

FLOOD = textwrap.dedent("""
    import socket, sys, time
    count, size, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.connect(("2001:db8:64::6440:a", SINK_PORT))
    data = b"f" * size
    t0 = time.monotonic()
    for i in range(count):
        try:
            s.send(data)
        except OSError:
            pass
        if rate and i % 64 == 0:
            ahead = i / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    print(count / (time.monotonic() - t0), flush=True)
""").replace("SINK_PORT", str(SINK_PORT))


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
    return r


class Topo:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.h, self.g, self.i = f"b64h-{tag}", f"b64g-{tag}", f"b64i-{tag}"

    def ns(self, n: str, *cmd: str, check: bool = True):
        return _sh("ip", "netns", "exec", n, *cmd, check=check)

    def up(self) -> None:
        for n in (self.h, self.g, self.i):
            _sh("ip", "netns", "add", n)
            self.ns(n, "ip", "link", "set", "lo", "up")
        _sh("ip", "link", "add", "b64a", "netns", self.h, "type", "veth", "peer", "name", "b64b", "netns", self.g)
        _sh("ip", "link", "add", "b64c", "netns", self.g, "type", "veth", "peer", "name", "b64d", "netns", self.i)
        self.ns(self.h, "ip", "addr", "add", "fd00:64::2/64", "dev", "b64a", "nodad")
        self.ns(self.h, "ip", "link", "set", "b64a", "up")
        self.ns(self.h, "ip", "-6", "route", "add", "default", "via", "fd00:64::1")
        self.ns(self.g, "ip", "addr", "add", "fd00:64::1/64", "dev", "b64b", "nodad")
        self.ns(self.g, "ip", "addr", "add", "100.64.0.1/24", "dev", "b64c")
        for dev in ("b64b", "b64c"):
            self.ns(self.g, "ip", "link", "set", dev, "up")
        self.ns(self.g, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.ns(self.g, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.ns(self.g, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
        self.ns(self.i, "ip", "addr", "add", "100.64.0.10/24", "dev", "b64d")
        self.ns(self.i, "ip", "link", "set", "b64d", "up")
        self.ns(self.i, "ip", "route", "add", "100.64.1.0/24", "via", "100.64.0.1")

    def down(self) -> None:
        for n in (self.h, self.g, self.i):
            _sh("ip", "netns", "del", n, check=False)

    def route_tun(self) -> None:
        self.ns(self.g, "ip", "link", "set", "nat64", "up")
        self.ns(self.g, "ip", "route", "replace", PREFIX, "dev", "nat64")
        self.ns(self.g, "ip", "route", "replace", "100.64.1.0/24", "dev", "nat64")

    def flood(self, count: int, size: int, rate: float) -> tuple[float, int, float]:
        sink = subprocess.Popen(["ip", "netns", "exec", self.i, sys.executable, "-c", SINK],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            sent = self.ns(self.h, sys.executable, "-c", FLOOD, str(count), str(size), str(rate))
            n, secs = sink.stdout.readline().split()
            sink.wait(10)
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
        return float(sent.stdout), int(n), float(secs)


def _start_builtin(topo: Topo, io: str) -> subprocess.Popen:
    p = subprocess.Popen(["ip", "netns", "exec", topo.g, sys.executable, "-m", "nat64.backends.builtin", "--prefix",
                          PREFIX, "--pool", "100.64.1.0/24", "--tun", "nat64", "--io", io], cwd=ROOT,
                         stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert p.stdout is not None and '"ready": true' in p.stdout.readline()
    topo.route_tun()
    return p


def _start_tayga(topo: Topo, tmp: Path) -> subprocess.Popen:
    conf = tmp / "tayga.conf"
    conf.write_text(f"tun-device nat64\nipv4-addr 100.64.1.254\nprefix {PREFIX}\n"
                    f"dynamic-pool 100.64.1.0/24\ndata-dir {tmp}\n")
    topo.ns(topo.g, "tayga", "-c", str(conf), "--mktun")
    p = subprocess.Popen(["ip", "netns", "exec", topo.g, "tayga", "-c", str(conf), "-n"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    topo.route_tun()
    return p


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tun_read(topo: Topo) -> int:
    """Packets the translator has read from the TUN (the TUN's transmit counter)."""
    return int(topo.ns(topo.g, "cat", "/sys/class/net/nat64/statistics/tx_packets").stdout)


BACKENDS = ("builtin", "builtin-asyncio", "tayga")


def netns(count: int) -> None:
    if os.geteuid() != 0:
        print("\nnamespace flood skipped: needs root")
        return
    if not shutil.which("tayga"):
        print("\nnamespace flood skipped: tayga not installed")
        return
    print(f"\nnamespace UDP flood, {count} datagrams per run: delivered datagrams/s at the IPv4 sink, loss, and the"
          " translator's CPU µs per packet read from the TUN; ratio = CPU per packet / tayga's")
    print(f"{'case':<22}{'backend':<17}{'offered/s':>10}{'deliv/s':>9}{'loss':>7}{'CPU µs':>8}{'ratio':>7}")
    for size, rate in ((64, 0), (64, 20000), (1200, 0)):
        results = {}
        for name in BACKENDS:
            topo = Topo()
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    topo.up()
                    if name == "tayga":
                        proc = _start_tayga(topo, Path(tmp))
                    else:
                        proc = _start_builtin(topo, "asyncio" if name.endswith("asyncio") else "thread")
                    try:
                        topo.flood(50, size, 0)  # warm-up: creates the mapping
                        pkts0, cpu0 = _tun_read(topo), _cpu_seconds(proc.pid)
                        offered, n, secs = topo.flood(count, size, rate)
                        pkts, cpu = _tun_read(topo) - pkts0, _cpu_seconds(proc.pid) - cpu0
                    finally:
                        _stop(proc)
                finally:
                    topo.down()
            results[name] = (offered, n / secs if secs else 0.0, 1 - n / count, cpu / pkts if pkts else float("nan"))
        label = f"{size}B {'max rate' if not rate else f'paced {rate}/s'}"
        for name in BACKENDS:
            offered, pps, loss, cpu = results[name]
            ratio = cpu / results["tayga"][3]
            print(f"{label:<22}{name:<17}{offered:>10.0f}{pps:>9.0f}{loss:>7.1%}{cpu * 1e6:>8.2f}{ratio:>6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--no-netns", action="store_true")
    args = ap.parse_args()
    in_process(args.count)
    if not args.no_netns:
        netns(min(args.count, 100000))


if __name__ == "__main__":
    main()
