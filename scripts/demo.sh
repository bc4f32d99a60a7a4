#!/usr/bin/env bash
# The main job on an embedded default: gatewayd in the foreground, as root.
# Installs what it needs first (scripts/setup.sh). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m devtools.demo "$@"
