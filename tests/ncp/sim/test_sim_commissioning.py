"""The simulator's commissioner and joiner, driven with Spinel frames on a fake clock; the answers pinned here
are what ot-ncp-ftd (2025 and 2023 builds) gave to the same requests (ncp.sim.commissioning says which)."""

from __future__ import annotations

import random

import pytest

from ncp.commissioning import CommissionerState, decode_joiners, joiner_commissioning, joiner_insert, joiner_remove
from ncp.meshcop import Dataset
from ncp.spinel import Command, NetRole, Prop, Status, pack_prop, unpack_prop

from .test_sim_core import Host, form, last_status, make_host

EUI = bytes.fromhex("18b4300000000002")


@pytest.fixture(params=["2025", "2023"])
def leader(request) -> Host:
    host = make_host(ncp_generation=request.param, joinable_pskd="J01NME")
    form(host, Dataset.generate(rng=random.Random(3)))
    host.advance(1.0)
    assert host.get(Prop.NET_ROLE) == NetRole.LEADER
    return host


def start(host: Host) -> None:
    reply = host.set(Prop.MESHCOP_COMMISSIONER_STATE, int(CommissionerState.ACTIVE))
    assert unpack_prop(Prop.MESHCOP_COMMISSIONER_STATE, reply.value) == CommissionerState.PETITION  # as the real one
    host.advance(0.5)
    assert host.get(Prop.MESHCOP_COMMISSIONER_STATE) == CommissionerState.ACTIVE


def table(host: Host):
    return decode_joiners(host.request(Command.PROP_VALUE_GET, Prop.MESHCOP_COMMISSIONER_JOINERS).value)


def test_commissioner_needs_an_attached_node():
    host = make_host()
    assert last_status(host.set(Prop.MESHCOP_COMMISSIONER_STATE, 2)) == Status.INVALID_STATE


def test_start_stop_and_session(leader):
    start(leader)
    assert leader.get(Prop.MESHCOP_COMMISSIONER_SESSION_ID) != 0
    assert last_status(leader.set(Prop.MESHCOP_COMMISSIONER_STATE, 2)) == Status.ALREADY
    assert leader.set(Prop.MESHCOP_COMMISSIONER_STATE, 0).prop == Prop.MESHCOP_COMMISSIONER_STATE
    assert leader.get(Prop.MESHCOP_COMMISSIONER_STATE) == CommissionerState.DISABLED


def test_joiner_table_insert_list_remove_expire(leader):
    ins = leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_insert(None, "J01NME", 120))
    assert last_status(ins) == Status.INVALID_STATE  # commissioner off
    start(leader)
    value = joiner_insert(None, "J01NME", 120)
    reply = leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, value)
    assert (reply.command, bytes(reply.value)) == (Command.PROP_VALUE_INSERTED, value)  # echoed, as the real one
    leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_insert(EUI, "ABCDEF", 60))
    bad = leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_insert(None, "J01NMEI", 60))
    assert last_status(bad) == Status.INVALID_ARGUMENT
    rows = table(leader)
    assert [(r.name, r.timeout_ms, r.pskd) for r in rows] == [("*", 119999, "J01NME"), (EUI.hex(), 59999, "ABCDEF")]
    leader.advance(61)
    assert [r.name for r in table(leader)] == ["*"]  # the EUI-64 entry ended
    assert last_status(leader.remove(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_remove(EUI))) == Status.ITEM_NOT_FOUND
    assert leader.remove(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_remove(None)).command == Command.PROP_VALUE_REMOVED
    assert table(leader) == []
    assert not [f for f in leader.pushed if f.prop == Prop.MESHCOP_COMMISSIONER_JOINERS]  # nothing is pushed


def test_a_device_joins_with_the_right_pskd_only(leader):
    assert leader.ncp.joiner_start("early", None, "J01NME", leader.now)["error"] == "NotFound"  # no commissioner
    start(leader)
    leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_insert(None, "J01NME", 120))
    leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_insert(EUI, "ABCDEF", 120))
    wrong = leader.ncp.joiner_start("wrong", None, "WR0NG1", leader.now)
    assert (wrong["joined"], wrong["error"]) == (False, "Security")
    # the EUI-64 entry wins over "*": its device must use that entry's PSKd
    assert leader.ncp.joiner_start("picky", EUI, "J01NME", leader.now)["error"] == "Security"
    assert leader.ncp.joiner_start("lamp", None, "J01NME", leader.now)["joined"]
    assert leader.ncp.joiner_start("sensor", EUI, "ABCDEF", leader.now)["joined"]
    leader.advance(1)
    children = leader.announced(Command.PROP_VALUE_INSERTED, Prop.THREAD_CHILD_TABLE)
    assert len(children) == 2 and set(leader.ncp.nodes) == {"lamp", "sensor"}
    # OpenThread cuts a joined EUI-64 entry to 20 s; "*" stays
    rows = {r.name: r.timeout_ms for r in table(leader)}
    assert rows[EUI.hex()] <= 20_000 < rows["*"]
    leader.advance(21)
    assert [r.name for r in table(leader)] == ["*"]


def test_detaching_ends_the_commissioner(leader):
    start(leader)
    leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, joiner_insert(None, "J01NME", 120))
    leader.set(Prop.NET_STACK_UP, False)
    assert leader.get(Prop.MESHCOP_COMMISSIONER_STATE) == CommissionerState.DISABLED


def test_a_reset_forgets_the_commissioner(leader):
    start(leader)
    leader.ncp.reset(leader.now)
    leader.ncp.take()
    assert leader.get(Prop.MESHCOP_COMMISSIONER_STATE) == CommissionerState.DISABLED


@pytest.mark.parametrize("pskd, status", [("J01NME", Status.JOIN_SUCCESS), ("WR0NG1", Status.JOIN_SECURITY)])
def test_the_ncp_as_joiner(pskd, status):
    host = make_host(joinable_pskd="J01NME")
    value = joiner_commissioning(True, pskd)
    assert last_status(host.set(Prop.MESHCOP_JOINER_COMMISSIONING, raw=value)) == Status.INVALID_STATE  # if down
    host.set(Prop.NET_IF_UP, True)
    assert last_status(host.set(Prop.MESHCOP_JOINER_COMMISSIONING, raw=value)) == Status.OK  # as the real one
    assert not host.pushed_values(Prop.LAST_STATUS)
    host.advance(1)
    assert host.pushed_values(Prop.LAST_STATUS) == [status]
    if status == Status.JOIN_SUCCESS:
        assert host.set(Prop.NET_STACK_UP, True).prop == Prop.NET_STACK_UP
        host.advance(1)
        assert host.get(Prop.NET_ROLE) in (NetRole.LEADER, NetRole.ROUTER, NetRole.CHILD)
        assert Dataset.from_tlvs(host.get(Prop.THREAD_ACTIVE_DATASET_TLVS)).network_name == "sim-existing"


def test_the_ncp_as_joiner_without_a_network():
    host = make_host()
    host.set(Prop.NET_IF_UP, True)
    host.set(Prop.MESHCOP_JOINER_COMMISSIONING, raw=joiner_commissioning(True, "J01NME"))
    host.advance(1)
    assert host.pushed_values(Prop.LAST_STATUS) == [Status.JOIN_NO_PEERS]
    bad = host.set(Prop.MESHCOP_JOINER_COMMISSIONING, raw=joiner_commissioning(True, "lower1"))
    assert last_status(bad) == Status.INVALID_ARGUMENT


def test_bad_values_are_refused_not_fatal(leader):
    start(leader)
    for raw in (b"", b"\x05", b"\x08\x00\x01", b"\x00\x00\x01"):
        assert last_status(leader.insert(Prop.MESHCOP_COMMISSIONER_JOINERS, raw)) == Status.PARSE_ERROR
    assert last_status(leader.set(Prop.MESHCOP_COMMISSIONER_STATE, raw=b"")) == Status.PARSE_ERROR
    assert last_status(leader.set(Prop.MESHCOP_COMMISSIONER_STATE, raw=b"\x07")) == Status.INVALID_ARGUMENT
    too_long = pack_prop(Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL, "x" * 65)
    assert last_status(leader.set(Prop.MESHCOP_COMMISSIONER_PROVISIONING_URL, raw=too_long)) == Status.INVALID_ARGUMENT
    assert leader.get(Prop.MESHCOP_COMMISSIONER_STATE) == CommissionerState.ACTIVE


def test_joiner_start_control_command_parses_and_refuses_bad_input():
    from ncp.sim.control import ControlError, parse_command

    command = parse_command('{"cmd": "joiner_start", "name": "lamp", "pskd": "J01NME", "eui64": "18b4300000000002"}')
    assert (command.name, command.pskd, command.eui64) == ("lamp", "J01NME", EUI)
    for bad in ('{"cmd": "joiner_start", "name": "lamp"}', '{"cmd": "joiner_start", "name": "", "pskd": "X"}',
                '{"cmd": "joiner_start", "name": "lamp", "pskd": 5}',
                '{"cmd": "joiner_start", "name": "lamp", "pskd": "J01NME", "eui64": "12"}'):
        with pytest.raises(ControlError):
            parse_command(bad)
