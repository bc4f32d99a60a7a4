"""Shared test fixtures: a daemon in a subprocess, a systemd notify socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

# Speed is measured by benchmarks/, not by tests: on a shared 2-core machine hypothesis' timing checks
# (slow generation, per-example deadline) fail for reasons unrelated to the code under test.
settings.register_profile("gatewayd", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
settings.load_profile("gatewayd")
PYTHON = sys.executable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, TUN devices): run the suite as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


class NotifySocket:
    """A stand-in for systemd's $NOTIFY_SOCKET that records every datagram."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, dict[str, str]]] = []

    def poll(self, timeout: float = 0.0) -> None:
        self.sock.settimeout(timeout if timeout > 0 else 0.000001)
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))
            self.sock.settimeout(0.000001)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 10.0) -> dict[str, str]:
        """The first message not yet consumed that carries key (=value)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (_, fields) in enumerate(self.messages):
                if key in fields and (value is None or fields[key] == value):
                    del self.messages[: i + 1]
                    return fields
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {key}={value or '*'} from the daemon within {timeout} s")
            self.poll(min(remaining, 0.2))

    def close(self) -> None:
        self.sock.close()



@pytest.fixture(autouse=True, scope="session")
def _gatewayd_logging_closed() -> Iterator[None]:
    """Tests that run the daemon in this process leave its log handler on stderr: close it while
    pytest's stderr is still open, not at interpreter exit."""
    yield
    from gatewayd import log

    log.teardown()

@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


class DaemonProcess:
    """gatewayd run as a user would run it, with its own config, state and socket in tmp."""

    def __init__(self, tmp: Path, extra_toml: str = "", env: dict[str, str] | None = None,
                 netns: str | None = None):
        self.tmp = tmp
        self.netns = netns
        self.socket = tmp / "control.sock"
        self.config = tmp / "gatewayd.toml"
        self.write_config(extra_toml)
        inherited = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log = tmp / "gatewayd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def base_toml(self) -> str:
        return (f'[daemon]\nstate_dir = "{self.tmp}/state"\n'
                f'[control]\nsocket = "{self.socket}"\nmode = 0o666\n'
                '[log]\ntarget = "stderr"\n')

    def write_config(self, extra_toml: str = "") -> None:
        self.config.write_text(merge_toml(self.base_toml(), extra_toml))
        self.config.chmod(0o600)

    def start(self, wait: bool = True) -> DaemonProcess:
        self._logf = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen([*prefix, PYTHON, "-m", "gatewayd", "-c", str(self.config)], cwd=ROOT,
                                     env=self.env, stdout=self._logf, stderr=subprocess.STDOUT)
        if wait:
            self.wait_socket()
        return self

    def wait_socket(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"gatewayd exited with {self.proc.returncode}:\n{self.output()}")
            if self.socket.exists():
                return
            time.sleep(0.05)
        raise AssertionError(f"gatewayd did not open its control socket:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.output()}")

    def ctl(self, *words: str, check: bool = True, user: int | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [PYTHON, "-m", "gatewayd.ctl", "-s", str(self.socket), *words], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=30, user=user)
        if check and result.returncode != 0:
            raise AssertionError(f"gatewayctl {' '.join(words)} failed: {result.stderr}")
        return result

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()
        return self.proc.returncode


def merge_toml(base: str, extra: str) -> str:
    """Append extra, merging tables that base already opened (enough for test configs)."""
    if not extra:
        return base
    sections: dict[str, list[str]] = {}
    order: list[str] = []
    for text in (base, extra):
        current = ""
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("[") and not stripped.startswith("[["):
                current = stripped
            if current not in sections:
                sections[current] = []
                order.append(current)
            if stripped != current or not sections[current]:
                sections[current].append(line)
    return "\n".join("\n".join(sections[name]) for name in order) + "\n"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[callable]:
    """Factory: daemon(extra_toml, env=...) → a started DaemonProcess, stopped at teardown."""
    started: list[DaemonProcess] = []

    def make(extra_toml: str = "", env: dict[str, str] | None = None, start: bool = True,
             netns: str | None = None) -> DaemonProcess:
        proc = DaemonProcess(tmp_path, extra_toml, env, netns)
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture
def node_peers() -> None:
    """Skips unless the npm LwM2M server the demo talks to is installed (scripts/setup.sh)."""
    from devtools.testbed.lwm2m_server import node_server_available

    if (why := node_server_available()) is not None:
        pytest.skip(why)


def namespaces() -> set[str]:
    """The network namespaces that exist now (to check a test left none behind)."""
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    """Poll predicate until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(interval)
