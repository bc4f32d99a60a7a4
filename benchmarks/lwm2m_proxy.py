"""The LwM2M proxy with many CoAP devices behind one gateway: registration time, RSS, Read latency.

    .venv/bin/python benchmarks/lwm2m_proxy.py                 # 500 devices
    .venv/bin/python benchmarks/lwm2m_proxy.py --devices 100 --samples 100
    .venv/bin/python benchmarks/lwm2m_proxy.py --mode gateway    # behind the gateway's registration (/25)

N plain CoAP devices (aiocoap servers on N loopback ports, in a child process) are proxied as N virtual
clients (one engine, one proxy) registering with an aiocoap LwM2M test server in this process. Measured:
time until all N are registered upstream, the process RSS before and after, and the server's Read
latency (p50/p99) for a cached value (/3303/0/5700, Max-Age 60, answered from the gateway's cache) and
an uncached one (/3304/0/5700, Max-Age 0, read through to the device). Reference, measured in the same
run from the same server socket: a direct CoAP GET of the device's resource. ``--mode gateway`` puts the
devices behind the gateway's one registration as LwM2M Gateway (/25) instances, read by prefix
(/dev0/3303/0/5700), and the registration time is until the gateway's object list names all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiocoap  # noqa: E402
from aiocoap.numbers.codes import Code  # noqa: E402

from gatewayd.lwm2m import load_registry  # noqa: E402
from gatewayd.lwm2m.client import ClientSettings, LwM2MEngine  # noqa: E402
from gatewayd.lwm2m.proxy.coap_adapter import CoapDeviceConfig  # noqa: E402
from gatewayd.lwm2m.proxy.component import LwM2MProxy  # noqa: E402
from gatewayd.lwm2m.proxy.mapping import parse_mappings  # noqa: E402
from gatewayd.lwm2m.proxy.virtual import UpstreamAccount  # noqa: E402

MAPPING = {"/3303/0/5700": {"get": "/sensors/temp"},
           "/3304/0/5700": {"get": "/sensors/env", "format": "json", "pointer": "/rh"}}


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def devices_child(count: int) -> None:
    from devtools.testbed.sensors import Sensor
    from tests.lwm2m.servers import free_udp_port

    sensors = []
    for _ in range(count):
        s = Sensor("127.0.0.1", free_udp_port(), max_age=60, env_max_age=0)
        await s.start()
        sensors.append(s)
    print(json.dumps([s.port for s in sensors]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


FAILED: list[bytes] = []


async def timed(coro) -> float:
    """Seconds the request took; a failed one (the device did not answer: 5.03) is counted in FAILED."""
    start = time.perf_counter()
    resp = await coro
    elapsed = time.perf_counter() - start
    if resp.code != Code.CONTENT:
        FAILED.append(bytes(resp.payload))
    return elapsed


async def main(args: argparse.Namespace) -> None:
    from tests.lwm2m.aioserver import LwM2MTestServer
    from tests.lwm2m.servers import free_udp_port

    child = subprocess.Popen([sys.executable, __file__, "--devices-child", str(args.devices)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        server = LwM2MTestServer(free_udp_port())
        await server.start()
        registry = load_registry()
        settings = ClientSettings(lifetime=300, keepalive=0)
        engine = LwM2MEngine(None, settings)
        gateway_mode = args.mode == "gateway"
        target: dict[str, tuple[str, str]] = {}  # device endpoint -> (registration, path prefix)
        if gateway_mode:
            from gatewayd.lwm2m.bootstrap import factory_bootstrap
            from gatewayd.lwm2m.codecs import parse_registration
            from gatewayd.lwm2m.proxy.gateway_mode import GatewayEngine
            from tests.lwm2m.servers import device_store

            store = device_store()
            factory_bootstrap(store, server.uri, lifetime=300)
            gw_engine = GatewayEngine(await engine.add("gw", store))
            await server.wait_until(lambda: "gw" in server.registrations)
            proxy = LwM2MProxy(gw_engine, registry, settings)
        else:
            proxy = LwM2MProxy(engine, registry, settings)
        maps = parse_mappings(MAPPING, registry)

        def all_registered() -> bool:
            if not gateway_mode:
                return len(server.registrations) == len(ports)
            reg = server.registrations["gw"]
            links = next((u["payload"] for u in reversed(reg.updates) if u["payload"]), reg.links)
            return len(parse_registration(links.encode())[0].get(25, [])) == len(ports)

        rss0 = rss_kib()
        start = time.perf_counter()
        for i, port in enumerate(ports):
            await proxy.add_device(CoapDeviceConfig(f"dev-{i}", UpstreamAccount(server.uri, lifetime=300), maps,
                                                    address="127.0.0.1", port=port))
        await server.wait_until(all_registered, timeout=600)
        registered = time.perf_counter() - start
        for i in range(len(ports)):
            ep = f"dev-{i}"
            target[ep] = ("gw", f"/{gw_engine.devices[ep].prefix}") if gateway_mode else (ep, "")
        # the prefetch settles: every device answered once (gateway mode registers long before that)
        deadline = time.monotonic() + 120
        while any(d.reach.reachable is None for d in proxy.devices.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        rss1 = rss_kib()

        picks = [random.randrange(len(ports)) for _ in range(args.samples)]
        direct, cached, uncached = [], [], []
        assert server.ctx is not None
        for i in picks:
            msg = aiocoap.Message(code=Code.GET, uri=f"coap://127.0.0.1:{ports[i]}/sensors/temp")
            direct.append(await timed(server.ctx.request(msg).response))
            reg, prefix = target[f"dev-{i}"]
            cached.append(await timed(server.op(reg, Code.GET, f"{prefix}/3303/0/5700")))
            uncached.append(await timed(server.op(reg, Code.GET, f"{prefix}/3304/0/5700")))
        hits = sum(d.counters["cache_hits"] for d in proxy.devices.values())

        n = len(ports)
        print(f"devices proxied:                 {n} ({args.mode})")
        print(f"all registered upstream after:   {registered:.2f} s ({n / registered:.0f} devices/s)")
        print(f"gateway RSS:                     {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB after "
              f"({(rss1 - rss0) / n:.0f} KiB per device; includes the test server's registration records)")
        print(f"reference, direct CoAP GET:      p50 {pct(direct, .5):.2f} ms  p99 {pct(direct, .99):.2f} ms")
        for name, data in (("server Read, cached value:", cached), ("server Read, uncached value:", uncached)):
            print(f"{name:32} p50 {pct(data, .5):.2f} ms  p99 {pct(data, .99):.2f} ms  "
                  f"({statistics.median(data) / statistics.median(direct):.2f}x direct GET)")
        print(f"cache hits:                      {hits}")
        unreachable = sum(1 for d in proxy.devices.values() if d.reach.reachable is False)
        print(f"failed Reads:                    {len(FAILED)} of {3 * len(picks)} "
              f"({unreachable} devices missed their first read)")
        await proxy.stop()
        await engine.stop(deregister=False)
        await server.stop()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--mode", choices=("registrations", "gateway"), default="registrations",
                        help="one registration per device, or all behind the gateway's (object 25)")
    parser.add_argument("--devices-child", type=int, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.devices_child:
        asyncio.run(devices_child(ns.devices_child))
    else:
        asyncio.run(main(ns))
