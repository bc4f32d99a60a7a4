"""The border-router testbed (devtools.testbed) with gatewayd started as a user would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.testbed import Testbed
from tests.conftest import DaemonProcess


class Topology(Testbed):
    def __init__(self, tmp: Path, internet: bool = False, ncp_generation: str = "2025"):
        super().__init__(tmp, internet=internet, ncp_generation=ncp_generation)
        self.tmp = tmp
        self.daemons: list[DaemonProcess] = []

    def start_daemon(self, extra: str = "") -> DaemonProcess:
        daemon = DaemonProcess(self.tmp, self.config(extra), netns=self.br)
        self.daemons.append(daemon)
        return daemon.start()

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        super().close()


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices)")
    topology = Topology(tmp_path)
    try:
        topology.setup()
        yield topology
    finally:
        topology.close()
