"""Plain CoAP devices (aiocoap servers) for the LwM2M proxy, in-process or as a program on a Thread node.

A :class:`Sensor` serves ``/sensors/temp`` (text, observable unless ``observable=False``, Max-Age
``max_age``), ``/sensors/env`` (JSON ``{"rh": ..}``), ``/actuators/led`` (PUT text) and ``/reboot``
(POST). As a program (``python -m devtools.testbed.sensors HOST PORT [--no-observe] [--temp 22.5]``,
e.g. inside a namespace; :class:`SensorProcess` is its handle) it prints
"ready", takes ``temp 22.5`` / ``rh 40`` lines on stdin and prints one JSON line per request it got.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code


class _Part(resource.Resource):
    """A resource of ``sensor``."""

    def __init__(self, sensor: Sensor) -> None:
        super().__init__()
        self.sensor = sensor


class _PlainTemp(_Part):
    """The temperature, as a device that cannot observe serves it."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.sensor.record("GET", "/sensors/temp", request)
        msg = aiocoap.Message(payload=f"{self.sensor.temp}".encode(), content_format=0)
        msg.opt.max_age = self.sensor.max_age
        return msg


class _Temp(_PlainTemp, resource.ObservableResource):
    """The same temperature, observable."""


class _Env(_Part):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.sensor.record("GET", "/sensors/env", request)
        msg = aiocoap.Message(payload=json.dumps({"rh": self.sensor.rh, "unit": "%"}).encode(),
                              content_format=50)
        msg.opt.max_age = self.sensor.env_max_age
        return msg


class _Led(_Part):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.sensor.record("GET", "/actuators/led", request)
        return aiocoap.Message(payload=b"true" if self.sensor.led else b"false", content_format=0)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        self.sensor.record("PUT", "/actuators/led", request)
        text = request.payload.decode().strip().lower()
        if text not in ("true", "false"):
            return aiocoap.Message(code=Code.BAD_REQUEST)
        self.sensor.led = text == "true"
        return aiocoap.Message(code=Code.CHANGED)


class _Reboot(_Part):
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.sensor.record("POST", "/reboot", request)
        return aiocoap.Message(code=Code.CHANGED)


class Sensor:
    def __init__(self, host: str, port: int, *, observable: bool = True, max_age: int = 60,
                 env_max_age: int | None = None,
                 on_request: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.host, self.port = host, port
        self.temp = 21.5
        self.rh = 40
        self.led = False
        self.max_age = max_age
        self.env_max_age = max_age if env_max_age is None else env_max_age
        self.requests: list[dict[str, Any]] = []
        self.on_request = on_request
        self.ctx: aiocoap.Context | None = None
        self._temp: resource.Resource = _Temp(self) if observable else _PlainTemp(self)

    def record(self, method: str, path: str, request: aiocoap.Message) -> None:
        entry = {"method": method, "path": path, "payload": request.payload.decode("utf-8", "replace"),
                 "observe": request.opt.observe}
        self.requests.append(entry)
        if self.on_request is not None:
            self.on_request(entry)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r["method"] == method and r["path"] == path)

    def set_temp(self, value: float) -> None:
        self.temp = value
        if isinstance(self._temp, resource.ObservableResource):
            self._temp.updated_state()

    async def start(self) -> None:
        site = resource.Site()
        site.add_resource(["sensors", "temp"], self._temp)
        site.add_resource(["sensors", "env"], _Env(self))
        site.add_resource(["actuators", "led"], _Led(self))
        site.add_resource(["reboot"], _Reboot(self))
        self.ctx = await aiocoap.Context.create_server_context(site, bind=(self.host, self.port),
                                                               transports=["udp6"])

    async def stop(self) -> None:
        ctx, self.ctx = self.ctx, None
        if ctx is not None:
            await ctx.shutdown()


class SensorProcess:
    """This module run as a program (``proc``, started with stdin and stdout pipes); its requests arrive
    as JSON lines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        if ready != b"ready":
            proc.kill()
            raise RuntimeError(f"sensor did not start: {proc.communicate()[1]!r}")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def send(self, line: str) -> None:
        """A stdin command such as ``temp 25.5``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def requests(self) -> list[dict[str, Any]]:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.seen


async def _main(args: argparse.Namespace) -> None:
    sensor = Sensor(args.host, args.port, observable=not args.no_observe, max_age=args.max_age,
                    on_request=lambda e: print(json.dumps(e), flush=True))
    sensor.temp = args.temp
    await sensor.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        name, _, value = line.decode().strip().partition(" ")
        if name == "temp":
            sensor.set_temp(float(value))
        elif name == "rh":
            sensor.rh = int(value)
    await sensor.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--no-observe", action="store_true")
    parser.add_argument("--max-age", type=int, default=60)
    parser.add_argument("--temp", type=float, default=21.5)
    asyncio.run(_main(parser.parse_args()))
