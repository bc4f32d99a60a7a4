"""Border agent discovery on a real LAN: gatewayd (on the simulated NCP, in the testbed's border-router
namespace) publishes ``_meshcop._udp`` on infra0, and python-zeroconf's browser in the LAN namespace
finds it with the network's values, sees it change with the network, and sees it go when gatewayd stops."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ncp.border_agent import DUMMY_PORT, ConnMode, IfState, TxtRole
from ncp.meshcop import Dataset, Timestamp
from tests.border.meshcop import DTLS_HANDSHAKE_FAILURE, Browser, bitmap, dtls_hello, txt
from tests.thread.conftest import Topology, topo  # noqa: F401 - the fixture

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(120)]


def ctl(daemon: Any, *words: str) -> Any:
    return json.loads(daemon.ctl("--json", *words).stdout)


def test_a_lan_browser_finds_the_border_agent_follows_it_and_sees_it_go(topo: Topology, tmp_path: Path):  # noqa: F811
    browser = Browser(topo, topo.lan)
    daemon = topo.start_daemon()
    state = _wait_leader(daemon)

    # found, then (or at once) with the leader's values
    found = browser.wait("added")
    leading = found if bitmap(found).role == TxtRole.LEADER else \
        browser.wait("updated", where=lambda e: bitmap(e).role == TxtRole.LEADER)
    values = txt(leading)
    dataset = Dataset.from_hex((tmp_path / "state" / "dataset.hex").read_text())
    sim = topo.sim("state")
    link_local = next(ipaddress.IPv6Address(a) for a in sim["addresses"] if a.startswith("fe80:"))
    ba = ctl(daemon, "ba")
    assert found["name"] == ba["service"] and found["name"].startswith("gatewayd BorderRouter #")
    assert values["nn"] == state["network_name"].encode() == dataset.network_name.encode()
    assert values["xp"] == dataset.extended_pan_id
    # the NCP's extended address, from which OpenThread derives its link-local address (U/L bit flipped)
    assert values["xa"] == bytes([link_local.packed[8] ^ 2]) + link_local.packed[9:]
    assert values["xa"].hex() == ba["ncp_agent"]["txt"]["xa"]  # what the NCP's own border agent says
    assert values["id"] == bytes.fromhex((tmp_path / "state" / "border_agent_id").read_text()) \
        == bytes.fromhex(ba["id"])
    assert values["rv"] == b"1" and values["vn"] == b"gatewayd" and values["mn"] == b"BorderRouter"
    assert values["tv"] == ba["ncp_agent"]["txt"]["tv"].encode()
    sb = bitmap(leading)
    assert (sb.if_state, sb.role, sb.conn_mode) == (IfState.ACTIVE, TxtRole.LEADER, ConnMode.PSKC)
    assert values["at"] == dataset.active_timestamp.to_bytes()
    assert values["pt"] == sim["partition_id"].to_bytes(4, "big")
    omr = ipaddress.IPv6Network(state["omr_prefix"])
    assert values["omr"] == bytes([64]) + omr.network_address.packed[:8]
    assert leading["name"] == found["name"] and "fd00:1a4::1" in leading["addresses"]
    # the port: the NCP's border agent, relayed; a DTLS ClientHello from the LAN reaches it and is answered
    assert leading["port"] == ba["relay"]["port"] == ba["ncp_agent"]["port"]
    assert dtls_hello(topo, topo.lan, "fd00:1a4::1", leading["port"]) == DTLS_HANDSHAKE_FAILURE

    # the network changes: Thread off, another network's dataset, Thread on again
    daemon.ctl("thread", "disable")
    off = browser.wait("updated", where=lambda e: bitmap(e).if_state != IfState.ACTIVE)
    assert "pt" not in txt(off) and "at" not in txt(off) and txt(off)["nn"] == values["nn"]
    other = Dataset.generate(channel=dataset.channel, name="meshcop-moved", timestamp=Timestamp(2, 0, False))
    daemon.ctl("dataset", "set", other.to_tlvs().hex())
    daemon.ctl("thread", "enable")
    moved = browser.wait("updated", where=lambda e: bitmap(e).role == TxtRole.LEADER
                         and txt(e)["nn"] == b"meshcop-moved")
    assert txt(moved)["xp"] == other.extended_pan_id and txt(moved)["at"] == Timestamp(2, 0, False).to_bytes()
    assert moved["name"] == found["name"]  # the same border router: same extended address, same service

    # the LAN interface gets another address: the host record follows
    topo.run(topo.br, "ip", "-6", "addr", "add", "fd00:1a4::99/64", "dev", "infra0", "nodad")
    readdressed = browser.wait("updated", where=lambda e: "fd00:1a4::99" in e["addresses"])
    assert "fd00:1a4::1" in readdressed["addresses"] and readdressed["name"] == found["name"]

    # gatewayd stops: its goodbye removes the service from the browser's view
    assert daemon.stop() == 0
    gone = browser.wait("removed")
    assert gone["name"] == found["name"]


def _wait_leader(daemon: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = ctl(daemon, "state")
        if state.get("role") == "leader":
            return state
        time.sleep(0.2)
    raise AssertionError(f"gatewayd did not lead within {timeout} s: {daemon.output()[-2000:]}")


@pytest.fixture
def topo_2023(tmp_path: Path) -> Iterator[Topology]:
    topology = Topology(tmp_path, ncp_generation="2023")
    try:
        topology.setup()
        yield topology
    finally:
        topology.close()


def test_an_ncp_without_a_border_agent_is_published_with_connections_disabled(topo_2023: Topology):
    browser = Browser(topo_2023, topo_2023.lan)
    daemon = topo_2023.start_daemon()
    _wait_leader(daemon)
    found = browser.wait("added", "updated", where=lambda e: bitmap(e).role == TxtRole.LEADER)
    assert found["port"] == DUMMY_PORT and bitmap(found).conn_mode == ConnMode.DISABLED
    assert txt(found)["tv"] == b"1.3.0"  # OpenThread 2023's Thread version; the NCP does not say
    ba = ctl(daemon, "ba")
    assert "relay" not in ba and "ncp_agent" not in ba
    assert ctl(daemon, "ncp")["features"]["border_agent"] == "none"
