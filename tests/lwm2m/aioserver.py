"""A small LwM2M 1.1 server (and Bootstrap-Server) on aiocoap for tests, plain UDP on loopback.

It records Register/Update/Deregister/Send, and sends Device Management requests to a registered
client from its own socket, the way a real server reaches a client through NAT.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiocoap
from aiocoap import interfaces
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.codecs import CodecError, ContentFormat, encode, parse_registration
from gatewayd.lwm2m.paths import LwM2MPath

from .servers import REGISTRY


@dataclass
class Reg:
    endpoint: str
    location: str
    query: dict[str, str]
    links: str
    remote: str
    updates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BootstrapPlan:
    """What the Bootstrap-Server writes: one LwM2M Server account."""

    server_uri: str
    short_server_id: int = 7
    lifetime: int = 60
    identity: bytes = b""
    key: bytes = b""
    #: Security Mode (/0/x/2; default PSK with a key, else NoSec), Server Public Key (/0/x/4) and
    #: Certificate Usage (/0/x/15) for raw public key or certificate accounts
    mode: int | None = None
    server_public_key: bytes = b""
    certificate_usage: int | None = None


class _Site(interfaces.Resource):
    def __init__(self, server: LwM2MTestServer) -> None:
        super().__init__()
        self.server = server

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        await self.server.hold(request)
        return self.server.handle(request)

    async def render_to_pipe(self, pipe: Any) -> None:
        await self._render_to_pipe(pipe)


class LwM2MTestServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.ctx: aiocoap.Context | None = None
        self.registrations: dict[str, Reg] = {}
        self.log: list[tuple[str, str]] = []  # (event, endpoint)
        self.sent: list[tuple[str, int, bytes]] = []  # Send: (endpoint, content format, payload)
        self.bootstrap: dict[str, BootstrapPlan] = {}
        self.bootstrap_log: list[tuple[str, str]] = []
        self.accept_updates = True
        #: Updates without Content-Format 40 answered 4.00, payload or not, as Wakaama's lwm2mserver from
        #: 2024-07 (7aa5e9e) to 2025-11 (f91cfe0) does
        self.update_wants_link_format = False
        #: Registers whose object list is longer are answered 4.13, as a server with a bound would
        self.max_object_list: int | None = None
        #: cleared, Registers and Updates wait unanswered (counted in ``held``) until it is set again
        self.answer_registrations = asyncio.Event()
        self.answer_registrations.set()
        self.held = 0
        self._next = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.ctx = await aiocoap.Context.create_server_context(_Site(self), bind=("127.0.0.1", self.port),
                                                               transports=["udp6"])

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        ctx, self.ctx = self.ctx, None
        if ctx is not None:
            await ctx.shutdown()

    # --- the registration interface -----------------------------------------------------------------
    async def hold(self, request: aiocoap.Message) -> None:
        """Keep a Register or Update unanswered while ``answer_registrations`` is clear (a slow server)."""
        path = tuple(request.opt.uri_path)
        if request.code != Code.POST or not path or path[0] != "rd" or self.answer_registrations.is_set():
            return
        self.held += 1
        self._changed.set()
        await self.answer_registrations.wait()

    def handle(self, request: aiocoap.Message) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        query = dict(q.partition("=")[::2] for q in request.opt.uri_query)
        remote = request.remote.uri_base
        out = self._handle(request, path, query, remote)
        self._changed.set()
        return out

    def _handle(self, request: aiocoap.Message, path: tuple[str, ...], query: dict[str, str],
                remote: str) -> aiocoap.Message:
        if request.code == Code.POST and path == ("rd",):
            if self.max_object_list is not None and len(request.payload) > self.max_object_list:
                return aiocoap.Message(code=Code.REQUEST_ENTITY_TOO_LARGE)
            try:
                parse_registration(request.payload)  # what a server makes of it, with our decoder
            except CodecError as exc:
                return aiocoap.Message(code=Code.BAD_REQUEST, payload=str(exc).encode())
            self._next += 1
            ep = query["ep"]
            reg = Reg(ep, str(self._next), query, request.payload.decode(), remote)
            self.registrations[ep] = reg
            self.log.append(("register", ep))
            msg = aiocoap.Message(code=Code.CREATED)
            msg.opt.location_path = ("rd", reg.location)
            return msg
        if len(path) == 2 and path[0] == "rd":
            reg = next((r for r in self.registrations.values() if r.location == path[1]), None)
            if reg is None or not self.accept_updates:
                return aiocoap.Message(code=Code.NOT_FOUND)
            if request.code == Code.POST:
                if self.update_wants_link_format and request.opt.content_format != 40:
                    self.log.append(("update-refused", reg.endpoint))
                    return aiocoap.Message(code=Code.BAD_REQUEST)
                reg.updates.append({"query": query, "payload": request.payload.decode(), "remote": remote,
                                    "ct": request.opt.content_format})
                reg.remote = remote
                self.log.append(("update", reg.endpoint))
                return aiocoap.Message(code=Code.CHANGED)
            if request.code == Code.DELETE:
                del self.registrations[reg.endpoint]
                self.log.append(("deregister", reg.endpoint))
                return aiocoap.Message(code=Code.DELETED)
        if request.code == Code.POST and path == ("dp",):
            ep = next((r.endpoint for r in self.registrations.values() if r.remote == remote), "?")
            self.sent.append((ep, int(request.opt.content_format), bytes(request.payload)))
            self.log.append(("send", ep))
            return aiocoap.Message(code=Code.CHANGED)
        if request.code == Code.POST and path == ("bs",):
            ep = query.get("ep", "")
            plan = self.bootstrap.get(ep)
            if plan is None:
                return aiocoap.Message(code=Code.BAD_REQUEST)
            self.log.append(("bootstrap-request", ep))
            task = asyncio.get_running_loop().create_task(self._bootstrap(ep, remote, plan))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return aiocoap.Message(code=Code.CHANGED)
        return aiocoap.Message(code=Code.NOT_FOUND)

    async def _bootstrap(self, ep: str, remote: str, plan: BootstrapPlan) -> None:
        await asyncio.sleep(0.05)
        resp = await self.request_to(remote, Code.DELETE, "/")
        self.bootstrap_log.append(("delete /", resp.code.dotted))
        security = [(LwM2MPath(0, 1, 0), plan.server_uri), (LwM2MPath(0, 1, 1), False),
                    (LwM2MPath(0, 1, 2), plan.mode if plan.mode is not None else 0 if plan.key else 3),
                    (LwM2MPath(0, 1, 3), plan.identity), (LwM2MPath(0, 1, 4), plan.server_public_key),
                    (LwM2MPath(0, 1, 5), plan.key), (LwM2MPath(0, 1, 10), plan.short_server_id)]
        if plan.certificate_usage is not None:
            security.append((LwM2MPath(0, 1, 15), plan.certificate_usage))
        resp = await self.request_to(remote, Code.PUT, "/0/1", encode(ContentFormat.TLV, LwM2MPath(0, 1), security,
                                                                       REGISTRY), ContentFormat.TLV)
        self.bootstrap_log.append(("write /0/1", resp.code.dotted))
        server = [(LwM2MPath(1, 0, 0), plan.short_server_id), (LwM2MPath(1, 0, 1), plan.lifetime),
                  (LwM2MPath(1, 0, 6), False), (LwM2MPath(1, 0, 7), "U")]
        resp = await self.request_to(remote, Code.PUT, "/1/0", encode(ContentFormat.SENML_CBOR, LwM2MPath(1, 0),
                                                                       server, REGISTRY),
                                     ContentFormat.SENML_CBOR)
        self.bootstrap_log.append(("write /1/0", resp.code.dotted))
        resp = await self.request_to(remote, Code.GET, "/", accept=ContentFormat.LINK_FORMAT)
        self.bootstrap_log.append(("discover /", resp.payload.decode()))
        resp = await self.request_to(remote, Code.POST, "/bs")
        self.bootstrap_log.append(("finish", resp.code.dotted))

    # --- the server's requests to a client --------------------------------------------------------
    async def request_to(self, remote: str, code: Code, path: str, payload: bytes = b"",
                         content_format: int | None = None, accept: int | None = None,
                         query: tuple[str, ...] = (), timeout: float = 5.0) -> aiocoap.Message:
        assert self.ctx is not None
        msg = aiocoap.Message(code=code, uri=remote + path, payload=payload)
        if content_format is not None:
            msg.opt.content_format = content_format
        if accept is not None:
            msg.opt.accept = accept
        if query:
            msg.opt.uri_query = query
        return await asyncio.wait_for(self.ctx.request(msg).response, timeout)

    async def op(self, ep: str, code: Code, path: str, payload: bytes = b"", content_format: int | None = None,
                 accept: int | None = None, query: tuple[str, ...] = ()) -> aiocoap.Message:
        return await self.request_to(self.registrations[ep].remote, code, path, payload, content_format, accept,
                                     query)

    def observe(self, ep: str, path: str, accept: int | None = None, *, code: Code = Code.GET,
                payload: bytes = b"", content_format: int | None = None) -> Observer:
        assert self.ctx is not None
        msg = aiocoap.Message(code=code, uri=self.registrations[ep].remote + path, observe=0, payload=payload)
        if accept is not None:
            msg.opt.accept = accept
        if content_format is not None:
            msg.opt.content_format = content_format
        return Observer(self.ctx.request(msg))

    # --- waiting -------------------------------------------------------------------------------------
    async def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        async def poll() -> None:
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.1)

        await asyncio.wait_for(poll(), timeout)

    def count(self, event: str, ep: str) -> int:
        return sum(1 for e, x in self.log if e == event and x == ep)


class Observer:
    """An observation the test server holds: the first response, then notifications as they come."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.notifications: asyncio.Queue[aiocoap.Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def first(self, timeout: float = 5.0) -> aiocoap.Message:
        resp = await asyncio.wait_for(self.request.response, timeout)
        self._task = asyncio.get_running_loop().create_task(self._collect())
        return resp

    async def _collect(self) -> None:
        with contextlib.suppress(Exception):
            async for note in self.request.observation:
                await self.notifications.put(note)

    async def next(self, timeout: float = 5.0) -> aiocoap.Message:
        return await asyncio.wait_for(self.notifications.get(), timeout)

    def cancel(self) -> None:
        self.request.observation.cancel()
        if self._task is not None:
            self._task.cancel()
