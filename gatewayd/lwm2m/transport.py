"""aiocoap glue: one Context (one UDP socket) per client and server, NoSec or DTLS-PSK (DTLSSocket),
DTLS with a raw public key or certificate (GnuTLS, through a loopback tunnel: :mod:`.dtls_pki`).

The server reaches the client at the address it registered from, so the client serves the server's
requests on the very socket it sends from (``ctx.serversite``). aiocoap keeps DTLS sessions in a weak
pool; :attr:`ClientTransport.session` holds the session of the last answered request so it stays up
for as long as the registration does (a collected session sends close_notify and the server's requests
go unanswered). One Context per client also keeps source ports and PSK identities apart.

The DTLS stack can raise out of its datagram callback (see :func:`_contain_dtls_faults`); such faults
are caught there, counted in :data:`dtls_faults` and charged to the client whose session it was, so
they never reach the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiocoap
from aiocoap import interfaces
from aiocoap.numbers.codes import Code

from .tcp import RELIABLE_SCHEMES, TRANSPORTS, PingFailed, ServerCertificate
from .tcp import on_close as tcp_on_close
from .tcp import ping as tcp_ping

if TYPE_CHECKING:  # the client package imports this module
    from .client.operations import OpRequest, OpResponse
    from .client.queue import NotificationQueue
    from .dtls_pki import PkiSecurity

log = logging.getLogger("gatewayd.lwm2m")
COAP_LOGGER = "gatewayd.lwm2m.coap"

Handler = Callable[["OpRequest", Any], "OpResponse"]
Prepare = Callable[["OpRequest", Any], Awaitable["OpResponse | None"]]
ObserveHook = Callable[["OpRequest", Any, Callable[[], None]], Callable[[], None] | None]


class TransportError(Exception):
    """A request got no answer (timeout, unreachable, DTLS handshake failure)."""


class _HideDtlsIdentity(logging.Filter):
    """aiocoap's DTLS transport logs the PSK identity when it opens a session; keep that out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("No DTLS connection active"):
            record.msg, record.args = "opening a DTLS session", ()
        return True


_coap_log = logging.getLogger(COAP_LOGGER)
_coap_log.addFilter(_HideDtlsIdentity())


@dataclass(slots=True)
class Response:
    code: int
    payload: bytes = b""
    content_format: int | None = None
    location: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code >> 5 == 2

    @property
    def dotted(self) -> str:
        return f"{self.code >> 5}.{self.code & 0x1F:02d}"


def op_request(message: aiocoap.Message) -> OpRequest:
    """The LwM2M view of an incoming aiocoap request."""
    from .client.operations import OpRequest
    method = {
        Code.GET: "GET",
        Code.POST: "POST",
        Code.PUT: "PUT",
        Code.DELETE: "DELETE",
        Code.FETCH: "FETCH",
        Code.iPATCH: "iPATCH",
        Code.PATCH: "PATCH",
    }.get(message.code, str(message.code))
    cf = message.opt.content_format
    accept = message.opt.accept
    return OpRequest(
        method=method,
        uri_path=tuple(message.opt.uri_path),
        query=tuple(message.opt.uri_query),
        content_format=None if cf is None else int(cf),
        accept=None if accept is None else int(accept),
        payload=bytes(message.payload),
        observe=message.opt.observe,
    )


def coap_message(resp: OpResponse) -> aiocoap.Message:
    msg = aiocoap.Message(code=Code(resp.code), payload=resp.payload)
    if resp.content_format is not None:
        msg.opt.content_format = resp.content_format
    if resp.location:
        msg.opt.location_path = resp.location
    return msg


class ClientSite(interfaces.Resource):
    """Serves the server's requests that arrive on a client's socket.

    ``handler(request, remote)`` answers one request; ``observe(request, remote, notify)`` is asked first
    for a request carrying Observe 0 and returns a cancel callback if it will call ``notify()`` whenever
    a notification is due (the request is then answered again). Observe sequence numbers start at 1:
    some servers drop a first notification numbered 0. Notifications go out non-confirmable, except one
    at least every :attr:`confirm_interval` seconds: that is how a server's cancel by forgetting (RST, as
    Leshan/Californium and aiocoap do) reaches us; a GET with Observe 1 on the token ends it at once.

    ``prepare(request, remote)`` (optional) is awaited before ``handler``: it may bring values up to date
    from somewhere slow (a proxied device) or answer the request itself; an answer it gives to an
    Observe ends the request without an observation.
    """

    #: seconds between confirmable notifications of one observation (RFC 7641 §4.5 allows up to 24 h)
    confirm_interval = 60.0

    def __init__(self, handler: Handler, observe: ObserveHook, prepare: Prepare | None = None) -> None:
        super().__init__()
        self.handler = handler
        self.observe = observe
        self.prepare = prepare
        #: queue mode: notifications that fall due while the client is offline wait here (.client.queue)
        self.queue: NotificationQueue | None = None
        self._sequence = 0

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        op = op_request(request)
        early = await self.prepare(op, request.remote) if self.prepare is not None else None
        return coap_message(early if early is not None else self.handler(op, request.remote))

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 0xFFFFFF + 1
        return self._sequence

    async def render_to_pipe(self, pipe: Any) -> None:
        request = pipe.request
        if request.opt.observe != 0:
            await self._render_to_pipe(pipe)
            return
        op = op_request(request)
        early = await self.prepare(op, request.remote) if self.prepare is not None else None
        if early is not None:
            pipe.add_response(coap_message(early), is_last=True)
            return
        due = asyncio.Event()
        cancel = self.observe(op, request.remote, lambda: due.set())
        try:
            resp = self.handler(op, request.remote)
            if cancel is None or not resp.ok:
                pipe.add_response(coap_message(resp), is_last=True)
                return
            loop = asyncio.get_running_loop()
            first, last_con = True, loop.time()
            while True:
                msg = coap_message(resp)
                msg.opt.observe = self._next_sequence()
                if not first:
                    if loop.time() - last_con >= self.confirm_interval:
                        # CON now and then (RFC 7641 §4.5): a server that has forgotten the observation
                        # answers RST, which ends the pipe and with it this loop (and cancel() runs)
                        last_con = loop.time()
                    else:
                        # NON otherwise: a CON the server never acknowledges holds back every later
                        # message to it (NSTART 1), Updates and Deregister included
                        msg.mtype = aiocoap.NON
                if first or self.queue is None or not self.queue.hold(pipe, msg):
                    pipe.add_response(msg, is_last=False)
                first = False
                await due.wait()
                due.clear()
                resp = self.handler(op, request.remote)
                if not resp.ok:
                    pipe.add_response(coap_message(resp), is_last=True)
                    return
        finally:
            if self.queue is not None:
                self.queue.forget(pipe)
            if cancel is not None:
                cancel()


#: DTLS stack faults contained in this process, by kind (``SystemError<InvalidStateError>``)
dtls_faults: collections.Counter[str] = collections.Counter()
_dtls_owners: weakref.WeakKeyDictionary[Any, ClientTransport] = weakref.WeakKeyDictionary()


def _fault_kind(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__}<{type(cause).__name__}>" if cause is not None else type(exc).__name__


def _dtls_fault(connection: Any, exc: BaseException) -> None:
    """Count a fault of ``connection``'s DTLS stack; fail the session if its handshake is unfinished."""
    kind = _fault_kind(exc)
    dtls_faults[kind] += 1
    owner = None
    try:
        owner = _dtls_owners.get(connection.coaptransport.ctx.token_manager.context)
    except (AttributeError, TypeError):
        pass
    where = owner.server_uri if owner is not None else "an unknown session"
    # the kind and the server only: exception texts of the DTLS stack may carry session details
    level = logging.WARNING if owner is None or owner.faults == 0 else logging.DEBUG
    log.log(level, "DTLS stack fault on %s contained: %s", where, kind, extra={"fields": {"LWM2M_DTLS_FAULT": kind}})
    if owner is not None:
        owner.faults += 1
        if owner.on_fault is not None:
            owner.on_fault(kind)
    connecting = getattr(connection, "_connecting", None)
    if connection is not None and not (connecting is not None and connecting.done()):
        # mid-handshake the session's state is unknown: fail its requests so the client starts afresh
        try:
            connection._inject_error(TransportError(f"DTLS stack fault: {kind}"))
        except Exception as again:  # the session is beyond repair; its requests time out instead
            log.debug("failing the DTLS session after a fault failed too: %s", type(again).__name__)


def _contain_dtls_faults() -> None:
    """Keep exceptions of the DTLS stack's datagram callback away from the event loop.

    DTLSSocket turns an exception raised in one of its callbacks into a SystemError out of
    ``handleMessage``; aiocoap's handshake callback raises InvalidStateError when tinydtls reports a
    session connected twice, which a storm of concurrent handshakes with retransmitted final flights
    provokes. Raised in asyncio's datagram callback, that is an unhandled error with the datagram lost;
    an established session is fine after it (the peer's CoAP retransmission delivers the datagram).
    """
    from aiocoap.transports import tinydtls

    protocol = tinydtls.DTLSClientConnection.SingleConnection
    original = protocol.datagram_received
    if getattr(original, "_gatewayd_contained", False):
        return

    def datagram_received(self: Any, data: bytes, addr: Any) -> None:
        try:
            original(self, data, addr)
        except Exception as exc:
            _dtls_fault(self.parent(), exc)

    datagram_received._gatewayd_contained = True  # type: ignore[attr-defined]
    protocol.datagram_received = datagram_received


@dataclass
class Security:
    """DTLS-PSK credentials; the key never shows in a repr or log line."""

    identity: bytes = field(repr=False)
    key: bytes = field(repr=False)


class ClientTransport:
    """One client's socket towards one server URI: ``coap://``, ``coaps://`` with a PSK (DTLSSocket) or a
    raw public key or certificate (GnuTLS, see :mod:`.dtls_pki`), or over TCP
    (``coap+tcp://``, ``coaps+tcp://`` checking the server's certificate; see :mod:`.tcp`)."""

    def __init__(
        self, server_uri: str, site: ClientSite | None, security: Security | None = None, timeout: float = 30.0,
        on_fault: Callable[[str], None] | None = None, server_certificate: bytes = b"",
        pki: PkiSecurity | None = None,
    ) -> None:
        parts = urlsplit(server_uri)
        if parts.scheme not in TRANSPORTS:
            raise ValueError(f"server URI {server_uri!r} is not coap://, coaps://, coap+tcp:// or coaps+tcp://")
        if parts.scheme == "coaps" and security is None and pki is None:
            raise ValueError("a coaps:// server needs DTLS-PSK credentials, a raw public key or a certificate")
        #: coaps:// with a raw public key or certificate: a GnuTLS session the context talks through
        self.pki = pki if parts.scheme == "coaps" else None
        self._tunnel: Any = None
        self._target = f"{parts.scheme}://{parts.netloc}"
        self.server_uri = f"{parts.scheme}://{parts.netloc}"
        self.secure = parts.scheme == "coaps"
        #: RFC 8323: keep-alive by Ping, not by Update
        self.reliable = parts.scheme in RELIABLE_SCHEMES
        #: over TCP: called when the registration's connection is lost (the client then reconnects)
        self.on_connection_lost: Callable[[], None] | None = None
        self.server_certificate = server_certificate
        self.site = site
        self.security = security
        self.timeout = timeout
        self.context: aiocoap.Context | None = None
        #: the DTLS session (or UDP remote) the registration lives on; held so it is not collected
        self.session: Any = None
        #: DTLS stack faults on this client's sessions; ``on_fault(kind)`` hears of each
        self.faults = 0
        self.on_fault = on_fault

    def __repr__(self) -> str:
        return f"ClientTransport({self.server_uri!r}, secure={self.secure})"

    async def open(self) -> None:
        if self.context is not None:
            return
        scheme = self.server_uri.partition("://")[0]
        if self.pki is not None:
            self._target = await self._open_tunnel()
            scheme = "coap"
        ctx = await aiocoap.Context.create_client_context(loggername=COAP_LOGGER, transports=[TRANSPORTS[scheme]])
        ctx.serversite = self.site
        if scheme == "coaps+tcp" and self.server_certificate:
            ctx.client_credentials[f"{self.server_uri}/*"] = ServerCertificate(self.server_certificate)
        if self.secure and self.pki is None:
            from aiocoap.credentials import DTLS

            assert self.security is not None
            _contain_dtls_faults()
            _dtls_owners[ctx] = self
            ctx.client_credentials[f"{self.server_uri}/*"] = DTLS(self.security.key, self.security.identity)
        self.context = ctx

    async def request(
        self,
        method: Code,
        path: tuple[str, ...],
        query: tuple[str, ...] = (),
        payload: bytes = b"",
        content_format: int | None = None,
        timeout: float | None = None,
        keep_session: bool = False,
    ) -> Response:
        """Send one request and wait for its answer (TransportError on no answer)."""
        if self._tunnel is not None and not self._tunnel.alive:
            await self.close()  # the server ended the GnuTLS session: a new handshake
        await self.open()
        assert self.context is not None
        msg = aiocoap.Message(code=method, uri=self._target, payload=payload)
        msg.opt.uri_path = path
        if query:
            msg.opt.uri_query = query
        if content_format is not None:
            msg.opt.content_format = content_format
        req = self.context.request(msg, handle_blockwise=True)
        try:
            # shielded: a late answer must find its future uncancelled (aiocoap sets it unconditionally)
            limit = timeout if timeout is not None else self.timeout
            resp = await asyncio.wait_for(asyncio.shield(req.response), limit)
        except TimeoutError:
            if self._tunnel is not None:  # the server may have lost the session: the next request shakes hands
                req.response.add_done_callback(lambda f: f.cancelled() or f.exception())  # shut down below
                await self.close()
            raise TransportError(f"no answer from {self.server_uri}") from None
        except aiocoap.error.Error as exc:
            cause = exc.__cause__
            # a TLS failure says why (certificate verify failed: ...); DTLS causes may quote identities
            why = f" ({cause.reason or type(cause).__name__}: {cause.verify_message})" if isinstance(
                cause, ssl.SSLCertVerificationError) else f" ({type(cause).__name__})" if isinstance(
                cause, ssl.SSLError) else ""
            raise TransportError(f"{self.server_uri}: {type(exc).__name__}: {exc}{why}") from None
        except OSError as exc:
            raise TransportError(f"{self.server_uri}: {exc}") from None
        except TransportError:
            raise
        except Exception as exc:  # what the DTLS stack raised, handed on by aiocoap
            raise TransportError(f"{self.server_uri}: {_fault_kind(exc)}") from None
        if keep_session:
            if self.reliable and resp.remote is not self.session:
                tcp_on_close(resp.remote, lambda conn=resp.remote: self._session_lost(conn))
            self.session = resp.remote
        cf = resp.opt.content_format
        return Response(
            int(resp.code), bytes(resp.payload), None if cf is None else int(cf), tuple(resp.opt.location_path)
        )

    def _session_lost(self, connection: Any) -> None:
        # only the registration's current connection matters; one we closed ourselves is no longer it
        if connection is self.session and self.on_connection_lost is not None:
            self.on_connection_lost()

    async def ping(self, timeout: float | None = None) -> float:
        """RFC 8323 keep-alive: Ping the server on the registration's connection (TransportError if no
        Pong comes back); returns the round trip in seconds."""
        if not self.reliable or self.session is None:
            raise TransportError(f"{self.server_uri}: no TCP connection to ping")
        try:
            return await tcp_ping(self.session, timeout if timeout is not None else self.timeout)
        except PingFailed as exc:
            raise TransportError(f"{self.server_uri}: {exc}") from None

    async def _open_tunnel(self) -> str:
        """DTLS with a raw public key or certificate (.dtls_pki): handshake now, so a server that fails
        the Security object's checks is refused with the reason; returns the URI the context talks to."""
        from .dtls_pki import DtlsTunnel, HandshakeError

        parts = urlsplit(self.server_uri)
        assert self.pki is not None and parts.hostname is not None
        tunnel = DtlsTunnel(parts.hostname, parts.port or 5684, self.pki)
        try:
            host, port = await tunnel.open(self.timeout)
        except (HandshakeError, OSError) as exc:
            raise TransportError(f"{self.server_uri}: {exc}") from None
        self._tunnel = tunnel
        return f"coap://{host}:{port}"

    async def close(self) -> None:
        ctx, self.context, self.session = self.context, None, None
        tunnel, self._tunnel = self._tunnel, None
        if tunnel is not None:
            tunnel.close()
        if ctx is not None:
            try:
                await asyncio.wait_for(ctx.shutdown(), 3)
            except Exception as exc:  # a failing shutdown must not stop the caller's own cleanup
                log.debug("closing the CoAP context failed: %s", exc)

    @property
    def local_port(self) -> int | None:
        """The UDP port the server sees this client on (for status output)."""
        ctx = self.context
        if ctx is None:
            return None
        if self._tunnel is not None:
            return self._tunnel.outer_port
        if self.reliable:
            sock = getattr(getattr(self.session, "_transport", None), "get_extra_info", lambda _: None)("sockname")
            return sock[1] if sock else None
        for ri in ctx.request_interfaces:
            mi = getattr(getattr(ri, "token_interface", None), "message_interface", None)
            transport = getattr(mi, "transport", None) or getattr(mi, "_transport", None)
            if transport is not None:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    return sock.getsockname()[1]
        return None
