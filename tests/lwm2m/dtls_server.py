"""A LwM2M server over DTLS-PSK for tests, run in its own process.

The process speaks DTLS through DTLSSocket's tinydtls binding directly (one DTLS context per peer) and
CoAP over it with aiocoap's message codec only, so it can do what a DTLS *server* transport of a CoAP
library often cannot: send requests to a client over the session that client opened. It accepts
Register/Update/Deregister, and takes commands as JSON lines on stdin::

    {"id": 1, "cmd": "request", "ep": "ep1", "method": "GET", "path": "/3/0/0", "accept": 0,
     "observe": false, "payload": "<hex>", "cf": null, "timeout": 5}

answering ``{"id": 1, "code": "2.05", "cf": 0, "payload": "<hex>"}`` (or ``"error"``) on stdout, where it
also writes events: ``ready``, ``register``, ``update``, ``deregister``, ``notify`` and ``alert``. The
PSKs come in the environment (``LWM2M_TEST_PSKS=identity-hex:key-hex,...``), never on the command line;
nothing it prints contains them. :class:`DtlsLwM2MServer` runs and drives it from a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

_SENTINEL = ("::1", 1234)  # the address tinydtls sees; one DTLS context per peer makes it irrelevant
_TICKS = 1000
_CLOCK_OFFSET = time.time()


# --- the server process -------------------------------------------------------------------------------
class _Peer:
    def __init__(self, server: _Server, addr: tuple[str, int]) -> None:
        from DTLSSocket import dtls

        self.server = server
        self.addr = addr
        self.dtls = dtls.DTLS(read=self._read, write=self._write, event=self._event, pskId=b"unused",
                              pskStore=server.psks)
        self.session = dtls.Session(*_SENTINEL)
        self.alive = True

    def _read(self, sender: Any, data: bytes) -> int:
        self.server.coap_received(self, bytes(data))
        return len(data)

    def _write(self, recipient: Any, data: bytes) -> int:
        if self.server.transport is not None:
            self.server.transport.sendto(bytes(data), self.addr)
        return len(data)

    def _event(self, level: int, code: int) -> None:
        if level == 0:  # handshake progress, not an alert
            return
        self.server.emit({"event": "alert", "level": level, "code": code, "peer": self.addr[1]})
        if level == 2:
            self.alive = False
            self.server.peers.pop(self.addr, None)

    def send(self, data: bytes) -> None:
        self.dtls.write(self.session, data)


class _Server(asyncio.DatagramProtocol):
    def __init__(self, psks: dict[bytes, bytes]) -> None:
        self.psks = psks
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: dict[tuple[str, int], _Peer] = {}
        self.registrations: dict[str, tuple[_Peer, str]] = {}
        self.next_location = 0
        self.mid = random.randrange(0x10000)
        self.pending: dict[bytes, asyncio.Future[Any]] = {}
        self.observations: dict[bytes, str] = {}

    # output
    def emit(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    # UDP
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        peer = self.peers.get(addr)
        if peer is None:
            peer = self.peers[addr] = _Peer(self, addr)
        peer.dtls.handleMessage(peer.session, data)

    # CoAP
    def _next_mid(self) -> int:
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    def coap_received(self, peer: _Peer, data: bytes) -> None:
        import aiocoap
        from aiocoap.numbers.codes import Code

        try:
            msg = aiocoap.Message.decode(data)
        except Exception as exc:
            self.emit({"event": "bad_coap", "error": str(exc)})
            return
        if msg.code.is_request():
            resp = self.handle_request(peer, msg)
            if msg.mtype == aiocoap.CON:
                resp.mtype, resp.mid = aiocoap.ACK, msg.mid
            else:
                resp.mtype, resp.mid = aiocoap.NON, self._next_mid()
            resp.token = msg.token
            peer.send(resp.encode())
            return
        if msg.code == Code.EMPTY:
            return  # an ACK whose response comes separately, or a reset
        if msg.mtype == aiocoap.CON:
            ack = aiocoap.Message(mtype=aiocoap.ACK, mid=msg.mid, code=Code.EMPTY)
            peer.send(ack.encode())
        token = bytes(msg.token)
        fut = self.pending.pop(token, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif token in self.observations:
            self.emit({"event": "notify", "ep": self.observations[token], "token": token.hex(),
                       "seq": msg.opt.observe, "code": _dotted(msg), "cf": _cf(msg), "payload": msg.payload.hex()})

    def handle_request(self, peer: _Peer, msg: Any) -> Any:
        import aiocoap
        from aiocoap.numbers.codes import Code

        path = tuple(msg.opt.uri_path)
        query = dict(q.partition("=")[::2] for q in msg.opt.uri_query)
        if msg.code == Code.POST and path == ("rd",):
            self.next_location += 1
            ep = query.get("ep", "")
            location = str(self.next_location)
            self.registrations[ep] = (peer, location)
            self.emit({"event": "register", "ep": ep, "query": query, "links": msg.payload.decode(),
                       "location": location, "peer": peer.addr[1]})
            out = aiocoap.Message(code=Code.CREATED)
            out.opt.location_path = ("rd", location)
            return out
        if len(path) == 2 and path[0] == "rd":
            ep = next((e for e, (_, loc) in self.registrations.items() if loc == path[1]), None)
            if ep is None:
                return aiocoap.Message(code=Code.NOT_FOUND)
            if msg.code == Code.POST:
                self.registrations[ep] = (peer, path[1])
                self.emit({"event": "update", "ep": ep, "query": query, "peer": peer.addr[1]})
                return aiocoap.Message(code=Code.CHANGED)
            if msg.code == Code.DELETE:
                del self.registrations[ep]
                self.emit({"event": "deregister", "ep": ep})
                return aiocoap.Message(code=Code.DELETED)
        return aiocoap.Message(code=Code.NOT_FOUND)

    async def request(self, cmd: dict[str, Any]) -> dict[str, Any]:
        import aiocoap
        from aiocoap.numbers.codes import Code

        reg = self.registrations.get(cmd["ep"])
        if reg is None:
            return {"error": "not registered"}
        peer = reg[0]
        msg = aiocoap.Message(mtype=aiocoap.CON, mid=self._next_mid(), code=getattr(Code, cmd["method"]),
                              payload=bytes.fromhex(cmd.get("payload", "")))
        msg.token = os.urandom(4)
        msg.opt.uri_path = [p for p in cmd["path"].split("/") if p]
        if cmd.get("cf") is not None:
            msg.opt.content_format = cmd["cf"]
        if cmd.get("accept") is not None:
            msg.opt.accept = cmd["accept"]
        if cmd.get("query"):
            msg.opt.uri_query = cmd["query"]
        if cmd.get("observe"):
            msg.opt.observe = 0
            self.observations[bytes(msg.token)] = cmd["ep"]
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[bytes(msg.token)] = fut
        data = msg.encode()
        timeout = float(cmd.get("timeout", 5))
        deadline = time.monotonic() + timeout
        wait = 1.0
        try:
            while True:  # CON retransmission, shortened for tests
                if peer.alive:
                    peer.send(data)
                left = deadline - time.monotonic()
                if left <= 0:
                    return {"error": "timeout"}
                with contextlib.suppress(TimeoutError):
                    resp = await asyncio.wait_for(asyncio.shield(fut), min(wait, left))
                    return {"code": _dotted(resp), "cf": _cf(resp), "payload": resp.payload.hex(),
                            "token": bytes(msg.token).hex(), "observe": resp.opt.observe}
                wait *= 2
        finally:
            self.pending.pop(bytes(msg.token), None)

    async def retransmit_handshakes(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            for peer in list(self.peers.values()):
                peer.dtls.checkRetransmit()


def _dotted(msg: Any) -> str:
    code = int(msg.code)
    return f"{code >> 5}.{code & 0x1F:02d}"


def _cf(msg: Any) -> int | None:
    cf = msg.opt.content_format
    return None if cf is None else int(cf)


def _psks_from_env() -> dict[bytes, bytes]:
    out = {}
    for item in os.environ.get("LWM2M_TEST_PSKS", "").split(","):
        if item:
            ident, _, key = item.partition(":")
            out[bytes.fromhex(ident)] = bytes.fromhex(key)
    return out


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = _Server(_psks_from_env())
    await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", port))
    retransmit = loop.create_task(server.retransmit_handshakes())
    server.emit({"event": "ready", "port": port})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()

    async def run(cmd: dict[str, Any]) -> None:
        result = await server.request(cmd)
        server.emit({"id": cmd["id"], **result})

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd.get("cmd") == "request":
            task = loop.create_task(run(cmd))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif cmd.get("cmd") == "forget":
            server.observations.pop(bytes.fromhex(cmd["token"]), None)
    retransmit.cancel()


# --- the test side ------------------------------------------------------------------------------------
class DtlsLwM2MServer:
    """Runs the server process on ``port`` with ``psks`` and talks to it."""

    def __init__(self, port: int, psks: dict[bytes, bytes]) -> None:
        self.port = port
        self.psks = psks
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        return f"coaps://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = dict(os.environ, LWM2M_TEST_PSKS=",".join(f"{i.hex()}:{k.hex()}" for i, k in self.psks.items()))
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.lwm2m.dtls_server", str(self.port), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.wait_event(lambda e: e.get("event") == "ready")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        while line := await stdout.readline():
            obj = json.loads(line)
            if "id" in obj:
                fut = self._answers.pop(obj["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(obj)
            else:
                self.events.append(obj)
            self._changed.set()
        self._changed.set()

    async def wait_event(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        async def look() -> dict[str, Any]:
            while True:
                for e in self.events:
                    if predicate(e):
                        return e
                if self.proc is None or self.proc.returncode is not None or self._reader is None \
                        or self._reader.done():
                    raise RuntimeError(f"the DTLS server exited; events: {self.events}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(look(), timeout)
        except TimeoutError:
            raise AssertionError(f"no such event in time; events: {self.events[-10:]}") from None

    def count(self, event: str, ep: str) -> int:
        return sum(1 for e in self.events if e.get("event") == event and e.get("ep") == ep)

    async def request(self, ep: str, method: str, path: str, payload: bytes = b"", cf: int | None = None,
                      accept: int | None = None, observe: bool = False, timeout: float = 5.0,
                      query: tuple[str, ...] = ()) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        cmd = {"id": self._next_id, "cmd": "request", "ep": ep, "method": method, "path": path,
               "payload": payload.hex(), "cf": cf, "accept": accept, "observe": observe, "timeout": timeout,
               "query": list(query)}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[cmd["id"]] = fut
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()
        out = await asyncio.wait_for(fut, timeout + 5)
        if "payload" in out:
            out["payload"] = bytes.fromhex(out["payload"])
        return out

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(int(sys.argv[1])))
