"""The wheel pip builds from a clean tree (HEAD, or with GATEWAYD_DEB_WORKTREE=1 the tracked files as
they are) carries the product (gatewayd, ncp, nat64, common) and no test or demo harness (devtools/, tests/,
benchmarks/)."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PYTHON
from tests.packaging.conftest import HARNESS, source_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_wheel_holds_the_product_and_no_harness(tmp_path: Path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    src = source_tree(tmp_path / "src")
    result = subprocess.run([PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("gatewayd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("gatewayd", "ncp", "nat64", "common"):
        assert f"{module}/__init__.py" in names
    assert "gatewayd/lwm2m/models/3303.xml" in names
    top = {n.split("/")[0] for n in names if not re.match(r"gatewayd-[^/]*\.dist-info/", n)}
    assert top == {"gatewayd", "ncp", "nat64", "common"}, top
    harness = [n for n in names if HARNESS.search("/usr/lib/python3/dist-packages/" + n)]
    assert not harness, f"test or demo harness in the wheel: {harness}"
