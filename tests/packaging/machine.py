"""A real systemd to test the package under: a debootstrapped Debian bookworm, cached, booted
with systemd-nspawn.

The root file system is built once per (architecture, package list, runner unit) and kept in
``$GATEWAYD_TEST_CACHE`` (default ``/var/cache/gatewayd-test``); booting it with the tree
read-only and a tmpfs overlay (``--volatile=overlay``) leaves the cache untouched. The console
is not usable, so the container runs ``/out/run-test`` from a bind-mounted directory through a
unit baked into the image, and powers off when it finishes; results come back through ``/out``.

``python -m tests.packaging.machine [--arch arm64]`` builds (or finds) the cached tree and prints
its path.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("GATEWAYD_TEST_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("GATEWAYD_TEST_CACHE", "/var/cache/gatewayd-test"))

# systemd itself, and the .deb's Depends, so the package installs without a network. Not python3-systemd:
# gatewayd speaks sd_notify and the journal's protocol itself, and the service test shows it needs nothing more.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3",
    "python3-pyroute2", "python3-dnspython", "python3-serial", "python3-cbor2", "python3-zeroconf",
    "iproute2", "nftables", "procps", "man-db",
)

# What dpkg-buildpackage needs (packaging/debian/control Build-Depends), for building in a foreign-arch tree.
BUILD_PACKAGES = (
    *PACKAGES, "build-essential", "debhelper", "dh-python", "pybuild-plugin-pyproject", "python3-all", "python3-dev",
    "python3-setuptools", "python3-wheel", "python3-pip", "cython3", "autoconf", "automake", "libtool",
    "pkg-config", "fakeroot",
)

RUNNER_UNIT = """\
[Unit]
Description=Run the test script handed in through /out
ConditionPathExists=/out/run-test
After=multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/out/run-test
StandardOutput=append:/out/run-test.log
StandardError=append:/out/run-test.log
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
"""
RUNNER_NAME = "gatewayd-test-runner.service"


def host_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def cache_key(arch: str, packages: tuple[str, ...] = PACKAGES) -> str:
    text = "\n".join([SUITE, arch, MIRROR, " ".join(sorted(packages)), RUNNER_UNIT])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def enable_foreign(arch: str) -> None:
    """Let the host run another architecture's binaries through qemu-user (binfmt_misc)."""
    if arch == host_arch():
        return
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)], check=True)
    qemu = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}[arch]
    if not (misc / qemu).exists():
        subprocess.run(["update-binfmts", "--enable", qemu], check=True)


def rootfs(arch: str | None = None, log: Path | None = None, packages: tuple[str, ...] = PACKAGES) -> Path:
    """The cached bookworm tree for ``arch`` with ``packages``, built with debootstrap when missing."""
    arch = arch or host_arch()
    kind = "rootfs" if packages == PACKAGES else "buildroot"
    target = CACHE / f"{kind}-{SUITE}-{arch}-{cache_key(arch, packages)}"
    with _locked(CACHE / f"rootfs-{arch}.lock"):
        if (target / ".complete").exists():
            return target
        enable_foreign(arch)
        tmp = target.with_name(target.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        cmd = ["debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={','.join(packages)}",
               SUITE, str(tmp), MIRROR]
        with open(log or os.devnull, "ab") as out:
            subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT)
        unit = tmp / "etc/systemd/system" / RUNNER_NAME
        unit.write_text(RUNNER_UNIT)
        wants = tmp / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / RUNNER_NAME).symlink_to(f"/etc/systemd/system/{RUNNER_NAME}")
        for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        (tmp / ".complete").write_text(" ".join(cmd) + "\n")
        tmp.rename(target)
        for old in CACHE.glob(f"{kind}-{SUITE}-{arch}-*"):  # trees of this kind for package lists no longer used
            if old != target and len(old.name) == len(target.name):
                shutil.rmtree(old, ignore_errors=True)
        return target


class BootError(RuntimeError):
    pass


def boot(root: Path, out: Path, timeout: float, log: Path) -> float:
    """Boot ``root`` with ``out`` bound at /out until it powers itself off; seconds taken.

    The container has no network (only its own loopback). It is always killed, and its mounts
    gone, when this returns or raises.
    """
    started = time.monotonic()
    _nspawn(root, ["--boot", f"--machine=gwtest-{os.getpid()}", f"--bind={out}:/out"], log, timeout,
            late="the container did not power off", failed="systemd-nspawn")
    return time.monotonic() - started


def run(root: Path, bind: Path, command: list[str], log: Path, timeout: float) -> None:
    """Run one command (not a boot) in a throw-away overlay of ``root``, ``bind`` at /build."""
    what = " ".join(command)
    _nspawn(root, [f"--bind={bind}:/build", "--chdir=/build", *command], log, timeout,
            late=f"{what} did not finish", failed=what)


def _nspawn(root: Path, args: list[str], log: Path, timeout: float, late: str, failed: str) -> None:
    """systemd-nspawn on a throw-away overlay of ``root`` with no network, output appended to ``log``;
    BootError("<late> within ...") on timeout, BootError("<failed> exited with ...") on failure."""
    cmd = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory", str(root),
           "--volatile=overlay", "--private-network", "--console=pipe", *args]
    with open(log, "ab") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise BootError(f"{late} within {timeout:.0f} s") from None
        finally:
            stop(proc)
    if rc != 0:
        raise BootError(f"{failed} exited with {rc} (log: {log})")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM asks nspawn for an orderly container shutdown; SIGKILL the whole group if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.packaging.machine", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=host_arch())
    parser.add_argument("--build-deps", action="store_true", help="the tree for building the package")
    args = parser.parse_args(argv)
    started = time.monotonic()
    path = rootfs(args.arch, log=CACHE / f"debootstrap-{args.arch}.log",
                  packages=BUILD_PACKAGES if args.build_deps else PACKAGES)
    print(f"{path} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
