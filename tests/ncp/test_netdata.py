"""Thread network data TLVs (ncp/netdata.py): what the real NCP serves, and what our simulator encodes."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.netdata import (
    THREAD_ENTERPRISE_NUMBER,
    Context,
    ExternalRoute,
    NetworkDataError,
    OnMeshPrefix,
    Server,
    Service,
    parse_network_data,
)
from ncp.sim.netdata import encode_network_data

# THREAD_LEADER_NETWORK_DATA of ot-ncp-ftd (OpenThread 714aeeb70) leading alone (RLOC16 0x2c00) after the
# host published fd11:22:33::/64 (paro), ::/0 and 64:ff9b::/96 (NAT64, low preference).
REAL_LEADER = bytes.fromhex(
    "08040b025ed603140040fd1100220033000005042c003300070211400307000001032c0000031300600064ff9b000000000000000001"
    "032c00e0")
OMR = ipaddress.IPv6Network("fd11:22:33::/64")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT = ipaddress.IPv6Network("::/0")


def test_the_real_ncps_leader_data():
    data = parse_network_data(REAL_LEADER)
    assert data.prefixes == (OnMeshPrefix(OMR, 0x33, True, 0, 0x2C00),)
    assert set(data.routes) == {ExternalRoute(DEFAULT, 0, True, 0x2C00), ExternalRoute(NAT64, 0xE0, True, 0x2C00)}
    assert data.contexts == (Context(OMR, 1, True),)
    assert data.commissioning == bytes.fromhex("0b025ed6")
    assert data.services == ()


def test_a_service_with_its_servers():
    # SRP server anycast (Thread enterprise number, service data 0x5c + sequence 7) offered by two routers
    value = bytes([0x81, 0x02, 0x5C, 0x07]) + bytes([0x0D, 0x02, 0x2C, 0x00]) + bytes([0x0D, 0x03, 0x04, 0x00, 0x01])
    data = parse_network_data(bytes([0x0B, len(value)]) + value + bytes([0xFE, 0x01, 0x00]))  # + unknown TLV
    assert data.services == (Service(1, THREAD_ENTERPRISE_NUMBER, b"\x5c\x07",
                                     (Server(0x2C00), Server(0x0400, b"\x01"))),)
    other = bytes([0x02, 0x00, 0x00, 0x00, 0x2A, 0x01, 0x99])  # enterprise number 42 given, no servers
    assert parse_network_data(bytes([0x0A, len(other)]) + other).services == (Service(2, 42, b"\x99", (), False),)


@pytest.mark.parametrize("blob", [
    b"\x03",  # header cut off
    b"\x03\x05\x00\x40",  # runs past the end
    b"\x03\x02\x00\x81",  # prefix longer than 128 bits
    b"\x03\x03\x00\x40\xfd",  # shorter than its prefix
    b"\x03\x06\x00\x08\xfd\x01\x02\x00",  # Has Route with a partial entry
    b"\x03\x05\x00\x08\xfd\x07\x00",  # 6LoWPAN ID without its length
    b"\x0b\x00",  # empty service
    b"\x0b\x02\x01\x00",  # enterprise number cut
    b"\x0b\x02\x81\x05",  # service data cut
])
def test_malformed_network_data_is_a_clear_error(blob):
    with pytest.raises(NetworkDataError):
        parse_network_data(blob)


prefixes = st.builds(lambda n, plen: ipaddress.IPv6Network((n << 64, plen), strict=False),
                     st.integers(0, 2**64 - 1), st.sampled_from([0, 8, 48, 64, 96, 128]))
rloc16s = st.integers(0, 0xFFFF)
on_mesh = st.builds(OnMeshPrefix, prefixes, st.integers(0, 255), st.booleans(), st.integers(0, 255), rloc16s)
routes = st.builds(ExternalRoute, prefixes, st.integers(0, 255), st.booleans(), rloc16s)


@given(st.lists(on_mesh | routes, max_size=12), st.one_of(st.none(), st.integers(0, 0xFFFF)))
def test_what_the_simulator_encodes_decodes_to_the_same_entries(entries, session):
    blob = encode_network_data(entries, leader_session_id=session)
    data = parse_network_data(blob)
    kept = [e for e in entries if any(e.prefix == p for p in _prefixes_in(blob))]  # a >255-byte prefix is left out
    assert sorted(data.prefixes) == sorted(e for e in kept if isinstance(e, OnMeshPrefix))
    assert sorted(data.routes) == sorted(e for e in kept if isinstance(e, ExternalRoute))
    if session is not None:
        assert data.commissioning == bytes([11, 2]) + session.to_bytes(2, "big")
        assert {c.prefix for c in data.contexts} == {e.prefix for e in kept if isinstance(e, OnMeshPrefix)}


def _prefixes_in(blob: bytes) -> set[ipaddress.IPv6Network]:
    data = parse_network_data(blob)
    return {e.prefix for e in (*data.prefixes, *data.routes)}


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_network_data_error(blob):
    try:
        data = parse_network_data(blob)
    except NetworkDataError:
        return
    assert all(p.prefix.prefixlen <= 128 for p in data.prefixes)
