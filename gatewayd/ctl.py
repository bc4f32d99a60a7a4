"""gatewayctl: talk to a running gatewayd over its control socket.

``gatewayctl status``, ``gatewayctl config``, ``gatewayctl help`` and whatever the
components register (``state``, ``dataset active``, ``nat64 mappings``, ...).
Tables for people by default, ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any

from gatewayd.config import DEFAULT_PATH, ConfigError, load
from gatewayd.config.schema import find

EXIT_OK, EXIT_FAIL = 0, 1
# Commands whose last argument is a secret (a dataset holds the network key): gatewayctl reads it itself from
# stdin (``-``) or a file (``--file PATH``), so it stays out of the shell's history and of ps; the daemon gets
# only the value, and never opens a file a client names.
SECRET_ARGUMENTS = (("dataset", "set"),)


class CtlError(Exception):
    pass


def default_socket(config_path: str) -> str:
    """The socket named in the config if it can be read, else the schema default."""
    try:
        return load(config_path).control.socket
    except ConfigError:
        key = find("control.socket")
        return key.default  # type: ignore[union-attr]


def request(path: str, words: list[str], timeout: float = 10.0) -> Any:
    """Send one command and return its result. While the daemon answers "busy" (as many
    connections open as it serves at once) the command is tried again until ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        response = _exchange(path, words, timeout, max(deadline - time.monotonic(), 0.001))
        if response.get("busy") and time.monotonic() + pause < deadline:
            time.sleep(pause)  # the daemon refused before reading the request: trying again is safe
            pause = min(pause * 2, 0.5)
            continue
        break
    if not response.get("ok"):
        raise CtlError(response.get("error", "request failed"))
    return response.get("result")


def _exchange(path: str, words: list[str], timeout: float, remaining: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(remaining)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise CtlError(f"gatewayd is not running (no control socket at {path}); "
                           "start it with: systemctl start gatewayd") from None
        except PermissionError:
            raise CtlError(f"permission denied on {path}: run as root or join the socket's group") from None
        except BlockingIOError:  # the listen backlog is full (connect on a socket with a timeout)
            return {"ok": False, "busy": True, "error": "gatewayd is busy: its control socket accepts no more"}
        except TimeoutError:
            raise CtlError(f"gatewayd did not answer within {timeout:g} s") from None
        try:
            sock.sendall(json.dumps({"command": words}).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # a busy daemon answers and closes without reading: its answer is still there to read
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise CtlError(f"gatewayd did not answer within {timeout:g} s") from None
        except ConnectionResetError:
            if not data:
                raise CtlError("gatewayd closed the connection without answering") from None
    if not data:
        raise CtlError("gatewayd closed the connection without answering")
    response = json.loads(data)
    if not isinstance(response, dict):
        raise CtlError("gatewayd sent something other than a JSON object")
    return response


def read_secret_argument(words: list[str]) -> list[str]:
    """``words`` with ``-`` or ``--file PATH`` after a command of :data:`SECRET_ARGUMENTS` replaced by what
    stdin or the file holds (whitespace and newlines dropped: hex split over lines reads as one)."""
    for command in SECRET_ARGUMENTS:
        rest = words[len(command):]
        if tuple(words[:len(command)]) != command:
            continue
        if rest == ["-"]:
            where, text = "stdin", sys.stdin.read()
        elif len(rest) == 2 and rest[0] == "--file":
            where = rest[1]
            try:
                with open(where, encoding="ascii", errors="replace") as f:
                    text = f.read()
            except OSError as exc:
                raise CtlError(f"cannot read {where}: {exc.strerror or exc}") from None
        else:
            return words
        value = "".join(text.split())
        if not value:
            raise CtlError(f"{' '.join(command)}: nothing in {where}")
        return [*command, value]
    return words


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        if not value:
            return "(none)"
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """An ot-ctl-like table: header, rule, one line a row."""
    if not rows:
        return "(none)"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "-+-".join("-" * w for w in widths)
    body = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([line.rstrip(), rule, *body])


def render(result: Any, indent: int = 0) -> str:
    """Human form: dicts as aligned ``key: value`` lines, lists of dicts as tables."""
    pad = " " * indent
    if isinstance(result, dict):
        if not result:
            return f"{pad}(empty)"
        width = max(len(str(k)) for k in result)
        lines = []
        for key, value in result.items():
            if isinstance(value, dict) and value:
                lines.append(f"{pad}{key}:")
                lines.append(render(value, indent + 2))
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                lines.append(f"{pad}{key}:")
                lines.extend(pad + "  " + t for t in table(value).splitlines())
            else:
                lines.append(f"{pad}{str(key) + ':':<{width + 1}} {_cell(value)}")
        return "\n".join(lines)
    if isinstance(result, list) and all(isinstance(v, dict) for v in result):
        return "\n".join(pad + t for t in table(result).splitlines())
    if isinstance(result, list):
        return "\n".join(f"{pad}{_cell(v)}" for v in result)
    return f"{pad}{_cell(result)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="gatewayctl", description="Query and control a running gatewayd.",
        epilog="Run `gatewayctl help` for the commands the daemon offers.")
    parser.add_argument("-c", "--config", default=DEFAULT_PATH, help="configuration file naming the socket")
    parser.add_argument("-s", "--socket", help="control socket path (overrides the configuration)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON result")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments (default: status)")
    args = parser.parse_args(argv)
    path = args.socket or default_socket(args.config)
    words = args.command or ["status"]
    if "--json" in words:  # accept `gatewayctl status --json` too
        words = [w for w in words if w != "--json"]
        args.json = True
    try:
        words = read_secret_argument(words)
        result = request(path, words, args.timeout)
    except (CtlError, OSError, ValueError) as exc:
        print(f"gatewayctl: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAIL)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(render(result) if result is not None else "(none)")
    sys.exit(EXIT_OK)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
