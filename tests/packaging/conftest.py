"""Fixtures for the package tests: the .deb built from a clean tree, once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "dh_python3", "lintian", "git")


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
