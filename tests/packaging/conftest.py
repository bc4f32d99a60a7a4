"""Fixtures for the package tests: the .deb built from a clean tree, once per session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "dh_python3", "lintian", "git")

# The demo, the testbed and its peers, the test DNS server and the man-page generator (devtools/) run
# from a checkout only; none of the modules they were before the move may come back into the product.
HARNESS = re.compile(r"/usr/lib/python3/dist-packages/(devtools|tests|benchmarks)(/|$)|"
                     r"/usr/lib/python3/dist-packages/(gatewayd/(testbed|demo|manpages)|nat64/dns64/testing)\b|"
                     r"lwm2m-node-server\.js$")


def source_tree(dest: Path) -> Path:
    """The tree a clean checkout has (``git archive HEAD``) in ``dest``; with GATEWAYD_DEB_WORKTREE=1 the
    tracked files as they are now, as scripts/build-deb.sh takes them."""
    dest.mkdir(parents=True, exist_ok=True)
    if os.environ.get("GATEWAYD_DEB_WORKTREE"):
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
        paths = b"\0".join(f for f in files.split(b"\0") if f and (ROOT / f.decode()).exists())
        tar = subprocess.run(["tar", "-C", str(ROOT), "--null", "-T", "-", "-cf", "-"], input=paths,
                             capture_output=True, check=True).stdout
    else:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return dest


def missing(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gatewayd_*.deb built by scripts/build-deb.sh from HEAD (``git archive``), as a clean checkout
    would build it; GATEWAYD_DEB_WORKTREE=1 builds the tracked files as they are now instead."""
    if os.geteuid() != 0:
        pytest.skip("needs root (package builds and installs)")
    if lacking := missing(*BUILD_TOOLS):
        pytest.skip(f"package build tools missing: {', '.join(lacking)} (apt-get install debhelper dh-python "
                    "pybuild-plugin-pyproject lintian)")
    out = tmp_path_factory.mktemp("deb")
    cmd = [str(ROOT / "scripts/build-deb.sh"), str(out)]
    if os.environ.get("GATEWAYD_DEB_WORKTREE"):
        cmd.insert(1, "--worktree")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"build-deb.sh failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    debs = sorted(out.glob("gatewayd_*.deb"))
    assert len(debs) == 1, f"expected one gatewayd .deb in {out}: {list(out.iterdir())}"
    return debs[0]
