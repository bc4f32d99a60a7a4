"""DTLS with X.509 certificates and raw public keys (RFC 7250) for LwM2M clients, by GnuTLS.

Why GnuTLS: the PSK stack (DTLSSocket, tinydtls) exposes PSK only; python-mbedtls and pyOpenSSL do DTLS
with X.509 but not raw public keys (mbed TLS has no RFC 7250, OpenSSL only from 3.2, Debian bookworm
ships 3.0). GnuTLS (libgnutls30, on every Debian system, maintained, the stack behind coap-server-gnutls)
does DTLS 1.2 with both. No maintained Python binding offers its DTLS, so this module binds the few
calls it needs with ctypes; PSK stays with DTLSSocket. See docs/lwm2m-security.md.

How it joins aiocoap: :class:`DtlsTunnel` holds one DTLS session to the server and a loopback UDP
socket; the client's aiocoap context talks plain CoAP to that socket and the tunnel carries each
datagram through the session, both ways (the server's requests too). The handshake runs before the
first request, so a server that fails the checks is refused with a reason (:class:`HandshakeError`).

The server is checked per the Security object: mode RPK (/0/x/2 = 1) by its raw public key against
/0/x/4; mode Certificate (2) per Certificate Usage /0/x/15 with RFC 6698 semantics (0 CA constraint,
1 service certificate constraint, 2 trust anchor assertion, 3 domain-issued certificate, the default).
Private keys live only in GnuTLS's credentials and this process's memory; no log line carries them.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import ipaddress
import logging
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("gatewayd.lwm2m.dtls")

# Security object (0) values this module serves
MODE_RPK = 1
MODE_CERTIFICATE = 2
#: Certificate Usage (/0/x/15) per RFC 6698 §2.1.1
CA_CONSTRAINT, SERVICE_CERTIFICATE_CONSTRAINT, TRUST_ANCHOR_ASSERTION, DOMAIN_ISSUED_CERTIFICATE = 0, 1, 2, 3

_SERVER, _CLIENT, _DATAGRAM, _NONBLOCK, _ENABLE_RAWPK = 1, 1 << 1, 1 << 2, 1 << 3, 1 << 18
_CERT_REQUIRE = 2
_E_AGAIN, _E_INTERRUPTED = -28, -52
_CRD_CERTIFICATE, _FMT_PEM, _CRT_X509 = 1, 1, 1
_SHUT_WR = 1


class HandshakeError(Exception):
    """The DTLS handshake failed or the server failed the Security object's checks; says why."""


class _Datum(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_uint)]


def _datum(data: bytes) -> tuple[_Datum, Any]:
    buf = ctypes.create_string_buffer(data, len(data))
    return _Datum(ctypes.cast(buf, ctypes.c_void_p), len(data)), buf


_PUSH = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_PULL = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_PULL_TIMEOUT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint)

_lib: Any = None


def gnutls() -> Any:
    """libgnutls, loaded once (ImportError when it is missing: install libgnutls30)."""
    global _lib
    if _lib is None:
        # here, not at the top: ctypes.util imports shutil (with bz2 and lzma) and tempfile, ~0.5 MB that a
        # daemon without certificate or RPK accounts never uses (this module is imported to check configs)
        import ctypes.util

        name = ctypes.util.find_library("gnutls") or "libgnutls.so.30"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise ImportError(f"GnuTLS not found ({exc}): install libgnutls30") from None
        lib.gnutls_strerror.restype = ctypes.c_char_p
        lib.gnutls_record_send.restype = ctypes.c_ssize_t
        lib.gnutls_record_recv.restype = ctypes.c_ssize_t
        lib.gnutls_certificate_get_peers.restype = ctypes.POINTER(_Datum)
        lib.gnutls_dtls_get_timeout.restype = ctypes.c_uint
        lib.gnutls_record_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.gnutls_record_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.gnutls_global_init()
        _lib = lib
    return _lib


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise HandshakeError(f"{what}: {gnutls().gnutls_strerror(ret).decode()}")
    return ret


def _pem(kind: str, der: bytes) -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()


def _loading(what: str) -> Any:
    """Decorator: whatever ``cryptography`` raises on bad bytes becomes one ValueError naming ``what``
    (never the bytes: they may be a private key)."""
    def wrap(fn: Any) -> Any:
        def load(data: bytes) -> bytes:
            from cryptography.exceptions import UnsupportedAlgorithm

            try:
                return fn(bytes(data))
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise ValueError(f"not {what} (PEM or DER)") from None
        load.__doc__, load.__name__ = fn.__doc__, fn.__name__
        return load
    return wrap


@_loading("an X.509 certificate")
def certificate_der(data: bytes) -> bytes:
    """One X.509 certificate, PEM or DER, as DER (ValueError if it is none)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----") else \
        x509.load_der_x509_certificate(data)
    return cert.public_bytes(Encoding.DER)


@_loading("an unencrypted private key")
def private_key_der(data: bytes) -> bytes:
    """A private key (PEM or DER; PKCS#8, SEC1 or PKCS#1) as PKCS#8 DER (ValueError if it is none)."""
    from cryptography.hazmat.primitives import serialization as s

    load = s.load_pem_private_key if data.lstrip().startswith(b"-----") else s.load_der_private_key
    key = load(data, password=None)
    return key.private_bytes(s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption())


@_loading("a public key, private key or certificate")
def public_key_der(data: bytes) -> bytes:
    """A raw public key as SubjectPublicKeyInfo DER, from a public key, a private key or a certificate
    (PEM or DER); ValueError if it is none of them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as s

    pem = data.lstrip().startswith(b"-----")
    loaders = (
        lambda d: (s.load_pem_public_key if pem else s.load_der_public_key)(d),
        lambda d: (x509.load_pem_x509_certificate if pem else x509.load_der_x509_certificate)(d).public_key(),
        lambda d: (s.load_pem_private_key if pem else s.load_der_private_key)(d, None).public_key(),
    )
    from cryptography.exceptions import UnsupportedAlgorithm

    for load in loaders:
        try:
            key = load(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return key.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
    raise ValueError("not a public key, private key or certificate (PEM or DER)")


@dataclass
class PkiSecurity:
    """The Security object's fields for mode RPK or Certificate; never shown in a repr.

    ``own`` is /0/x/3 (the client's certificate, or its raw public key), ``key`` /0/x/5 (its private
    key), ``server`` /0/x/4 (the server's certificate, CA or raw public key), ``usage`` /0/x/15."""

    mode: int
    own: bytes = field(repr=False)
    key: bytes = field(repr=False)
    server: bytes = field(default=b"", repr=False)
    usage: int = DOMAIN_ISSUED_CERTIFICATE

    def check(self) -> None:
        """ValueError naming the field that does not load or fit the mode."""
        if self.mode not in (MODE_RPK, MODE_CERTIFICATE):
            raise ValueError(f"security mode {self.mode} is neither RPK (1) nor Certificate (2)")
        try:
            private_key_der(self.key)
        except (ValueError, TypeError):
            raise ValueError("the private key (/0/x/5) does not load (PEM or DER, unencrypted)") from None
        if self.mode == MODE_CERTIFICATE:
            try:
                certificate_der(self.own)
            except ValueError:
                raise ValueError("the client certificate (/0/x/3) does not load (PEM or DER)") from None
            if self.usage not in (0, 1, 2, 3):
                raise ValueError(f"certificate usage (/0/x/15) {self.usage} is not 0..3 (RFC 6698)")
            if self.usage != CA_CONSTRAINT or self.server:
                try:
                    certificate_der(self.server)
                except ValueError:
                    raise ValueError("the server certificate (/0/x/4) does not load (PEM or DER)") from None
        else:
            for what, data in (("client public key (/0/x/3)", self.own or self.key),
                               ("server public key (/0/x/4)", self.server)):
                try:
                    public_key_der(data)
                except ValueError:
                    raise ValueError(f"the {what} does not load") from None


def pki_security(account: Any) -> PkiSecurity | None:
    """The RPK or Certificate credentials of a ``coaps://`` account (a bootstrap.ServerAccount) with
    Security Mode 1 or 2; None for PSK, NoSec and other schemes. ValueError if its fields do not load."""
    if not account.uri.startswith("coaps://") or account.security_mode not in (MODE_RPK, MODE_CERTIFICATE):
        return None
    pki = PkiSecurity(account.security_mode, account.identity, account.key, account.server_public_key,
                      account.certificate_usage)
    pki.check()
    return pki


class ClientSession:
    """One GnuTLS DTLS client session over memory: datagrams in by :meth:`feed`, out by ``send``.

    ``server=True`` plays the other end (for tests: a server that asks for the client's certificate and
    leaves checking it to its caller); ``security`` then holds the server's own credentials."""

    def __init__(self, security: PkiSecurity, send: Any, hostname: str = "", *, server: bool = False) -> None:
        lib = gnutls()
        self.security, self._send, self.hostname = security, send, hostname
        self._inbox: deque[bytes] = deque()
        self._cred = ctypes.c_void_p()
        self._session = ctypes.c_void_p()
        _check(lib.gnutls_certificate_allocate_credentials(ctypes.byref(self._cred)), "credentials")
        key, keep = _datum(_pem("PRIVATE KEY", private_key_der(security.key)))
        self.server = server
        flags = (_SERVER if server else _CLIENT) | _DATAGRAM | _NONBLOCK
        if security.mode == MODE_RPK:
            spki, keep2 = _datum(_pem("PUBLIC KEY", public_key_der(security.own or security.key)))
            _check(lib.gnutls_certificate_set_rawpk_key_mem(self._cred, ctypes.byref(spki), ctypes.byref(key),
                                                            _FMT_PEM, None, 0, None, 0, 0), "own raw public key")
            flags |= _ENABLE_RAWPK
            priority = b"NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
        else:
            cert, keep2 = _datum(_pem("CERTIFICATE", certificate_der(security.own)))
            _check(lib.gnutls_certificate_set_x509_key_mem(self._cred, ctypes.byref(cert), ctypes.byref(key),
                                                           _FMT_PEM), "own certificate")
            if security.usage == TRUST_ANCHOR_ASSERTION:
                ca, keep3 = _datum(_pem("CERTIFICATE", certificate_der(security.server)))
                _check(lib.gnutls_certificate_set_x509_trust_mem(self._cred, ctypes.byref(ca), _FMT_PEM),
                       "server trust anchor")
                del keep3
            elif security.usage in (CA_CONSTRAINT, SERVICE_CERTIFICATE_CONSTRAINT) and not server:
                lib.gnutls_certificate_set_x509_system_trust(self._cred)
            priority = b"NORMAL:-VERS-ALL:+VERS-DTLS1.2"
        del keep, keep2
        _check(lib.gnutls_init(ctypes.byref(self._session), flags), "session")
        _check(lib.gnutls_priority_set_direct(self._session, priority, None), "priorities")
        _check(lib.gnutls_credentials_set(self._session, _CRD_CERTIFICATE, self._cred), "credentials")
        if server:
            lib.gnutls_certificate_server_set_request(self._session, _CERT_REQUIRE)
        if hostname:
            name = hostname.encode()
            lib.gnutls_server_name_set(self._session, 1, name, len(name))
        lib.gnutls_dtls_set_mtu(self._session, 1280)
        # the callbacks must outlive the session: kept on self
        self._push = _PUSH(self._on_push)
        self._pull = _PULL(self._on_pull)
        self._pull_timeout = _PULL_TIMEOUT(lambda _p, _ms: 1 if self._inbox else 0)
        lib.gnutls_transport_set_push_function(self._session, self._push)
        lib.gnutls_transport_set_pull_function(self._session, self._pull)
        lib.gnutls_transport_set_pull_timeout_function(self._session, self._pull_timeout)
        self.established = False

    def _on_push(self, _ptr: Any, data: int, size: int) -> int:
        try:
            self._send(ctypes.string_at(data, size))
        except OSError:
            pass  # a lost datagram: DTLS retransmits
        return size

    def _on_pull(self, _ptr: Any, buf: int, size: int) -> int:
        if not self._inbox:
            gnutls().gnutls_transport_set_errno(self._session, errno.EAGAIN)
            return -1
        data = self._inbox.popleft()[:size]
        ctypes.memmove(buf, data, len(data))
        return len(data)

    def feed(self, datagram: bytes) -> None:
        self._inbox.append(datagram)

    def handshake(self) -> float | None:
        """Advance the handshake: None when done, else seconds until it wants to run again."""
        lib = gnutls()
        ret = lib.gnutls_handshake(self._session)
        if ret in (_E_AGAIN, _E_INTERRUPTED):
            return lib.gnutls_dtls_get_timeout(self._session) / 1000.0
        if ret < 0:
            raise HandshakeError(f"DTLS handshake failed: {lib.gnutls_strerror(ret).decode()}")
        if not self.server:
            self._verify()
        self.established = True
        return None

    def peer_certificates(self) -> list[bytes]:
        """What the server presented: DER certificates (its own first), or its SubjectPublicKeyInfo."""
        n = ctypes.c_uint()
        peers = gnutls().gnutls_certificate_get_peers(self._session, ctypes.byref(n))
        return [ctypes.string_at(peers[i].data, peers[i].size) for i in range(n.value)] if peers else []

    def _verify(self) -> None:
        """Refuse the server unless it passes the checks of the Security object's fields."""
        sec, peers = self.security, self.peer_certificates()
        if not peers:
            raise HandshakeError("the server presented no certificate or public key")
        if sec.mode == MODE_RPK:
            if peers[0] != public_key_der(sec.server):
                raise HandshakeError("the server's raw public key is not the Server Public Key (/0/x/4)")
            return
        if sec.usage in (CA_CONSTRAINT, SERVICE_CERTIFICATE_CONSTRAINT, TRUST_ANCHOR_ASSERTION):
            status = ctypes.c_uint()
            name = self.hostname.encode() if self.hostname else None
            _check(gnutls().gnutls_certificate_verify_peers3(self._session, name, ctypes.byref(status)), "verify")
            if status.value:
                out = _Datum()
                gnutls().gnutls_certificate_verification_status_print(status.value, _CRT_X509, ctypes.byref(out), 0)
                why = ctypes.string_at(out.data, out.size).decode(errors="replace") if out.data else "untrusted"
                raise HandshakeError(f"server certificate refused: {why}")
        expected = certificate_der(sec.server) if sec.server else b""
        if sec.usage in (SERVICE_CERTIFICATE_CONSTRAINT, DOMAIN_ISSUED_CERTIFICATE) and peers[0] != expected:
            raise HandshakeError("server certificate refused: it is not the Server Public Key (/0/x/4) "
                                 f"(certificate usage {sec.usage})")
        if sec.usage == CA_CONSTRAINT and expected and expected not in peers[1:]:
            raise HandshakeError("server certificate refused: the CA in the Server Public Key (/0/x/4) "
                                 "is not in its chain (certificate usage 0)")

    def send(self, plaintext: bytes) -> None:
        gnutls().gnutls_record_send(self._session, plaintext, len(plaintext))

    def receive(self) -> list[bytes]:
        """Application datagrams decrypted from what was fed; bad records are dropped by GnuTLS."""
        lib, out = gnutls(), []
        buf = ctypes.create_string_buffer(65536)
        while self._inbox:
            ret = lib.gnutls_record_recv(self._session, buf, len(buf))
            if ret > 0:
                out.append(buf.raw[:ret])
            elif ret in (_E_AGAIN, _E_INTERRUPTED) or ret == 0:
                if ret == 0:
                    self.established = False  # close_notify from the server
                break
            elif lib.gnutls_error_is_fatal(ret):
                self.established = False
                break
        return out

    def close(self) -> None:
        lib = gnutls()
        if self._session:
            if self.established:
                lib.gnutls_bye(self._session, _SHUT_WR)
            lib.gnutls_deinit(self._session)
            self._session = ctypes.c_void_p()
        if self._cred:
            lib.gnutls_certificate_free_credentials(self._cred)
            self._cred = ctypes.c_void_p()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)


class DtlsTunnel:
    """A DTLS session to ``host:port`` and the loopback socket that carries its plaintext datagrams."""

    def __init__(self, host: str, port: int, security: PkiSecurity) -> None:
        self.host, self.port, self.security = host, port, security
        self.session: ClientSession | None = None
        self._outer: asyncio.DatagramTransport | None = None
        self._inner: asyncio.DatagramTransport | None = None
        self._local_peer: Any = None
        #: datagrams from local processes other than the client's CoAP context, dropped
        self.dropped = 0
        self._wake = asyncio.Event()
        #: the loopback address the CoAP context sends to
        self.local_address: tuple[str, int] | None = None

    async def open(self, timeout: float = 30.0) -> tuple[str, int]:
        """Connect and finish the handshake (HandshakeError with the reason if refused)."""
        loop = asyncio.get_running_loop()
        try:
            ipaddress.ip_address(self.host)
            hostname = ""
        except ValueError:
            hostname = self.host
        self._outer, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self._from_server),
                                                             remote_addr=(self.host, self.port))
        self._inner, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self._from_local),
                                                             local_addr=("127.0.0.1", 0))
        self.local_address = self._inner.get_extra_info("sockname")[:2]
        self.session = ClientSession(self.security, self._outer.sendto, hostname)
        try:
            await asyncio.wait_for(self._handshake(), timeout)
        except TimeoutError:
            self.close()
            raise HandshakeError(f"no DTLS handshake with {self.host}:{self.port} in {timeout:g} s") from None
        except HandshakeError:
            self.close()
            raise
        return self.local_address

    async def _handshake(self) -> None:
        assert self.session is not None
        while (delay := self.session.handshake()) is not None:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.01))
            except TimeoutError:
                pass

    def _from_server(self, data: bytes, _addr: Any) -> None:
        if self.session is None:
            return
        self.session.feed(data)
        if not self.session.established:
            self._wake.set()
            return
        for plaintext in self.session.receive():
            if self._inner is not None and self._local_peer is not None:
                self._inner.sendto(plaintext, self._local_peer)

    def _from_local(self, data: bytes, addr: Any) -> None:
        # the first sender is the client's CoAP context (it sends as soon as the tunnel is up); any other
        # local process is dropped, so none can speak to the server as this client
        if self._local_peer is None:
            self._local_peer = addr
        elif addr != self._local_peer:
            self.dropped += 1
            return
        if self.session is not None and self.session.established:
            self.session.send(data)

    @property
    def outer_port(self) -> int | None:
        """The UDP port the server sees this client on."""
        sock = self._outer.get_extra_info("sockname") if self._outer is not None else None
        return sock[1] if sock else None

    @property
    def alive(self) -> bool:
        """False once the session ended (close_notify or a fatal alert from the server): open anew."""
        return self.session is not None and self.session.established

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        for t in (self._outer, self._inner):
            if t is not None:
                t.close()
        self._outer = self._inner = None


def read_credential_file(name: str) -> bytes:
    """The bytes of a certificate or public key file (OSError if unreadable)."""
    with open(name, "rb") as f:
        return f.read()


def identity_text(mode: int, identity: bytes) -> str:
    """/0/x/3 of mode RPK or Certificate for a table (``gatewayctl lwm2m psk``): the certificate's
    subject, or "public key", with the SHA-256 of the public key (what a server's security list shows).
    Neither is secret; the DER itself is unreadable there."""
    import hashlib

    from cryptography import x509

    try:
        digest = f"sha256:{hashlib.sha256(public_key_der(identity)).hexdigest()[:32]}"
        if mode != MODE_CERTIFICATE:
            return f"public key {digest}"
        return f"{x509.load_der_x509_certificate(certificate_der(identity)).subject.rfc4514_string()} {digest}"
    except ValueError:  # what a Bootstrap-Server wrote may be anything
        return "(not a certificate or public key)" if mode == MODE_CERTIFICATE else "(not a public key)"


#: the keys that give a [[lwm2m.device]] security of its own (otherwise it shares [lwm2m.server]'s)
SECURITY_KEYS = ("security_mode", "psk_identity", "psk_key", "certificate", "private_key", "server_public_key")


@dataclass(frozen=True)
class SecuritySettings:
    """The security keys one client registers with, as configured: ``[lwm2m.server]``'s, or a
    ``[[lwm2m.device]]``'s own with the URI it registers with (:func:`device_security`). What
    :func:`check_security` and :func:`account_from_config` read; the keys are Secrets (masked repr)."""

    uri: str
    security_mode: str = ""
    psk_identity: str = ""
    psk_key: Any = None
    certificate: str = ""
    private_key: Any = None
    server_public_key: str = ""
    certificate_usage: int = DOMAIN_ISSUED_CERTIFICATE
    #: server_public_key and certificate_usage are [lwm2m.server]'s (a device toward the same server)
    shares_server_check: bool = False


def device_security(server: Any, device: Any) -> Any:
    """What a ``[[lwm2m.device]]`` registers with: ``server`` (``[lwm2m.server]``) itself when the device
    sets no security key and no server of its own; else the device's keys toward ``device.server`` or,
    empty, ``server.uri``. Toward ``[lwm2m.server]`` with no server_public_key of its own, a device in
    an rpk or certificate mode checks that server as ``[lwm2m.server]`` does (the same server)."""
    own = any(getattr(device, k) for k in SECURITY_KEYS)
    if not own and not device.server:
        return server
    uri = device.server or server.uri
    if not own:
        return SecuritySettings(uri)
    keys = {k: getattr(device, k) for k in (*SECURITY_KEYS, "certificate_usage")}
    shares = (not device.server and not device.server_public_key and bool(server.server_public_key)
              and device.security_mode in ("rpk", "certificate"))
    if shares:
        keys |= {"server_public_key": server.server_public_key, "certificate_usage": server.certificate_usage}
    return SecuritySettings(uri, **keys, shares_server_check=shares)


def _private_key_setting(server: Any) -> bytes:
    """The PEM text of ``private_key``/``private_key_file`` (a Secret holding a str) as bytes."""
    value = server.private_key.reveal() if server.private_key else b""
    return value.encode() if isinstance(value, str) else value


def check_security(server: Any) -> list[tuple[str, str]]:
    """The rules of the DTLS security keys of ``[lwm2m.server]`` or of a device (:func:`device_security`):
    (key, problem) pairs, no secret echoed. A ``coaps://`` uri needs PSK or rpk/certificate material;
    keys of another mode, or of any mode on a ``coap://`` uri, are refused rather than ignored."""
    mode = server.security_mode or "psk"
    scheme = server.uri.partition("://")[0].lower()
    problems: list[tuple[str, str]] = []
    if mode == "psk":
        tls = scheme == "coaps+tcp"
        for key in ("certificate", "server_public_key"):
            if getattr(server, key) and not (key == "server_public_key" and tls):
                problems.append((key, f'is for security_mode "rpk" or "certificate", not "{mode}"'))
        if server.private_key:
            problems.append(("private_key", f'is for security_mode "rpk" or "certificate", not "{mode}"'))
        if scheme == "coaps":
            if not server.psk_identity:
                problems.append(("psk_identity", 'required for a coaps:// uri in security_mode "psk" (or set '
                                                 'security_mode "rpk" or "certificate" with their keys)'))
            if not server.psk_key:
                problems.append(("psk_key", 'required for a coaps:// uri in security_mode "psk" (give psk_key_file)'))
        elif scheme:
            why = ("TLS (coaps+tcp://) takes no PSK: the server is checked by server_public_key or the system's "
                   "trust store" if tls else f"{scheme}:// is not secured (NoSec)")
            for key in ("psk_identity", "psk_key"):
                if getattr(server, key):
                    problems.append((key, f"is for a coaps:// uri; {why}"))
            if server.security_mode:
                problems.append(("security_mode", '"psk" is a DTLS mode: it needs a coaps:// uri'))
        if tls and server.server_public_key:  # TLS (RFC 8323) trusts this certificate: checked as .tcp does
            from .tcp import check_certificate

            try:
                check_certificate(read_credential_file(server.server_public_key))
            except ssl.SSLError:  # (an OSError too)
                problems.append(("server_public_key", f"{server.server_public_key} is not a certificate (PEM or DER)"))
            except OSError as exc:
                problems.append(("server_public_key", f"cannot read {server.server_public_key}: {exc.strerror or exc}"))
            except ValueError as exc:  # a certificate, but not one TLS can take as a trust anchor
                problems.append(("server_public_key", f"{server.server_public_key}: {exc}"))
        return problems
    if scheme != "coaps":
        problems.append(("security_mode", f'"{mode}" is a DTLS mode: it needs a coaps:// uri'))
    for key in ("psk_identity", "psk_key"):
        if getattr(server, key):
            problems.append((key, f'is for security_mode "psk", not "{mode}"'))
    if mode == "certificate" and not server.certificate:
        problems.append(("certificate", 'required for security_mode "certificate": a file with the '
                                        "client's certificate"))
    if mode == "rpk" and server.certificate:
        problems.append(("certificate", 'is for security_mode "certificate"; rpk takes its public key from '
                                        "private_key"))
    key = _private_key_setting(server)
    if not key:
        problems.append(("private_key", f'required for security_mode "{mode}" (give private_key_file)'))
    else:
        try:
            private_key_der(key)
        except (ValueError, TypeError):
            problems.append(("private_key", "is not an unencrypted private key in PEM"))
    wanted = mode == "rpk" or server.certificate_usage != CA_CONSTRAINT
    if wanted and not server.server_public_key:
        problems.append(("server_public_key", f'required for security_mode "{mode}"'
                         + (f" with certificate_usage {server.certificate_usage}" if mode == "certificate" else "")
                         + ": a file with what the server is checked against"))
    loads = {"certificate": certificate_der,
             "server_public_key": public_key_der if mode == "rpk" else certificate_der}
    shares = getattr(server, "shares_server_check", False)
    for name, load in loads.items():
        file = getattr(server, name)
        if not file or (name == "certificate" and mode == "rpk"):
            continue
        where = f"{file} ([lwm2m.server]'s)" if shares and name == "server_public_key" else file
        try:
            load(read_credential_file(file))
        except OSError as exc:
            problems.append((name, f"cannot read {where}: {exc.strerror or exc}"))
        except (ValueError, TypeError):
            what = "a public key, private key or certificate" if load is public_key_der else "a certificate"
            problems.append((name, f"{where} is not {what} (PEM or DER)"))
    return problems


def account_from_config(server: Any) -> dict[str, Any]:
    """factory_bootstrap() arguments for security_mode "rpk" or "certificate" of ``[lwm2m.server]`` or a
    device (:func:`device_security`): the files read and normalised to DER, as the Security object holds
    them; the certificate a ``coaps+tcp://`` server is checked against; {} otherwise."""
    if server.security_mode not in ("rpk", "certificate"):
        if server.uri.startswith("coaps+tcp://") and server.server_public_key:  # the TLS server's trust (.tcp)
            return {"server_certificate": read_credential_file(server.server_public_key)}
        return {}
    key = private_key_der(_private_key_setting(server))
    peer = read_credential_file(server.server_public_key) if server.server_public_key else b""
    if server.security_mode == "rpk":
        return {"security_mode": MODE_RPK, "identity": public_key_der(key), "key": key,
                "server_certificate": public_key_der(peer)}
    return {"security_mode": MODE_CERTIFICATE, "identity": certificate_der(read_credential_file(server.certificate)),
            "key": key, "server_certificate": certificate_der(peer) if peer else b"",
            "certificate_usage": server.certificate_usage}
