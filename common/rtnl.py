"""pyroute2's rtnetlink classes without its package initialiser.

``pyroute2/__init__.py`` imports every subsystem it has — NDB (with sqlite3), IPDB, conntrack, ipset,
WireGuard, nl80211, devlink … — to re-export them: measured, 12.7 MB of resident memory on top of
asyncio, of which the daemon uses IPRoute/AsyncIPRoute alone (benchmarks/idle.py). Importing this module
first registers ``pyroute2`` as its bare package, so ``from pyroute2 import IPRoute`` (here or anywhere
later) loads only ``pyroute2.iproute.linux``. Any other name asked of the package runs the real
initialiser after all, so nothing that expects the full package breaks; it only pays for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

_LEAN = {
    "AsyncIPRoute": "pyroute2.iproute.linux",
    "IPRoute": "pyroute2.iproute.linux",
    "NetlinkError": "pyroute2.netlink.exceptions",
}


def _install() -> None:
    if "pyroute2" in sys.modules:
        return  # imported already (whole): nothing to save
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:
        return  # not installed: the import below says so
    package = importlib.util.module_from_spec(spec)
    loaded = False

    def __getattr__(name: str) -> Any:
        nonlocal loaded
        if name in _LEAN:
            return getattr(importlib.import_module(_LEAN[name]), name)
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")  # a submodule (from pyroute2 import config)
        if not loaded and not name.startswith("__"):
            loaded = True
            spec.loader.exec_module(package)  # type: ignore[union-attr]  # the whole package after all
            return getattr(package, name)
        raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


_install()

from pyroute2.iproute.linux import AsyncIPRoute, IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["AsyncIPRoute", "IPRoute", "NetlinkError"]
