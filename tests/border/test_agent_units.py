"""What the border agent's _meshcop._udp record says in each state of the network (gatewayd.border.agent)."""

from __future__ import annotations

import ipaddress

import pytest

from gatewayd.border.agent import DEFAULT_THREAD_VERSION, Facts, compose, instance_name, txt_values
from gatewayd.config.loader import ConfigError, parse
from ncp.border_agent import DUMMY_PORT, BorderAgentState, ConnMode, IfState, MeshCoPService, StateBitmap, TxtRole
from ncp.meshcop import Timestamp
from ncp.spinel import NetRole

XA = bytes.fromhex("4e64d8ead308c3a2")
OMR = ipaddress.IPv6Network("fd12:3456:789a:1::/64")
NCP_AGENT = BorderAgentState(True, 49155, MeshCoPService(thread_version="1.4.0", ext_address=XA))


def facts(role: int | None, ncp_agent: BorderAgentState | None = None, relay_port: int | None = None) -> Facts:
    return Facts(agent_id=bytes(range(16)), ext_address=XA, role=role, network_name="Home",
                 extended_pan_id=bytes(8), active_timestamp=Timestamp(5, 0, False), partition_id=0x1234,
                 omr_prefix=OMR, ncp_agent=ncp_agent, relay_port=relay_port, vendor_name="gatewayd",
                 model_name="BorderRouter")


def test_with_the_ncps_agent_relayed_the_record_offers_its_connection_mode_at_the_relay():
    relayed = BorderAgentState(True, 49155, MeshCoPService(state=StateBitmap(conn_mode=ConnMode.PSKC)))
    service, port = compose(facts(NetRole.ROUTER, relayed, relay_port=49155))
    assert port == 49155 and service.state == StateBitmap(ConnMode.PSKC, IfState.ACTIVE, role=TxtRole.ROUTER)


def test_a_leader_shows_its_network_partition_and_timestamp_and_refuses_dtls():
    service, port = compose(facts(NetRole.LEADER, NCP_AGENT))
    assert port == DUMMY_PORT  # nothing relays to the NCP's border agent port (49155)
    assert service.state == StateBitmap(ConnMode.DISABLED, IfState.ACTIVE, 1, role=TxtRole.LEADER)
    assert service.thread_version == "1.4.0"  # what the NCP says it speaks
    values = txt_values(service)
    assert values == {"id": bytes(range(16)).hex(), "rv": "1", "sb": "00000630", "tv": "1.4.0", "xa": XA.hex(),
                      "xp": "0000000000000000", "nn": "Home", "pt": "00001234", "at": "0000000000050000",
                      "omr": "40fd123456789a0001", "vn": "gatewayd", "mn": "BorderRouter"}


@pytest.mark.parametrize(("role", "if_state"), [(None, IfState.NOT_INITIALIZED), (NetRole.DISABLED,
                         IfState.NOT_INITIALIZED), (NetRole.DETACHED, IfState.INITIALIZED)])
def test_off_the_mesh_the_record_keeps_the_network_but_not_the_partition(role, if_state):
    service, _ = compose(facts(role))
    assert service.state.if_state == if_state and service.state.role == TxtRole.DISABLED_OR_DETACHED
    assert (service.partition_id, service.active_timestamp, service.omr_prefix) == (None, None, None)
    assert (service.network_name, service.extended_pan_id) == ("Home", bytes(8))
    assert service.thread_version == DEFAULT_THREAD_VERSION  # an NCP without a border agent does not say


def test_the_service_is_named_like_otbr_agents():
    assert instance_name("gatewayd", "BorderRouter", XA) == "gatewayd BorderRouter #C3A2"
    assert instance_name("", "", XA) == "gatewayd #C3A2"


def test_vendor_and_model_names_fit_what_otbr_agent_allows():
    with pytest.raises(ConfigError, match="vendor_name"):
        parse('[border]\nvendor_name = "' + "x" * 25 + '"\n')
    config = parse('[border]\nmodel_name = "Pi 5"\n')
    assert (config.border.vendor_name, config.border.model_name, config.border.meshcop_mdns) == \
        ("gatewayd", "Pi 5", True)
