"""The .deb as Debian tools see it: it builds from a clean tree, lintian finds no errors, and it
carries what the service needs where Debian expects it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import HARNESS

pytestmark = [pytest.mark.root, pytest.mark.slow]

DEBIAN_DEPENDS = ("python3-dnspython", "python3-serial", "python3-cbor2", "python3-zeroconf",
                  "iproute2", "nftables")


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def contents(deb: Path) -> dict[str, str]:
    """Path → 'mode owner/group' for every entry."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in out.splitlines():
        parts = line.split()
        entries[parts[5].removeprefix(".").rstrip("/") or "/"] = f"{parts[0]} {parts[1]}"
    return entries


def test_lintian_reports_no_errors(deb: Path):
    result = subprocess.run(["lintian", "--fail-on", "error", "--no-tag-display-limit", str(deb)],
                            capture_output=True, text=True, timeout=600)
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    assert result.returncode == 0, "lintian errors:\n" + "\n".join(tags) + result.stderr
    assert not [t for t in tags if t.startswith("E: ")]


def test_depends_on_debian_python_packages_and_suggests_tayga(deb: Path):
    depends = field(deb, "Depends")
    for name in DEBIAN_DEPENDS:
        assert re.search(rf"(^|, ){re.escape(name)}\b", depends), f"{name} missing from Depends: {depends}"
    assert "aiocoap" not in depends and "dtlssocket" not in depends.lower(), "vendored modules are not Debian packages"
    assert field(deb, "Suggests") == "tayga"
    # the REST API, its metrics and DTLS with certificates or raw public keys are off by default:
    # their libraries are recommended, not required
    assert field(deb, "Recommends") == ("python3-aiohttp, python3-prometheus-client, "
                                        "python3-cryptography, libgnutls30")
    assert not any(name in depends for name in ("aiohttp", "prometheus", "cryptography", "gnutls"))
    assert field(deb, "Architecture") not in ("all", ""), "the vendored DTLSSocket is compiled: Architecture: any"


def test_vendored_modules_are_private(deb: Path):
    files = contents(deb)
    assert any(p.startswith("/usr/lib/gatewayd/vendor/aiocoap/") for p in files)
    assert any(p.startswith("/usr/lib/gatewayd/vendor/pyroute2/") for p in files)
    assert any(re.match(r"/usr/lib/gatewayd/vendor/DTLSSocket/dtls\..*\.so$", p) for p in files)
    system_site = [p for p in files if re.match(r"/usr/lib/python3/dist-packages/(aiocoap|DTLSSocket|pyroute2)", p)]
    assert not system_site, f"vendored modules leaked into the system site-packages: {system_site}"
    for module in ("gatewayd", "ncp", "nat64", "common"):
        assert f"/usr/lib/python3/dist-packages/{module}/__init__.py" in files
    native = [p for p in files if re.match(r"/usr/lib/python3/dist-packages/nat64/_fastpath\.cpython-3\d+-.*\.so$", p)]
    assert native, "the NAT64 fast path (nat64/_fastpath.c) is compiled into the package"
    udpfast = r"/usr/lib/python3/dist-packages/nat64/dns64/_udpfast\.cpython-3\d+-.*\.so$"
    dns = [p for p in files if re.match(udpfast, p)]
    assert dns, "the DNS64 UDP fast path (nat64/dns64/_udpfast.c) is compiled into the package"


def test_no_test_or_demo_harness(deb: Path):
    harness = [p for p in contents(deb) if HARNESS.search(p)]
    assert not harness, f"test or demo harness in the package: {harness}"


def test_entry_points_put_the_vendor_dir_on_the_path(deb: Path):
    files = contents(deb)
    for name in ("gatewayd", "gatewayctl"):
        assert files[f"/usr/bin/{name}"].startswith("-rwxr-xr-x root/root")
    text = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    assert b'sys.path.insert(1, "/usr/lib/gatewayd/vendor")' in text


def test_unit_sysusers_udev_man_pages_and_conffile(deb: Path):
    files = contents(deb)
    for path in ("/lib/systemd/system/gatewayd.service", "/usr/lib/sysusers.d/gatewayd.conf",
                 "/lib/udev/rules.d/60-gatewayd.rules", "/usr/share/man/man8/gatewayd.8.gz",
                 "/usr/share/man/man8/gatewayctl.8.gz", "/usr/share/man/man5/gatewayd.toml.5.gz",
                 "/etc/gatewayd/gatewayd.toml"):
        assert path in files, f"{path} not in the package"
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True,
                               check=True).stdout.split()
    assert conffiles == ["/etc/gatewayd/gatewayd.toml"]
