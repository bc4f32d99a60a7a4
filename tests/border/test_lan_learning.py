"""The border component reading the LAN (no sockets: RAs handed in as the listener would): what reaches
the routing manager, when it leaves, and NAT64 standing down for the LAN's translator."""

from __future__ import annotations

import asyncio
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest

from gatewayd.border import listener as listener_module
from gatewayd.border.component import BorderRouting
from gatewayd.border.infra import InfraLink, InfraState
from gatewayd.border.ra import Pref64, PrefixInformation, RouteInformation, RouterAdvertisement
from gatewayd.config.loader import parse
from gatewayd.nat64.component import Nat64Component
from gatewayd.thread.routing import LanLearned, LanRoute
from tests.thread.fake_view import FakeThreadView

ROUTER = IPv6Address("fe80::1")
LAN = IPv6Network("2001:db8:1:2::/64")
ROUTE = IPv6Network("2001:db8:99::/48")
NAT64 = IPv6Network("64:ff9b::/96")
OMR = IPv6Network("fd12:3456:789a:1::/64")
MESH_LOCAL = IPv6Network("fdde:ad00:beef::/64")


class FakeListener:
    def __init__(self, interface: str, on_ra: Any, **kw: Any) -> None:
        self.interface, self.on_ra, self.on_lost = interface, on_ra, kw.get("on_lost")
        self.counters: dict[str, int] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {}


def config(tmp_path, nat64: str = "auto", forwarding: bool = False) -> Any:
    return parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[border]\ninfra_interface = "lan0"\n'
                 f'forwarding = {str(forwarding).lower()}\nrouter_advertisements = false\ningress_filter = false\n'
                 f'[nat64]\ninfrastructure = "{nat64}"\n')


def home_router(lifetime: int = 1800) -> RouterAdvertisement:
    return RouterAdvertisement(router_lifetime=min(lifetime, 9000),
                               prefixes=(PrefixInformation(LAN, valid_lifetime=lifetime, preferred_lifetime=0),),
                               routes=(RouteInformation(ROUTE, lifetime), RouteInformation(OMR, lifetime)),
                               pref64=(Pref64(NAT64, lifetime - lifetime % 8),))


@pytest.fixture
async def border(tmp_path, monkeypatch, request):
    monkeypatch.setattr(listener_module, "RaListener", FakeListener)

    async def no_dns64(*_: Any) -> list[IPv6Address]:
        return []

    monkeypatch.setattr("gatewayd.border.component._resolve_aaaa", no_dns64)
    thread = FakeThreadView(omr_prefix=OMR, mesh_local_prefix=MESH_LOCAL)
    mode = getattr(request, "param", "auto")
    component = BorderRouting(config(tmp_path, mode), thread)
    await component.start()  # forwarding = false: this host's sysctls stay as they are
    component.config = config(tmp_path, mode, forwarding=True)  # as a forwarding border router decides
    try:
        yield component, thread
    finally:
        await component.stop()


async def test_what_a_lan_router_offers_reaches_the_routing_manager_without_the_mesh_prefixes(border):
    component, thread = border
    component._on_ra(ROUTER, home_router())
    assert thread.lan[-1] == LanLearned(routes=frozenset({LanRoute(LAN), LanRoute(ROUTE)}), default_route=True,
                                        nat64_prefix=NAT64)
    counters = await component._cmd_counters(_Request())
    assert counters["prefixes_learned"] == 4 and counters["nat64_infrastructure_adopted"] == 1
    rows = await component._cmd_lan(_Request())
    assert {r["prefix"] for r in rows} == {str(LAN), str(ROUTE), str(OMR), str(NAT64), "::/0"}
    assert component.status()["lan"]["nat64_prefix"] == str(NAT64)


async def test_a_withdrawal_and_an_expiry_take_the_routes_out_of_the_mesh(border):
    component, thread = border
    component._on_ra(ROUTER, home_router())
    component._on_ra(ROUTER, home_router(0))
    assert thread.lan[-1] == LanLearned()
    assert component.counters["prefixes_withdrawn"] == 4  # LAN, ROUTE, OMR (learnt, not published), ::/0
    component._on_ra(ROUTER, RouterAdvertisement(routes=(RouteInformation(ROUTE, 1),)))
    assert thread.lan[-1].routes == {LanRoute(ROUTE)}
    await asyncio.wait_for(_until(lambda: thread.lan[-1] == LanLearned()), 5)  # the 1 s lifetime's timer
    assert component.counters["prefixes_expired"] == 1


async def test_the_mesh_hears_when_the_lan_interface_goes(border):
    component, thread = border
    component._on_ra(ROUTER, home_router())
    component.listener.on_lost()
    assert thread.lan[-1] == LanLearned() and component.lan.state == InfraState()


@pytest.mark.parametrize("border", ["ignore"], indirect=True)
async def test_nat64_infrastructure_ignored(border):
    component, thread = border
    component._on_ra(ROUTER, home_router())
    assert thread.lan[-1].nat64_prefix is None and thread.lan[-1].default_route


async def test_a_routes_rfc4191_preference_reaches_the_routing_manager(border):
    from gatewayd.border.ra import RoutePreference
    from gatewayd.thread.routing import Preference

    component, thread = border
    component._on_ra(ROUTER, RouterAdvertisement(routes=(RouteInformation(ROUTE, 600, RoutePreference.LOW),)))
    assert thread.lan[-1].routes == {LanRoute(ROUTE, Preference.LOW)}


async def test_without_forwarding_the_mesh_is_offered_no_lan_routes(border, tmp_path):
    component, thread = border
    component.config = config(tmp_path, forwarding=False)
    component._on_ra(ROUTER, home_router())
    assert thread.lan[-1] == LanLearned(nat64_prefix=NAT64)


async def test_stop_withdraws_what_was_learned(tmp_path, border):
    component, thread = border
    component._on_ra(ROUTER, home_router())
    await component.stop()
    assert thread.lan[-1] == LanLearned()


class FakeRunner:
    stopped = False

    async def stop(self) -> None:
        self.stopped = True

    def status(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(("mode", "runs_at_start", "runs_with_lan_nat64"),
                         [("auto", True, False), ("ignore", True, True), ("only", False, False)])
async def test_our_translator_follows_the_lans(tmp_path, mode: str, runs_at_start: bool, runs_with_lan_nat64: bool):
    link = InfraLink()
    nat64 = Nat64Component(config(tmp_path, mode), FakeThreadView(interface="wpan0"), link)

    async def bring_up() -> None:
        nat64.runner = FakeRunner()

    nat64._bring_up = bring_up  # type: ignore[method-assign]  # routes and the TUN need root
    await nat64.start()
    try:
        assert (nat64.runner is not None) == runs_at_start
        link.update(InfraState(nat64_prefix=NAT64))
        await _until(lambda: (nat64.runner is not None) == runs_with_lan_nat64)
        if not runs_with_lan_nat64:
            assert nat64.status()["infrastructure"] == str(NAT64)
            assert nat64.status_line() == "NAT64 by the LAN"
        link.update(InfraState())
        await _until(lambda: (nat64.runner is not None) == (mode != "only"))
    finally:
        await nat64.stop()


class _Request:
    def no_more_args(self) -> None:
        pass


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(("mode", "expected"), [("auto", NAT64), ("only", NAT64),
                                                 ("ignore", IPv6Network("2001:db8:6464::/96"))])
def test_dns64_synthesises_in_the_prefix_the_mesh_is_given(tmp_path, mode: str, expected: IPv6Network):
    from gatewayd.dns64.component import Dns64Component

    link = InfraLink()
    cfg = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[nat64]\nprefix = "2001:db8:6464::/96"\n'
                f'infrastructure = "{mode}"\n')
    dns64 = Dns64Component(cfg, FakeThreadView(), lan=link)
    assert dns64.dns64_config().prefix == IPv6Network("2001:db8:6464::/96")
    link.update(InfraState(nat64_prefix=NAT64))
    assert dns64.dns64_config().prefix == expected


async def test_border_counters_are_metrics(border):
    from prometheus_client.parser import text_string_to_metric_families

    from gatewayd.rest.metrics import render

    component, _ = border
    component._on_ra(ROUTER, home_router())
    reading = await component._cmd_counters(_Request())
    reading["ingress_dropped"] = {"omr_source": 3}  # the nft counters, as the filter reports them
    samples = {(s.name, tuple(s.labels.items())): s.value for f in text_string_to_metric_families(
        render({"border": reading}).decode()) for s in f.samples}
    assert samples[("gatewayd_border_prefixes_learned_total", ())] == 4
    assert samples[("gatewayd_border_nat64_infrastructure_adopted_total", ())] == 1
    assert samples[("gatewayd_border_ingress_dropped_packets_total", (("reason", "omr_source"),))] == 3


SYNTHESISED = [IPv6Address("64:ff9b::c000:aa"), IPv6Address("64:ff9b::c000:ab")]  # ipv4only.arpa via a DNS64


@pytest.mark.parametrize(("listen", "nameserver", "own"), [
    ("", "fd11:22::53", True),  # the mesh DNS64 address, as `dns config` gives it to nodes
    ("", "2001:db8:1:2::1", False),  # the LAN's resolver
    ('"::"', "::1", True),  # DNS64 on every address, the resolver on loopback
    ('"127.0.0.1"', "127.0.0.1", True),
])
async def test_rfc7050_through_our_own_dns64_is_not_taken_for_the_lans(tmp_path, monkeypatch, caplog, listen,
                                                                        nameserver, own):
    """A Pi whose /etc/resolv.conf names gatewayd's own DNS64 gets our translator's prefix back for
    ipv4only.arpa: taken as the LAN's NAT64, it would switch our translator off and leave the mesh with none."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"# generated\nsearch lan\nnameserver {nameserver}\n")
    monkeypatch.setattr("gatewayd.border.component.RESOLV_CONF", str(resolv))
    monkeypatch.setattr(listener_module, "RaListener", FakeListener)
    asked: list[str] = []

    async def dns64(name: str, _timeout: float) -> list[IPv6Address]:
        asked.append(name)
        return SYNTHESISED

    monkeypatch.setattr("gatewayd.border.component._resolve_aaaa", dns64)
    thread = FakeThreadView(omr_prefix=OMR, mesh_local_prefix=MESH_LOCAL, dns_address=IPv6Address("fd11:22::53"))
    cfg = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[border]\ninfra_interface = "lan0"\nforwarding = false\n'
                f'router_advertisements = false\ningress_filter = false\n[dns64]\nlisten = [{listen}]\n')
    component = BorderRouting(cfg, thread)
    await component.start()
    try:
        counters = component.counters
        await asyncio.wait_for(_until(lambda: counters["dns64_discovery_self"] or asked), 5)
        rows = await component._cmd_lan(_Request())
        if own:
            assert counters["dns64_discovery_self"] == 1 and not asked, "our own DNS64 is not asked"
            assert not any(r["router"] == "rfc7050" for r in rows)
            assert not thread.lan or thread.lan[-1].nat64_prefix is None, "our translator stays on"
            assert f"names gatewayd's own DNS64 ({nameserver})" in caplog.text
        else:
            assert asked == ["ipv4only.arpa"] and counters["dns64_discovery_self"] == 0
            assert thread.lan[-1].nat64_prefix == NAT64
            assert [r["prefix"] for r in rows if r["router"] == "rfc7050"] == [str(NAT64)]
    finally:
        await component.stop()
