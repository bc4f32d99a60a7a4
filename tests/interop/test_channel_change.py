"""A channel change through gatewayd on a real OpenThread NCP with a real node attached: both move to the new
channel after the pending dataset's delay, the node stays attached and reachable, the daemon shows it."""

from __future__ import annotations

import time

import pytest

from tests.interop.conftest import InteropBed
from tests.interop.test_thread import host_omr, omr_address

pytestmark = [pytest.mark.timeout(300)]
DELAY_MS = 10_000  # time for the node to fetch the pending dataset (it heard of it within 1-2 s)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"no {what} within {timeout} s")


def node_pending(node) -> list[str]:
    """``dataset pending`` on the node; none yet is ``Error 23: NotFound``."""
    try:
        return node.cmd("dataset pending")
    except AssertionError as exc:
        if "NotFound" in str(exc):
            return []
        raise


def test_channel_change_moves_the_ncp_and_its_node(bed: InteropBed) -> None:
    daemon = bed.start()
    node = bed.join_node(2)
    assert node.value("channel") == "15" and bed.state()["channel"] == 15
    assert node.ping(host_omr(bed))

    began = time.monotonic()
    changed = bed.ctl_json("channel", "change", "20", "--delay", str(DELAY_MS))
    assert changed["new_channel"] == 20 and changed["delay_ms"] == DELAY_MS  # type: ignore[index]
    pending = bed.ctl_json("dataset", "pending")
    assert pending["channel"] == 20 and 0 < pending["delay_ms"] <= DELAY_MS  # type: ignore[index]
    # the NCP, as leader, hands the pending dataset to the node before the delay passes
    wait_for(lambda: any("Channel: 20" in line for line in node_pending(node)), DELAY_MS / 1000 - 2,
             "pending dataset on the node")
    heard = time.monotonic() - began
    assert node.value("channel") == "15" and bed.state()["channel"] == 15, "nobody moved before the delay"

    state = wait_for(lambda: (s := bed.state())["channel"] == 20 and s, DELAY_MS / 1000 + 20, "channel 20 shown")
    assert state["role"] == "leader"
    wait_for(lambda: node.value("channel") == "20", 20, "the node on channel 20")
    assert node.wait_state("child", "router", timeout=30) in ("child", "router")
    assert bed.ctl_json("dataset", "pending") is None
    assert bed.ctl_json("status")["components"]["thread"]["channel"] == 20  # type: ignore[index]

    # the node is reachable both ways on the new channel
    assert node.ping(host_omr(bed), timeout=10), "node → wpan0 after the channel change"
    print(f"node had the pending dataset {heard:.1f} s after the change; after the {DELAY_MS / 1000:.0f} s delay, "
          f"the node answered {time.monotonic() - began - DELAY_MS / 1000:.1f} s later")
    address = omr_address(bed, node.addresses())
    ping = bed.run(bed.br, "ping", "-6", "-c", "3", "-i", "0.3", "-W", "3", address, check=False)
    assert ping.returncode == 0, f"host → node at {address}: {ping.stdout}"
    assert "took the pending dataset" in daemon.output()
    active = bed.ctl_json("dataset", "active")
    assert active["channel"] == 20  # type: ignore[index]

    # a daemon restarted now stays on channel 20 (the NCP keeps it, state_dir too)
    daemon.stop()
    bed.start()
    assert bed.state()["channel"] == 20
    wait_for(lambda: node.ping(host_omr(bed), timeout=3), 60, "the node reaching wpan0 after the restart")
