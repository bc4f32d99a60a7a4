"""Ingress filtering on the infrastructure interface, with nftables (as the NAT64 masquerade is done).

Packets arriving from the LAN with a mesh-local or OMR source are spoofed (those addresses live only in
the mesh) and LAN packets to a mesh-local address try to reach what only the mesh may (the mesh-local
prefix is never routed off the mesh, Thread 1.3 §5.2): all are dropped, each kind counted by a named
nftables counter. The rules live in a table of their own, written in one `nft -f` transaction that
replaces the whole table (so a change of prefixes never leaves a moment without rules, and a table a
crashed daemon left behind is replaced), and the table is deleted on stop.

`ruleset` is pure (tested without root); `install`, `remove` and `counters` run `nft`, blocking: call them
in a thread.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from ipaddress import IPv6Network

TABLE = "gatewayd_ingress"
FAMILY = "inet"

#: Counter name → what it counts.
COUNTERS = {
    "mesh_local_source": "LAN packets with a mesh-local source",
    "omr_source": "LAN packets with an OMR source",
    "to_mesh_local": "LAN packets to a mesh-local address",
}


class FirewallError(OSError):
    """nft refused the ruleset or is missing."""


@dataclass(frozen=True)
class IngressRules:
    """What is filtered on `interface`: sources in `mesh_local`/`omr`, destinations in `mesh_local`."""

    interface: str
    mesh_local: tuple[IPv6Network, ...] = ()
    omr: tuple[IPv6Network, ...] = ()


#: Named sets holding the prefixes, so a change of prefixes is a set update that keeps the counters.
SETS = ("mesh_local", "omr")


def _elements(rules: IngressRules) -> str:
    """Flush both sets and fill them again (part of one transaction)."""
    out = ""
    for name, prefixes in (("mesh_local", rules.mesh_local), ("omr", rules.omr)):
        out += f"flush set {FAMILY} {TABLE} {name}\n"
        if prefixes:
            out += f"add element {FAMILY} {TABLE} {name} {{ {', '.join(str(p) for p in sorted(prefixes))} }}\n"
    return out


def ruleset(rules: IngressRules) -> str:
    """One atomic `nft -f` script: create the table (so the delete cannot fail), delete it, write it anew."""
    if not rules.interface or '"' in rules.interface or "\\" in rules.interface:
        raise FirewallError(f"bad interface name {rules.interface!r}")
    iif = f'iifname "{rules.interface}"'
    counters = "".join(f"    counter {name} {{ }}\n" for name in COUNTERS)
    sets = "".join(f"    set {name} {{ type ipv6_addr; flags interval; }}\n" for name in SETS)
    return (
        f"table {FAMILY} {TABLE}\n"
        f"delete table {FAMILY} {TABLE}\n"
        f"table {FAMILY} {TABLE} {{\n"
        f"{counters}{sets}"
        "    chain ingress {\n"
        # prerouting at raw priority: before conntrack, for packets routed on and for the host itself
        "        type filter hook prerouting priority raw; policy accept;\n"
        f"        {iif} ip6 saddr @mesh_local counter name mesh_local_source drop\n"
        f"        {iif} ip6 saddr @omr counter name omr_source drop\n"
        f"        {iif} ip6 daddr @mesh_local counter name to_mesh_local drop\n"
        "    }\n"
        "}\n"
        + _elements(rules)
    )


def update_script(rules: IngressRules) -> str:
    """One atomic `nft -f` script giving the installed table new prefixes; its counters keep counting."""
    return _elements(rules)


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["nft", *args], input=script, text=True, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FirewallError(f"cannot run nft: {exc}") from None


def install(rules: IngressRules) -> None:
    """Replace the table with `rules` in one transaction; counters start again from 0."""
    _apply(ruleset(rules))


def update(rules: IngressRules) -> None:
    """New prefixes for the installed table, in one transaction; the whole table again if it is gone."""
    if not installed():
        install(rules)
        return
    _apply(update_script(rules))


def _apply(script: str) -> None:
    result = _nft("-f", "-", script=script)
    if result.returncode != 0:
        raise FirewallError(f"nft refused the ingress rules: {result.stderr.strip()}")


def remove() -> None:
    """Delete the table (missing is fine)."""
    _nft("delete", "table", FAMILY, TABLE)


def installed() -> bool:
    return _nft("list", "table", FAMILY, TABLE).returncode == 0


def counters() -> dict[str, dict[str, int]] | None:
    """{counter: {"packets": n, "bytes": n}}, or None when the table is not there."""
    result = _nft("-j", "list", "counters", "table", FAMILY, TABLE)
    if result.returncode != 0:
        return None
    out: dict[str, dict[str, int]] = {}
    try:
        for item in json.loads(result.stdout).get("nftables", []):
            counter = item.get("counter")
            if isinstance(counter, dict) and counter.get("table") == TABLE:
                out[str(counter["name"])] = {"packets": int(counter.get("packets", 0)),
                                             "bytes": int(counter.get("bytes", 0))}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return out
