"""Commissioning end to end on the simulator: gatewayctl commissioner/joiner commands, [commissioning] at start
and on reload, simulated devices running `joiner start PSKD`, and a border router that joins with a PSKd."""

from __future__ import annotations

import json
import signal
import time

import pytest

from gatewayd.secrets import MASK

pytestmark = pytest.mark.root

EUI = "18b4300000000042"


def ctl_json(daemon, *words):
    return json.loads(daemon.ctl("--json", *words).stdout)


def wait_role(daemon, *roles, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = daemon.ctl("--json", "state", check=False)
        if result.returncode == 0 and json.loads(result.stdout).get("role") in roles:
            return
        time.sleep(0.2)
    raise AssertionError(f"gatewayd not {roles}:\n{daemon.output()[-3000:]}")


def child_euis(daemon):
    return {row["extaddr"] for row in ctl_json(daemon, "child", "table")}


def wait_child(daemon, eui, timeout=10.0):
    deadline = time.monotonic() + timeout
    while eui not in child_euis(daemon):
        assert time.monotonic() < deadline, f"{eui} never attached"
        time.sleep(0.2)


def test_gatewayctl_lets_a_device_join_with_its_pskd(topo):
    daemon = topo.start_daemon()
    wait_role(daemon, "leader")
    assert ctl_json(daemon, "commissioner", "state")["state"] == "disabled"
    # the seed's flow: no explicit commissioner start
    added = ctl_json(daemon, "joiner", "add", "*", "J01NME")
    assert added == {"joiner": "*", "pskd": MASK, "timeout": 120}
    state = ctl_json(daemon, "commissioner", "state")
    assert state["state"] == "active" and state["session_id"] and state["joiners"] == 1

    wrong = topo.sim("joiner_start", name="intruder", pskd="WR0NG1")
    assert (wrong["joined"], wrong["error"]) == (False, "Security")
    joined = topo.sim("joiner_start", name="doorbell", pskd="J01NME", eui64=EUI)
    assert joined["joined"]
    wait_child(daemon, EUI)

    rows = ctl_json(daemon, "joiner", "list")
    assert [(r["joiner"], r["pskd"], r["added_by"]) for r in rows] == [("*", MASK, "gatewayctl")]
    assert 0 < rows[0]["timeout"] <= 120
    assert ctl_json(daemon, "joiner", "list", "--show-secrets")[0]["pskd"] == "J01NME"  # root may
    text = daemon.ctl("joiner", "list").stdout
    assert "J01NME" not in text and MASK in text

    assert ctl_json(daemon, "joiner", "remove", "*") == {"removed": "*"}
    assert ctl_json(daemon, "joiner", "list") == []
    gone = daemon.ctl("joiner", "remove", "*", check=False)
    assert gone.returncode == 1 and "no joiner *" in gone.stderr
    assert ctl_json(daemon, "commissioner", "stop")["state"] == "disabled"
    assert "J01NME" not in daemon.output()  # the PSKd is never logged


def test_bad_input_is_refused_clearly(topo):
    daemon = topo.start_daemon()
    wait_role(daemon, "leader")
    cases = [
        (("joiner", "add", "*", "j01nme"), "bad PSKd: a PSKd holds uppercase letters and digits only"),
        (("joiner", "add", "*", "J01NMEI"), "without I, O, Q and Z; this one has I, O, Q or Z"),
        (("joiner", "add", "*", "ABC"), "6 to 32 characters"),
        (("joiner", "add", "12", "J01NME"), "a joiner is * or an EUI-64 of 16 hex digits"),
        (("joiner", "add", "*", "J01NME", "soon"), "TIMEOUT is whole seconds"),
        (("joiner", "add", "*", "J01NME", "0"), "the timeout is 1 to"),
        (("joiner", "add", "*"), "usage: joiner add EUI64|* PSKD [TIMEOUT]"),
        (("joiner", "remove"), "usage: joiner remove EUI64|*"),
        (("commissioner", "start", "now"), "unexpected argument: now"),
    ]
    for words, says in cases:
        result = daemon.ctl(*words, check=False)
        assert result.returncode == 1 and says in result.stderr, (words, result.stderr)
        assert "j01nme" not in result.stderr and "J01NMEI" not in result.stderr
    assert json.loads(daemon.ctl("--json", "status").stdout)["components"]["commissioning"]["state"] == "running"


def test_configured_joiners_start_with_the_daemon_and_follow_reloads(topo, tmp_path):
    (tmp_path / "pskd").write_text("ABCDEF\n")
    first = f'[[commissioning.joiner]]\neui64 = "{EUI}"\npskd_file = "{tmp_path}/pskd"\ntimeout = 3\n'
    daemon = topo.start_daemon(first)
    wait_role(daemon, "leader")
    out = daemon.wait_log(f"joiner {EUI} timed out: no device joined with it", timeout=20)
    assert "ABCDEF" not in out
    assert ctl_json(daemon, "joiner", "list") == []
    # reload: a changed table is applied (the entry is added again, for its whole timeout)
    daemon.write_config(f'[[commissioning.joiner]]\neui64 = "*"\npskd_file = "{tmp_path}/pskd"\n')
    daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while [r["joiner"] for r in ctl_json(daemon, "joiner", "list")] != ["*"]:
        assert time.monotonic() < deadline, daemon.output()[-2000:]
        time.sleep(0.2)
    assert topo.sim("joiner_start", name="doorbell", pskd="ABCDEF")["joined"]


def test_a_joined_eui64_entry_is_logged_as_joined(topo):
    daemon = topo.start_daemon()
    wait_role(daemon, "leader")
    ctl_json(daemon, "joiner", "add", EUI, "J01NME", "600")
    assert topo.sim("joiner_start", name="doorbell", pskd="J01NME", eui64=EUI)["joined"]
    daemon.wait_log(f"joiner {EUI} joined the network", timeout=15)
    rows = ctl_json(daemon, "joiner", "list")
    assert rows and rows[0]["state"] == "joined" and rows[0]["timeout"] <= 20


class JoiningBed:
    """The testbed whose simulated NCP can join an existing network with J01NME."""

    def __init__(self, topo):
        self.topo = topo
        url = topo.sim_url
        topo.sim_url = lambda *a, **k: url(*a, **k) + "&args=--joinable-pskd&args=J01NME"


def test_a_border_router_joins_with_a_pskd_instead_of_forming(topo):
    JoiningBed(topo)
    daemon = topo.start_daemon('[thread]\njoiner_pskd = "J01NME"\n')
    wait_role(daemon, "leader", "router", "child")
    state = ctl_json(daemon, "state")
    assert state["network_name"] == "sim-existing"  # the network's, not one it formed
    out = daemon.output()
    assert "joined network sim-existing" in out
    # only the simulator's own command line (the testbed's, logged as the NCP program started) names the PSKd
    assert [line for line in out.splitlines() if "J01NME" in line and "--joinable-pskd" not in line] == []


def test_a_wrong_joiner_pskd_fails_the_thread_component_cleanly(topo):
    JoiningBed(topo)
    daemon = topo.start_daemon('[thread]\njoiner_pskd = "WR0NG1"\n')
    out = daemon.wait_log("joining failed: JOIN_SECURITY; the commissioner refused the PSKd", timeout=20)
    assert "WR0NG1" not in out
    status = json.loads(daemon.ctl("--json", "status").stdout)["components"]["thread"]
    assert status["state"] in ("failed", "starting") and daemon.proc.poll() is None


def test_after_an_ncp_reset_the_commissioner_and_its_joiners_come_back(topo):
    daemon = topo.start_daemon()
    wait_role(daemon, "leader")
    ctl_json(daemon, "joiner", "add", "*", "J01NME", "600")
    topo.sim("reset")
    daemon.wait_log("commissioner disabled (the NCP restarted)", timeout=10)
    deadline = time.monotonic() + 30
    while ctl_json(daemon, "commissioner", "state")["state"] != "active" or not ctl_json(daemon, "joiner", "list"):
        assert time.monotonic() < deadline, daemon.output()[-3000:]
        time.sleep(0.3)
    row = ctl_json(daemon, "joiner", "list")[0]
    assert row["joiner"] == "*" and 500 < row["timeout"] <= 600  # what was left of its time
    assert topo.sim("joiner_start", name="doorbell", pskd="J01NME")["joined"]


def test_the_commissioner_stops_with_the_daemon(topo):
    """An NCP that outlives gatewayd (a Chili2 on the UART) must not go on admitting joiners unwatched."""
    daemon = topo.start_daemon()
    wait_role(daemon, "leader")
    ctl_json(daemon, "joiner", "add", "*", "J01NME", "600")
    assert daemon.stop() == 0
    assert "commissioner disabled (gatewayd is stopping)" in daemon.output()
    assert "commissioner disabled by the host" in topo.sim_log.read_text()
    assert "J01NME" not in daemon.output()
