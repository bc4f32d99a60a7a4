#!/usr/bin/env bash
# The package on arm64, the Raspberry Pi's architecture, under qemu-user: builds the .deb inside
# an arm64 bookworm tree, then runs tests/packaging/test_service.py against it in an arm64
# container. Slow (about ten times native), so not part of scripts/test.sh. As root:
#
#   scripts/test-arm64.sh [OUTDIR]      # the .deb and logs go to OUTDIR (default: a temp dir)
#
# Needs: qemu-user-static binfmt-support debootstrap systemd-container, and what
# scripts/build-deb.sh needs to fetch the vendored sources. See packaging/debian/README.source.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
py=${PYTHON:-$here/.venv/bin/python}
[ -x "$py" ] || py=python3
out=${1:-$(mktemp -d /tmp/gatewayd-arm64.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

scripts/setup.sh
for pkg in qemu-user-static binfmt-support; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support
        break
    }
done

echo "test-arm64: arm64 build tree (debootstrap under qemu the first time: slow)"
build_root=$("$py" -m tests.packaging.machine --arch arm64 --build-deps | cut -d' ' -f1)

# The same clean tree build-deb.sh builds from, prepared on the host (git, the vendored sources).
work=$(mktemp -d /tmp/gatewayd-arm64-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/build-deb.sh --tree-only "$work" >/dev/null

echo "test-arm64: dpkg-buildpackage in the arm64 tree"
started=$(date +%s)
"$py" - "$build_root" "$work" "$out/arm64-build.log" <<'PY'
import sys
from pathlib import Path
from tests.packaging import machine
root, work, log = map(Path, sys.argv[1:])
machine.run(root, work, ["sh", "-c", "cd gatewayd && dpkg-buildpackage -us -uc -b"], log, timeout=5400)
PY
echo "test-arm64: built in $(( $(date +%s) - started )) s"
cp "$work"/gatewayd_*_arm64.deb "$out/"
deb=$(ls "$out"/gatewayd_*_arm64.deb)
echo "test-arm64: $deb"

echo "test-arm64: service tests in an arm64 container"
GATEWAYD_TEST_ARCH=arm64 GATEWAYD_TEST_DEB=$deb \
    "$py" -m pytest -q -p no:cacheprovider -s tests/packaging/test_service.py
