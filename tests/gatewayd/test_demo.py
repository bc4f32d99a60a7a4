"""The README's main-job command brings the border router up and cleans up after itself."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import PYTHON, ROOT

pytestmark = [pytest.mark.root, pytest.mark.slow]


def namespaces() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


def test_demo_comes_up_and_cleans_up():
    result = subprocess.run([PYTHON, "-m", "gatewayd.demo", "--once"], cwd=ROOT, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "formed: leader on channel 15" in out
    assert "2 children attached" in out
    assert "pings the border router" in out and "FAILED" not in out
    assert "LAN host reaches mesh node" in out
    tag = re.search(r"in namespace gwbr-(\w+)", out).group(1)
    assert not {ns for ns in namespaces() if ns.endswith(tag)}, "every namespace the demo made is gone"
