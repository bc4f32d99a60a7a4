"""The control socket: one JSON request per line, one JSON response per line.

Request:  {"command": ["dataset", "active", "-x"]}
Response: {"ok": true, "result": ...} or {"ok": false, "error": "..."}

The longest registered command name that prefixes the words wins; the rest are the
command's arguments. The peer's uid (SO_PEERCRED) decides root-only options such as
``--show-secrets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

from gatewayd.component import Command

log = logging.getLogger("gatewayd.control")
MAX_REQUEST = 64 * 1024


class CommandError(Exception):
    """A command refused its arguments; the message goes to the gatewayctl user."""


@dataclass
class Request:
    args: list[str]
    uid: int | None = None

    def flag(self, name: str) -> bool:
        """Consume a flag such as ``-x`` or ``--show-secrets``."""
        if name in self.args:
            self.args = [a for a in self.args if a != name]
            return True
        return False

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def require_root(self, what: str) -> None:
        if not self.is_root:
            raise CommandError(f"{what} needs root: run gatewayctl with sudo")

    def no_more_args(self) -> None:
        if self.args:
            raise CommandError(f"unexpected argument: {self.args[0]}")


class ControlServer:
    def __init__(self, path: str, mode: int = 0o660):
        self.path = path
        self.mode = mode
        self.commands: dict[str, Command] = {}
        self._server: asyncio.AbstractServer | None = None

    def register(self, command: Command) -> None:
        self.commands[command.name] = command

    async def start(self) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if _is_live(self.path):
                raise OSError(f"{self.path} is in use: is another gatewayd running?")
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=MAX_REQUEST)
        os.chmod(self.path, self.mode)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def resolve(self, words: list[str]) -> tuple[Command | None, list[str]]:
        for n in range(len(words), 0, -1):
            command = self.commands.get(" ".join(words[:n]))
            if command is not None:
                return command, words[n:]
        return None, words

    async def handle(self, message: Any, uid: int | None) -> dict[str, Any]:
        if not isinstance(message, dict) or not isinstance(message.get("command"), list) or not all(
            isinstance(w, str) for w in message["command"]
        ):
            return {"ok": False, "error": 'bad request: expected {"command": [words...]}'}
        words = message["command"] or ["help"]
        command, rest = self.resolve(words)
        if command is None:
            return {"ok": False, "error": f"unknown command: {' '.join(words)} (try: gatewayctl help)"}
        request = Request(args=rest, uid=uid)
        try:
            result = await command.handler(request)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("command %r failed", command.name)
            return {"ok": False, "error": f"{command.name} failed: {exc}"}
        return {"ok": True, "result": result}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = _peer_uid(writer)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), 30)
                except (asyncio.LimitOverrunError, ValueError):
                    await _reply(writer, {"ok": False, "error": "request too long"})
                    return
                if not line:
                    return
                try:
                    message = json.loads(line)
                except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
                    response = {"ok": False, "error": "bad request: not JSON"}
                else:
                    response = await self.handle(message, uid)
                await _reply(writer, response)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


async def _reply(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
    writer.write(json.dumps(response, default=str).encode() + b"\n")
    await writer.drain()


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _is_live(path: str) -> bool:
    """Whether a daemon answers on an existing socket file (a stale one is replaced)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:  # refused, gone, or not a socket at all
            return False
        return True
