"""Commissioning against real OpenThread: ot-cli-ftd nodes running `joiner start PSKD` through gatewayd's
commissioner in ot-ncp-ftd, and gatewayd's NCP joining a network an ot-cli-ftd commissioner runs."""

from __future__ import annotations

import json
import time

import pytest

from tests.interop.conftest import InteropBed
from tests.interop.peers import OtCli

pytestmark = [pytest.mark.timeout(300)]

PSKD = "J01NME"


def node(bed: InteropBed, node_id: int) -> OtCli:
    cli = OtCli(bed.ot / "ot-cli-ftd", node_id, bed.tmp / f"node{node_id}", netns=bed.br)
    bed.nodes_cli.append(cli)
    return cli


def joiner_start(cli: OtCli, pskd: str) -> str:
    """`joiner start PSKD` on the node; what it reports at the end ("success" or "failed [Reason]")."""
    cli.cmd("ifconfig up")
    cli.cmd(f"joiner start {pskd}")
    return cli.wait_output(r"Join (success|failed.*)", timeout=60).group(1)


def test_a_node_joins_with_the_pskd_gatewayctl_added_and_a_wrong_one_fails_cleanly(bed: InteropBed) -> None:
    daemon = bed.start()
    added = bed.ctl_json("joiner", "add", "*", PSKD)
    assert added == {"joiner": "*", "pskd": "********", "timeout": 120}
    state = bed.ctl_json("commissioner", "state")
    assert state["state"] == "active" and state["session_id"], state  # type: ignore[index]

    intruder = node(bed, 3)
    assert joiner_start(intruder, "WR0NG1") == "failed [Security]"
    assert intruder.value("state") == "disabled"

    device = node(bed, 2)
    device.cmd("routerupgradethreshold 0")  # stays a child of the border router
    assert joiner_start(device, PSKD) == "success"
    device.cmd("thread start")
    device.wait_state("child", timeout=90)
    ext = device.value("extaddr")
    deadline = time.monotonic() + 30
    while ext not in {c["extaddr"] for c in bed.ctl_json("child", "table")}:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the joined node is not the border router's child"
        time.sleep(0.3)

    rows = bed.ctl_json("joiner", "list")
    assert [(r["joiner"], r["pskd"]) for r in rows] == [("*", "********")]  # type: ignore[union-attr]
    assert bed.ctl_json("joiner", "remove", "*") == {"removed": "*"}
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert PSKD not in daemon.output() and "WR0NG1" not in daemon.output()


def test_a_wrong_pskd_for_an_eui64_entry_is_logged_when_the_entry_ends(bed: InteropBed) -> None:
    daemon = bed.start()
    device = node(bed, 2)
    eui64 = device.value("eui64")
    bed.ctl_json("joiner", "add", eui64, PSKD, "25")
    assert joiner_start(device, "WR0NG1") == "failed [Security]"
    out = daemon.wait_log(f"joiner {eui64} timed out: no device joined with it (check the PSKd", timeout=60)
    assert "WR0NG1" not in out and PSKD not in out
    assert bed.ctl_json("joiner", "list") == []
    assert json.loads(daemon.ctl("--json", "status").stdout)["components"]["commissioning"]["state"] == "running"


def test_a_joined_eui64_entry_is_logged_as_joined(bed: InteropBed) -> None:
    daemon = bed.start()
    device = node(bed, 2)
    eui64 = device.value("eui64")
    bed.ctl_json("joiner", "add", eui64, PSKD, "600")
    assert joiner_start(device, PSKD) == "success"
    daemon.wait_log(f"joiner {eui64} joined the network", timeout=30)


def commissioner_network(bed: InteropBed, pskd: str) -> tuple[OtCli, str]:
    """An ot-cli-ftd node leading a network of its own, its commissioner allowing any joiner with ``pskd``."""
    leader = node(bed, 4)
    leader.cmd("dataset init new")
    leader.cmd("dataset networkname ot-existing")
    leader.cmd("dataset commit active")
    leader.cmd("ifconfig up")
    leader.cmd("thread start")
    leader.wait_state("leader", timeout=60)
    leader.cmd("commissioner start")
    leader.wait_output("Commissioner: active", timeout=30)
    leader.cmd(f"commissioner joiner add * {pskd} 600")
    return leader, "ot-existing"


def test_the_border_router_joins_an_existing_network_with_a_pskd(bed: InteropBed) -> None:
    _leader, name = commissioner_network(bed, PSKD)
    daemon = bed.start_daemon(f'[thread]\njoiner_pskd = "{PSKD}"\n')
    bed.daemon = daemon
    state = bed.wait_role("child", "router", timeout=120)
    assert state["network_name"] == name
    out = daemon.output()
    assert f"joined network {name}" in out and PSKD not in out


def test_the_border_router_with_a_wrong_pskd_fails_and_keeps_running(bed: InteropBed) -> None:
    commissioner_network(bed, PSKD)
    daemon = bed.start_daemon('[thread]\njoiner_pskd = "WR0NG1"\n')
    bed.daemon = daemon
    out = daemon.wait_log("joining failed: JOIN_SECURITY; the commissioner refused the PSKd", timeout=90)
    assert "WR0NG1" not in out
    assert daemon.proc is not None and daemon.proc.poll() is None
