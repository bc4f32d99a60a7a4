"""Proxied CoAP devices: one LwM2M registration each vs all behind the gateway's (object 25).

    .venv/bin/python benchmarks/lwm2m_proxy.py                       # 10,000 devices, both modes
    .venv/bin/python benchmarks/lwm2m_proxy.py --devices 1000 --samples 100
    .venv/bin/python benchmarks/lwm2m_proxy.py --mode gateway         # one mode only

N plain CoAP devices (aiocoap servers on N loopback ports, in one child process) are proxied by one
gateway process per mode (a fresh one each, so neither inherits the other's memory), registering with
an aiocoap LwM2M test server in a third process (so the server's records are not in the gateway's RSS
and its work is not on the gateway's event loop). ``registrations``: one virtual client, socket and
registration per device. ``gateway``: the devices are LwM2M Gateway (/25) instances under the gateway's
one registration, read by prefix (/dev0/3303/0/5700). Measured per mode: time from the first device
added until the server holds every device (N registrations, or the gateway's object list naming N /25
instances); the gateway process's RSS growth per device; the server's Read latency (p50/p99) for a
cached value (/3303/0/5700, Max-Age 3600, answered from the gateway's cache once the device's first read
filled it) and an uncached one (/3304/0/5700, Max-Age 0, read through to the device). Reference,
measured in the same run from the same server socket: a direct CoAP GET of the device's resource. Reads
slower than 20 ms are matched against the gateway process's garbage collections (gc.callbacks) to say
how many a collection held up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiocoap  # noqa: E402
from aiocoap.numbers.codes import Code  # noqa: E402

MODES = ("registrations", "gateway")
MAPPING = {"/3303/0/5700": {"get": "/sensors/temp"},
           "/3304/0/5700": {"get": "/sensors/env", "format": "json", "pointer": "/rh"}}
SLOW = 0.020  # seconds: a Read slower than this is checked against the gateway's garbage collections


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def _lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


# --- the devices (child process) -----------------------------------------------------------------------
async def devices_child(count: int) -> None:
    from devtools.testbed.sensors import Sensor
    from tests.lwm2m.servers import free_udp_port

    sensors = []
    for _ in range(count):
        s = Sensor("127.0.0.1", free_udp_port(), max_age=3600, env_max_age=0)  # cached through the run
        await s.start()
        sensors.append(s)
    print(json.dumps([s.port for s in sensors]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# --- the LwM2M server (child process of each mode's gateway process) ----------------------------------
async def server_child() -> None:
    """Answers JSON commands on stdin: wait until registered, time Reads, stop."""
    from tests.lwm2m.aioserver import LwM2MTestServer
    from tests.lwm2m.servers import free_udp_port

    server = LwM2MTestServer(free_udp_port())
    await server.start()
    assert server.ctx is not None
    print(json.dumps({"uri": server.uri}), flush=True)
    reader = await _lines()

    def listed(n: int, gateway: str | None) -> bool:
        if gateway is None:
            return len(server.registrations) >= n
        reg = server.registrations.get(gateway)
        if reg is None:
            return False
        links = next((u["payload"] for u in reversed(reg.updates) if u["payload"]), reg.links)
        return links.count("</25/") >= n  # counting is cheaper than decoding 110 KB on every poll

    async def timed(request: Any) -> tuple[float, float, bool]:
        start = time.monotonic()
        resp = await request
        return start, time.monotonic() - start, resp.code == Code.CONTENT

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "registered":
            await server.wait_until(lambda n=cmd["n"], gw=cmd.get("gateway"): listed(n, gw), timeout=1800)
            out: dict[str, Any] = {"at": time.monotonic()}
        elif cmd["cmd"] == "read":
            out = {"direct": [], "cached": [], "uncached": []}
            for port, reg, prefix in cmd["targets"]:
                msg = aiocoap.Message(code=Code.GET, uri=f"coap://127.0.0.1:{port}/sensors/temp")
                out["direct"].append(await timed(server.ctx.request(msg).response))
                out["cached"].append(await timed(server.op(reg, Code.GET, f"{prefix}/3303/0/5700")))
                out["uncached"].append(await timed(server.op(reg, Code.GET, f"{prefix}/3304/0/5700")))
        else:
            break
        print(json.dumps(out), flush=True)
    await server.stop()


# --- one mode (a gateway process of its own) -------------------------------------------------------------
class _Server:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()
        return json.loads(await self.proc.stdout.readline())

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


class _GcWatch:
    """The gateway process's garbage collections: (start, end, generation), monotonic seconds."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.monotonic()
        else:
            self.pauses.append((self._start, time.monotonic(), info["generation"]))


async def run_mode(mode: str, ports: list[int], samples: int) -> dict[str, Any]:
    from gatewayd.lwm2m import load_registry
    from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine
    from gatewayd.lwm2m.proxy.coap_adapter import CoapDeviceConfig
    from gatewayd.lwm2m.proxy.component import LwM2MProxy
    from gatewayd.lwm2m.proxy.mapping import parse_mappings
    from gatewayd.lwm2m.proxy.virtual import UpstreamAccount

    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "--server-child", cwd=ROOT,
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    server = _Server(proc)
    assert proc.stdout is not None
    uri = json.loads(await proc.stdout.readline())["uri"]
    registry = load_registry()
    settings = ClientSettings(lifetime=3600, keepalive=0)
    engine = LwM2MEngine(None, settings)
    gateway = mode == "gateway"
    if gateway:
        from gatewayd.lwm2m.bootstrap import factory_bootstrap
        from gatewayd.lwm2m.proxy.gateway_mode import GatewayEngine
        from tests.lwm2m.servers import device_store

        store = device_store()
        factory_bootstrap(store, uri, lifetime=3600)
        gw_engine = GatewayEngine(await engine.add("gw", store))
        await server.ask(cmd="registered", n=0, gateway="gw")
        proxy = LwM2MProxy(gw_engine, registry, settings)
    else:
        proxy = LwM2MProxy(engine, registry, settings)
    await proxy.context()
    maps = parse_mappings(MAPPING, registry)
    account = UpstreamAccount(uri, lifetime=3600)

    n = len(ports)
    gc.collect()
    rss0 = rss_kib()
    start = time.monotonic()
    for i, port in enumerate(ports):
        await proxy.add_device(CoapDeviceConfig(f"dev-{i}", account, maps, address="127.0.0.1", port=port))
    added = time.monotonic() - start
    done = await server.ask(cmd="registered", n=n, gateway="gw" if gateway else None)
    registered = done["at"] - start
    # every first read answered (or failed: not one of a device's reads still retransmitting, which would
    # hold a Read of that device back in aiocoap's queue for it, NSTART 1), so a cached Read is a cache hit
    deadline = time.monotonic() + 600
    while not all(d.prefetched for d in proxy.devices.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    settled = time.monotonic() - start
    await asyncio.sleep(1)
    rss1 = rss_kib()

    picks = random.Random(1).sample(range(n), min(samples, n))
    targets = [(ports[i], "gw", f"/{gw_engine.devices[f'dev-{i}'].prefix}") if gateway
               else (ports[i], f"dev-{i}", "") for i in picks]
    hits0 = sum(d.counters["cache_hits"] for d in proxy.devices.values())
    watch = _GcWatch()
    gc.callbacks.append(watch)
    reads = await server.ask(cmd="read", targets=targets)
    gc.callbacks.remove(watch)
    hits = sum(d.counters["cache_hits"] for d in proxy.devices.values()) - hits0

    def gc_held(kind: str) -> tuple[int, int]:
        slow = [(s, s + d) for s, d, _ in reads[kind] if d > SLOW]
        held = sum(1 for s, e in slow if any(ps < e and pe > s for ps, pe, _ in watch.pauses))
        return len(slow), held

    full = [pe - ps for ps, pe, g in watch.pauses if g == 2]
    result = {
        "mode": mode, "devices": n, "added": added, "registered": registered, "settled": settled,
        "rss0": rss0, "rss1": rss1, "per_device_kib": (rss1 - rss0) / n,
        "failed": sum(1 for kind in ("direct", "cached", "uncached") for *_, ok in reads[kind] if not ok),
        "reads": len(picks), "cache_hits": hits,
        "missed_first_read": sum(1 for d in proxy.devices.values() if d.reach.reachable is False),
        "gc_full": len(full), "gc_full_max_ms": max(full, default=0.0) * 1000,
        "gc_any": len(watch.pauses),
    }
    for kind in ("direct", "cached", "uncached"):
        durations = [d for _, d, _ in reads[kind]]
        result[kind] = {"p50": pct(durations, .5), "p99": pct(durations, .99), "max": max(durations) * 1000,
                        "slow": gc_held(kind)}
    await engine.stop(deregister=False)  # no Deregisters: the server goes next
    await proxy.stop()
    await server.stop()
    return result


# --- both modes, side by side -------------------------------------------------------------------------
def report(results: list[dict[str, Any]]) -> None:
    """Each mode's figures, and what held up the slow Reads."""
    for r in results:
        n = r["devices"]
        print(f"--- {r['mode']}: {n} devices")
        print(f"  added in {r['added']:.1f} s; all registered after {r['registered']:.1f} s "
              f"({n / r['registered']:.0f} devices/s); every first read done after {r['settled']:.1f} s")
        print(f"  RSS {r['rss0'] / 1024:.0f} → {r['rss1'] / 1024:.0f} MiB, {r['per_device_kib']:.1f} KiB per device")
        for kind, name in (("direct", "direct CoAP GET (reference)"), ("cached", "Read, cached value"),
                           ("uncached", "Read, uncached value")):
            x = r[kind]
            slow, held = x["slow"]
            print(f"  {name:28} p50 {x['p50']:6.2f} ms  p99 {x['p99']:7.2f} ms  max {x['max']:7.1f} ms  "
                  f"({slow} over {SLOW * 1000:.0f} ms, {held} of them during a garbage collection)")
        print(f"  cache hits {r['cache_hits']} of {r['reads']} cached Reads; failed Reads {r['failed']} of "
              f"{3 * r['reads']}; devices that missed their first read {r['missed_first_read']}; "
              f"gateway GCs while reading {r['gc_any']}, full {r['gc_full']} "
              f"(longest {r['gc_full_max_ms']:.0f} ms)", flush=True)


def main(args: argparse.Namespace) -> None:
    child = subprocess.Popen([sys.executable, __file__, "--devices-child", str(args.devices)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    results = []
    try:
        assert child.stdout is not None
        started = time.monotonic()
        ports = child.stdout.readline()
        print(f"{args.devices} CoAP devices up after {time.monotonic() - started:.0f} s", flush=True)
        with tempfile.NamedTemporaryFile("wb", suffix=".json") as f:
            f.write(ports)
            f.flush()
            for mode in MODES if args.mode == "both" else (args.mode,):
                out = subprocess.run([sys.executable, __file__, "--run-mode", mode, "--ports-file", f.name,
                                      "--samples", str(args.samples)], cwd=ROOT, stdout=subprocess.PIPE,
                                     check=True, text=True).stdout
                results.append(json.loads(out.strip().splitlines()[-1]))
                report(results[-1:])
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(60)
    if len(results) == 2:
        compare(*results)


def compare(reg: dict[str, Any], gw: dict[str, Any]) -> None:
    rows = [("all registered (s)", reg["registered"], gw["registered"]),
            ("RSS per device (KiB)", reg["per_device_kib"], gw["per_device_kib"]),
            ("Read p99, cached (ms)", reg["cached"]["p99"], gw["cached"]["p99"]),
            ("Read p99, uncached (ms)", reg["uncached"]["p99"], gw["uncached"]["p99"]),
            ("direct GET p99 (ms, reference)", reg["direct"]["p99"], gw["direct"]["p99"])]
    print(f"--- {reg['devices']} devices {'registrations':>24} {'gateway':>10} {'gateway/registrations':>22}")
    for name, a, b in rows:
        print(f"  {name:32} {a:12.2f} {b:10.2f} {b / a:21.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--mode", choices=("both", *MODES), default="both",
                        help="one registration per device, all behind the gateway's (object 25), or both")
    parser.add_argument("--devices-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--ports-file", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.devices_child:
        asyncio.run(devices_child(ns.devices_child))
    elif ns.server_child:
        asyncio.run(server_child())
    elif ns.run_mode:
        result = asyncio.run(run_mode(ns.run_mode, json.loads(Path(ns.ports_file).read_text()), ns.samples))
        print(json.dumps(result), flush=True)
    else:
        main(ns)
