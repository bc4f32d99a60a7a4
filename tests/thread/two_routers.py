"""Two gatewayd border routers on one mesh, each in a namespace of its own, on one LAN with a host.

    mesh ns: the two NCPs (their radios hear each other)
        ▲ pty (forkpty: the NCP program and its arguments, from the daemon's [ncp] url)   ▲ pty
    brA ns: gatewayd A ── infra0 ─┐                           ┌─ infra0 ── gatewayd B :brB ns
                                  └── lan ns: bridge lanbr ───┘  (LAN host fd00:1a4::2)

Shared by the real-NCP test (tests/interop/test_two_border_routers.py: ot-ncp-ftd on OpenThread's
simulated radio) and the simulator's (tests/thread/test_two_border_routers_sim.py: ``--radio``).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProcess, wait_until

LAN_HOST = "fd00:1a4::2"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class TwoRouters:
    def __init__(self, tmp: Path, prefix: str = "gw2") -> None:
        tag = secrets.token_hex(3)
        self.tmp = tmp
        self.radio, self.lan = f"{prefix}radio-{tag}", f"{prefix}lan-{tag}"
        self.brs = {"A": f"{prefix}brA-{tag}", "B": f"{prefix}brB-{tag}"}
        self.daemons: dict[str, DaemonProcess] = {}

    def run(self, ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=check, capture_output=True, text=True,
                              timeout=30)

    def setup(self) -> None:
        for ns in (self.radio, self.lan, *self.brs.values()):
            ip("netns", "add", ns)
            self.run(ns, "ip", "link", "set", "lo", "up")
        self.run(self.lan, "ip", "link", "add", "lanbr", "type", "bridge")
        self.run(self.lan, "sysctl", "-qw", "net.ipv6.conf.lanbr.accept_dad=0")
        self.run(self.lan, "sysctl", "-qw", "net.ipv6.conf.lanbr.accept_ra_rt_info_max_plen=64")
        for name, ns in self.brs.items():
            ip("link", "add", "infra0", "netns", ns, "type", "veth", "peer", "name", f"eth{name}", "netns", self.lan)
            self.run(self.lan, "ip", "link", "set", f"eth{name}", "master", "lanbr", "up")
            self.run(ns, "sysctl", "-qw", "net.ipv6.conf.infra0.accept_dad=0")
            self.run(ns, "ip", "link", "set", "infra0", "up")
            self.run(ns, "ip", "-6", "addr", "add", f"fd00:1a4::{name.lower()}/64", "dev", "infra0", "nodad")
            # An IPv6 default router on the LAN: each border router offers the mesh ::/0 through itself.
            self.run(ns, "ip", "-6", "route", "add", "default", "via", LAN_HOST, "dev", "infra0")
        self.run(self.lan, "ip", "link", "set", "lanbr", "up")
        self.run(self.lan, "ip", "-6", "addr", "add", f"{LAN_HOST}/64", "dev", "lanbr", "nodad")

    def start_daemon(self, name: str, url: str, dataset: str = "") -> DaemonProcess:
        """gatewayd ``name`` in its namespace, its NCP spawned from ``url``, joining ``dataset`` if given."""
        toml = (f'[ncp]\nurl = "{url}"\n[border]\ninfra_interface = "infra0"\n'
                '[nat64]\nmasquerade = false\n[dns64]\nupstream = ["127.0.0.1"]\n')
        if dataset:
            toml += f'[thread]\ndataset = "{dataset}"\n'
        tmp = self.tmp / name
        tmp.mkdir(parents=True, exist_ok=True)
        daemon = DaemonProcess(tmp, toml, netns=self.brs[name])
        self.daemons[name] = daemon
        return daemon.start()

    def ctl(self, name: str, *words: str) -> Any:
        result = self.daemons[name].ctl("--json", *words, check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def role(self, name: str) -> str | None:
        state = self.ctl(name, "state")
        return state.get("role") if state else None

    def close(self) -> None:
        for daemon in self.daemons.values():
            daemon.stop()
        for ns in (self.radio, self.lan, *self.brs.values()):
            ip("netns", "del", ns, check=False)


def published(netdata: dict) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(OMR prefixes, NAT64 routes) in the leader's network data, each as (prefix, publishing RLOC16)."""
    omr = {(p["prefix"], p["rloc16"]) for p in netdata["prefixes"]
           if "a" in p["flags"] and "o" in p["flags"] and p.get("registered", True)}
    nat64 = {(r["prefix"], r["rloc16"]) for r in netdata["routes"] if r["nat64"] and r.get("registered", True)}
    return omr, nat64


def converged(two: TwoRouters, names: tuple[str, ...]) -> dict[str, dict] | None:
    """Each router's netdata once every one of them sees exactly one OMR prefix and one NAT64 route."""
    views = {name: two.ctl(name, "netdata", "show") for name in names}
    if not all(views.values()):
        return None
    for view in views.values():
        omr, nat64 = published(view)
        if len(omr) != 1 or len(nat64) != 1:
            return None
    return views


def only_published(two: TwoRouters, name: str, omr: str) -> dict | None:
    """``name``'s netdata once ``omr`` is the one OMR prefix in it."""
    view = two.ctl(name, "netdata", "show")
    return view if view and {p for p, _ in published(view)[0]} == {omr} else None


@dataclass
class Agreement:
    views: dict[str, dict]  # each router's `gatewayctl netdata show`
    ours: dict[str, ipaddress.IPv6Network]  # each router's own OMR prefix
    favoured: ipaddress.IPv6Network  # the one the mesh uses
    winner: str  # the router that publishes it
    loser: str


def agree(two: TwoRouters) -> Agreement:
    """Once A and B see one OMR prefix and one NAT64 route: one router published each, the other adopted
    it, and both use (and advertise) the favoured prefix."""
    views = wait_until(lambda: converged(two, ("A", "B")), 60, what="one OMR prefix and one NAT64 route")
    states = {name: two.ctl(name, "state") for name in ("A", "B")}
    ours = {name: ipaddress.IPv6Network(s["local_omr_prefix"]) for name, s in states.items()}
    (omr, _), = published(views["A"])[0]
    favoured = ipaddress.IPv6Network(omr)
    winner = next(name for name, prefix in ours.items() if prefix == favoured)
    loser = "B" if winner == "A" else "A"
    for name in ("A", "B"):
        (omr, _), = published(views[name])[0]
        assert omr == str(favoured), (name, views[name])
        assert states[name]["omr_prefix"] == str(favoured), "both use (and advertise) the favoured prefix"
    routing = {name: views[name]["routing"] for name in ("A", "B")}
    assert routing[winner]["omr"] == "published" and routing[loser]["omr"] == "adopted", routing
    assert [p["local"] for p in views[winner]["prefixes"] if p["prefix"] == str(favoured)] == [True]
    assert not any(p["local"] for p in views[loser]["prefixes"] if "a" in p["flags"]), views[loser]
    assert sorted(routing[n]["nat64"] for n in ("A", "B")) == ["adopted", "published"], routing
    return Agreement(views, ours, favoured, winner, loser)
