"""The border-router testbed of tests/thread, and python-otbr-api run inside gatewayd's namespace."""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.thread.conftest import topo  # noqa: F401 - the fixture

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def in_netns(ns: str, make: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
    """Run the coroutine ``make()`` on an event loop in a thread that entered network namespace ``ns``
    (setns affects only the calling thread), so its sockets are gatewayd's neighbours'."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result["value"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{ns}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"the client in {ns} did not finish within {timeout} s")
    if "error" in result:
        raise result["error"]
    return result["value"]
