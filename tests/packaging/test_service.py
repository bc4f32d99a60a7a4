"""The installed package under a real systemd: a cached Debian bookworm booted with systemd-nspawn,
the .deb installed, a simulated NCP configured, and the service driven with systemctl.

inside.py does the driving inside the container and records what it saw; the tests below judge
those records. The container boots once for the whole module (about a minute once the root file
system is cached; debootstrap adds a few minutes the first time).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.packaging import machine
from tests.packaging.conftest import missing

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1800)]

HERE = Path(__file__).resolve().parent
# CapEff/CapBnd of the daemon: CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13).
NET_CAPS = (1 << 10) | (1 << 12) | (1 << 13)


@pytest.fixture(scope="module")
def box(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The results of one container run (see inside.py), with the logs for failure messages.

    GATEWAYD_TEST_ARCH (e.g. arm64, under qemu-user) and GATEWAYD_TEST_DEB (a .deb built for it)
    run the same checks on another architecture: scripts/test-arm64.sh."""
    if os.geteuid() != 0:
        pytest.skip("needs root (systemd-nspawn)")
    if lacking := missing("systemd-nspawn", "debootstrap"):
        pytest.skip(f"needs {', '.join(lacking)} (apt-get install systemd-container debootstrap)")
    arch = os.environ.get("GATEWAYD_TEST_ARCH", machine.host_arch())
    given = os.environ.get("GATEWAYD_TEST_DEB")
    deb = Path(given) if given else request.getfixturevalue("deb")
    slowdown = 1.0 if arch == machine.host_arch() else 10.0
    started = time.monotonic()
    root = machine.rootfs(arch, log=machine.CACHE / f"debootstrap-{arch}.log")
    rootfs_seconds = time.monotonic() - started
    out = Path(tempfile.mkdtemp(prefix="gatewayd-nspawn-"))
    try:
        shutil.copy(deb, out / "gatewayd.deb")
        shutil.copy(HERE / "inside.py", out / "run-test")
        os.chmod(out / "run-test", 0o755)
        (out / "slowdown").write_text(f"{slowdown}\n")
        boot_log = out / "nspawn.log"
        error = None
        try:
            boot_seconds = machine.boot(root, out, timeout=600 * slowdown, log=boot_log)
        except machine.BootError as exc:
            error, boot_seconds = str(exc), None
        logs = "".join(f"\n--- {p.name}:\n{p.read_text(errors='replace')[-6000:]}"
                       for p in (boot_log, out / "run-test.log") if p.exists())
        results_file = out / "results.json"
        if not results_file.exists():
            pytest.fail(f"the container produced no results ({error or 'no error from nspawn'}){logs}")
        results = json.loads(results_file.read_text())
        results["_logs"] = logs
        results["_error"] = error
        results["_timing"] = {"rootfs": round(rootfs_seconds, 1), "boot_and_run": boot_seconds}
        print(f"\npackaging: rootfs {rootfs_seconds:.0f} s, container run {boot_seconds or 0:.0f} s")
        yield results
    finally:
        if keep := os.environ.get("GATEWAYD_TEST_KEEP"):  # a directory to leave the results and logs in
            shutil.copytree(out, Path(keep) / out.name, ignore=shutil.ignore_patterns("*.deb"))
        shutil.rmtree(out, ignore_errors=True)


def step(box: dict[str, Any], name: str) -> dict[str, Any]:
    data = box.get(name)
    assert data is not None, f"step {name} never ran ({box.get('_error')}){box['_logs']}"
    assert "error" not in data, f"step {name} raised inside the container:\n{data['error']}"
    return data


def ok(result: dict[str, Any]) -> bool:
    return result["rc"] == 0


def test_container_run_completed(box):
    assert box.get("finished"), f"the test script did not finish ({box.get('_error')}){box['_logs']}"


def test_package_installs_with_user_conffile_mode_and_enabled_unit(box):
    d = step(box, "install")
    assert ok(d["dpkg"]), d["dpkg"]
    assert d["passwd"].startswith("gatewayd:"), "sysusers.d created the system user"
    assert "dialout" in d["groups"].split()
    assert d["conffile"]["owner"] == "root gatewayd 640"
    assert d["is_enabled"].strip() == "enabled"
    assert all(d["files"].values()), d["files"]
    assert ok(d["version"]) and "gatewayd" in d["version"]["out"]


def test_entry_point_imports_the_vendored_dtls_stack(box):
    d = step(box, "install")
    assert ok(d["vendor"]), d["vendor"]
    paths = [line for line in d["vendor"]["out"].split() if line.startswith("/")]
    assert len(paths) == 3 and all(p.startswith("/usr/lib/gatewayd/vendor/") for p in paths), d["vendor"]


def test_systemd_analyze_verify_accepts_the_unit(box):
    d = step(box, "analyze")
    assert ok(d["verify"]), d["verify"]
    assert "gatewayd.service" not in d["verify"]["err"], d["verify"]["err"]


def test_security_exposure_is_at_most_2(box):
    d = step(box, "analyze")
    match = re.search(r"Overall exposure level for gatewayd\.service: (\d+\.\d+)", d["security"]["out"])
    assert match, d["security"]
    assert float(match.group(1)) <= 2.0, d["security"]["out"]


def test_service_runs_unprivileged_with_only_network_capabilities(box):
    d = step(box, "start")
    assert ok(d["restart"]), d["restart"]
    assert d["active"] and d["is_active"].strip() == "active", d["status"]
    assert d["show"]["User"] == "gatewayd"
    proc = d["proc"]
    assert proc["Uid"].split()[0] != "0"
    assert int(proc["CapEff"], 16) == NET_CAPS
    assert int(proc["CapBnd"], 16) == NET_CAPS
    assert int(proc["CapAmb"], 16) == NET_CAPS
    assert proc["NoNewPrivs"] == "1" and proc["Seccomp"] == "2"


def test_status_line_is_visible_in_systemctl_status(box):
    d = step(box, "start")
    status_text = d["show"]["StatusText"]
    assert status_text, "the daemon sent no STATUS="
    assert f'Status: "{status_text}"' in d["status"], d["status"]


def test_sandbox_lets_every_component_start(box):
    """The hardening must not break the router: TUN, pty, netlink and sysctls all work."""
    d = step(box, "start")
    assert "leader" in d["show"]["StatusText"], d["show"]["StatusText"]
    assert "failed" not in d["show"]["StatusText"]
    journal = step(box, "journal_fields")
    denied = [m for m in journal["messages"] if "Permission denied" in m or "not permitted" in m]
    assert not denied, denied
    assert ok(d["nat64_native"]) and d["nat64_native"]["out"].strip() == "True", d["nat64_native"]


def test_journal_records_carry_the_component_field(box):
    d = step(box, "journal_fields")
    assert "daemon" in d["components"], d
    assert d["identifiers"] == ["gatewayd"]
    assert d["filtered"] > 0, "journalctl GATEWAYD_COMPONENT=daemon finds the daemon's records"


def test_journal_records_carry_the_ncp_state_from_the_simulated_ncp(box):
    d = step(box, "journal_fields")
    start = step(box, "start")
    assert d["ncp_states"], f"no NCP_STATE field in the journal; messages: {d['messages']}"
    assert any("ncp.sim" in p for p in start["processes"]), start["processes"]


def test_reload_applies_a_configuration_change(box):
    d = step(box, "reload")
    assert ok(d["reload"]), d["reload"]
    reloaded = [m for m in d["messages"] if "configuration reloaded" in m]
    assert reloaded, d["messages"]
    assert "ncp.request_timeout" in reloaded[-1]
    assert d["same_pid"], "a reload does not restart the process"
    assert d["is_active"].strip() == "active"


def test_watchdog_kills_and_restarts_a_stopped_daemon(box):
    d = step(box, "watchdog")
    assert d["active_before"] and d["before"]["WatchdogUSec"] == "5s"
    assert d["restarted"], f"not restarted within 60 s: {d['after']} {d['messages']}"
    assert d["old_pid_gone"]
    assert int(d["after"]["NRestarts"]) > int(d["before"]["NRestarts"])
    assert any("watchdog timeout" in m.lower() for m in d["messages"]), d["messages"]
    assert d["active_after_cleanup"]


def test_broken_config_makes_restart_fail_with_the_check_config_message(box):
    d = step(box, "broken_config")
    assert not ok(d["restart"]), d
    assert d["state"]["ActiveState"] != "active"
    assert any("configuration test failed" in m for m in d["messages"]), d["messages"]
    assert any("stop_timeout" in m for m in d["messages"]), "the journal names the bad key"
    assert ok(d["recovered"]) and d["active_again"]


def test_upgrade_keeps_config_and_state_and_restarts(box):
    d = step(box, "upgrade")
    assert ok(d["dpkg"]), d["dpkg"]
    assert d["config_kept"] and d["state_kept"]
    assert d["restarted"] and d["active"]
    assert d["conffile"]["owner"] == "root gatewayd 640"


def test_stop_is_clean(box):
    d = step(box, "stop_service")
    assert ok(d["stop"]), d["stop"]
    assert d["state"]["ActiveState"] == "inactive"
    assert d["state"]["Result"] == "success", d["state"]
    assert d["state"]["ExecMainStatus"] == "0", d["state"]
    assert any(m == "stopped" for m in d["messages"]), d["messages"]
    assert not d["left_over"], f"processes left behind: {d['left_over']}"
    assert d["stop_seconds"] < 15


def test_purge_removes_state_and_config_but_keeps_the_user(box):
    d = step(box, "purge")
    assert ok(d["dpkg"]), d["dpkg"]
    assert not d["state_dir"] and not d["config"]
    assert d["passwd"].startswith("gatewayd:"), "Debian leaves system users in place"
