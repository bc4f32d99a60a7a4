"""Many LwM2M clients in one process: time to register, RSS per client, Read latency.

    .venv/bin/python benchmarks/lwm2m_clients.py                       # short: 200 plain, 50 DTLS
    .venv/bin/python benchmarks/lwm2m_clients.py --plain 1000 10000 --dtls 1000
    .venv/bin/python benchmarks/lwm2m_clients.py --plain 10000 --concurrency 0   # no registration ramp

The clients run in one LwM2MEngine, whose registration ramp keeps ``--concurrency`` Registers in flight
(0: all at once). Plain clients register with a minimal LwM2M registration server in another process. DTLS clients
handshake with libcoap's coap-server-openssl (another process; a CoAP server, so Register is answered
4.04 over the DTLS session: "registered" there means handshake + Register answered). References measured
in the same run: the process RSS with 0 clients (each client count runs in a fresh process, so memory
one run leaves in the allocator does not hide the next one's), and the round trip of a bare aiocoap GET to a trivial
resource in this process, against which the clients' Read latency is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiocoap
from aiocoap import resource
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m import load_registry
from gatewayd.lwm2m.bootstrap import factory_bootstrap
from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, LwM2MEngine, RegistrationState
from gatewayd.lwm2m.store import ObjectStore
from gatewayd.lwm2m.transport import dtls_faults

PSK = b"bench-psk"


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the registration server (child process) ---------------------------------------------------------
class _Rd(resource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.n += 1
        msg = aiocoap.Message(code=Code.CREATED)
        msg.opt.location_path = ("rd", str(self.n))
        return msg


class _RdEntry(resource.Resource):
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=Code.CHANGED)

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=Code.DELETED)


class _RdSite(resource.Site):
    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        if len(path) == 2 and path[0] == "rd":
            return await _RdEntry().render(request)
        return await super().render(request)


async def serve(port: int) -> None:
    site = _RdSite()
    site.add_resource(["rd"], _Rd())
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port), transports=["udp6"])
    print("ready", flush=True)
    await asyncio.Event().wait()


# --- the measurement ----------------------------------------------------------------------------------
class _Hello(resource.Resource):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=Code.CONTENT, payload=b"gatewayd tests")


async def bare_get_latency(samples: int) -> list[float]:
    port = free_port()
    site = resource.Site()
    site.add_resource(["3", "0", "0"], _Hello())
    server = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port), transports=["udp6"])
    client = await aiocoap.Context.create_client_context(transports=["udp6"])
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        await client.request(aiocoap.Message(code=Code.GET, uri=f"coap://127.0.0.1:{port}/3/0/0")).response
        out.append(time.perf_counter() - t0)
    await client.shutdown()
    await server.shutdown()
    return out


def make_store(registry, uri: str, secure: bool, i: int) -> ObjectStore:
    store = ObjectStore(registry)
    store.add_instance(3, 0, {0: "gatewayd tests", 1: "bench", 2: f"{i:016x}", 11: {0: 0}, 16: "U"})
    if secure:
        factory_bootstrap(store, uri, identity=f"bench-{i}".encode(), key=PSK, lifetime=3600)
    else:
        factory_bootstrap(store, uri, lifetime=3600)
    return store


async def run(n: int, uri: str, secure: bool, registry, reads: int, baseline_kib: int,
              concurrency: int) -> dict[str, float]:
    # a failed attempt waits an hour: everyone must get through on the first try
    settings = ClientSettings(lifetime=3600, keepalive=0, request_timeout=60, backoff_initial=3600,
                              backoff_max=3600)
    engine = LwM2MEngine(settings=settings, register_concurrency=concurrency)
    gc.collect()
    before = rss_kib()
    t0 = time.perf_counter()
    for i in range(n):
        await engine.add(f"bench-{'d' if secure else 'p'}-{i}", make_store(registry, uri, secure, i))
    clients = list(engine.clients.values())

    def done(c: LwM2MClient) -> bool:
        if secure:
            return "rejected with" in c.last_error or c.state == RegistrationState.REGISTERED
        return c.state == RegistrationState.REGISTERED

    deadline = time.perf_counter() + 300
    while sum(map(done, clients)) < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    ok = sum(map(done, clients))
    gc.collect()
    per_client = (rss_kib() - before) / n
    latencies: list[float] = []
    if not secure:
        reader = await aiocoap.Context.create_client_context(transports=["udp6"])
        for i in range(reads):
            port = clients[(i * 7919) % n].transport.local_port
            t1 = time.perf_counter()
            resp = await reader.request(aiocoap.Message(code=Code.GET, uri=f"coap://127.0.0.1:{port}/3/0/0")).response
            latencies.append(time.perf_counter() - t1)
            assert resp.code == Code.CONTENT
        await reader.shutdown()
    failed = sum(1 for c in clients if c.state == RegistrationState.FAILED and not done(c))
    peak = engine.ramp.peak
    await engine.stop(deregister=False)
    return {"n": n, "ok": ok, "elapsed": elapsed, "per_client_kib": per_client, "latencies": latencies,
            "baseline_kib": baseline_kib, "failed": failed, "peak": peak, "dtls_faults": dict(dtls_faults)}


def run_fresh(kind: str, n: int, uri: str, args: argparse.Namespace) -> dict:
    """One measurement in a child process of its own."""
    out = subprocess.run([sys.executable, __file__, "--one", kind, str(n), uri, "--reads", str(args.reads),
                          "--concurrency", str(args.concurrency)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def one(kind: str, n: int, uri: str, args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    registry = load_registry()
    gc.collect()
    r = await run(n, uri, kind == "dtls", registry, args.reads if kind == "plain" else 0, rss_kib(),
                  args.concurrency)
    print(json.dumps(r), flush=True)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def main(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    load_registry()  # the 0-client RSS includes the object registry, as the clients' processes do
    gc.collect()
    baseline = rss_kib()
    ref = await bare_get_latency(args.reads)
    ref_p50, ref_p99 = pct(ref, 0.5), pct(ref, 0.99)
    print(f"reference: process RSS with 0 clients {baseline / 1024:.1f} MiB; bare aiocoap GET round trip "
          f"p50 {ref_p50:.3f} ms, p99 {ref_p99:.3f} ms")
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        for n in args.plain:
            r = run_fresh("plain", n, f"coap://127.0.0.1:{port}", args)
            lat = r["latencies"] or [float("nan")]
            print(f"plain {n:>6}: {r['ok']}/{n} registered in {r['elapsed']:.2f} s "
                  f"({r['failed']} failed and backing off; peak {r['peak']} Registers in flight, cap "
                  f"{args.concurrency or 'none'}) "
                  f"({n / r['elapsed']:.0f}/s); RSS {r['per_client_kib']:.1f} KiB/client "
                  f"(target 50, {r['per_client_kib'] / 50:.2f}x; {r['per_client_kib'] * 100 / baseline:.3f}"
                  f"% of the 0-client RSS each); Read p50 {pct(lat, 0.5):.3f} ms "
                  f"({pct(lat, 0.5) / ref_p50:.2f}x bare GET), p99 {pct(lat, 0.99):.3f} ms "
                  f"({pct(lat, 0.99) / ref_p99:.2f}x)")
    finally:
        server.kill()
        server.wait()
    coap_server = shutil.which("coap-server-openssl")
    if args.dtls and coap_server is None:
        print("DTLS: skipped, coap-server-openssl (libcoap3-bin) is not installed")
        return
    for n in args.dtls:
        port = free_port()
        proc = subprocess.Popen([coap_server, "-A", "127.0.0.1", "-p", str(port), "-k", PSK.decode(), "-v", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            r = run_fresh("dtls", n, f"coaps://127.0.0.1:{port + 1}", args)
            print(f"DTLS  {n:>6}: {r['ok']}/{n} handshaken + Register answered in {r['elapsed']:.2f} s "
                  f"({n / r['elapsed']:.0f}/s; {r['failed']} failed, peak {r['peak']} in flight); "
                  f"RSS {r['per_client_kib']:.1f} KiB/client (target 100, {r['per_client_kib'] / 100:.2f}x); "
                  f"DTLS stack faults contained: {r['dtls_faults'] or 0}")
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", type=int, nargs="*", default=[200])
    parser.add_argument("--dtls", type=int, nargs="*", default=[50])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64,
                        help="Registers in flight at once (the engine's register_concurrency; 0: no cap)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve:
        asyncio.run(serve(ns.serve))
    elif ns.one:
        asyncio.run(one(ns.one[0], int(ns.one[1]), ns.one[2], ns))
    else:
        asyncio.run(main(ns))
    os._exit(0)
