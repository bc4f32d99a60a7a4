"""``--busy`` for the benchmarks that compare against a reference: keep one core occupied meanwhile.

One child process spins on the last CPU (pinned there, ordinary priority) from before the first side is
measured until after the last, so the reference and ours run next to the same load: the scheduler has
one core less to give them, and whichever one runs on the busy core shares it with the spinner.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

SPIN = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def busy_cpu() -> int:
    """The CPU the spinner is pinned to: the highest this process may run on."""
    return max(os.sched_getaffinity(0))


@contextlib.contextmanager
def busy(enabled: bool = True) -> Iterator[int | None]:
    """Spin one core for the duration of the block (yields its CPU number, or None when not enabled)."""
    if not enabled:
        yield None
        return
    cpu = busy_cpu()
    proc = subprocess.Popen([sys.executable, "-c", SPIN, str(cpu)], stdin=subprocess.DEVNULL)
    try:
        yield cpu
    finally:
        proc.kill()
        proc.wait()


def describe(cpu: int | None) -> str:
    if cpu is None:
        return "quiet (no other load)"
    return f"busy: one process spinning on CPU {cpu} throughout, for both sides"
