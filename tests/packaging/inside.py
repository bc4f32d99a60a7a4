#!/usr/bin/python3
"""Runs inside the booted test container as /out/run-test: installs /out/gatewayd.deb and drives
the service through systemd as an admin would, recording what it sees in /out/results.json.

It asserts nothing itself (test_service.py does, on the host), so one broken step does not
hide the others: each step records its observations or the exception that stopped it. Only the
standard library is used: this is the container's Python, not the project's virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path

OUT = Path("/out")
DEB = OUT / "gatewayd.deb"
CONF = Path("/etc/gatewayd/gatewayd.toml")
UNIT = "gatewayd.service"
DROPIN = Path("/run/systemd/system/gatewayd.service.d/50-test.conf")

# A simulated NCP spawned on a pty, as the daemon would spawn a real simulation NCP.
NCP_URL = "spinel+hdlc+forkpty:///usr/bin/python3?args=-m&args=ncp.sim"
GOOD = f"""\
[ncp]
url = "{NCP_URL}"
request_timeout = 2.0

[border]
infra_interface = ""

[nat64]
enabled = false

[dns64]
enabled = false

[log]
level = "info"
"""
RELOADED = GOOD.replace("request_timeout = 2.0", "request_timeout = 3.0")
BROKEN = GOOD + '\n[daemon]\nstop_timeout = "soon"\n'

# Waits scale with how much slower this machine is than a native one (qemu-user emulation).
SLOW = float((OUT / "slowdown").read_text()) if (OUT / "slowdown").exists() else 1.0

results: dict[str, object] = {"started": time.time(), "slowdown": SLOW}


def save() -> None:
    tmp = OUT / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, default=str))
    os.replace(tmp, OUT / "results.json")


def step(fn: Callable[[dict[str, object]], None]) -> None:
    data: dict[str, object] = {}
    results[fn.__name__] = data
    started = time.monotonic()
    try:
        fn(data)
    except Exception:
        data["error"] = traceback.format_exc()
    data["seconds"] = round(time.monotonic() - started, 2)
    save()


def run(*cmd: str, timeout: float = 120) -> dict[str, object]:
    timeout *= SLOW
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return {"cmd": " ".join(cmd), "rc": None, "out": str(exc.stdout or ""), "err": f"timed out after {timeout} s"}
    return {"cmd": " ".join(cmd), "rc": p.returncode, "out": p.stdout, "err": p.stderr}


def show(*props: str) -> dict[str, str]:
    out = run("systemctl", "show", UNIT, *(f"--property={p}" for p in props))["out"]
    return dict(line.split("=", 1) for line in str(out).splitlines() if "=" in line)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def wait_active(timeout: float = 30) -> bool:
    return wait_until(lambda: show("ActiveState")["ActiveState"] == "active", timeout)


def cursor() -> str:
    out = str(run("journalctl", "-o", "json", "-n", "1", "--no-pager")["out"]).strip().splitlines()
    return json.loads(out[-1])["__CURSOR"] if out else ""


def journal(after: str = "", unit: bool = True) -> list[dict[str, object]]:
    cmd = ["journalctl", "-o", "json", "--no-pager", "--output-fields="
           "MESSAGE,SYSLOG_IDENTIFIER,GATEWAYD_COMPONENT,GATEWAYD_EVENT,NCP_STATE,PRIORITY,_PID,UNIT,_SYSTEMD_UNIT"]
    if unit:
        cmd += ["-u", UNIT]
    if after:
        cmd.append(f"--after-cursor={after}")
    records = []
    for line in str(run(*cmd)["out"]).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        records.append({k: v for k, v in record.items() if not k.startswith("__")})
    return records


def messages(records: list[dict[str, object]]) -> list[str]:
    return [str(r.get("MESSAGE", "")) for r in records]


def write_config(text: str) -> None:
    # Rewrite in place: the file keeps its owner and mode, as an admin's editor would.
    with open(CONF, "r+") as f:
        f.seek(0)
        f.truncate()
        f.write(text)


def proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in text.splitlines()))


def processes_of(user: str) -> list[str]:
    out = run("ps", "-u", user, "-o", "pid=,args=")["out"]
    return [line.strip() for line in str(out).splitlines() if line.strip()]


def stat(path: str) -> dict[str, object]:
    out = run("stat", "-c", "%U %G %a", path)
    return {"exists": out["rc"] == 0, "owner": str(out["out"]).strip()}


# ---- steps --------------------------------------------------------------------------------
def install(d: dict[str, object]) -> None:
    # The container's /dev is a copy of the host's; on a Debian system udev makes the TUN clone
    # device 0666 (its default rules), which an unprivileged daemon relies on.
    os.chmod("/dev/net/tun", 0o666)
    d["dpkg"] = run("dpkg", "-i", str(DEB), timeout=300)
    d["is_enabled"] = run("systemctl", "is-enabled", UNIT)["out"]
    d["passwd"] = run("getent", "passwd", "gatewayd")["out"]
    d["groups"] = run("id", "-nG", "gatewayd")["out"]
    d["conffile"] = stat(str(CONF))
    d["files"] = {p: Path(p).exists() for p in (
        "/usr/share/man/man8/gatewayd.8.gz", "/usr/share/man/man8/gatewayctl.8.gz",
        "/usr/share/man/man5/gatewayd.toml.5.gz", "/usr/lib/sysusers.d/gatewayd.conf",
        "/lib/udev/rules.d/60-gatewayd.rules", "/lib/systemd/system/gatewayd.service")}
    d["version"] = run("gatewayd", "--version")
    # The entry point's private vendor dir: aiocoap's DTLS transport must import on this Python.
    probe = ("import runpy, sys\nsys.argv = ['gatewayd', '--version']\ntry:\n"
             "    runpy.run_path('/usr/bin/gatewayd', run_name='gatewayd_entry')\nexcept SystemExit:\n    pass\n"
             "import DTLSSocket.dtls, aiocoap, aiocoap.transports.tinydtls, pyroute2\n"
             "from pyroute2 import AsyncIPRoute\n"
             "print(DTLSSocket.dtls.__file__); print(aiocoap.__file__); print(pyroute2.__file__)\n")
    d["vendor"] = run("python3", "-c", probe)


def analyze(d: dict[str, object]) -> None:
    d["verify"] = run("systemd-analyze", "verify", f"/lib/systemd/system/{UNIT}")
    d["security"] = run("systemd-analyze", "security", "--no-pager", UNIT)


def start(d: dict[str, object]) -> None:
    write_config(GOOD)
    d["check_config"] = run("gatewayd", "check-config", "-c", str(CONF))
    d["restart"] = run("systemctl", "restart", UNIT)
    d["active"] = wait_active()
    # Give the components a moment to come up (the simulated NCP forms a network and leads it).
    wait_until(lambda: "leader" in show("StatusText")["StatusText"], 30)
    d["is_active"] = run("systemctl", "is-active", UNIT)["out"]
    d["status"] = run("systemctl", "status", "--no-pager", "--lines=0", UNIT)["out"]
    props = show("MainPID", "StatusText", "NRestarts", "User")
    d["show"] = props
    pid = int(props.get("MainPID", "0"))
    status = proc_status(pid)
    d["proc"] = {k: status.get(k) for k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapAmb", "CapBnd",
                                             "NoNewPrivs", "Seccomp")}
    d["processes"] = processes_of("gatewayd")
    # NAT64 is off here (no uplink); the installed package must still load its C fast path
    d["nat64_native"] = run("python3", "-c", "import nat64.fastpath as f; print(f._NativeTranslator is not None)")


def journal_fields(d: dict[str, object]) -> None:
    records = journal()
    d["count"] = len(records)
    d["components"] = sorted({str(r["GATEWAYD_COMPONENT"]) for r in records if "GATEWAYD_COMPONENT" in r})
    d["ncp_states"] = sorted({str(r["NCP_STATE"]) for r in records if "NCP_STATE" in r})
    d["identifiers"] = sorted({str(r.get("SYSLOG_IDENTIFIER")) for r in records if "GATEWAYD_COMPONENT" in r})
    d["filtered"] = len(str(run("journalctl", "-u", UNIT, "GATEWAYD_COMPONENT=daemon", "-o", "json")["out"])
                        .splitlines())
    d["messages"] = messages(records)[-60:]


def reload(d: dict[str, object]) -> None:
    before = show("MainPID")["MainPID"]
    mark = cursor()
    write_config(RELOADED)
    d["reload"] = run("systemctl", "reload", UNIT)
    wait_until(lambda: any("configuration reloaded" in m for m in messages(journal(mark))), 15)
    d["messages"] = messages(journal(mark))
    d["same_pid"] = show("MainPID")["MainPID"] == before
    d["is_active"] = run("systemctl", "is-active", UNIT)["out"]


def watchdog(d: dict[str, object]) -> None:
    DROPIN.parent.mkdir(parents=True, exist_ok=True)
    DROPIN.write_text("[Service]\nWatchdogSec=5\nTimeoutAbortSec=5\nLimitCORE=0\n")
    run("systemctl", "daemon-reload")
    run("systemctl", "restart", UNIT)
    d["active_before"] = wait_active()
    props = show("MainPID", "NRestarts", "WatchdogUSec")
    d["before"] = props
    pid = int(props["MainPID"])
    if pid <= 0:  # kill(0, ...) would stop this script's own process group
        raise RuntimeError(f"gatewayd is not running: {props}")
    mark = cursor()
    os.kill(pid, 19)  # SIGSTOP: the event loop, and with it WATCHDOG=1, stops
    started = time.monotonic()
    d["restarted"] = wait_until(lambda: show("MainPID")["MainPID"] not in (str(pid), "0")
                                and show("ActiveState")["ActiveState"] == "active", 60)
    d["seconds_to_restart"] = round(time.monotonic() - started, 1)
    d["after"] = show("MainPID", "NRestarts", "ActiveState")
    d["messages"] = messages(journal(mark))
    d["old_pid_gone"] = not Path(f"/proc/{pid}").exists()
    DROPIN.unlink()
    run("systemctl", "daemon-reload")
    run("systemctl", "restart", UNIT)
    d["active_after_cleanup"] = wait_active()


def broken_config(d: dict[str, object]) -> None:
    mark = cursor()
    write_config(BROKEN)
    d["restart"] = run("systemctl", "restart", UNIT)
    time.sleep(1)
    d["state"] = show("ActiveState", "SubState", "Result")
    d["messages"] = messages(journal(mark))
    write_config(RELOADED)
    run("systemctl", "reset-failed", UNIT)
    d["recovered"] = run("systemctl", "restart", UNIT)
    d["active_again"] = wait_active()


def upgrade(d: dict[str, object]) -> None:
    marker = Path("/var/lib/gatewayd/test-marker")
    marker.write_text("state that must survive an upgrade\n")
    before = show("MainPID")["MainPID"]
    d["dpkg"] = run("dpkg", "-i", str(DEB), timeout=300)
    d["active"] = wait_active()
    d["restarted"] = show("MainPID")["MainPID"] not in (before, "0")
    d["config_kept"] = CONF.read_text() == RELOADED
    d["state_kept"] = marker.exists()
    d["conffile"] = stat(str(CONF))


def stop_service(d: dict[str, object]) -> None:
    mark = cursor()
    started = time.monotonic()
    d["stop"] = run("systemctl", "stop", UNIT)
    d["stop_seconds"] = round(time.monotonic() - started, 2)
    d["state"] = show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    d["messages"] = messages(journal(mark))
    d["left_over"] = processes_of("gatewayd")


def purge(d: dict[str, object]) -> None:
    d["dpkg"] = run("dpkg", "--purge", "gatewayd", timeout=300)
    d["state_dir"] = Path("/var/lib/gatewayd").exists()
    d["config"] = CONF.exists()
    d["passwd"] = run("getent", "passwd", "gatewayd")["out"]


def main() -> None:
    for fn in (install, analyze, start, journal_fields, reload, watchdog, broken_config, upgrade,
               stop_service, purge):
        step(fn)
    results["finished"] = time.time()
    save()


if __name__ == "__main__":
    main()
