"""DTLS with X.509 certificates and raw public keys (gatewayd.lwm2m.dtls_pki, GnuTLS).

Peers: Debian's libcoap servers (libcoap3-bin) — coap-server-openssl for certificates (it asks for the
client's certificate and checks it against a CA), coap-server-gnutls for raw public keys (RFC 7250).
They are CoAP servers, not LwM2M servers: a Register through them is answered 4.xx, which still shows
the client's whole path (handshake, checks, CoAP through the session). Keys and certificates are made
per test session in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiocoap.numbers.codes import Code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.config import ConfigError, load
from gatewayd.lwm2m.bootstrap import SecurityMode, factory_bootstrap
from gatewayd.lwm2m.client import ClientSettings, LwM2MClient, RegistrationState
from gatewayd.lwm2m.dtls_pki import PkiSecurity, account_from_config, certificate_der, private_key_der, public_key_der
from gatewayd.lwm2m.transport import ClientTransport, TransportError

from .servers import device_store, until

pytestmark = pytest.mark.timeout(60)


def _cert(name: str, key: Any, issuer: tuple[str, Any] | None = None, ca: bool = False) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else subject
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca, server (by ca), client (by ca), other (self-signed), stranger (by another CA): name.crt and
    name.key (PEM)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec

    d = tmp_path_factory.mktemp("pki")
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "server", "client", "other", "stranger")}
    for name, key in keys.items():
        (d / f"{name}.key").write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL,
                                                          s.NoEncryption()))
    (d / "ca.crt").write_bytes(_cert("gatewayd test CA", keys["ca"], ca=True))
    for name in ("server", "client"):
        (d / f"{name}.crt").write_bytes(_cert(name, keys[name], ("gatewayd test CA", keys["ca"])))
    (d / "other.crt").write_bytes(_cert("other", keys["other"]))
    rogue = ec.generate_private_key(ec.SECP256R1())
    (d / "stranger.crt").write_bytes(_cert("stranger", keys["stranger"], ("another CA", rogue)))
    return d


def _udp_port_pair() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2, contextlib.suppress(OSError):
            s2.bind(("127.0.0.1", port + 1))
            return port
    raise RuntimeError("no free UDP port pair")


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def libcoap_server(program: str, *args: str, port: int = 0):
    """Run a libcoap server on loopback; yields its coaps:// URI."""
    if shutil.which(program) is None:
        pytest.skip(f"{program} not installed (Debian libcoap3-bin)")
    port = port or _udp_port_pair()
    proc = subprocess.Popen([program, "-A", "127.0.0.1", "-p", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            if _bound(port + 1) or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.01"])
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield f"coaps://127.0.0.1:{port + 1}"
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _security(pki: Path, server: str, usage: int = 3, own: str = "client", mode: int = 2) -> PkiSecurity:
    own_bytes = (pki / f"{own}.crt").read_bytes() if mode == 2 else b""
    return PkiSecurity(mode, own_bytes, (pki / f"{own}.key").read_bytes(), (pki / server).read_bytes(), usage)


async def _get(uri: str, security: PkiSecurity) -> bytes:
    transport = ClientTransport(uri, None, pki=security, timeout=5)
    try:
        resp = await transport.request(Code.GET, ())
        assert resp.ok
        return resp.payload
    finally:
        await transport.close()


@pytest.fixture
def openssl_server(pki: Path):
    with libcoap_server("coap-server-openssl", "-c", str(pki / "server.crt"), "-j", str(pki / "server.key"),
                        "-R", str(pki / "ca.crt")) as uri:
        yield uri


@pytest.fixture
def gnutls_rpk_server(pki: Path):
    with libcoap_server("coap-server-gnutls", "-M", str(pki / "server.key")) as uri:
        yield uri


@pytest.mark.parametrize(("usage", "server"), [(3, "server.crt"), (2, "ca.crt")],
                         ids=["domain-issued certificate", "trust anchor assertion"])
async def test_certificate_handshake_with_libcoap_openssl(openssl_server: str, pki: Path, usage: int, server: str):
    assert b"libcoap" in await _get(openssl_server, _security(pki, server, usage))


@pytest.mark.parametrize(("usage", "message"), [
    (3, "server certificate refused: it is not the Server Public Key (/0/x/4) (certificate usage 3)"),
    (2, "server certificate refused: The certificate is NOT trusted"),
    (1, "server certificate refused: The certificate is NOT trusted"),  # not in the system's trust store
])
async def test_wrong_server_certificate_is_refused(openssl_server: str, pki: Path, usage: int, message: str):
    with pytest.raises(TransportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await _get(openssl_server, _security(pki, "other.crt", usage))


async def test_other_local_processes_cannot_use_the_session(openssl_server: str, pki: Path):
    transport = ClientTransport(openssl_server, None, pki=_security(pki, "server.crt"), timeout=5)
    try:
        assert (await transport.request(Code.GET, ())).ok
        tunnel = transport._tunnel
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
            intruder.sendto(bytes.fromhex("40011234b474696d65"), tunnel.local_address)  # CON GET /time
            await until(lambda: tunnel.dropped == 1)
        assert (await transport.request(Code.GET, ())).ok
    finally:
        await transport.close()


async def test_new_handshake_after_the_server_lost_the_session(pki: Path):
    """A restarted server knows no session: the request on the old one goes unanswered, the next one
    shakes hands again (what the registration's retry relies on)."""
    args = ("-c", str(pki / "server.crt"), "-j", str(pki / "server.key"), "-R", str(pki / "ca.crt"))
    with libcoap_server("coap-server-openssl", *args) as uri:
        transport = ClientTransport(uri, None, pki=_security(pki, "server.crt"), timeout=5)
        assert (await transport.request(Code.GET, ())).ok
    port = int(uri.rsplit(":", 1)[1]) - 1
    try:
        with libcoap_server("coap-server-openssl", *args, port=port):
            with pytest.raises(TransportError, match="no answer"):
                await transport.request(Code.GET, (), timeout=2)
            assert (await transport.request(Code.GET, ())).ok
    finally:
        await transport.close()


async def test_server_refuses_a_client_certificate_its_ca_did_not_sign(openssl_server: str, pki: Path):
    # (coap-server lets self-signed client certificates through: this one has an issuer it does not know)
    with pytest.raises(TransportError, match="DTLS handshake failed"):
        await _get(openssl_server, _security(pki, "server.crt", own="stranger"))


async def test_raw_public_key_handshake_with_libcoap_gnutls(gnutls_rpk_server: str, pki: Path):
    server_public_key = subprocess.run(["openssl", "pkey", "-in", str(pki / "server.key"), "-pubout"],
                                       check=True, capture_output=True).stdout
    security = PkiSecurity(1, b"", (pki / "client.key").read_bytes(), server_public_key)
    assert b"libcoap" in await _get(gnutls_rpk_server, security)


async def test_wrong_server_raw_public_key_is_refused(gnutls_rpk_server: str, pki: Path):
    with pytest.raises(TransportError, match=r"raw public key is not the Server Public Key \(/0/x/4\)"):
        await _get(gnutls_rpk_server, _security(pki, "other.key", mode=1))


@given(st.sampled_from(["server.crt", "client.crt", "ca.crt", "other.crt", "client.key", "server.key"]),
       st.booleans(), st.binary(max_size=64))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_loaders_take_pem_and_der_alike_and_refuse_anything_else(pki: Path, name: str, der: bool, junk: bytes):
    from cryptography.hazmat.primitives import serialization as s

    data = (pki / name).read_bytes()
    if name.endswith(".crt"):
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(data)
        expected = cert.public_bytes(s.Encoding.DER)
        assert certificate_der(expected if der else data) == expected
        assert public_key_der(data) == cert.public_key().public_bytes(s.Encoding.DER,
                                                                      s.PublicFormat.SubjectPublicKeyInfo)
    else:
        key = s.load_pem_private_key(data, None)
        pkcs8 = key.private_bytes(s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption())
        assert private_key_der(pkcs8 if der else data) == pkcs8
    for loader in (certificate_der, private_key_der, public_key_der):
        with pytest.raises(ValueError, match=r"^not "):
            loader(junk + b"\x00" + data[5:])  # truncated or mangled: refused, without quoting the bytes


@given(st.sampled_from([1, 2]), st.binary(max_size=200))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_identity_text_names_a_certificate_or_key_by_its_hash_and_never_raises(pki: Path, mode: int, junk: bytes):
    """What `gatewayctl lwm2m psk` shows for /0/x/3 in modes 1 and 2 (a Bootstrap-Server may write anything)."""
    from gatewayd.lwm2m.dtls_pki import identity_text

    cert = certificate_der((pki / "client.crt").read_bytes())
    by_cert, by_key = identity_text(2, cert), identity_text(1, public_key_der((pki / "client.key").read_bytes()))
    assert by_cert.startswith("CN=client sha256:") and by_key.startswith("public key sha256:")
    assert by_cert.split()[-1] == by_key.split()[-1]  # the same key pair: the same hash
    text = identity_text(mode, junk + cert[len(junk):] if mode == 2 else junk)
    assert text in ("(not a certificate or public key)", "(not a public key)") or \
        re.fullmatch(r"(public key|.*=.*) sha256:[0-9a-f]{32}", text), text  # a fixed text, a name, a hash


def _keys(keys: dict[str, Any]) -> list[str]:
    return [f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in keys.items()]


def _config(tmp_path: Path, pki: Path, device: dict[str, Any] | None = None, **keys: Any) -> Path:
    """[lwm2m.server] with ``keys``; with ``device``, a [[lwm2m.device]] dev-1 with those keys after it."""
    lines = ["[lwm2m.server]", *_keys(keys)]
    if device is not None:
        lines += ["[[lwm2m.device]]", 'endpoint = "dev-1"', 'address = "::ffff:127.0.0.1"', *_keys(device)]
    path = tmp_path / "gatewayd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_gateway_client_through_certificates_and_refused_server(openssl_server: str, pki: Path,
                                                                      tmp_path: Path):
    """Configured as the daemon is: the account written from [lwm2m.server], the registration's
    outcome in the client's state and last error (what `gatewayctl lwm2m show` prints)."""
    clients = []
    try:
        for name, server_file in (("good", "server.crt"), ("bad", "other.crt")):
            config = load(_config(tmp_path, pki, uri=openssl_server, security_mode="certificate",
                                  certificate=pki / "client.crt", private_key_file=pki / "client.key",
                                  server_public_key=pki / server_file)).lwm2m.server
            store = device_store(None)
            factory_bootstrap(store, config.uri, **account_from_config(config))
            assert store.instance(0, store.instance_ids(0)[0]).values[2] == SecurityMode.CERTIFICATE
            client = LwM2MClient(f"ep-{name}", store, ClientSettings(request_timeout=5))
            clients.append(client)
            await client.start()
        good, bad = clients
        # libcoap is no LwM2M server: it answers the Register, through the session, with an error code
        await until(lambda: "4." in good.last_error or "5." in good.last_error)
        assert "refused" not in good.last_error
        await until(lambda: "server certificate refused" in bad.last_error)
        assert bad.state == RegistrationState.FAILED
        assert "BEGIN" not in bad.last_error
    finally:
        for c in clients:
            await c.stop()


@pytest.mark.parametrize("mode", [2, 1], ids=["certificate", "raw public key"])
async def test_registration_and_device_management_end_to_end(pki: Path, mode: int):
    """Register, the server's Read to the client and Deregister, all through the DTLS session (GnuTLS
    server role in front of the aiocoap test server; see pki_server.py for why not a real server)."""
    from .aioserver import LwM2MTestServer
    from .pki_server import DtlsFront
    from .servers import free_udp_port

    server_own = (pki / "server.crt").read_bytes() if mode == 2 else b""
    lwm2m = LwM2MTestServer(free_udp_port())
    await lwm2m.start()
    front = DtlsFront(free_udp_port(), PkiSecurity(mode, server_own, (pki / "server.key").read_bytes()),
                      ("127.0.0.1", lwm2m.port))
    await front.start()
    store = device_store(None)
    security = _security(pki, "server.crt" if mode == 2 else "server.key", mode=mode)
    factory_bootstrap(store, f"coaps://127.0.0.1:{front.port}", security_mode=mode,
                      identity=security.own or public_key_der(security.key), key=security.key,
                      server_certificate=security.server)
    client = LwM2MClient("ep-pki", store, ClientSettings(request_timeout=5))
    try:
        await client.start()
        await lwm2m.wait_until(lambda: "ep-pki" in lwm2m.registrations)
        resp = await lwm2m.op("ep-pki", Code.GET, "/3/0/0")
        assert resp.code == Code.CONTENT and resp.payload
        await client.stop()
        await lwm2m.wait_until(lambda: lwm2m.count("deregister", "ep-pki") == 1)
        assert front.failures == []
    finally:
        await client.stop()
        front.stop()
        await lwm2m.stop()


async def test_bootstrap_server_writes_a_certificate_account(pki: Path):
    """A Bootstrap-Server writes /0/x/2 = 2 and the DER certificate, key, server certificate and usage;
    the client then registers through DTLS with them."""
    from .aioserver import BootstrapPlan, LwM2MTestServer
    from .pki_server import DtlsFront
    from .servers import free_udp_port

    bs, dm = LwM2MTestServer(free_udp_port()), LwM2MTestServer(free_udp_port())
    await bs.start()
    await dm.start()
    front = DtlsFront(free_udp_port(), PkiSecurity(2, (pki / "server.crt").read_bytes(),
                                                   (pki / "server.key").read_bytes()), ("127.0.0.1", dm.port))
    await front.start()
    bs.bootstrap["ep-bs"] = BootstrapPlan(
        f"coaps://127.0.0.1:{front.port}", mode=2, identity=certificate_der((pki / "client.crt").read_bytes()),
        key=private_key_der((pki / "client.key").read_bytes()),  # PKCS#8 DER, as a server writes it
        server_public_key=certificate_der((pki / "server.crt").read_bytes()), certificate_usage=3)
    store = device_store(bs.uri, bootstrap=True)
    client = LwM2MClient("ep-bs", store, ClientSettings(request_timeout=5))
    try:
        await client.start()
        await dm.wait_until(lambda: "ep-bs" in dm.registrations)
        assert (await dm.op("ep-bs", Code.GET, "/3/0/0")).code == Code.CONTENT
    finally:
        await client.stop()
        front.stop()
        await dm.stop()
        await bs.stop()


@pytest.mark.parametrize(("peer", "device", "outcome"), [
    ("openssl_server", {}, "Register rejected"),
    ("openssl_server", {"security_mode": "certificate", "certificate": "other.crt", "private_key_file": "other.key"},
     "Register rejected"),
    ("openssl_server", {"security_mode": "certificate", "certificate": "stranger.crt",
                        "private_key_file": "stranger.key"}, "DTLS handshake failed"),
    ("gnutls_rpk_server", {}, "Register rejected"),
    ("gnutls_rpk_server", {"security_mode": "rpk", "private_key_file": "other.key"}, "Register rejected"),
    ("gnutls_rpk_server", {"security_mode": "rpk", "private_key_file": "other.key", "server_public_key": "other.key"},
     "the server's raw public key is not the Server Public Key (/0/x/4)"),
], ids=["gateway certificate", "own certificate", "certificate of an unknown CA", "gateway raw public key",
        "own raw public key", "wrong server raw public key"])
async def test_proxied_device_handshakes_with_libcoap(request: pytest.FixtureRequest, pki: Path, tmp_path: Path,
                                                      peer: str, device: dict[str, Any], outcome: str):
    """A [[lwm2m.device]] toward [lwm2m.server] with the gateway's credentials (no keys of its own) or its
    own certificate or raw public key: its virtual client does the handshake with Debian's libcoap server,
    checks the server, and its Register goes through the session (libcoap answers 4.04); a certificate the
    server's CA did not sign is refused by the server, a wrong server key by the client."""
    from gatewayd.lwm2m.proxy.component import device_configs
    from gatewayd.lwm2m.proxy.virtual import virtual_store

    from .servers import REGISTRY

    uri = request.getfixturevalue(peer)
    if peer == "openssl_server":
        server = {"security_mode": "certificate", "certificate": pki / "client.crt",
                  "server_public_key": pki / "server.crt"}
    else:
        server = {"security_mode": "rpk", "server_public_key": pki / "server.key"}
    path = _config(tmp_path, pki, {k: pki / v if k != "security_mode" else v for k, v in device.items()}, uri=uri,
                   private_key_file=pki / "client.key", **server)
    devices, errors = device_configs(load(path), REGISTRY)
    assert errors == [] and len(devices) == 1
    assert "BEGIN" not in repr(devices[0].account)
    own = device.get("private_key_file", "client.key")
    assert devices[0].account.pki["key"] == private_key_der((pki / own).read_bytes())
    store = virtual_store(REGISTRY, devices[0].account, manufacturer="m", model="x")
    client = LwM2MClient("dev-1", store, ClientSettings(request_timeout=5))
    await client.start()
    try:
        await until(lambda: outcome in client.last_error)  # libcoap's 4.04 comes through the session
        assert "Register rejected" in outcome or client.state == RegistrationState.FAILED
    finally:
        await client.stop()


@pytest.mark.parametrize(("keys", "message"), [
    ({"uri": "coap://h", "security_mode": "certificate"},
     'lwm2m.server.security_mode: "certificate" is a DTLS mode: it needs a coaps:// uri'),
    ({"uri": "coaps://h", "security_mode": "rpk", "psk_identity": "x"},
     'lwm2m.server.psk_identity: is for security_mode "psk", not "rpk"'),
    ({"uri": "coaps://h", "security_mode": "certificate"},
     'lwm2m.server.certificate: required for security_mode "certificate"'),
    ({"uri": "coaps://h", "security_mode": "rpk"},
     'lwm2m.server.private_key: required for security_mode "rpk" (give private_key_file)'),
    ({"uri": "coaps://h", "security_mode": "certificate", "certificate": "/nonexistent.crt"},
     "lwm2m.server.certificate: cannot read /nonexistent.crt: No such file or directory"),
    ({"uri": "coaps://h", "security_mode": "certificate", "certificate_usage": 2},
     'lwm2m.server.server_public_key: required for security_mode "certificate" with certificate_usage 2'),
    ({"uri": "coaps://h", "certificate": "x.crt"},
     'lwm2m.server.certificate: is for security_mode "rpk" or "certificate", not "psk"'),
    ({"uri": "coaps://h", "security_mode": "certificate", "certificate_usage": 4},
     "lwm2m.server.certificate_usage: expected an integer from 0 to 3"),
    ({"uri": "coaps://h"},  # no PSK, no raw public key, no certificate: once accepted, then refused at run time
     'lwm2m.server.psk_identity: required for a coaps:// uri in security_mode "psk"'),
    ({"uri": "coaps://h", "psk_identity": "gw"},
     'lwm2m.server.psk_key: required for a coaps:// uri in security_mode "psk" (give psk_key_file)'),
    ({"uri": "coap://h", "psk_identity": "gw", "psk_key": "00"},
     "lwm2m.server.psk_identity: is for a coaps:// uri; coap:// is not secured (NoSec)"),
    ({"uri": "coap://h", "security_mode": "psk"}, 'lwm2m.server.security_mode: "psk" is a DTLS mode'),
    ({"uri": "coaps+tcp://h", "psk_identity": "gw", "psk_key": "00"},
     "lwm2m.server.psk_key: is for a coaps:// uri; TLS (coaps+tcp://) takes no PSK"),
    ({"uri": "coaps+tcp://h", "security_mode": "rpk"},
     'lwm2m.server.security_mode: "rpk" is a DTLS mode: it needs a coaps:// uri'),
])
def test_config_rules_name_file_line_and_key(tmp_path: Path, pki: Path, keys: dict[str, Any], message: str):
    path = _config(tmp_path, pki, **keys)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert any(e.startswith(f"{path}:") and message in e for e in err.value.errors), err.value.errors


def test_tls_server_certificate_from_config(tmp_path: Path, pki: Path):
    """server_public_key also serves coaps+tcp:// (checked as gatewayd.lwm2m.tcp loads it)."""
    config = load(_config(tmp_path, pki, uri="coaps+tcp://h", server_public_key=pki / "ca.crt")).lwm2m.server
    assert account_from_config(config) == {"server_certificate": (pki / "ca.crt").read_bytes()}
    with pytest.raises(ConfigError, match=r"lwm2m.server.server_public_key: .*client.key is not a certificate"):
        load(_config(tmp_path, pki, uri="coaps+tcp://h", server_public_key=pki / "client.key"))


def test_config_file_that_is_no_certificate_or_key(tmp_path: Path, pki: Path):
    path = _config(tmp_path, pki, uri="coaps://h", security_mode="certificate", certificate=pki / "client.key",
                   private_key_file=pki / "client.crt", server_public_key=pki / "server.crt")
    with pytest.raises(ConfigError) as err:
        load(path)
    text = "\n".join(err.value.errors)
    assert f"lwm2m.server.certificate: {pki}/client.key is not a certificate (PEM or DER)" in text
    assert "lwm2m.server.private_key: is not an unencrypted private key in PEM" in text
    assert "BEGIN" not in text


def _error_line(path: Path, key: str) -> int:
    """The line of the device's ``key`` in ``path`` (its [[lwm2m.device]] header when it is not there)."""
    lines = path.read_text().splitlines()
    header = lines.index("[[lwm2m.device]]") + 1
    name = key.removesuffix("_file")
    found = [n for n, line in enumerate(lines, 1) if n > header and line.startswith((f"{name} =", f"{name}_file ="))]
    return found[0] if found else header


SERVER_CERT = {"uri": "coaps://h", "security_mode": "certificate", "certificate": "{pki}/client.crt",
               "private_key_file": "{pki}/client.key", "server_public_key": "{pki}/server.crt"}


@pytest.mark.parametrize(("server", "device", "key", "message"), [
    ({"uri": "coap://h"}, {"server": "coaps://other"}, "psk_identity",
     'required for a coaps:// uri in security_mode "psk" (or set security_mode "rpk" or "certificate" with their '
     "keys)"),
    ({"uri": "coaps://h", "psk_identity": "gw", "psk_key": "00"}, {"security_mode": "certificate"}, "certificate",
     'required for security_mode "certificate": a file with the client\'s certificate'),
    ({"uri": "coaps://h", "psk_identity": "gw", "psk_key": "00"}, {"security_mode": "certificate"}, "private_key",
     'required for security_mode "certificate" (give private_key_file)'),
    ({"uri": "coaps://h", "psk_identity": "gw", "psk_key": "00"},
     {"security_mode": "rpk", "private_key_file": "{pki}/client.key"}, "server_public_key",
     'required for security_mode "rpk": a file with what the server is checked against'),
    (SERVER_CERT, {"security_mode": "certificate", "certificate": "/nonexistent.crt",
                   "private_key_file": "{pki}/client.key"}, "certificate",
     "cannot read /nonexistent.crt: No such file or directory"),
    (SERVER_CERT, {"security_mode": "certificate", "certificate": "{pki}/client.crt",
                   "private_key_file": "{pki}/client.crt"}, "private_key", "is not an unencrypted private key in PEM"),
    (SERVER_CERT, {"security_mode": "rpk", "private_key_file": "{pki}/client.key",
                   "server_public_key": "{pki}/junk"}, "server_public_key",
     "{pki}/junk is not a public key, private key or certificate (PEM or DER)"),
    (SERVER_CERT, {"security_mode": "certificate", "certificate": "{pki}/client.crt",
                   "private_key_file": "{pki}/client.key", "psk_identity": "dev"}, "psk_identity",
     'is for security_mode "psk", not "certificate"'),
    (SERVER_CERT, {"security_mode": "rpk", "private_key_file": "{pki}/client.key", "psk_key": "00"}, "psk_key",
     'is for security_mode "psk", not "rpk"'),
    ({"uri": "coap://h"}, {"security_mode": "rpk", "private_key_file": "{pki}/client.key",
                           "server_public_key": "{pki}/server.key"}, "security_mode",
     '"rpk" is a DTLS mode: it needs a coaps:// uri'),
    ({"uri": "coaps://h", "psk_identity": "gw", "psk_key": "00"},
     {"server": "coap://other", "psk_identity": "dev", "psk_key": "00"}, "psk_identity",
     "is for a coaps:// uri; coap:// is not secured (NoSec)"),
    (SERVER_CERT, {"certificate": "{pki}/client.crt"}, "certificate",
     'is for security_mode "rpk" or "certificate", not "psk"'),
], ids=["coaps without credentials", "certificate mode without certificate", "certificate mode without key",
        "rpk without server key", "unreadable certificate", "certificate as private key", "malformed server key",
        "psk identity in certificate mode", "psk key in rpk mode", "rpk toward coap", "psk toward coap",
        "certificate without its mode"])
def test_device_security_rules_name_file_line_and_key(tmp_path: Path, pki: Path, server: dict[str, Any],
                                                      device: dict[str, Any], key: str, message: str):
    """[[lwm2m.device]] security is checked by the same rules as [lwm2m.server]'s, as the device registers
    (its own server, or [lwm2m.server]'s uri), each error at the device's key and line."""
    (pki / "junk").write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    fill = {k: v.format(pki=pki) if isinstance(v, str) else v for k, v in server.items()}
    path = _config(tmp_path, pki, {k: v.format(pki=pki) if isinstance(v, str) else v for k, v in device.items()},
                   **fill)
    with pytest.raises(ConfigError) as err:
        load(path)
    expected = f"{path}:{_error_line(path, key)}: lwm2m.device[0].{key}: {message.format(pki=pki)}"
    assert expected in err.value.errors, err.value.errors
    assert all("BEGIN" not in e and "lwm2m.server" not in e.split(": ")[1] for e in err.value.errors)


def test_device_in_a_pki_mode_checks_the_shared_server_as_the_gateway_does(tmp_path: Path, pki: Path):
    """A device with a certificate of its own toward [lwm2m.server] checks that server by
    [lwm2m.server]'s server_public_key and certificate_usage; a device with no security keys shares the
    gateway's credentials; one with its own server and server_public_key checks that."""
    from gatewayd.lwm2m.proxy.component import device_configs

    from .servers import REGISTRY

    server = {k: v.format(pki=pki) for k, v in SERVER_CERT.items()} | {"certificate_usage": 2}
    path = _config(tmp_path, pki, {"security_mode": "certificate", "certificate": pki / "other.crt",
                                   "private_key_file": pki / "other.key"}, **server)
    path.write_text(path.read_text() + '[[lwm2m.device]]\nendpoint = "dev-2"\naddress = "fd00::2"\n'
                    '[[lwm2m.device]]\nendpoint = "dev-3"\naddress = "fd00::3"\nserver = "coaps://other"\n'
                    f'security_mode = "rpk"\nprivate_key_file = "{pki}/client.key"\n'
                    f'server_public_key = "{pki}/server.key"\n')
    devices, errors = device_configs(load(path), REGISTRY)
    assert errors == []
    own, shared, elsewhere = (d.account for d in devices)
    assert own.uri == shared.uri == "coaps://h" and elsewhere.uri == "coaps://other"
    assert own.pki["identity"] == certificate_der((pki / "other.crt").read_bytes())
    assert own.pki["key"] == private_key_der((pki / "other.key").read_bytes())
    assert own.pki["server_certificate"] == certificate_der((pki / "server.crt").read_bytes())
    assert own.pki["certificate_usage"] == 2
    assert shared.pki["identity"] == certificate_der((pki / "client.crt").read_bytes())
    assert elsewhere.pki["security_mode"] == 1
    assert elsewhere.pki["server_certificate"] == public_key_der((pki / "server.key").read_bytes())
    assert "BEGIN" not in repr(devices)


def test_thread_devices_per_node_psk_is_refused_in_a_pki_mode(tmp_path: Path, pki: Path):
    path = _config(tmp_path, pki, **{k: v.format(pki=pki) for k, v in SERVER_CERT.items()})
    path.write_text(path.read_text() + '[lwm2m.thread_devices]\nenabled = true\npsk = "per-node"\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert err.value.errors == [f'{path}:9: lwm2m.thread_devices.psk: "per-node" derives a PSK per node, but '
                                '[lwm2m.server] security_mode is "certificate": the nodes share its credentials '
                                '(set psk = "shared")']


def _device(endpoint: str, port: int, keys: dict[str, Any]) -> str:
    return "\n".join(["[[lwm2m.device]]", f'endpoint = "{endpoint}"', 'address = "::ffff:127.0.0.1"', f"port = {port}",
                      *_keys(keys), "[lwm2m.device.resources]",
                      '"/3303/0/5700" = { get = "/sensors/temp", type = "float" }', ""])


@pytest.mark.parametrize("mode", [2, 1], ids=["certificate", "raw public key"])
async def test_proxied_devices_register_with_their_own_credentials_end_to_end(pki: Path, tmp_path: Path, mode: int,
                                                                              caplog: pytest.LogCaptureFixture):
    """Three [[lwm2m.device]] entries in front of a real CoAP sensor, through the daemon's LwM2M component:
    dev-own with a certificate (or raw public key) of its own, dev-shared with none (the gateway's), and
    dev-wrong whose server_public_key is not the server's. The server side (GnuTLS in front of the test
    LwM2M server) sees each device authenticate with its own credentials; dev-wrong fails cleanly, with
    the reason in `gatewayctl lwm2m clients` and the journal fields; no private key is shown or logged."""
    import json
    import logging

    from devtools.testbed.sensors import Sensor
    from gatewayd.config.render import dump
    from gatewayd.control import CommandError, Request
    from gatewayd.lwm2m.component import LwM2MComponent

    from .aioserver import LwM2MTestServer
    from .pki_server import DtlsFront
    from .servers import free_udp_port

    caplog.set_level(logging.DEBUG, logger="gatewayd")
    lwm2m = LwM2MTestServer(free_udp_port())
    await lwm2m.start()
    server_own = (pki / "server.crt").read_bytes() if mode == 2 else b""
    front = DtlsFront(free_udp_port(), PkiSecurity(mode, server_own, (pki / "server.key").read_bytes()),
                      ("127.0.0.1", lwm2m.port))
    await front.start()
    sensor = Sensor("127.0.0.1", free_udp_port())
    await sensor.start()
    name = "certificate" if mode == 2 else "rpk"

    def credentials(who: str) -> dict[str, Any]:
        return {"security_mode": name, **({"certificate": pki / f"{who}.crt"} if mode == 2 else {}),
                "private_key_file": pki / f"{who}.key"}

    server_key = pki / ("server.crt" if mode == 2 else "server.key")
    text = "\n".join([f'[daemon]\nstate_dir = "{tmp_path}"\n[lwm2m]\nenabled = true', "[lwm2m.server]",
                      f'uri = "coaps://127.0.0.1:{front.port}"', "lifetime = 60",
                      *_keys(credentials("client") | {"server_public_key": server_key}),
                      "[lwm2m.gateway]\nenabled = false", ""])
    text += _device("dev-own", sensor.port, credentials("other"))  # server_public_key: [lwm2m.server]'s
    text += _device("dev-shared", sensor.port, {})
    wrong = pki / ("other.crt" if mode == 2 else "other.key")
    text += _device("dev-wrong", sensor.port, credentials("stranger") | {"server_public_key": wrong})
    path = tmp_path / "gatewayd.toml"
    path.write_text(text)
    config = load(path)
    comp = LwM2MComponent(config)
    await comp.start()
    try:
        await lwm2m.wait_until(lambda: {"dev-own", "dev-shared"} <= set(lwm2m.registrations), timeout=20)
        assert (await lwm2m.op("dev-own", Code.GET, "/3303/0/5700")).payload == b"21.5"  # the sensor, via DTLS
        identity = certificate_der if mode == 2 else public_key_der
        own_id, gateway_id = (identity((pki / f"{who}.{'crt' if mode == 2 else 'key'}").read_bytes())
                              for who in ("other", "client"))
        assert own_id in front.clients and gateway_id in front.clients  # each with its own, not one for all
        refused = ("server certificate refused: it is not the Server Public Key (/0/x/4)" if mode == 2
                   else "the server's raw public key is not the Server Public Key (/0/x/4)")
        for _ in range(200):
            rows = {r["endpoint"]: r for r in await comp._cmd_clients(Request([]))}
            if refused in rows["dev-wrong"].get("error", ""):
                break
            await asyncio.sleep(0.05)
        assert rows["dev-own"]["state"] == rows["dev-shared"]["state"] == "registered"
        assert rows["dev-wrong"]["state"] == "failed" and refused in rows["dev-wrong"]["error"]
        assert "dev-wrong" not in lwm2m.registrations
        journal = [r for r in caplog.records if getattr(r, "fields", {}).get("LWM2M_ENDPOINT") == "dev-wrong"
                   and r.fields.get("LWM2M_STATE") == "failed"]
        assert journal and refused in journal[0].getMessage()

        # gatewayctl lwm2m psk: the mode and who the device is; its private key only for root's --show-secrets
        own = (await comp._cmd_psk(Request(["dev-own"], uid=0)))[0]
        assert own["security"] == name and own["key"] == "********"
        assert own["identity"].startswith("CN=other sha256:" if mode == 2 else "public key sha256:")
        with pytest.raises(CommandError, match="root"):
            await comp._cmd_psk(Request(["dev-own", "--show-secrets"], uid=1000))
        revealed = (await comp._cmd_psk(Request(["dev-own", "--show-secrets"], uid=0)))[0]
        device_key = private_key_der((pki / "other.key").read_bytes())
        assert revealed["key"] == device_key.hex()
        # gatewayctl config: the device's private key masked, shown to root's --show-secrets
        shown = dump(config.root)["lwm2m"]["device"][0]
        assert shown["private_key"] == "********" and shown["security_mode"] == name
        assert dump(config.root, show_secrets=True)["lwm2m"]["device"][0]["private_key"].startswith("-----BEGIN")
        # nowhere else: the clients table, the masked config, the log
        pem_body = [line for line in (pki / "other.key").read_text().splitlines() if not line.startswith("-----")]
        out = json.dumps([rows, own, dump(config.root)], default=str) + "\n".join(
            f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
        assert "PRIVATE KEY" not in out and device_key.hex() not in out
        assert not any(line in out for line in pem_body)

        # fixed by a reload (a device's security keys are live): dev-wrong alone is replaced, and registers
        registers = lwm2m.count("register", "dev-own")
        path.write_text(text.replace(f'server_public_key = "{wrong}"\n', ""))
        await comp.reload(load(path))
        await lwm2m.wait_until(lambda: "dev-wrong" in lwm2m.registrations, timeout=20)
        assert lwm2m.count("register", "dev-own") == registers
    finally:
        await comp.stop()
        await sensor.stop()
        front.stop()
        await lwm2m.stop()
