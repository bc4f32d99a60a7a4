"""gatewayd on a real OpenThread NCP, with real OpenThread nodes, in namespaces made for the test.

    br ns: gatewayd ←pty/Spinel→ ot-ncp-ftd (node 1) ~simulated radio (loopback UDP)~ ot-cli-ftd nodes
    br ns (infra0) ←veth→ lan ns          br ns (uplink0) ←veth→ inet ns (IPv4 only: DNS, echo, TCP)

The NCP is spawned by gatewayd through the forkpty link, exactly as it drives a Chili2 over a UART; the
nodes run in the br namespace because the simulated radio is loopback UDP.  Every Thread scenario runs
on each OpenThread generation found in GATEWAYD_INTEROP_DIR (tests/interop/peers.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.testbed import nat64_toml
from tests.conftest import DaemonProcess
from tests.interop.peers import OT_VERSIONS, OtCli, interop_dir, ncp_url, peer
from tests.interop.wakaama import LwM2MServer, free_udp_port
from tests.thread.conftest import Topology

NCP_NODE_ID = 1
RECORD_ENV = "GATEWAYD_RECORD_DIR"  # where to keep each test's recording of the NCP's Spinel stream


class InteropBed(Topology):
    """The testbed with gatewayd on a real NCP and real nodes joined with the dataset gatewayctl prints."""

    def __init__(self, tmp: Path, ot: Path):
        super().__init__(tmp, internet=True)
        self.ot = ot
        self.recording = tmp / "ncp-recording.jsonl"
        self.nodes_cli: list[OtCli] = []
        self.daemon: DaemonProcess | None = None

    def sim_url(self, python: str = "") -> str:  # the real NCP instead of the simulator
        (self.tmp / "ncp").mkdir(exist_ok=True)
        return ncp_url(self.ot / "ot-ncp-ftd", NCP_NODE_ID, self.tmp / "ncp", record=self.recording)

    def start(self, extra: str = "") -> DaemonProcess:
        self.daemon = self.start_daemon(nat64_toml() + extra)
        self.wait_role("leader")
        return self.daemon

    def state(self) -> dict:
        assert self.daemon is not None
        return json.loads(self.daemon.ctl("--json", "state").stdout)

    def ctl_json(self, *words: str) -> object:
        assert self.daemon is not None
        return json.loads(self.daemon.ctl("--json", *words).stdout)

    def wait_role(self, *roles: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        state: dict = {}
        while time.monotonic() < deadline:
            assert self.daemon is not None
            result = self.daemon.ctl("--json", "state", check=False)
            state = json.loads(result.stdout) if result.returncode == 0 else {}
            if state.get("role") in roles:
                return state
            time.sleep(0.3)
        raise AssertionError(f"gatewayd role {state.get('role')!r}, wanted {roles}:\n{self.daemon.output()[-3000:]}")

    def join_node(self, node_id: int, *, mtd: bool = False, router: bool = False) -> OtCli:
        """A node joined with the dataset `gatewayctl dataset active -x --show-secrets` prints."""
        assert self.daemon is not None
        dataset = self.daemon.ctl("dataset", "active", "-x", "--show-secrets").stdout.strip()
        node = OtCli(self.ot / "ot-cli-ftd", node_id, self.tmp / f"node{node_id}", netns=self.br)
        self.nodes_cli.append(node)
        if router:
            node.cmd("routerselectionjitter 1")  # upgrade to router within a second or two
        elif not mtd:
            node.cmd("routerupgradethreshold 0")  # an FTD that stays a child
        node.join(dataset, mtd=mtd)
        node.wait_state("router" if router else "child", timeout=90)
        if router:  # the node says "router" a moment before the border router's NCP lists it as one
            ext = node.value("extaddr")
            deadline = time.monotonic() + 30
            while not any(r["extaddr"] == ext for r in self.ctl_json("router", "table")):  # type: ignore[union-attr]
                assert time.monotonic() < deadline, f"node {node_id} is router but not in the NCP's router table"
                time.sleep(0.3)
        return node

    def close(self) -> None:
        for node in self.nodes_cli:
            node.close()
        super().close()


@pytest.fixture(params=sorted(OT_VERSIONS), ids=sorted(OT_VERSIONS))
def ot(request: pytest.FixtureRequest) -> Path:
    """The directory of one OpenThread generation's binaries."""
    base = interop_dir()
    sub = OT_VERSIONS[request.param]
    peer(f"{sub}/ot-ncp-ftd" if sub else "ot-ncp-ftd")
    peer(f"{sub}/ot-cli-ftd" if sub else "ot-cli-ftd")
    assert base is not None
    return base / sub if sub else base


@pytest.fixture
def bed(tmp_path: Path, ot: Path, request: pytest.FixtureRequest) -> Iterator[InteropBed]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN devices)")
    testbed = InteropBed(tmp_path, ot)
    try:
        testbed.setup()
        yield testbed
    finally:
        testbed.close()
        keep = os.environ.get(RECORD_ENV)
        if keep and testbed.recording.exists():  # new replay data for tests/ncp/test_replay.py
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name.removeprefix("test_")).strip("-")
            shutil.copyfile(testbed.recording, Path(keep) / f"{name}.jsonl")


@pytest.fixture
def lwm2mserver() -> Iterator[LwM2MServer]:
    """Wakaama's lwm2mserver on a free loopback port, stopped at teardown."""
    server = LwM2MServer(free_udp_port())
    try:
        yield server
    finally:
        server.stop()
