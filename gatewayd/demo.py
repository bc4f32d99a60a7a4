"""``scripts/demo.sh``: the whole border router on one machine, with no radio.

Builds the testbed (gatewayd.testbed: a simulated NCP and mesh, gatewayd in its own
namespace, a LAN host), shows what a user wants to see once it is up, and stays up so
gatewayctl works against it until Ctrl-C. Every namespace and process is removed on
exit or failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gatewayd.testbed import Testbed

DEMO_TOML = """\
[daemon]
state_dir = "{work}/state"

[control]
socket = "{work}/control.sock"

[log]
target = "stderr"
"""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


class Demo:
    def __init__(self, work: Path):
        self.work = work
        self.bed = Testbed(work)
        self.socket = work / "control.sock"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.gatewayctl = Path(sys.executable).with_name("gatewayctl")

    def ctl(self, *words: str) -> Any:
        out = subprocess.run([str(self.gatewayctl), "-s", str(self.socket), "--json", *words],
                             capture_output=True, text=True, timeout=15)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return json.loads(out.stdout)

    def wait(self, what: str, check: Any, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"gatewayd exited ({self.daemon.returncode}); see {self.work}/gatewayd.log")
            try:
                value = check()
            except (RuntimeError, ValueError, OSError):
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}; see {self.work}/gatewayd.log")

    def start(self) -> None:
        step("creating namespaces: mesh (simulated NCP and Thread nodes), border router, LAN host")
        self.bed.setup()
        config = self.work / "gatewayd.toml"
        config.write_text(DEMO_TOML.format(work=self.work) + self.bed.config())
        config.chmod(0o600)
        step(f"starting gatewayd in namespace {self.bed.br} (log: {self.work}/gatewayd.log)")
        log = open(self.work / "gatewayd.log", "wb")  # noqa: SIM115 - lives as long as the daemon
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.bed.br, sys.executable, "-m", "gatewayd", "-c", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        state = self.wait("the Thread network to form", lambda: (s := self.ctl("state"))["role"] == "leader" and s)
        step(f"Thread network {state['network_name']} formed: {state['role']} on channel {state['channel']}")
        omr = state["omr_prefix"]
        children = self.wait("children to attach", lambda: (c := self.ctl("child table")) and c)
        step(f"{len(children)} children attached: " + ", ".join(c["extaddr"] for c in children))
        step(f"OMR prefix {omr} published into the mesh")
        prefix = omr.split("::/")[0] + ":"
        node = self.wait("a node address in the OMR prefix",
                         lambda: next((a for a in self.bed.addresses(self.bed.mesh, "mesh0") if a.startswith(prefix)),
                                      None))
        host = next(a for a in self.bed.addresses(self.bed.br, "wpan0") if a.startswith(prefix))
        ping = self.bed.run(self.bed.mesh, "ping", "-c", "1", "-W", "2", host, check=False)
        step(f"mesh node {node} pings the border router {host}: {'ok' if ping.returncode == 0 else 'FAILED'}")
        self.wait("the LAN host to learn the mesh route", lambda: omr in self.bed.run(self.bed.lan, "ip", "-6",
                                                                                     "route").stdout)
        ping = self.bed.run(self.bed.lan, "ping", "-c", "1", "-W", "2", node, check=False)
        step(f"LAN host reaches mesh node {node} through the border router: "
             f"{'ok' if ping.returncode == 0 else 'FAILED'}")
        print()
        print(f"gatewayd is up. Try:  {self.gatewayctl} -s {self.socket} status")
        print("                      ... state | child table | netdata show | counters | ncp | help")
        print("Ctrl-C stops everything and cleans up.", flush=True)

    def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.bed.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description="gatewayd on a simulated mesh")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) on exit")
    parser.add_argument("--once", action="store_true", help="exit after bringing everything up")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("demo: run as root (it creates network namespaces and TUN devices)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gatewayd-demo-"))
    demo = Demo(work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        demo.start()
        if not args.once:
            signal.pause()
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\ncleaning up", flush=True)
        demo.close()
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
