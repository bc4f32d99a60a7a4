#!/usr/bin/env bash
# Builds the gatewayd .deb from a clean tree: the committed HEAD (git archive),
# or with --worktree the tracked files as they are now. packaging/debian
# becomes debian/, the vendored PyPI sources (aiocoap, DTLSSocket) are fetched
# once into a cache, and dpkg-buildpackage runs offline on the copy.
#
#   scripts/build-deb.sh [--worktree] [--keep] [--tree-only] OUTDIR
#
# --tree-only stops before dpkg-buildpackage and leaves the prepared tree in OUTDIR/gatewayd
# (scripts/test-arm64.sh builds it inside an arm64 root).
#
# Env: GATEWAYD_VENDOR_CACHE (default /var/cache/gatewayd-test/vendor-src).
# Needs: debhelper dh-python pybuild-plugin-pyproject python3-all-dev
# python3-setuptools python3-wheel python3-pip cython3 autoconf automake
# libtool pkg-config dpkg-dev fakeroot (apt-get build-dep style: see
# packaging/debian/control).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source=head keep=0 tree_only=0
while [ $# -gt 1 ]; do
    case $1 in
        --worktree) source=worktree ;;
        --keep) keep=1 ;;
        --tree-only) tree_only=1 ;;
        *) echo "build-deb: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ $# -eq 1 ] || { echo "usage: $0 [--worktree] [--keep] [--tree-only] OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)

vendor_pkgs=$(sed -n 's/^VENDOR_PKGS = //p' "$here/packaging/debian/rules")
cache=${GATEWAYD_VENDOR_CACHE:-/var/cache/gatewayd-test/vendor-src}
key=$(echo "$vendor_pkgs" | sha256sum | cut -c1-16)
vendor=$cache/$key
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # concurrent builds share the cache
if [ ! -f "$vendor/.complete" ]; then
    echo "build-deb: downloading $vendor_pkgs into $vendor"
    rm -rf "$vendor.tmp" && mkdir -p "$vendor.tmp"
    # aiocoap and pyroute2 are pure Python (their wheels); DTLSSocket is only published as source and is
    # compiled in the build.
    # shellcheck disable=SC2086
    /usr/bin/python3 -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary DTLSSocket --only-binary aiocoap,pyroute2 -d "$vendor.tmp" $vendor_pkgs
    touch "$vendor.tmp/.complete"
    rm -rf "$vendor" && mv "$vendor.tmp" "$vendor"
fi
flock -u 9

work=$(mktemp -d /tmp/gatewayd-deb.XXXXXX)
cleanup() { if [ "$keep" = 1 ]; then echo "build-deb: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
src=$work/gatewayd
mkdir -p "$src"
if [ "$source" = head ]; then
    git -C "$here" archive --format=tar HEAD | tar -x -C "$src"
else
    (cd "$here" && git ls-files -z | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -x -C "$src"
fi
[ -d "$src/packaging/debian" ] || { echo "build-deb: packaging/debian is not in the tree" >&2; exit 1; }
rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"
mkdir -p "$src/vendor-src"
cp "$vendor"/*.whl "$vendor"/*.tar.gz "$src/vendor-src/"
if [ "$tree_only" = 1 ]; then
    rm -rf "$out/gatewayd" && mv "$src" "$out/gatewayd"
    echo "$out/gatewayd"
    exit 0
fi

echo "build-deb: dpkg-buildpackage in $src"
(cd "$src" && env -u PYTHONPATH -u VIRTUAL_ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    tail -n 60 "$work/build.log" >&2
    cp "$work/build.log" "$out/build.log" 2>/dev/null || true
    echo "build-deb: dpkg-buildpackage failed (full log: $out/build.log)" >&2
    exit 1
}
cp "$work/build.log" "$out/build.log"
for f in "$work"/gatewayd_*.deb "$work"/gatewayd_*.changes "$work"/gatewayd_*.buildinfo; do
    cp "$f" "$out/"
done
ls "$out"/gatewayd_*.deb
