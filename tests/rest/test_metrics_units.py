"""``/metrics`` without a daemon: gatewayctl's shapes in, Prometheus families out; the route on and off; the
readings run the gatewayctl commands as a non-root user."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from gatewayd.component import Command, Component
from gatewayd.config import parse
from gatewayd.control import CommandError, Request
from gatewayd.rest.api import RestApi
from gatewayd.rest.metrics import render
from gatewayd.rest.node import Node
from gatewayd.rest.readings import Readings
from gatewayd.rest.recent import RecentProblems

READING: dict[str, Any] = {
    "ncp": {"ncp_state": "ready", "version": "OPENTHREAD/sim"},
    "thread": {"role": "router", "children": 2, "network_name": "n", "channel": 15},
    "counters": {"datapath": {"to_mesh": 5, "from_mesh": 7, "mle_dropped": 0, "malformed_dropped": 1,
                              "write_errors": 0, "down_dropped": 0},
                 "ncp_link": {"frames_in": 10, "frames_out": 9},
                 "ncp_ip": {"tx_success": 3, "rx_failure": 1},
                 "recoveries": 1, "held_for_recovery": {"packets": 4, "dropped": 0, "holding": 0,
                                                        "mpl_sequence_skipped": 0}},
    "nat64": {"backend": "builtin", "sessions": 2, "bib_entries": 2, "tun_rx_packets": 8, "tun_tx_packets": 8,
              "write_errors": 0, "fast_path": "native", "fast_path_packets": 3,
              "translated": {"6to4": {"udp": 4, "icmp": 1}, "4to6": {"udp": 3}}, "dropped": {"no_session": 2},
              "icmp_errors_sent": {}, "sessions_created": 3, "sessions_expired": 1},
    "dns64": {"queries": 12, "resolver_synthesized": 4, "cache_entries": 3, "pending": 0},
    "lwm2m_status": {"clients": 2, "registered": 1, "failed": 1},
    "lwm2m": [{"endpoint": "gw", "state": "registered", "registers": 1, "updates": 4, "errors": 0,
               "queue_dropped": 2, "queue_discarded": 3, "pings": 5},
              {"endpoint": "node-1", "state": "failed", "registers": 0, "updates": 0, "errors": 0}],
}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_families_follow_prometheus_conventions():
    text = render(READING).decode()
    s = samples(text)
    assert s[("gatewayd_thread_role", (("role", "router"),))] == 1
    assert s[("gatewayd_thread_role", (("role", "leader"),))] == 0
    assert s[("gatewayd_thread_children", ())] == 2 and s[("gatewayd_thread_channel", ())] == 15
    assert s[("gatewayd_datapath_to_mesh_packets_total", ())] == 5
    assert s[("gatewayd_datapath_write_errors_total", ())] == 0
    assert s[("gatewayd_ncp_frames_in_total", ())] == 10
    assert s[("gatewayd_ncp_ip_packets_total", (("direction", "tx"), ("result", "success")))] == 3
    assert s[("gatewayd_thread_recoveries_total", ())] == 1
    assert s[("gatewayd_nat64_sessions", ())] == 2
    assert s[("gatewayd_nat64_translated_packets_total", (("direction", "6to4"), ("protocol", "udp")))] == 4
    assert s[("gatewayd_nat64_dropped_packets_total", (("reason", "no_session"),))] == 2
    assert s[("gatewayd_nat64_info", (("backend", "builtin"), ("fast_path", "native")))] == 1
    assert s[("gatewayd_dns64_queries_total", ())] == 12 and s[("gatewayd_dns64_cache_entries", ())] == 3
    assert s[("gatewayd_lwm2m_clients", (("state", "failed"),))] == 1
    assert s[("gatewayd_lwm2m_clients", (("state", "registering"),))] == 0
    assert s[("gatewayd_lwm2m_client_state", (("endpoint", "gw"), ("state", "registered")))] == 1
    assert s[("gatewayd_lwm2m_registrations_total", (("endpoint", "gw"),))] == 1
    assert s[("gatewayd_lwm2m_queue_dropped_total", (("endpoint", "gw"),))] == 2
    assert s[("gatewayd_lwm2m_queue_discarded_total", (("endpoint", "gw"),))] == 3
    assert s[("gatewayd_lwm2m_tcp_pings_total", (("endpoint", "gw"),))] == 5
    assert s[("gatewayd_ncp_info", (("state", "ready"), ("version", "OPENTHREAD/sim")))] == 1
    counters = [f for f in text_string_to_metric_families(text) if f.type == "counter"]
    assert counters and all(s.name.endswith("_total") for f in counters for s in f.samples)
    assert all(name.startswith("gatewayd_") for name, _ in s)


def test_nothing_configured_shows_nothing_but_is_valid():
    assert samples(render({}).decode()) == {}


class Fake(Component):
    name = "nat64"

    def __init__(self) -> None:
        self.seen: list[Request] = []

    def status(self) -> dict[str, Any]:
        return {"sessions": 1}

    def commands(self) -> list[Command]:
        async def counters(request: Request) -> dict[str, Any]:
            self.seen.append(request)
            request.no_more_args()
            return {"backend": "tayga", "restarts": 2}

        async def broken(request: Request) -> dict[str, Any]:
            raise CommandError("not running")

        return [Command("nat64 counters", counters, ""), Command("dns64 counters", broken, "")]


async def test_readings_run_the_commands_unprivileged():
    fake = Fake()
    readings = Readings({"nat64": fake, "dns64": fake})
    reading = await readings.metrics()
    assert reading["nat64"] == {"backend": "tayga", "restarts": 2} and not fake.seen[0].is_root
    assert reading["dns64"] is None and reading["thread"] is None and reading["lwm2m"] is None
    assert samples(render(reading).decode())[("gatewayd_nat64_restarts_total", ())] == 2


async def test_the_route_follows_the_metrics_key():
    config = parse("[rest]\nenabled = true\n")
    assert config.rest.metrics, "on with the API unless turned off"
    readings = Readings({"nat64": Fake()})
    for enabled, want in ((True, 200), (False, 404)):
        api = RestApi(Node(None, None, "/nonexistent"), trusted=False, token=b"t", readings=readings,
                      metrics=enabled)
        async with TestClient(TestServer(api.application())) as client:
            response = await client.get("/metrics")
            assert response.status == want
            if enabled:
                assert response.headers["Content-Type"].startswith("text/plain; version=")
                assert "gatewayd_nat64_restarts_total 2.0" in await response.text()
            assert (await client.get("/node/dataset/active")).status == 401
    assert not parse("[rest]\nenabled = true\nmetrics = false\n").rest.metrics


def test_recent_problems_ring():
    ring = RecentProblems(size=3)
    log = logging.getLogger("gatewayd.lwm2m.test")
    log.warning("before: not attached")
    ring.attach()
    ring.attach()  # once only
    try:
        log.info("not a problem")
        for i in range(5):
            log.warning("problem %d", i)
        log.error("again")
        log.error("again")
        logging.getLogger("nat64.test").error("from the NAT64 library")
    finally:
        ring.detach()
    log.error("after: detached")
    rows = ring.rows()
    assert [(r["message"], r["count"]) for r in rows] == [("from the NAT64 library", 1), ("again", 2),
                                                          ("problem 4", 1)]
    assert rows[0]["component"] == "nat64" and rows[1]["component"] == "lwm2m" and rows[1]["level"] == "error"


async def test_each_components_state_is_an_enum_of_gauges():
    """gatewayctl status's state of every component: one series per state, 1 for the current one."""
    from gatewayd.component import State, Supervisor

    class Starts(Component):
        name = "nat64"

    class Fails(Component):
        name = "dns64"

        async def start(self) -> None:
            raise RuntimeError("no upstream")

    config = parse("")
    supervisor = Supervisor()
    built = {"nat64": Starts(config), "dns64": Fails(config)}
    for component in built.values():
        supervisor.add(component)
    await supervisor.start_all()
    try:
        reading = await Readings(built).metrics()
        assert reading["components"] == {"nat64": "running", "dns64": "failed"}
        s = samples(render(reading).decode())
        assert s[("gatewayd_component_state", (("component", "nat64"), ("state", "running")))] == 1
        assert s[("gatewayd_component_state", (("component", "dns64"), ("state", "failed")))] == 1
        assert s[("gatewayd_component_state", (("component", "dns64"), ("state", "running")))] == 0
        for name in built:
            assert sum(s[("gatewayd_component_state", (("component", name), ("state", st.value)))]
                       for st in State) == 1
    finally:
        await supervisor.stop_all(1.0)


def test_an_unknown_component_state_is_listed_too():
    s = samples(render({"components": {"rest": "paused"}}).decode())
    assert s[("gatewayd_component_state", (("component", "rest"), ("state", "paused")))] == 1
    assert s[("gatewayd_component_state", (("component", "rest"), ("state", "stopped")))] == 0
