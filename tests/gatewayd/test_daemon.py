"""The daemon as systemd and an admin see it: notifications, signals, gatewayctl."""

from __future__ import annotations

import itertools
import json
import signal
import time
from pathlib import Path

import pytest

from gatewayd.ctl import CtlError, request
from tests.conftest import NotifySocket


def test_systemd_notifications_through_a_lifecycle(daemon, notify_socket: NotifySocket):
    gw = daemon(env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "400000"})
    ready = notify_socket.wait_for("READY", "1")
    assert ready.get("STATUS"), "READY=1 comes with a STATUS= line"

    # WATCHDOG=1 at half of WATCHDOG_USEC (0.2 s): count pings over ~1.2 s.
    notify_socket.messages.clear()
    time.sleep(1.2)
    notify_socket.poll()
    pings = [t for t, m in notify_socket.messages if m.get("WATCHDOG") == "1"]
    assert 4 <= len(pings) <= 9, f"{len(pings)} watchdog pings in 1.2 s at a 0.2 s cadence"
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 0.4, "a gap as long as WATCHDOG_USEC would get the service killed"

    gw.signal(signal.SIGHUP)
    notify_socket.wait_for("RELOADING", "1")
    assert notify_socket.wait_for("READY", "1")

    gw.signal(signal.SIGTERM)
    notify_socket.wait_for("STOPPING", "1")
    started = time.monotonic()
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    assert not gw.socket.exists(), "the control socket is removed on orderly stop"


def test_nothing_is_sent_without_systemd(daemon, notify_socket: NotifySocket):
    gw = daemon()
    gw.ctl("status")
    notify_socket.poll(0.3)
    assert notify_socket.messages == []


def test_notify_messages(notify_socket: NotifySocket):
    from gatewayd.sdnotify import Notifier

    notifier = Notifier(env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "30000000"})
    assert notifier.watchdog_interval == 15.0
    notifier.ready("leader ch 15")
    notifier.status("leader ch 15")  # unchanged: not sent again
    notifier.status("child ch 15")
    notifier.stopping()
    notify_socket.poll(0.5)
    sent = [m for _, m in notify_socket.messages]
    assert sent == [{"READY": "1", "STATUS": "leader ch 15"}, {"STATUS": "child ch 15"},
                    {"STOPPING": "1", "STATUS": "stopping"}]


def test_notify_to_an_abstract_socket():
    """systemd may hand out an abstract NOTIFY_SOCKET (``@name``), as sd_notify(3) describes."""
    import os
    import socket

    from gatewayd.sdnotify import Notifier

    name = f"gatewayd-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready("leader ch 15")
        assert sock.recv(4096) == b"READY=1\nSTATUS=leader ch 15"


def test_watchdog_for_another_pid_is_ignored():
    from gatewayd.sdnotify import Notifier

    assert Notifier(env={"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_gatewayctl_status_table_and_json(daemon):
    gw = daemon()
    human = gw.ctl("status")
    assert "version:" in human.stdout and "status:" in human.stdout
    data = json.loads(gw.ctl("status", "--json").stdout)
    assert data["pid"] == gw.proc.pid
    assert data["config"] == str(gw.config)
    helptext = gw.ctl("help").stdout
    assert "config [--show-secrets]" in helptext


def test_gatewayctl_config_masks_secrets_unless_root_asks(daemon, tmp_path):
    import tempfile

    gw = daemon('[lwm2m.server]\npsk_key = "00112233445566778899aabbccddeeff"\n', start=False)
    public = Path(tempfile.mkdtemp(prefix="gatewayd-test-"))  # reachable by an unprivileged user
    public.chmod(0o755)
    gw.socket = public / "control.sock"
    gw.write_config('[lwm2m.server]\npsk_key = "00112233445566778899aabbccddeeff"\n')
    gw.start()
    shown = json.loads(gw.ctl("--json", "config").stdout)
    assert shown["lwm2m"]["server"]["psk_key"] == "********"
    assert "00112233" not in gw.ctl("config").stdout
    import os

    if os.geteuid() == 0:
        revealed = json.loads(gw.ctl("--json", "config", "--show-secrets").stdout)
        assert revealed["lwm2m"]["server"]["psk_key"] == "00112233445566778899aabbccddeeff"
        refused = as_nobody(lambda: request(str(gw.socket), ["config", "--show-secrets"]))
        assert "needs root" in refused
        assert "********" in as_nobody(lambda: str(request(str(gw.socket), ["config"])))
    assert "00112233" not in gw.output(), "secrets never reach the log"
    gw.stop()
    public.rmdir()


def as_nobody(action) -> str:
    """Run action in a forked child with uid nobody; its result or error text."""
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setuid(65534)
            try:
                text = str(action())
            except CtlError as exc:
                text = f"error: {exc}"
            os.write(write, text.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    return out


def test_gatewayctl_without_daemon(tmp_path):
    import subprocess

    from tests.conftest import PYTHON, ROOT

    result = subprocess.run([PYTHON, "-m", "gatewayd.ctl", "-s", str(tmp_path / "none.sock"), "status"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "gatewayd is not running" in result.stderr
    assert result.stdout == ""


def test_gatewayctl_unknown_command(daemon):
    gw = daemon()
    result = gw.ctl("frobnicate", check=False)
    assert result.returncode == 1
    assert "unknown command: frobnicate" in result.stderr


def test_sighup_with_broken_config_keeps_running_config(daemon):
    gw = daemon('[log]\nlevel = "info"\n')
    gw.write_config('[ncp]\nrequest_timeout = "fast"\n')
    gw.signal(signal.SIGHUP)
    gw.wait_log("keeping the running configuration")
    assert "ncp.request_timeout: expected a number" in gw.output()
    assert gw.proc.poll() is None
    assert json.loads(gw.ctl("--json", "config").stdout)["ncp"]["request_timeout"] == 2.0


def test_sighup_applies_live_keys_and_names_the_rest(daemon):
    gw = daemon()
    gw.write_config('[ncp]\nrequest_timeout = 3.5\n[thread]\nchannel = 20\n')
    gw.signal(signal.SIGHUP)
    out = gw.wait_log("configuration reloaded")
    assert "need a restart to take effect: thread.channel" in out
    assert "applied ncp.request_timeout" in out
    assert json.loads(gw.ctl("--json", "config").stdout)["ncp"]["request_timeout"] == 3.5


def test_refuses_to_start_on_invalid_config(daemon):
    gw = daemon('[ncp]\nrequest_timeout = "fast"\n', start=False)
    gw.start(wait=False)
    assert gw.proc.wait(15) == 1
    assert "ncp.request_timeout: expected a number" in gw.output()


def test_second_instance_does_not_steal_the_socket(daemon, tmp_path):
    first = daemon()
    from tests.conftest import DaemonProcess

    second = DaemonProcess(tmp_path, "")
    second.log = tmp_path / "second.log"
    second.start(wait=False)
    try:
        assert second.proc.wait(15) == 1
        assert "is another gatewayd running?" in second.output()
        assert first.ctl("status").returncode == 0
    finally:
        second.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_orderly_stop_exit_code(daemon, sig):
    gw = daemon()
    gw.signal(sig)
    assert gw.proc.wait(10) == 0
    assert "stopped" in gw.output()


def test_malformed_requests_get_an_error_answer(daemon):
    import socket

    gw = daemon()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(gw.socket))
        answers = []
        for line in (b"not json", b"[" * 60000, b'{"command": "status"}'):
            sock.sendall(line + b"\n")
            answers.append(json.loads(sock.makefile("rb").readline()))
    assert [a["error"] for a in answers] == ["bad request: not JSON", "bad request: not JSON",
                                             'bad request: expected {"command": [words...]}']
    assert gw.ctl("status").returncode == 0
    assert "Traceback" not in gw.output()
