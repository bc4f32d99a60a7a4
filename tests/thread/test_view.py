"""The Thread view: ThreadNetwork tells its dependents what changed, and they follow it without polling."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv6Network

import pytest

from gatewayd.border import advertiser as advertiser_module
from gatewayd.border.component import BorderRouting
from gatewayd.components import thread_view
from gatewayd.config.loader import parse
from gatewayd.nat64.component import Nat64Component
from gatewayd.ncp.component import NcpComponent
from gatewayd.thread.network import ThreadNetwork
from gatewayd.thread.view import Subscribers
from ncp.client import PropertyChanged
from ncp.meshcop import Dataset
from ncp.spinel import NetRole, Prop
from tests.thread.fake_view import FakeThreadView


def network(tmp_path) -> ThreadNetwork:
    config = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n')
    return ThreadNetwork(config, NcpComponent(config))


async def test_thread_network_notifies_when_what_the_view_shows_changes(tmp_path):
    thread = network(tmp_path)
    assert thread_view({"thread": thread}) is thread and thread_view({}) is None
    assert thread.interface is None and thread.addresses == frozenset() and not thread.attached
    seen: list[tuple[int | None, bool]] = []
    unsubscribe = thread.on_change(lambda: seen.append((thread.role, thread.attached)))

    thread._set_role(NetRole.LEADER)
    assert seen == [(NetRole.LEADER, True)]
    thread._on_event(PropertyChanged(Prop.THREAD_CHILD_TABLE, []))  # status line only: the view is unchanged
    thread.changed()
    assert len(seen) == 1

    thread.dataset = Dataset.generate(name="view-test")
    thread.changed()
    assert len(seen) == 2 and thread.dataset_summary is not None
    assert thread.dataset_summary.network_name == "view-test"
    assert thread.mesh_local_prefix == thread.dataset.mesh_local_prefix

    unsubscribe()
    thread._set_role(NetRole.DETACHED)
    assert len(seen) == 2
    await asyncio.sleep(0)  # the publish the leader role spawned (nothing to publish: never started)


def test_a_failing_subscriber_does_not_keep_the_others_from_hearing(caplog):
    subs, heard = Subscribers(), []
    subs.add(lambda: 1 / 0)
    subs.add(lambda: heard.append(1))
    subs.notify()
    assert heard == [1] and "subscriber failed" in caplog.text


async def test_nat64_starts_translating_when_the_thread_interface_appears(tmp_path):
    thread = FakeThreadView()
    nat64 = Nat64Component(parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[nat64]\nenabled = true\n'), thread)
    brought_up = asyncio.Event()

    async def bring_up() -> None:
        brought_up.set()

    nat64._bring_up = bring_up  # type: ignore[method-assign]  # the routes and the TUN need root
    await nat64.start()
    try:
        assert nat64.status_line() == "NAT64 waiting for the mesh"
        await asyncio.sleep(0)
        assert len(thread.subscribers) == 1
        thread.update(role=NetRole.DETACHED)  # not the interface yet
        await asyncio.sleep(0.01)
        assert not brought_up.is_set()
        thread.update(interface="wpan0", interface_index=7)
        await asyncio.wait_for(brought_up.wait(), 1)
        await asyncio.sleep(0)
        assert nat64._waiting is None and len(thread.subscribers) == 0
    finally:
        await nat64.stop()


async def test_nat64_stopped_while_waiting_ends_its_subscription(tmp_path):
    thread = FakeThreadView()
    nat64 = Nat64Component(parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[nat64]\nenabled = true\n'), thread)
    await nat64.start()
    await asyncio.sleep(0)
    assert len(thread.subscribers) == 1
    await nat64.stop()
    assert len(thread.subscribers) == 0 and nat64._waiting is None


class FakeAdvertiser:
    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.updates: list[list[IPv6Network]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def update(self, prefixes: list[IPv6Network]) -> None:
        self.updates.append(list(prefixes))


async def test_border_advertises_the_omr_prefix_as_the_view_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(advertiser_module, "Advertiser", FakeAdvertiser)
    config = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[border]\ninfra_interface = "lan0"\nforwarding = false\n'
                    "lan_routes = false\ningress_filter = false\n")
    first, second = IPv6Network("fd00:1:2:3::/64"), IPv6Network("fd00:4:5:6::/64")
    thread = FakeThreadView()
    border = BorderRouting(config, thread)
    await border.start()
    ra = border.advertiser
    assert isinstance(ra, FakeAdvertiser) and ra.updates == [], "no prefix yet: nothing advertised"
    thread.update(omr_prefix=first)
    thread.update(role=NetRole.LEADER)  # not the prefix: no new RA
    thread.update(omr_prefix=second)
    assert ra.updates == [[first], [second]]
    await border.stop()
    assert len(thread.subscribers) == 0
    thread.update(omr_prefix=first)
    assert ra.updates == [[first], [second]]


@pytest.mark.parametrize("omr", [None, "fd00:7::/64"])
async def test_border_advertises_a_prefix_present_at_start(tmp_path, monkeypatch, omr):
    monkeypatch.setattr(advertiser_module, "Advertiser", FakeAdvertiser)
    config = parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[border]\ninfra_interface = "lan0"\nforwarding = false\n'
                    "lan_routes = false\ningress_filter = false\n")
    border = BorderRouting(config, FakeThreadView(omr_prefix=IPv6Network(omr) if omr else None))
    await border.start()
    assert isinstance(border.advertiser, FakeAdvertiser)
    assert border.advertiser.updates == ([[IPv6Network(omr)]] if omr else [])
    await border.stop()


async def test_dns64_retries_a_failed_rebind_without_another_change(tmp_path, caplog):
    from ipaddress import IPv4Interface

    from gatewayd.dns64.component import Dns64Component

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = parse(f'[nat64]\nprefix = "fd64:64::/96"\n[dns64]\nupstream = ["127.0.0.1"]\nport = {port}\n')
    thread = FakeThreadView()
    dns64 = Dns64Component(cfg, thread, retry_interval=0.05)
    await dns64.start()
    try:
        thread.update(addresses={IPv4Interface("192.0.2.1/24")})  # not this host's: the bind fails
        for _ in range(40):
            if "could not follow" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "could not follow" in caplog.text
        thread.set(addresses={IPv4Interface("127.0.0.6/8")})  # no event this time: the retry finds it
        for _ in range(40):
            if dns64.server.addresses == [("127.0.0.6", port)]:
                break
            await asyncio.sleep(0.05)
        assert dns64.server.addresses == [("127.0.0.6", port)]
    finally:
        await dns64.stop()
