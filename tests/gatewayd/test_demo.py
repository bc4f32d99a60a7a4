"""The README's main-job command, run as a user runs it: it brings the border router up, shows it,
and leaves nothing behind, whether it ends by itself (--once), by SIGTERM half way, or by Ctrl-C
after the reader of its output went away (``./scripts/demo.sh | tee demo.log``); killed outright,
it takes its processes with it. What the demo shows is asserted in detail in tests/e2e."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT, namespaces

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.usefixtures("node_peers")]


def run_of(out: str) -> tuple[str, str]:
    """(namespace tag, work directory) of the demo run that printed ``out``."""
    tag = re.search(r"in namespace gwbr-(\w+)", out).group(1)
    work = re.search(r"\(log: (/\S+)/gatewayd\.log\)", out).group(1)
    return tag, work


def leftovers(out: str, netns: set[int] = frozenset()) -> list[str]:
    """Namespaces, /etc/netns entries, processes and the work directory of the demo run that printed
    ``out``; ``netns``: the inodes of its namespaces (:func:`netns_of`), taken while they existed."""
    tag, work = run_of(out)
    found = [ns for ns in namespaces() if ns.endswith(tag)]
    found += [str(p) for p in Path("/etc/netns").glob(f"*-{tag}")]
    found += processes(tag, work, netns)
    if Path(work).exists():
        found.append(work)
    return found


def netns_of(tag: str) -> set[int]:
    """The inodes of the run's network namespaces (a process in one has it as /proc/PID/ns/net)."""
    return {os.stat(f"/run/netns/{ns}").st_ino for ns in namespaces() if ns.endswith(tag)}


def processes(tag: str, work: str, netns: set[int] = frozenset()) -> list[str]:
    """The live processes of the run: in one of its namespaces (the peers, the sensors, the LwM2M
    server, gatewayd, the simulated NCP), or naming them or its work directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            inside = os.stat(proc / "ns" / "net").st_ino in netns
        except OSError:
            continue
        if cmdline and (inside or tag in cmdline or work in cmdline):
            found.append(f"pid {proc.name}: {cmdline}")
    return found


def start_demo() -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, "-m", "devtools.demo"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_until(proc: subprocess.Popen[str], text: str) -> str:
    out = ""
    assert proc.stdout is not None
    while text not in out:
        line = proc.stdout.readline()
        assert line, out + (proc.stderr.read() if proc.stderr else "")
        out += line
    return out


def test_demo_once_comes_up_and_cleans_up():
    result = subprocess.run([PYTHON, "-m", "devtools.demo", "--once"], cwd=ROOT, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^Thread +leader of \S+ on channel 15, 3 children", out, re.M), out
    assert re.search(r"^DNS64 .* lwm2m\.example\.test AAAA → fd64:64::6440:a$", out, re.M), out
    assert re.search(r"^LwM2M .* lists 5 clients", out, re.M), out
    assert re.search(r"^Read +temp-sensor /3303/0/5700 = 22\.5", out, re.M), out
    assert "FAILED" not in out and "gatewayctl -s " in out
    assert not leftovers(out)


def test_demo_stops_cleanly_on_sigterm_during_bring_up():
    proc = start_demo()
    try:
        out = read_until(proc, "starting gatewayd")
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "cleaning up" in rest
    assert not leftovers(out)


def test_ctrl_c_after_the_reader_of_its_output_went_away_cleans_up():
    """`./scripts/demo.sh | tee demo.log`, then Ctrl-C: tee dies with the same Ctrl-C, so every line
    the clean-up writes meets a closed pipe. It must clean up all the same."""
    proc = start_demo()
    try:
        out = read_until(proc, "Ctrl-C stops everything")
        tag, work = run_of(out)
        netns = netns_of(tag)
        running = " ".join(processes(tag, work, netns))
        for program in ("-m gatewayd", "-m ncp.sim", "nat64_peer", "dns_peer", "sensors", "lwm2m-node-server"):
            assert program in running, f"{program} runs: {running}"
        assert proc.stdout is not None
        proc.stdout.close()  # tee is gone
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "cleaning up" in err, "the clean-up says so on stderr once stdout is gone"
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert not leftovers(out, netns)


def test_killed_demo_takes_its_processes_with_it():
    """SIGKILL leaves the demo no chance to clean up: its processes still die with it (the namespaces
    and the work directory it would have removed are left, and removed here)."""
    proc = start_demo()
    out = ""
    try:
        out = read_until(proc, "CoAP sensors running")
        tag, work = run_of(out)
        netns = netns_of(tag)
        running = processes(tag, work, netns)
        assert len(running) >= 7, f"gatewayd, the simulator, 3 peers, 2 sensors, the LwM2M server: {running}"
        proc.kill()
        proc.wait()
        left = processes(tag, work, netns)
        for _ in range(150):
            if not left:
                break
            time.sleep(0.1)
            left = processes(tag, work, netns)
        assert not left, "processes outlived the demo"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if "(log: " in out:
            tag, work = run_of(out)
            for ns in namespaces():
                if ns.endswith(tag):
                    subprocess.run(["ip", "netns", "del", ns], check=False)
            for path in Path("/etc/netns").glob(f"*-{tag}"):
                shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
