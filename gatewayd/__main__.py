"""``gatewayd [-c FILE]`` runs the daemon; ``gatewayd check-config [-c FILE]`` validates."""

from __future__ import annotations

import argparse
import asyncio
import sys

from gatewayd import __version__
from gatewayd import log as logsetup
from gatewayd.config import DEFAULT_PATH, Config, ConfigError, load


def _load(path: str, verdict: str) -> Config | None:
    """The configuration, or None after printing every error and then ``verdict``."""
    try:
        return load(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(verdict, file=sys.stderr)
        return None


def check_config(path: str) -> int:
    config = _load(path, f"{path}: configuration test failed")
    if config is None:
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: configuration OK")
    return 0


def run(path: str) -> int:
    config = _load(path, "gatewayd: not starting: fix the configuration (gatewayd check-config)")
    if config is None:
        return 1
    logsetup.setup(config.log.level, dict(config.log.components.items()), config.log.target,
                   config.log.rate_limit_interval)
    from gatewayd.daemon import Daemon

    return asyncio.run(Daemon(config).run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gatewayd", description="Thread border router daemon")
    parser.add_argument("-c", "--config", default=DEFAULT_PATH, help=f"configuration file ({DEFAULT_PATH})")
    parser.add_argument("--version", action="version", version=f"gatewayd {__version__}")
    sub = parser.add_subparsers(dest="action")
    check = sub.add_parser("check-config", help="validate the configuration and exit 0 or 1")
    check.add_argument("-c", "--config", dest="check_config", default=None)
    sub.add_parser("run", help="run the daemon (the default)")
    args = parser.parse_args(argv)
    if args.action == "check-config":
        sys.exit(check_config(args.check_config or args.config))
    sys.exit(run(args.config))


if __name__ == "__main__":
    main()
