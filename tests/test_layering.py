"""The libraries stand alone: ncp/ and nat64/ build on common/ only, common/ on nothing of ours."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
import importlib, pkgutil, sys
for name in {packages!r}:
    pkg = importlib.import_module(name)
    for mod in pkgutil.walk_packages(pkg.__path__, name + "."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & {{"gatewayd", "ncp", "nat64", "common", "devtools"}})))
"""


@pytest.mark.parametrize(("packages", "allowed"), [
    (["common"], {"common"}),
    (["ncp"], {"ncp", "common"}),
    (["nat64"], {"nat64", "common"}),
])
def test_a_library_imports_nothing_above_it(packages: list[str], allowed: set[str]) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.format(packages=packages)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert set(out.split()) == allowed
