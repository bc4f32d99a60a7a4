"""Development tools that do not ship: the demo, the namespace testbed and its peer programs, a DNS
zone server for tests and benchmarks, and the man-page generator the Debian build runs.

Nothing in gatewayd/, ncp/ or nat64/ imports this package, and neither the wheel nor the .deb carries it
(pyproject.toml lists only those three packages). It is run from a checkout: ``./scripts/demo.sh``
(``python -m devtools.demo``), the tests and the benchmarks, and ``python -m devtools.manpages`` in
packaging/debian/rules.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout this package runs from


def python_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with the checkout first on PYTHONPATH, so a
    ``python -m devtools...`` child finds this package whatever its working directory."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when this process dies (prctl
    PR_SET_PDEATHSIG; kept across ``ip netns exec``, which execs the program), so nothing the demo or a
    test started outlives it, however it ends. Only for children of a thread that lives as long as
    they do (the kernel signals when the forking thread exits)."""
    parent = os.getpid()

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), sig)

    return preexec
