"""dnspython without ``importlib.metadata``: its optional-feature probe answered before it is first imported.

``dns._features`` (dnspython >= 2.4, imported by ``dns.name``) imports :mod:`importlib.metadata`, and with
it email, zipfile, csv and the like, to read the installed versions of the packages behind dnspython's
optional features (cryptography for DNSSEC, httpx for DoH, aioquic for DoQ, idna for IDNA 2008, trio,
wmi). Measured: 2.9 MB of resident memory, the largest part of what dnspython costs the daemon
(``benchmarks/idle.py``). DNS64 uses none of those features: names come off the wire, upstreams are
plain UDP and TCP, nothing is validated. So, when dnspython has that module and nothing imported it yet,
this registers in its place a module with the same ``have``/``force`` that answers False until forced
(what dnspython itself answers when the metadata cannot be read). Importing dnspython first, as a test
or another program may, keeps the real probe; nothing here changes then.
"""

from __future__ import annotations

import importlib.util
import sys
import types

NAME = "dns._features"


def _install() -> None:
    if NAME in sys.modules or "dns.name" in sys.modules:
        return  # the real probe ran already
    try:
        if importlib.util.find_spec(NAME) is None:  # imports the bare ``dns`` package, which is small
            return  # an older dnspython: it probes with try/import, which costs nothing
    except ImportError:
        return  # no dnspython: importing it says so
    features = types.ModuleType(NAME, "dnspython's optional features, all off unless forced (nat64.dns64).")
    cache: dict[str, bool] = {}

    def have(feature: str) -> bool:
        return cache.get(feature, False)

    def force(feature: str, enabled: bool) -> None:
        cache[feature] = enabled

    features.have = have  # type: ignore[attr-defined]
    features.force = force  # type: ignore[attr-defined]
    features._cache = cache  # type: ignore[attr-defined]
    sys.modules[NAME] = features
    sys.modules["dns"]._features = features  # type: ignore[attr-defined]  # as the import system would bind it


_install()
