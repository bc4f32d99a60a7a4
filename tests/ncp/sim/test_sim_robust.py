"""Whatever a host sends, the simulated NCP answers and never crashes; control lines parse or are refused."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ncp.meshcop import Dataset
from ncp.sim import SimConfig, SimNcp
from ncp.sim.control import ControlError, parse_command
from ncp.spinel import Command, Prop, SpinelFrame

props = st.sampled_from(list(Prop)) | st.integers(0, 0x3FFF)
commands = st.sampled_from(
    [Command.PROP_VALUE_GET, Command.PROP_VALUE_SET, Command.PROP_VALUE_INSERT, Command.PROP_VALUE_REMOVE]
)
frames = st.builds(
    lambda tid, cmd, prop, value: SpinelFrame(0, tid, cmd, prop, value),
    st.integers(1, 15),
    commands,
    props,
    st.binary(max_size=64),
)


def _leader() -> SimNcp:
    ncp = SimNcp(SimConfig(leader_delay=0, attach_delay=0, mle_interval=1, seed=3))
    ncp.add_node("n", None, 0)
    for prop, value in [
        (Prop.THREAD_ACTIVE_DATASET_TLVS, Dataset.generate(rng=random.Random(1)).to_tlvs()),
        (Prop.NET_IF_UP, b"\x01"),
        (Prop.NET_STACK_UP, b"\x01"),
        (Prop.THREAD_ALLOW_LOCAL_NET_DATA_CHANGE, b"\x01"),
    ]:
        ncp.handle_frame(SpinelFrame(0, 1, Command.PROP_VALUE_SET, prop, value), 0)
    ncp.poll(1)
    ncp.take()
    return ncp


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, min_size=1, max_size=8), st.lists(st.binary(max_size=80), max_size=3))
def test_every_request_gets_exactly_one_answer(batch, mesh_packets):
    ncp = _leader()
    now = 1.0
    for frame in batch:
        ncp.handle_frame(frame, now)
        replies = [f for f in ncp.take()[0] if f.tid == frame.tid]
        assert len(replies) == 1, (frame, replies)
        now += 0.3
        ncp.poll(now)
    for packet in mesh_packets:
        ncp.handle_mesh_packet(b"\x60" + packet, now)
    ncp.take()
    ncp.state()
    ncp.mesh_config()


@given(st.binary(max_size=100) | st.text(max_size=100))
def test_control_parse_only_raises_control_error(line):
    try:
        cmd = parse_command(line)
    except ControlError:
        return
    assert cmd.cmd in {"reset", "drop", "corrupt", "stall", "die", "node_add", "node_remove", "state"}


def test_control_commands_parse():
    assert parse_command('{"cmd":"drop","count":3}').count == 3
    assert parse_command('{"cmd":"stall","seconds":1.5}').seconds == 1.5
    assert parse_command('{"cmd":"node_add","name":"x","eui64":"00:11:22:33:44:55:66:77"}').eui64 == bytes.fromhex(
        "0011223344556677"
    )
    assert parse_command('{"cmd":"node_add","name":"x","kind":"mtd"}').kind == "mtd"
    assert parse_command('{"cmd":"node_add","name":"x"}').kind == "ftd"
    peer = parse_command('{"cmd":"border_router","rloc16":1024,"prefixes":[{"prefix":"fd11::/64","flags":243}],'
                         '"routes":[{"prefix":"::/0"}]}')
    assert (peer.rloc16, [(str(p.prefix), p.flags) for p in peer.prefixes], [str(r.prefix) for r in peer.routes]) \
        == (1024, [("fd11::/64", 243)], ["::/0"])
    for bad in [
        '{"cmd":"node_add","name":"x","kind":"sed"}',
        '{"cmd":"drop","count":-1}',
        '{"cmd":"stall"}',
        '{"cmd":"node_add","eui64":"00"}',
        "[]",
        "{",
        '{"cmd":"drop","count":1e400}',
        '{"cmd":"border_router","rloc16":65534}',
        '{"cmd":"border_router","rloc16":1,"prefixes":[{"prefix":"fd11::/64","flags":256}]}',
        '{"cmd":"border_router","rloc16":1,"routes":["::/0"]}',
    ]:
        try:
            parse_command(bad)
        except ControlError:
            continue
        raise AssertionError(bad)
