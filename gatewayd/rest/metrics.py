"""``/metrics``: the counters gatewayctl shows, in Prometheus' text format (prometheus_client).

A custom collector turns one :meth:`gatewayd.rest.readings.Readings.metrics` reading, taken when Prometheus
scrapes, into metric families: no background task, no registry kept up to date, so an idle daemon is not
woken between scrapes. Names follow Prometheus' conventions: the ``gatewayd_`` prefix, ``_total`` on
counters, the unit (``packets``, ``bytes``) in the name, labels for what gatewayctl nests (direction,
protocol, reason, state, endpoint). docs/metrics.md lists them with the gatewayctl command each comes from.

prometheus_client is imported with this module, and this module only when ``[rest] metrics`` is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gatewayd.component import State

CONTENT_TYPE = CONTENT_TYPE_LATEST
ROLES = ("disabled", "detached", "child", "router", "leader", "unknown")  # gatewayctl state's role names
LWM2M_STATES = ("bootstrapping", "registering", "registered", "updating", "deregistered", "disabled", "failed")

# gatewayctl counters → datapath (the TUN between the host and the NCP)
DATAPATH = {
    "to_mesh": ("datapath_to_mesh_packets", "Packets from the host written to the NCP"),
    "from_mesh": ("datapath_from_mesh_packets", "Packets from the NCP written to the host's Thread interface"),
    "mle_dropped": ("datapath_mle_dropped_packets", "MLE packets from the host not passed to the NCP"),
    "malformed_dropped": ("datapath_malformed_dropped_packets", "Malformed packets dropped"),
    "write_errors": ("datapath_write_errors", "Failed writes to the Thread interface"),
    "down_dropped": ("datapath_down_dropped_packets", "Packets dropped while the interface was down"),
}
# gatewayctl counters → ncp_link (the Spinel client's own counters)
NCP_LINK = {
    "frames_in": "Spinel frames received from the NCP",
    "frames_out": "Spinel frames sent to the NCP",
    "bad_frames": "Well-framed but invalid Spinel frames received",
    "retries": "Requests to the NCP retried",
    "timeouts": "Requests to the NCP that timed out",
    "resets": "NCP resets",
    "link_losses": "Losses of the link to the NCP",
    "reconnects": "Reconnections to the NCP",
    "late_replies": "Replies from the NCP after their request gave up",
    "packets_in": "IPv6 packets received from the NCP",
    "packets_out": "IPv6 packets sent to the NCP",
    "packets_dropped": "IPv6 packets from the NCP dropped (receive queue full)",
    "events_dropped": "NCP events dropped",
    "undecodable": "NCP values not in their property's known format",
    "degraded": "NCP features found unavailable",
}
DNS64_GAUGES = {"cache_entries", "wire_cache_entries", "tcp_active", "pending"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class GatewayCollector:
    """The metric families of one reading (:meth:`Readings.metrics`)."""

    def __init__(self, reading: Mapping[str, Any]):
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        r = self.reading
        yield from self._components(r.get("components"))
        yield from self._ncp(r.get("ncp"), r.get("counters") or {})
        yield from self._thread(r.get("thread"), r.get("counters") or {})
        yield from self._nat64(r.get("nat64"))
        yield from self._dns64(r.get("dns64"))
        yield from self._border(r.get("border"))
        yield from self._lwm2m(r.get("lwm2m_status"), r.get("lwm2m"))

    # ---- the daemon's components ----------------------------------------------------------------------
    def _components(self, states: Mapping[str, str] | None) -> Iterable[Metric]:
        """One series per component and state, 1 for the current one (an enum as Prometheus' conventions
        have it): ``gatewayd_component_state{state="failed"} == 1`` alerts on any component down."""
        if not states:
            return
        g = GaugeMetricFamily("gatewayd_component_state", "Each component's supervisor state (gatewayctl status): "
                              "1 for the current one", labels=["component", "state"])
        known = [s.value for s in State]
        for name, current in sorted(states.items()):
            for state in (*known, *(() if current in known else (current,))):
                g.add_metric([name, state], 1 if state == current else 0)
        yield g

    # ---- NCP ---------------------------------------------------------------------------------------
    def _ncp(self, status: Mapping[str, Any] | None, counters: Mapping[str, Any]) -> Iterable[Metric]:
        if status is not None:
            info = InfoMetricFamily("gatewayd_ncp", "The NCP's state and version (gatewayctl status)")
            info.add_metric([], {"state": str(status.get("ncp_state", "disconnected")),
                                 "version": str(status.get("version", ""))})
            yield info
        link = counters.get("ncp_link") or {}
        for key, value in link.items():
            if _number(value):
                c = CounterMetricFamily(f"gatewayd_ncp_{key}", NCP_LINK.get(key, f"NCP link: {key}"))
                c.add_metric([], value)
                yield c
        ip = counters.get("ncp_ip") or {}
        if ip:
            c = CounterMetricFamily("gatewayd_ncp_ip_packets", "IPv6 packets the NCP counted (gatewayctl counters "
                                    "ncp_ip)", labels=["direction", "result"])
            for key, value in sorted(ip.items()):
                direction, _, result = key.partition("_")
                if _number(value):
                    c.add_metric([direction, result], value)
            yield c

    # ---- Thread and the datapath -------------------------------------------------------------------
    def _thread(self, status: Mapping[str, Any] | None, counters: Mapping[str, Any]) -> Iterable[Metric]:
        if status is not None:
            role = str(status.get("role", "unknown"))
            g = GaugeMetricFamily("gatewayd_thread_role", "The node's Thread role: 1 for the current one",
                                  labels=["role"])
            for name in (*ROLES, *(() if role in ROLES else (role,))):
                g.add_metric([name], 1 if name == role else 0)
            yield g
            g = GaugeMetricFamily("gatewayd_thread_children", "Children attached to this node")
            g.add_metric([], status.get("children") or 0)
            yield g
            if _number(status.get("channel")):
                g = GaugeMetricFamily("gatewayd_thread_channel", "The Thread network's IEEE 802.15.4 channel")
                g.add_metric([], status["channel"])
                yield g
        for key, (name, doc) in DATAPATH.items():
            value = (counters.get("datapath") or {}).get(key)
            if _number(value):
                c = CounterMetricFamily(f"gatewayd_{name}", doc)
                c.add_metric([], value)
                yield c
        if _number(counters.get("recoveries")):
            c = CounterMetricFamily("gatewayd_thread_recoveries", "Recoveries of the Thread network after an NCP "
                                    "reset or link loss")
            c.add_metric([], counters["recoveries"])
            yield c
        held = counters.get("held_for_recovery") or {}
        for key, name, doc in (("packets", "thread_held_packets", "Packets held back during a recovery"),
                               ("dropped", "thread_held_dropped_packets", "Held packets dropped (queue full)"),
                               ("mpl_sequence_skipped", "thread_mpl_sequence_skipped", "MPL sequence numbers "
                                "skipped after an NCP restart")):
            if _number(held.get(key)):
                c = CounterMetricFamily(f"gatewayd_{name}", doc)
                c.add_metric([], held[key])
                yield c
        if _number(held.get("holding")):
            g = GaugeMetricFamily("gatewayd_thread_holding_packets", "Packets held back now")
            g.add_metric([], held["holding"])
            yield g

    # ---- NAT64 -------------------------------------------------------------------------------------
    def _nat64(self, n: Mapping[str, Any] | None) -> Iterable[Metric]:
        if n is None:
            return
        backend = str(n.get("backend", ""))
        info = InfoMetricFamily("gatewayd_nat64", "The NAT64 backend")
        info.add_metric([], {"backend": backend, "fast_path": str(n.get("fast_path", ""))})
        yield info
        for key, name, doc in (("sessions", "nat64_sessions", "NAT64 sessions now"),
                               ("bib_entries", "nat64_bib_entries", "NAT64 binding (BIB) entries now")):
            if _number(n.get(key)):
                g = GaugeMetricFamily(f"gatewayd_{name}", doc)
                g.add_metric([], n[key])
                yield g
        translated = n.get("translated")
        if isinstance(translated, Mapping):
            c = CounterMetricFamily("gatewayd_nat64_translated_packets", "Packets translated, by direction and "
                                    "protocol", labels=["direction", "protocol"])
            for direction in ("6to4", "4to6"):
                for proto, value in sorted((translated.get(direction) or {}).items()):
                    c.add_metric([direction, proto], value)
            yield c
        for key, name, label, doc in (("dropped", "nat64_dropped_packets", "reason", "Packets dropped, by reason"),
                                      ("icmp_errors_sent", "nat64_icmp_errors_sent", "type",
                                       "ICMP errors the translator originated, by type")):
            if isinstance(n.get(key), Mapping):
                c = CounterMetricFamily(f"gatewayd_{name}", doc, labels=[label])
                for sub, value in sorted(n[key].items()):
                    c.add_metric([sub], value)
                yield c
        for key in ("sessions_created", "sessions_expired", "tun_rx_packets", "tun_tx_packets", "tun_rx_bytes",
                    "tun_tx_bytes", "tun_rx_dropped", "tun_tx_dropped", "write_errors", "fast_path_packets",
                    "restarts"):
            if _number(n.get(key)):
                name = f"gatewayd_nat64_{key}" + ("_packets" if key.endswith("_dropped") else "")
                c = CounterMetricFamily(name, f"NAT64 {key.replace('_', ' ')} (gatewayctl nat64 counters)")
                c.add_metric([], n[key])
                yield c

    # ---- DNS64 -------------------------------------------------------------------------------------
    def _dns64(self, d: Mapping[str, Any] | None) -> Iterable[Metric]:
        if d is None:
            return
        for key, value in d.items():
            if not _number(value):
                continue
            doc = f"DNS64 {key.replace('_', ' ')} (gatewayctl dns64 counters)"
            if key in DNS64_GAUGES:
                m: Metric = GaugeMetricFamily(f"gatewayd_dns64_{key}", doc)
            else:
                m = CounterMetricFamily(f"gatewayd_dns64_{key}", doc)
            m.add_metric([], value)
            yield m

    # ---- border routing: the LAN read, the ingress filter ---------------------------------------------
    def _border(self, b: Mapping[str, Any] | None) -> Iterable[Metric]:
        if b is None:
            return
        for key, value in b.items():
            if _number(value):
                c = CounterMetricFamily(f"gatewayd_border_{key}", f"Border routing {key.replace('_', ' ')} "
                                        "(gatewayctl border counters)")
                c.add_metric([], value)
                yield c
        for key, name, doc in (("ingress_dropped", "border_ingress_dropped_packets", "LAN packets the ingress "
                                "filter dropped, by reason"), ("ingress_dropped_bytes", "border_ingress_dropped_bytes",
                                                              "Their bytes, by reason")):
            if isinstance(b.get(key), Mapping):
                c = CounterMetricFamily(f"gatewayd_{name}", doc, labels=["reason"])
                for reason, value in sorted(b[key].items()):
                    c.add_metric([reason], value)
                yield c

    # ---- LwM2M -------------------------------------------------------------------------------------
    def _lwm2m(self, status: Mapping[str, Any] | None, clients: list[Mapping[str, Any]] | None) -> Iterable[Metric]:
        if status is None or clients is None:
            return
        by_state = GaugeMetricFamily("gatewayd_lwm2m_clients", "LwM2M clients, by registration state",
                                     labels=["state"])
        states = (*LWM2M_STATES, *sorted({str(c.get("state")) for c in clients} - set(LWM2M_STATES)))
        for state in states:
            by_state.add_metric([state], sum(1 for c in clients if c.get("state") == state))
        yield by_state
        client_state = GaugeMetricFamily("gatewayd_lwm2m_client_state", "Each LwM2M client's registration state: "
                                         "1 for the current one", labels=["endpoint", "state"])
        for c in clients:
            for state in states:
                client_state.add_metric([str(c["endpoint"]), state], 1 if c.get("state") == state else 0)
        yield client_state
        for key, name, doc in (("registers", "lwm2m_registrations", "Successful Registers"),
                               ("updates", "lwm2m_registration_updates", "Successful registration Updates"),
                               ("errors", "lwm2m_internal_errors", "Unexpected errors in the registration task"),
                               ("dtls_faults", "lwm2m_dtls_faults", "DTLS handshake or session faults"),
                               ("bootstraps", "lwm2m_bootstraps", "Bootstraps requested"),
                               ("requests", "lwm2m_server_requests", "Requests from the LwM2M server"),
                               ("notifications", "lwm2m_notifications", "Notifications sent"),
                               ("queue_delivered", "lwm2m_queue_delivered",
                                "Notifications held while offline (queue mode) and sent after an Update"),
                               ("queue_dropped", "lwm2m_queue_dropped",
                                "Notifications dropped while offline (queue mode, over [lwm2m] queue_limit)"),
                               ("queue_discarded", "lwm2m_queue_discarded",
                                "Notifications discarded while offline: the server set /1/x/6 (storing) false"),
                               ("sends_muted", "lwm2m_sends_muted", "Sends refused: the server muted Send (/1/x/23)"),
                               ("pings", "lwm2m_tcp_pings", "Keep-alive Pings answered (CoAP over TCP)"),
                               ("ping_failures", "lwm2m_tcp_ping_failures", "Keep-alive Pings unanswered"),
                               ("connections_lost", "lwm2m_tcp_connections_lost",
                                "Server connections lost (CoAP over TCP)")):
            c = CounterMetricFamily(f"gatewayd_{name}", f"{doc}, per client (gatewayctl lwm2m show)",
                                    labels=["endpoint"])
            for client in clients:
                if _number(client.get(key)):
                    c.add_metric([str(client["endpoint"])], client[key])
            yield c


def render(reading: Mapping[str, Any]) -> bytes:
    """The text exposition of one reading."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(reading))  # type: ignore[arg-type]
    return generate_latest(registry)
