"""The control socket: one JSON request per line, one JSON response per line.

Request:  {"command": ["dataset", "active", "-x"]}
Response: {"ok": true, "result": ...} or {"ok": false, "error": "..."}

The longest registered command name that prefixes the words wins; the rest are the
command's arguments. The peer's uid (SO_PEERCRED) decides root-only options such as
``--show-secrets``.

At most ``max_connections`` connections are served at once; one more gets the one line
``{"ok": false, "busy": true, "error": "gatewayd is busy: ..."}`` and is closed. Root has
``ROOT_RESERVE`` places more, so an administrator's gatewayctl is answered while members of the
socket's group hold every place. A
connection that sends no request, or reads no answer, for ``idle_timeout`` seconds is
closed, so idle clients cannot keep the places forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gatewayd.component import Command
from gatewayd.config.schema import find
from ncp.client import NcpError

log = logging.getLogger("gatewayd.control")
MAX_REQUEST = 64 * 1024
#: The ``[control]`` defaults, from the schema.
DEFAULT_MAX_CONNECTIONS: int = find("control.max_connections").default  # type: ignore[union-attr]
#: Places beyond max_connections that only root's connections take.
ROOT_RESERVE = 4
DEFAULT_IDLE_TIMEOUT: float = find("control.idle_timeout").default  # type: ignore[union-attr]
#: How long a refused connection may take to accept its one-line answer.
REFUSAL_TIMEOUT = 1.0


class CommandError(Exception):
    """A command refused its arguments; the message goes to the gatewayctl user."""


@contextlib.contextmanager
def ncp_refusal() -> Iterator[None]:
    """An NCP's refusal as a gatewayctl error rather than a failed command with a traceback in the log."""
    try:
        yield
    except NcpError as exc:
        raise CommandError(f"the NCP refused: {exc}") from None


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

    def option(self, name: str) -> str | None:
        """Consume an option with a value, such as ``--delay 30000``; None when it is not given."""
        if name not in self.args:
            return None
        at = self.args.index(name)
        if at + 1 >= len(self.args):
            raise CommandError(f"{name} needs a value")
        value = self.args[at + 1]
        del self.args[at:at + 2]
        return value

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
    def __init__(self, path: str, mode: int = 0o660, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT):
        self.path = path
        self.mode = mode
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.commands: dict[str, Command] = {}
        self._server: asyncio.AbstractServer | None = None
        #: the connections being served (not the refused ones)
        self._writers: set[asyncio.StreamWriter] = set()
        #: connections refused because max_connections were open, since start
        self.refused = 0
        self._full_logged = False

    @classmethod
    def from_config(cls, control: Any) -> ControlServer:
        """From the ``[control]`` table of a loaded configuration."""
        return cls(control.socket, control.mode, control.max_connections, control.idle_timeout)

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._writers)

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
            for writer in list(self._writers):
                writer.close()
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
        if len(self._writers) >= self.max_connections + (ROOT_RESERVE if uid == 0 else 0):
            await self._refuse(writer)
            return
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), self.idle_timeout)
                except (asyncio.LimitOverrunError, ValueError):
                    await self._reply(writer, {"ok": False, "error": "request too long"})
                    return
                if not line:
                    return
                try:
                    message = json.loads(line)
                except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
                    response = {"ok": False, "error": "bad request: not JSON"}
                else:
                    response = await self.handle(message, uid)
                await self._reply(writer, response)
        except TimeoutError:
            log.debug("closing a control connection idle for %g s", self.idle_timeout)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            if len(self._writers) < self.max_connections:
                self._full_logged = False
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        """Send one answer; a client that does not read it within idle_timeout is dropped (TimeoutError)."""
        await asyncio.wait_for(_reply(writer, response), self.idle_timeout)

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        self.refused += 1
        if not self._full_logged:
            self._full_logged = True
            log.warning("control socket busy: %d connections open, the most [control] max_connections allows; "
                        "refusing new ones until some close (idle ones are closed after %g s)",
                        self.max_connections, self.idle_timeout)
        busy = {"ok": False, "busy": True,
                "error": f"gatewayd is busy: {self.max_connections} control connections are open, the most it "
                         "serves at once; try again shortly"}
        try:
            await asyncio.wait_for(_reply(writer, busy), REFUSAL_TIMEOUT)
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
