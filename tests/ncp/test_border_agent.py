"""The ``_meshcop._udp`` TXT record and BORDER_AGENT_MESHCOP_SERVICE_STATE codec (ncp.border_agent)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.border_agent import (
    BorderAgentState,
    ConnMode,
    IfState,
    MeshCoPService,
    StateBitmap,
    TxtError,
    TxtRole,
    decode_txt,
    encode_txt,
)
from ncp.meshcop import Timestamp
from ncp.record import frames, load
from ncp.spinel import Command, NetRole, Prop, pack_prop, unpack_prop
from tests.border.meshcop import DTLS_HANDSHAKE_FAILURE
from tests.ncp.replay import RECORDINGS

# What OpenThread's ot-ncp-ftd (714aeeb70) pushed as leader of "gatewayd-6d59"
# (tests/ncp/recordings/three_nodes_children_and_a_router_all_reachable-ot-current.jsonl, t=6.89 s).
REAL_NCP_VALUE = bytes.fromhex(
    "0103c01369643d91fafc788de5e9cf6a1887d05db206540472763d310773623d00000e310874763d312e342e300b78613d4e64d8"
    "ead308c3a20b78703d05dc96f48e7bb0df106e6e3d67617465776179642d366435390770743d348c6c5b0b61743d000000000001"
    "0000")


def test_the_real_ncps_service_state_decodes_and_reencodes_byte_for_byte():
    value = unpack_prop(Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE, REAL_NCP_VALUE)
    state = BorderAgentState.from_spinel(value)
    s = state.service
    assert (state.running, state.port) == (True, 49155)
    assert s.agent_id == bytes.fromhex("91fafc788de5e9cf6a1887d05db20654")
    assert (s.record_version, s.thread_version, s.network_name) == ("1", "1.4.0", "gatewayd-6d59")
    assert s.ext_address == bytes.fromhex("4e64d8ead308c3a2") and s.extended_pan_id == bytes.fromhex("05dc96f48e7bb0df")
    assert s.partition_id == 0x348C6C5B and s.active_timestamp == Timestamp(1, 0, False)
    # 0x0e31: PSKc, interface active, high availability, leader, ePSKc supported
    assert s.state == StateBitmap(ConnMode.PSKC, IfState.ACTIVE, 1, False, False, TxtRole.LEADER, True)
    assert s.state.to_int() == 0x0E31
    assert encode_txt(s.to_txt()) == value[2]
    assert pack_prop(Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE, value) == REAL_NCP_VALUE


@pytest.mark.parametrize(("role", "bits"), [
    (None, 0x0020), (NetRole.DISABLED, 0x0020), (NetRole.DETACHED, 0x0028),
    (NetRole.CHILD, 0x0230), (NetRole.ROUTER, 0x0430), (NetRole.LEADER, 0x0630)])
def test_state_bitmap_follows_the_role_as_openthread_sets_it(role, bits):
    assert StateBitmap.for_role(role).to_int() == bits
    assert StateBitmap.for_role(role, ConnMode.PSKC).to_int() == bits | 1


def test_otbr_style_entries_vendor_model_omr_and_bbr():
    s = MeshCoPService(agent_id=bytes(16), thread_version="1.3.0", state=StateBitmap.for_role(NetRole.ROUTER),
                       network_name="Home", extended_pan_id=bytes(range(8)), ext_address=bytes(8),
                       partition_id=7, bbr_seq=3, bbr_port=61631, domain_name="DefaultDomain",
                       omr_prefix=ipaddress.IPv6Network("fd12:3456:789a:1::/64"), vendor_name="gatewayd",
                       model_name="Pi")
    txt = dict(s.to_txt())
    assert txt["pt"] == b"\0\0\0\x07" and txt["sq"] == b"\x03" and txt["bb"] == b"\xf0\xbf"
    assert txt["omr"] == b"\x40" + bytes.fromhex("fd123456789a0001")
    assert (txt["vn"], txt["mn"], txt["nn"], txt["rv"]) == (b"gatewayd", b"Pi", b"Home", b"1")
    assert [k for k, _ in s.to_txt()] == ["id", "rv", "sb", "tv", "xa", "xp", "nn", "pt", "sq", "bb", "dn", "omr",
                                          "vn", "mn"]
    assert MeshCoPService.from_txt(decode_txt(encode_txt(s.to_txt()))) == s


def test_txt_rules_of_rfc_6763():
    # keys are case-insensitive, only the first occurrence counts, "=" alone and empty strings are skipped
    data = encode_txt([("NN", b"first"), ("nn", b"second"), ("flag", None)]) + b"\x00\x02=x"
    assert decode_txt(data) == [("NN", b"first"), ("nn", b"second"), ("flag", None)]
    s = MeshCoPService.from_txt(decode_txt(data))
    assert s.network_name == "first" and s.other == (("flag", None),) and s.record_version is None
    assert decode_txt(b"") == []


@pytest.mark.parametrize(("data", "why"), [
    (b"\x05ab", "claims 5 bytes"),
    (b"\x03\xffa=", "not printable"),
    (b"\x04k\x01=v", "not printable"),
])
def test_bad_txt_data_is_a_clear_error(data, why):
    with pytest.raises(TxtError, match=why):
        decode_txt(data)


@pytest.mark.parametrize(("entry", "why"), [
    (("xp", b"\x01\x02"), "8 bytes"),
    (("id", bytes(15)), "16 bytes"),
    (("sb", b"\x00\x00\x0e"), "4-byte"),
    (("nn", b"\xff\xfe"), "UTF-8"),
    (("at", bytes(7)), "8 bytes"),
    (("omr", b"\x81" + bytes(17)), "prefix length"),
    (("omr", b"\x40" + bytes(7)), "prefix length"),
    (("omr", b"\x07\x03"), "beyond"),
    (("xa", None), "no value"),
])
def test_a_known_key_with_a_wrong_value_is_a_clear_error(entry, why):
    with pytest.raises(TxtError, match=why):
        MeshCoPService.from_txt([entry])


def test_what_cannot_be_encoded_is_refused():
    with pytest.raises(TxtError, match="8 bytes"):
        MeshCoPService(extended_pan_id=b"\x01").to_txt()
    with pytest.raises(TxtError, match="does not fit"):
        MeshCoPService(partition_id=1 << 32).to_txt()
    with pytest.raises(TxtError, match="255"):
        encode_txt([("vn", bytes(300))])
    with pytest.raises(TxtError, match="bad TXT key"):
        encode_txt([("a=b", b"")])


def test_a_spinel_value_of_another_shape_is_refused():
    with pytest.raises(TxtError):
        BorderAgentState.from_spinel(b"\x01")


# ---- properties ------------------------------------------------------------------------------------
keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="="),
               min_size=1, max_size=9)
entries = st.lists(st.tuples(keys, st.one_of(st.none(), st.binary(max_size=40))), max_size=12)
names = st.text(max_size=16).filter(lambda t: len(t.encode()) <= 60)
prefixes = st.builds(lambda raw, n: ipaddress.IPv6Network((raw, n), strict=False),
                     st.binary(min_size=16, max_size=16), st.integers(0, 128))
services = st.builds(
    MeshCoPService,
    record_version=st.one_of(st.none(), st.just("1")),
    agent_id=st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
    thread_version=st.one_of(st.none(), st.sampled_from(["1.1.1", "1.3.0", "1.4.0"])),
    state=st.one_of(st.none(), st.builds(StateBitmap.from_int, st.integers(0, 0xFFF))),
    network_name=st.one_of(st.none(), names),
    extended_pan_id=st.one_of(st.none(), st.binary(min_size=8, max_size=8)),
    ext_address=st.one_of(st.none(), st.binary(min_size=8, max_size=8)),
    active_timestamp=st.one_of(st.none(), st.builds(Timestamp, st.integers(0, (1 << 48) - 1),
                                                    st.integers(0, (1 << 15) - 1), st.booleans())),
    partition_id=st.one_of(st.none(), st.integers(0, (1 << 32) - 1)),
    bbr_seq=st.one_of(st.none(), st.integers(0, 255)),
    bbr_port=st.one_of(st.none(), st.integers(0, 65535)),
    domain_name=st.one_of(st.none(), names),
    omr_prefix=st.one_of(st.none(), prefixes),
    vendor_name=st.one_of(st.none(), names),
    model_name=st.one_of(st.none(), names),
)


@given(entries)
def test_txt_entries_round_trip(items):
    assert decode_txt(encode_txt(items)) == items


@given(services)
def test_services_round_trip_through_txt_rdata(service):
    assert MeshCoPService.from_txt(decode_txt(encode_txt(service.to_txt()))) == service


@given(st.integers(0, 0xFFFFFFFF))
def test_state_bitmap_keeps_every_defined_bit(value):
    assert StateBitmap.from_int(value).to_int() == value & 0xFFF  # bits 12-31 are not defined yet


# ---- what real NCPs sent (tests/interop/test_border_agent.py, recorded) ------------------------------
BA_RECORDINGS = {p.stem[p.stem.rindex("ot-"):]: p for p in RECORDINGS.glob("the_advertised_record_matches_*.jsonl")}


def spinel_values(path, direction: str, prop: int) -> list:
    return [unpack_prop(prop, f.value) for f in frames(load(path), direction)  # type: ignore[arg-type]
            if f.prop == prop and f.command in (Command.PROP_VALUE_IS, Command.PROP_VALUE_SET)]


def test_border_agent_recordings_exist_for_both_generations():
    assert set(BA_RECORDINGS) == {"ot-current", "ot-2023"}


def test_the_real_ncps_border_agent_and_its_relayed_datagrams_decode():
    path = BA_RECORDINGS["ot-current"]
    states = [BorderAgentState.from_spinel(v)
              for v in spinel_values(path, "ncp", Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE)]
    leading = [s for s in states if s.service.state is not None and s.service.state.role == TxtRole.LEADER]
    assert leading and all(s.running and s.port for s in leading)
    port = leading[-1].port
    # the host relayed a ClientHello to the agent's port; the NCP pushed back what its DTLS sent
    sent = spinel_values(path, "host", Prop.THREAD_UDP_FORWARD_STREAM)
    assert sent and all(s[3] == port and s[0][0] == 22 for s in sent)
    back = spinel_values(path, "ncp", Prop.THREAD_UDP_FORWARD_STREAM)
    assert back and all(b[3] == port and (b[1], b[2]) == (sent[0][1], sent[0][2]) for b in back)
    assert back[0][0] == DTLS_HANDSHAKE_FAILURE


def test_the_2023_ncp_reports_no_border_agent():
    path = BA_RECORDINGS["ot-2023"]
    assert not spinel_values(path, "ncp", Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE)
    assert not spinel_values(path, "host", Prop.THREAD_UDP_FORWARD_STREAM)
