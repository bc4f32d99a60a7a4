"""pyroute2's rtnetlink classes load without its initialiser's other subsystems, and the rest still works."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import sys
import common.rtnl
from pyroute2 import IPRoute, AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
assert IPRoute is common.rtnl.IPRoute and NetlinkError is common.rtnl.NetlinkError
heavy = sorted(m for m in ("pyroute2.ndb.main", "pyroute2.ipdb", "pyroute2.conntrack", "sqlite3") if m in sys.modules)
with IPRoute() as ip:
    lo = ip.link_lookup(ifname="lo")
import pyroute2
full = pyroute2.NDB.__name__  # anything else: the whole package after all
print(heavy, lo, full)
"""


def test_only_the_rtnetlink_part_of_pyroute2_is_loaded_and_works() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, check=True, capture_output=True, text=True)
    lo, full = out.stdout.split()[-2:]
    assert out.stdout.startswith("[] "), f"heavy pyroute2 subsystems were imported: {out.stdout}"
    assert lo.startswith("[") and full == "NDB"
