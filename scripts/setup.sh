#!/usr/bin/env bash
# Installs everything gatewayd needs on a fresh Debian (bookworm) machine, as root:
# Debian packages, a virtualenv in .venv with the project and its test tools, and
# the npm LwM2M server the tests talk to. Safe to run again: it skips finished steps.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml setup.py nat64/_fastpath.c nat64/dns64/_udpfast.c scripts/setup.sh tests/peers/package.json 2>/dev/null | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

apt_packages=(
    python3 python3-venv python3-dev build-essential pkg-config
    autoconf automake libtool
    iproute2 iputils-ping nftables tcpdump procps
    tayga unbound bind9-dnsutils dnsperf libcoap3-bin libgnutls30
    nodejs npm
    # building and testing the Debian package under a real systemd
    debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-wheel python3-pip
    cython3 lintian groff man-db debootstrap systemd-container
    # the REST status page rendered in a real browser (tests/rest/test_status_page.py)
    chromium
    # a LAN router advertising a prefix, a default route and PREF64 (tests/border/test_lan_netns.py)
    radvd
)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# A machine may already have node/npm from elsewhere; don't fight it.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# unbound and tayga come with services/units we do not want running on the test box.
systemctl disable --now unbound >/dev/null 2>&1 || true
systemctl disable --now radvd >/dev/null 2>&1 || true

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$py" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip setuptools wheel
echo "setup: installing gatewayd and its dependencies into .venv"
.venv/bin/pip install -q -e ".[dtls,test]"

if [ -f tests/peers/package.json ]; then
    echo "setup: installing npm test peers"
    (cd tests/peers && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "$want" >"$stamp"
echo "setup: done ($root/.venv)"
