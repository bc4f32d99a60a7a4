"""Server accounts (Security /0 + Server /1), factory bootstrap and the Bootstrap-Finish check.

A *server account* is a Security instance, and for a LwM2M Server its Server instance with the same
Short Server ID. Factory bootstrap writes the accounts the configuration names; client-initiated
bootstrap (``POST /bs?ep=``) lets a Bootstrap-Server write them, and Bootstrap-Finish is accepted only
when at least one usable LwM2M Server account results (LwM2M 1.1 §5.2.7.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiocoap.numbers.codes import Code

from .errors import LwM2MError
from .paths import LwM2MPath
from .store import ObjectStore


class SecurityMode:
    PSK = 0
    RPK = 1
    CERTIFICATE = 2
    NO_SEC = 3


@dataclass(slots=True)
class ServerAccount:
    uri: str
    bootstrap: bool = False
    security_mode: int = SecurityMode.NO_SEC
    identity: bytes = field(default=b"", repr=False)
    key: bytes = field(default=b"", repr=False)
    #: Server Public Key (/0/x/4): for coaps+tcp:// the certificate the server's is checked against
    server_public_key: bytes = field(default=b"", repr=False)
    #: Certificate Usage (/0/x/15, LwM2M 1.1; RFC 6698): how the server's certificate is checked
    certificate_usage: int = 3
    short_server_id: int | None = None
    lifetime: int | None = None
    binding: str | None = None
    default_pmin: int | None = None
    default_pmax: int | None = None
    security_instance: int = 0
    server_instance: int | None = None

    @property
    def secure(self) -> bool:
        return self.uri.startswith("coaps://")


def server_accounts(store: ObjectStore) -> list[ServerAccount]:
    """Accounts from the store: the Bootstrap-Server's, and LwM2M Servers' with their Server instance."""
    servers = {}
    for iid in store.instance_ids(1):
        inst = store.instance(1, iid)
        if inst is not None and 0 in inst.values:
            servers[inst.values[0]] = inst
    out: list[ServerAccount] = []
    for iid in store.instance_ids(0):
        sec = store.instance(0, iid)
        if sec is None or not sec.values.get(0):
            continue
        v = sec.values
        account = ServerAccount(
            uri=str(v[0]),
            bootstrap=bool(v.get(1, False)),
            security_mode=int(v.get(2, SecurityMode.NO_SEC)),
            identity=bytes(v.get(3, b"")),
            key=bytes(v.get(5, b"")),
            server_public_key=bytes(v.get(4, b"")),
            certificate_usage=int(v.get(15, 3)),
            short_server_id=v.get(10),
            security_instance=iid,
        )
        if not account.bootstrap:
            server = servers.get(account.short_server_id)
            if server is None:
                continue
            account.server_instance = server.instance_id
            account.lifetime = server.values.get(1)
            account.binding = server.values.get(7)
            account.default_pmin = server.values.get(2)
            account.default_pmax = server.values.get(3)
        out.append(account)
    out.sort(key=lambda a: (a.bootstrap, a.short_server_id or 0))
    return out


def lwm2m_server(store: ObjectStore) -> ServerAccount | None:
    """The LwM2M Server the client registers with (the lowest Short Server ID)."""
    return next((a for a in server_accounts(store) if not a.bootstrap and _usable(a)), None)


def bootstrap_server(store: ObjectStore) -> ServerAccount | None:
    return next((a for a in server_accounts(store) if a.bootstrap and _usable(a)), None)


def _usable(account: ServerAccount) -> bool:
    if account.uri.startswith("coaps://"):
        # PSK (DTLSSocket), or a raw public key / certificate (.dtls_pki), each with its credentials
        return account.security_mode in (SecurityMode.PSK, SecurityMode.RPK, SecurityMode.CERTIFICATE) and bool(
            account.identity) and bool(account.key)
    if account.uri.startswith("coaps+tcp://"):
        # TLS checking the server's certificate (/0/x/4, else the system's trust store); no client certificate
        return account.security_mode == SecurityMode.CERTIFICATE
    return account.uri.startswith(("coap://", "coap+tcp://")) and account.security_mode == SecurityMode.NO_SEC


def check_bootstrap_finish(store: ObjectStore) -> None:
    """Raise 4.06 Not Acceptable if the bootstrap left no usable LwM2M Server account."""
    if lwm2m_server(store) is None:
        raise LwM2MError(Code.NOT_ACCEPTABLE, "no usable LwM2M Server account after bootstrap")


def factory_bootstrap(
    store: ObjectStore,
    uri: str,
    *,
    identity: bytes = b"",
    key: bytes = b"",
    bootstrap: bool = False,
    short_server_id: int = 1,
    lifetime: int = 300,
    binding: str = "U",
    server_certificate: bytes = b"",
    security_mode: int | None = None,
    certificate_usage: int = 3,
) -> None:
    """Write one account from the configuration (a LwM2M Server, or the Bootstrap-Server).

    ``security_mode`` RPK or CERTIFICATE (coaps:// only; see .dtls_pki) takes ``identity`` as the
    client's certificate or raw public key (/0/x/3), ``key`` as its private key (/0/x/5) and
    ``server_certificate`` as the server's certificate, CA or public key (/0/x/4).

    ``coaps+tcp://`` is TLS (RFC 8323) that checks the server's certificate against
    ``server_certificate`` (PEM or DER; empty: the system's trust store), kept as the Server Public Key.
    """
    if not uri.startswith(("coap://", "coaps://", "coap+tcp://", "coaps+tcp://")):
        raise ValueError(f"server URI {uri!r} is not coap://, coaps://, coap+tcp:// or coaps+tcp://")
    secure = uri.startswith("coaps://")
    pki = security_mode in (SecurityMode.RPK, SecurityMode.CERTIFICATE)
    if pki and not (secure and key):
        raise ValueError("raw public key and certificate modes need a coaps:// URI and a private key")
    if secure and not (identity and key):
        raise ValueError("a coaps:// server needs a PSK identity and key")
    store.add_object(0)
    store.add_object(1)
    for iid in store.instance_ids(0):
        inst = store.instance(0, iid)
        if inst is not None and bool(inst.values.get(1, False)) == bootstrap:
            old_ssid = inst.values.get(10)
            store.remove_instance(0, iid)
            for sid in store.instance_ids(1):
                server = store.instance(1, sid)
                if server is not None and server.values.get(0) == old_ssid and not bootstrap:
                    store.remove_instance(1, sid)
    tls = uri.startswith("coaps+tcp://")
    values = {
        0: uri,
        1: bootstrap,
        2: SecurityMode.PSK if secure else SecurityMode.CERTIFICATE if tls else SecurityMode.NO_SEC,
        3: identity if secure else b"",
        4: server_certificate if tls or pki else b"",
        5: key if secure else b"",
    }
    if pki:
        values[2] = security_mode
        values[15] = certificate_usage
    if not bootstrap:
        values[10] = short_server_id
    store.add_instance(0, None, values)
    if not bootstrap:
        # /1/x/6 true: notifications stored while offline (queue mode; the spec's default); /1/x/23
        # false: Send allowed (a Server instance without it mutes Send, LwM2M 1.1 Appendix E.2)
        store.add_instance(1, None, {0: short_server_id, 1: lifetime, 6: True, 7: binding, 23: False})


def clear_accounts(store: ObjectStore) -> list[LwM2MPath]:
    """Remove every LwM2M Server account (before a fallback bootstrap writes new ones)."""
    removed = []
    for iid in store.instance_ids(1):
        store.remove_instance(1, iid)
        removed.append(LwM2MPath(1, iid))
    for iid in store.instance_ids(0):
        inst = store.instance(0, iid)
        if inst is not None and not inst.values.get(1, False):
            store.remove_instance(0, iid)
            removed.append(LwM2MPath(0, iid))
    return removed
