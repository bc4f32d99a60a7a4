"""The README's main-job command, run as a user runs it: it brings the border router up, shows it,
and leaves nothing behind, whether it ends by itself (--once) or by SIGTERM half way.
What the demo shows is asserted in detail in tests/e2e."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT, namespaces

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.usefixtures("node_peers")]


def leftovers(out: str) -> list[str]:
    """Namespaces, /etc/netns entries and processes of the demo run that printed ``out``."""
    tag = re.search(r"in namespace gwbr-(\w+)", out).group(1)
    work = re.search(r"\(log: (/\S+)/gatewayd\.log\)", out).group(1)
    found = [ns for ns in namespaces() if ns.endswith(tag)]
    found += [str(p) for p in Path("/etc/netns").glob(f"*-{tag}")]
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if tag in cmdline or work in cmdline:
            found.append(f"pid {proc.name}: {cmdline}")
    if Path(work).exists():
        found.append(work)
    return found


def test_demo_once_comes_up_and_cleans_up():
    result = subprocess.run([PYTHON, "-m", "gatewayd.demo", "--once"], cwd=ROOT, capture_output=True, text=True,
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
    proc = subprocess.Popen([PYTHON, "-m", "gatewayd.demo"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out = ""
        assert proc.stdout is not None
        while "starting gatewayd" not in out:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            out += line
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "cleaning up" in rest
    assert not leftovers(out)
