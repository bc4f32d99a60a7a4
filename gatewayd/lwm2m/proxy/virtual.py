"""What every virtual client shares: its object store with the server account, Device (3) and
Connectivity Monitoring (4), and the reachability it reports there.

A device that stops answering shows as Error Code 7 (IP connectivity failure) in /3/0/11 and Link
Quality 0 in /4/0/3; once it answers again the error code returns to 0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from ..bootstrap import factory_bootstrap
from ..definitions import ObjectRegistry
from ..paths import LwM2MPath
from ..store import ObjectStore

#: Network Bearer (/4/0/0) value for IEEE 802.15.4, the radio under Thread
BEARER_802_15_4 = 23
ERROR_NONE = 0
ERROR_IP_CONNECTIVITY = 7
LINK_QUALITY = LwM2MPath(4, 0, 3)
ERROR_CODE = LwM2MPath(3, 0, 11)


@dataclass(frozen=True)
class UpstreamAccount:
    """The LwM2M server a virtual client registers with; the PSK stays out of repr()."""

    uri: str
    identity: str = ""
    key: bytes = field(default=b"", repr=False)
    lifetime: int = 300
    #: a raw public key or certificate account instead of the PSK (factory_bootstrap arguments, see
    #: .dtls_pki.account_from_config): the gateway's, shared by its virtual clients, or a device's own
    pki: dict[str, Any] = field(default_factory=dict, repr=False, hash=False)


#: What the per-endpoint key derivation mixes in before the endpoint name (change it and every key changes)
ENDPOINT_PSK_LABEL = b"gatewayd endpoint PSK v1:"


def endpoint_account(account: UpstreamAccount, endpoint: str) -> UpstreamAccount:
    """``account`` with PSK identity ``endpoint`` and a key of its own, derived from ``account``'s key.

    Why: a server such as Leshan binds each PSK identity to one endpoint, so clients that appear on their
    own (Thread nodes) cannot share the gateway's. The key is HMAC-SHA256(server key, label + endpoint),
    first 16 bytes: stable across restarts, different per endpoint, and computable by whoever holds the
    server key (``gatewayctl lwm2m psk EP --show-secrets`` prints it for the server's security list).
    """
    key = hmac.new(account.key, ENDPOINT_PSK_LABEL + endpoint.encode(), hashlib.sha256).digest()[:16]
    return dataclasses.replace(account, identity=endpoint, key=key)


def virtual_store(registry: ObjectRegistry, account: UpstreamAccount, *, manufacturer: str, model: str,
                  serial: str = "") -> ObjectStore:
    """A store with the server account, Device and Connectivity Monitoring instances."""
    store = ObjectStore(registry)
    credentials = {"identity": account.identity.encode(), "key": account.key} | account.pki
    factory_bootstrap(store, account.uri, **credentials, lifetime=account.lifetime)
    device: dict[int, Any] = {0: manufacturer, 1: model, 11: {0: ERROR_NONE}, 16: "U"}
    if serial:
        device[2] = serial
    store.add_instance(3, 0, device)
    store.add_instance(4, 0, {0: BEARER_802_15_4, 1: {0: BEARER_802_15_4}, 2: 0, 3: 0, 4: {}})
    return store


class Reachability:
    """Whether the device answers, mirrored into /3/0/11 and /4/0/3 of its store."""

    def __init__(self, store: ObjectStore, reachable_quality: int = 100) -> None:
        self.store = store
        self.reachable: bool | None = None
        self.last_contact: float | None = None  # wall clock of the last answer
        self.reachable_quality = reachable_quality

    def answered(self) -> None:
        self.last_contact = time.time()
        if self.reachable is not True:
            self.reachable = True
            self.store.set(ERROR_CODE, {0: ERROR_NONE})
            self.store.set(LINK_QUALITY, self.reachable_quality)

    def silent(self) -> None:
        if self.reachable is not False:
            self.reachable = False
            self.store.set(ERROR_CODE, {0: ERROR_IP_CONNECTIVITY})
            self.store.set(LINK_QUALITY, 0)

    def info(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "last_contact": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.last_contact))
            if self.last_contact else "",
            "last_contact_ago": round(time.time() - self.last_contact, 1) if self.last_contact else None,
        }
