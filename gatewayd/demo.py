"""``scripts/demo.sh``: run gatewayd in the foreground on a self-contained configuration.

The configuration lives in a temporary directory (state, control socket) so the demo
never touches /etc or /var/lib; gatewayctl works against it while it runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEMO_TOML = """\
[daemon]
state_dir = "{work}/state"

[control]
socket = "{work}/control.sock"

[log]
target = "stderr"
level = "info"
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the work directory on exit")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gatewayd-demo-"))
    config = work / "gatewayd.toml"
    config.write_text(DEMO_TOML.format(work=work))
    config.chmod(0o600)
    gatewayctl = Path(sys.executable).with_name("gatewayctl")
    print(f"gatewayd demo: configuration {config}")
    print(f"  in another terminal: {gatewayctl} -s {work}/control.sock status")
    print("  Ctrl-C stops it.")
    try:
        return subprocess.call([sys.executable, "-m", "gatewayd", "-c", str(config)],
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except KeyboardInterrupt:
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
