#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The real OpenThread and Wakaama peers of tests/interop, when this machine has them (docs/development.md).
if [ -z "${GATEWAYD_INTEROP_DIR:-}" ] && [ -x /opt/interop/ot-ncp-ftd ]; then
    export GATEWAYD_INTEROP_DIR=/opt/interop
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
