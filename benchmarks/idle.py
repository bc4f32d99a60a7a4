"""An idle border router: resident memory, wakeups per second and start to READY.

Targets (issue: footprint): ≤ 40 MB RSS and ≤ 1 wakeup per second when nothing happens, start to READY
≤ 1.5 s. The daemon runs as in the demo (simulated NCP and mesh, NAT64, DNS64, LwM2M with proxied
devices), brought up, then left alone. Reference measured in the same run: a bare asyncio interpreter
(``asyncio.run(Event().wait())``) with the same Python, i.e. what no daemon can go below.

    .venv/bin/python benchmarks/idle.py [--seconds 30] [--by-thread] [--no-meshcop-mdns]   (as root)

Wakeups are the voluntary context switches of all the process's threads (each is a sleep that ended);
``--by-thread`` lists them per thread, the first thing to look at when the figure grows.
``--no-meshcop-mdns`` runs the daemon with ``[border] meshcop_mdns = false``: what python-zeroconf costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # devtools/ runs from the checkout

from devtools.demo import Demo  # noqa: E402

TARGET_RSS_MB = 40.0
TARGET_WAKEUPS = 1.0
TARGET_READY_S = 1.5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def switches(pid: int) -> dict[str, int]:
    """Voluntary context switches by thread (name/tid)."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text().splitlines()
        except OSError:
            continue  # the thread ended
        fields = dict(line.split(":\t", 1) for line in status if ":\t" in line)
        out[f"{fields.get('Name', '?').strip()}/{task.name}"] = int(fields["voluntary_ctxt_switches"])
    return out


def idle(pid: int, seconds: float) -> tuple[float, float, dict[str, float]]:
    """(RSS MB, wakeups per second, per thread) over ``seconds`` of leaving ``pid`` alone."""
    before = switches(pid)
    time.sleep(seconds)
    after = switches(pid)
    per = {k: (after[k] - before.get(k, 0)) / seconds for k in after}
    return rss_mb(pid), sum(per.values()), per


def reference(seconds: float) -> tuple[float, float]:
    proc = subprocess.Popen([sys.executable, "-c", "import asyncio; asyncio.run(asyncio.Event().wait())"])
    try:
        time.sleep(1.0)
        rss, rate, _ = idle(proc.pid, seconds)
        return rss, rate
    finally:
        proc.kill()
        proc.wait()


async def measure(seconds: float, by_thread: bool, meshcop_mdns: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="gatewayd-idle-") as tmp:
        work = Path(tmp)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(work / "notify.sock"))
        notify.setblocking(False)
        os.environ["NOTIFY_SOCKET"] = str(work / "notify.sock")  # the demo passes its environment on
        async with Demo(work) as demo:
            if not meshcop_mdns:
                config = demo.bed.config  # "[border]\ninfra_interface = ...\n" then the extra keys
                demo.bed.config = (  # type: ignore[method-assign]
                    lambda extra="": config("meshcop_mdns = false\n" + extra))
            spawned = [0.0]
            start_daemon = demo.start_daemon

            def timed_start() -> None:
                spawned[0] = time.monotonic()
                start_daemon()

            demo.start_daemon = timed_start  # type: ignore[method-assign]
            ready_at = asyncio.get_running_loop().create_future()

            def on_notify() -> None:
                data = notify.recv(4096)
                if b"READY=1" in data.split(b"\n") and not ready_at.done():
                    ready_at.set_result(time.monotonic())

            asyncio.get_running_loop().add_reader(notify.fileno(), on_notify)
            await demo.start()
            ready = (await asyncio.wait_for(ready_at, 30)) - spawned[0]
            assert demo.daemon is not None
            # the demo's joiner window ends: a border router sits idle without one (while one is open the
            # commissioner reads the NCP's joiner table every few seconds, which pushes nothing about joiners)
            demo.ctl("joiner", "remove", "*")
            await asyncio.sleep(5)  # let the bring-up's traffic and timers settle
            rss, rate, per = await asyncio.to_thread(idle, demo.daemon.pid, seconds)
    ref_rss, ref_rate = await asyncio.to_thread(reference, seconds)
    print(f"reference: bare asyncio interpreter  RSS {ref_rss:.1f} MB  {ref_rate:.2f} wakeups/s")
    print(f"idle daemon ({'with' if meshcop_mdns else 'without'} mDNS)  RSS {rss:.1f} MB "
          f"(target {TARGET_RSS_MB:.0f}: {rss / TARGET_RSS_MB:.2f}×, "
          f"{rss / ref_rss:.2f}× the reference)  wakeups {rate:.2f}/s (target {TARGET_WAKEUPS:.0f}: "
          f"{rate / TARGET_WAKEUPS:.2f}×)  start→READY {ready:.2f} s (target {TARGET_READY_S}: "
          f"{ready / TARGET_READY_S:.2f}×)")
    if by_thread:
        for name, value in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"  {name:30s} {value:.2f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to watch the idle daemon")
    parser.add_argument("--by-thread", action="store_true", help="wakeups per thread")
    parser.add_argument("--no-meshcop-mdns", dest="meshcop_mdns", action="store_false",
                        help="[border] meshcop_mdns = false: no _meshcop._udp over mDNS (no python-zeroconf)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark builds network namespaces")
    asyncio.run(measure(args.seconds, args.by_thread, args.meshcop_mdns))


if __name__ == "__main__":
    main()
