"""``/metrics`` of gatewayd on the simulated NCP, parsed with prometheus_client's own parser: the families and
values gatewayctl shows."""

from __future__ import annotations

import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.rest.conftest import in_netns
from tests.thread.conftest import Topology

pytestmark = [pytest.mark.root, pytest.mark.slow]
PORT = 8081
NAT64 = '[nat64]\nuplink = "infra0"\n'  # the testbed has no IPv4 default route to find it by
LWM2M = '[lwm2m]\nenabled = true\n[lwm2m.server]\nuri = "coap://[::1]:5999"\n'  # no server: never registers


def ctl(gw, *words: str):
    return json.loads(gw.ctl("--json", *words).stdout)


def get(topo: Topology, path: str, headers: dict | None = None, port: int = PORT) -> tuple[int, str, str]:
    async def run():
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}{path}", headers=headers or {}) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()

    return in_netns(topo.br, run)


def scrape(topo: Topology, port: int = PORT) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, and the families' types checked against their names."""
    status, ctype, text = get(topo, "/metrics", port=port)
    assert status == 200 and ctype.startswith("text/plain; version="), (status, ctype)
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("gatewayd_"), family.name
        for s in family.samples:
            if family.type == "counter":
                assert s.name.endswith(("_total", "_created")), s.name
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_are_what_gatewayctl_shows(topo: Topology):
    gw = topo.start_daemon(f'[rest]\nenabled = true\nlisten = ["127.0.0.1:{PORT}"]\n' + NAT64 + LWM2M)
    wait_until(lambda: ctl(gw, "state")["role"] == "leader", timeout=20, what="leader")
    wait_until(lambda: "REST API on" in gw.output(), what="the REST API listening")
    wait_until(lambda: ctl(gw, "lwm2m", "clients"), what="the LwM2M gateway client")
    wait_until(lambda: gw.ctl("nat64", "counters", check=False).returncode == 0, timeout=20, what="NAT64")

    before = scrape(topo)
    state = ctl(gw, "state")
    counters = ctl(gw, "counters")
    nat64 = ctl(gw, "nat64", "counters")
    dns64 = ctl(gw, "dns64", "counters")
    clients = ctl(gw, "lwm2m", "clients")
    shown = {c["endpoint"]: ctl(gw, "lwm2m", "show", c["endpoint"]) for c in clients}
    after = scrape(topo)

    def value(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in before and key in after, f"{name}{labels} missing"
        return after[key]

    def counter(name: str, shown_value: int, **labels: str) -> None:
        """A counter may move between the scrapes and gatewayctl (its own NCP reads count), never backwards."""
        key = (name, tuple(sorted(labels.items())))
        assert key in before and key in after, f"{name}{labels} missing"
        assert before[key] <= shown_value <= after[key], (name, labels, before[key], shown_value, after[key])

    # Thread: role as an enum, children, channel
    assert value("gatewayd_thread_role", role="leader") == 1
    assert sum(v for (n, _), v in after.items() if n == "gatewayd_thread_role") == 1
    assert value("gatewayd_thread_children") == state["children"]
    assert value("gatewayd_thread_channel") == state["channel"]
    counter("gatewayd_thread_recoveries_total", counters["recoveries"])

    # the datapath and the NCP link (gatewayctl counters)
    assert counters["datapath"] and counters["ncp_link"]
    for key, v in counters["datapath"].items():
        unit = "" if key == "write_errors" else "_packets"
        counter(f"gatewayd_datapath_{key}{unit}_total", v)
    for key, v in counters["ncp_link"].items():
        counter(f"gatewayd_ncp_{key}_total", v)
    assert counters["ncp_link"]["frames_in"] > 0
    for key, v in counters.get("ncp_ip", {}).items():
        direction, _, result = key.partition("_")
        counter("gatewayd_ncp_ip_packets_total", v, direction=direction, result=result)
    ncp = ctl(gw, "status")["components"]["ncp"]
    assert value("gatewayd_ncp_info", state=ncp["ncp_state"], version=ncp["version"]) == 1

    # NAT64 (builtin, the default) and DNS64 (on by default)
    assert nat64["backend"] == "builtin"
    assert value("gatewayd_nat64_sessions") == nat64["sessions"]
    assert value("gatewayd_nat64_bib_entries") == nat64["bib_entries"]
    counter("gatewayd_nat64_sessions_created_total", nat64["sessions_created"])
    counter("gatewayd_nat64_tun_rx_packets_total", nat64["tun_rx_packets"])
    for direction in ("6to4", "4to6"):
        for proto, v in nat64["translated"][direction].items():
            counter("gatewayd_nat64_translated_packets_total", v, direction=direction, protocol=proto)
    for reason, v in nat64["dropped"].items():
        counter("gatewayd_nat64_dropped_packets_total", v, reason=reason)
    counter("gatewayd_dns64_queries_total", dns64["queries"])
    counter("gatewayd_dns64_resolver_synthesized_total", dns64["resolver_synthesized"])
    assert value("gatewayd_dns64_cache_entries") == dns64["cache_entries"]

    # LwM2M: clients per state, each client's state and its registration counters. With no server the
    # client keeps moving (registering → deregistered → registering after its backoff), so the states are
    # compared in a window where the two scrapes agree that none moved.
    def states(samples: dict) -> dict:
        return {k: v for k, v in samples.items() if k[0] in ("gatewayd_lwm2m_clients", "gatewayd_lwm2m_client_state")}

    for _ in range(20):
        if states(before) == states(after):
            break
        before = scrape(topo)
        clients = ctl(gw, "lwm2m", "clients")
        shown = {c["endpoint"]: ctl(gw, "lwm2m", "show", c["endpoint"]) for c in clients}
        after = scrape(topo)
    else:
        pytest.fail("the LwM2M client states moved in every window")
    for st in {c["state"] for c in clients}:
        assert value("gatewayd_lwm2m_clients", state=st) == sum(c["state"] == st for c in clients)
    assert value("gatewayd_lwm2m_clients", state="registered") == sum(c["state"] == "registered" for c in clients)
    for ep, show in shown.items():
        assert value("gatewayd_lwm2m_client_state", endpoint=ep, state=show["state"]) == 1
        counter("gatewayd_lwm2m_registrations_total", show["registers"], endpoint=ep)
        counter("gatewayd_lwm2m_registration_updates_total", show["updates"], endpoint=ep)

    # nothing secret: no dataset, no key
    tlvs = ctl(gw, "dataset", "active", "-x", "--show-secrets").lower()
    _, _, text = get(topo, "/metrics")
    assert tlvs not in text.lower() and tlvs[-32:] not in text.lower()


def test_metrics_need_no_token_on_a_non_loopback_listener(topo: Topology):
    token = "metrics-t0ken"
    (topo.tmp / "rest-token").write_text(token + "\n")
    gw = topo.start_daemon(f'[rest]\nenabled = true\nlisten = ["0.0.0.0:{PORT}"]\n'
                           f'token_file = "{topo.tmp}/rest-token"\n')
    wait_until(lambda: ctl(gw, "state")["role"] == "leader", timeout=20, what="leader")
    wait_until(lambda: "REST API on" in gw.output(), what="the REST API listening")
    samples = scrape(topo)  # the token rule of the other non-secret reads (GET /node/state): none needed
    assert samples[("gatewayd_thread_role", (("role", "leader"),))] == 1
    assert token not in get(topo, "/metrics")[2]
    assert get(topo, "/node/dataset/active")[0] == 401, "the dataset still wants it"
