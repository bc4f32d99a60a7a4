"""The simulator as a process on a real pty (no namespace needed)."""

import os
import random
import signal
import time

import pytest

from ncp import hdlc
from ncp.meshcop import Dataset
from ncp.spinel import Command, NetRole, Prop, SpinelFrame, Status, unpack_prop
from ncp.spinel.dataset import dataset_to_props

from .simproc import control, is_status


def test_spinel_over_pty_forms_network(sim, tmp_path):
    p = sim("--leader-delay", "0.2", "--mle-interval", "0.3", "--eui64", "18b4300000000001")
    boot = p.wait_for(is_status(Status.RESET_POWER_ON))
    assert boot.tid == 0
    assert p.get(Prop.PROTOCOL_VERSION) == (4, 3)
    assert p.get(Prop.HWADDR) == bytes.fromhex("18b4300000000001")
    # Bytes that need escaping survive the pty both ways (no echo, no CR/LF mangling).
    name = "a\x7e\x7d\x11\x13\n\rb"
    reply = p.request(Command.PROP_VALUE_SET, Prop.NET_NETWORK_NAME, name.encode() + b"\0")
    assert unpack_prop(Prop.NET_NETWORK_NAME, reply.value) == name
    ds = Dataset.generate(rng=random.Random(1))
    assert p.set(Prop.THREAD_ACTIVE_DATASET_TLVS, ds.to_tlvs()).prop == Prop.THREAD_ACTIVE_DATASET_TLVS
    p.set(Prop.NET_IF_UP, True)
    p.set(Prop.NET_STACK_UP, True)
    assert p.wait_pushed(Prop.NET_ROLE, lambda r: r == NetRole.LEADER) == NetRole.LEADER
    # Its own MLE multicast arrives on STREAM_NET_INSECURE, as ot-ncp-ftd hands it over.
    all_nodes = bytes.fromhex("ff020000000000000000000000000001")
    frame = p.wait_for(
        lambda f: f.prop == Prop.STREAM_NET_INSECURE and unpack_prop(f.prop, f.value)[0][24:40] == all_nodes
    )
    assert unpack_prop(frame.prop, frame.value)[0][40:44] == bytes.fromhex("4d4c4d4c")  # UDP 19788 -> 19788
    assert p.get(Prop.NET_NETWORK_NAME) == ds.network_name


def test_command_line_options(sim, tmp_path):
    """The options a test or the demo asks for: NCP generation, DNS-SD server, node kinds, router upgrade."""
    sock = str(tmp_path / "ctl.sock")
    p = sim("--ncp-generation", "2023", "--dnssd-server", "--router-upgrade-delay", "0.5", "--leader-delay", "0.1",
            "--attach-delay", "0.1", "--mle-interval", "0", "--control", sock,
            "--node", "lamp:00:11:22:33:44:55:66:77", "--node", "sensor:mtd", "--node", "door:0011223344556688:mtd")
    p.wait_for(is_status(Status.RESET_POWER_ON))
    assert p.get(Prop.NCP_VERSION).startswith("OPENTHREAD/28f30b3ce; ")
    reply = p.request(Command.PROP_VALUE_SET, Prop.THREAD_ACTIVE_DATASET_TLVS, Dataset.generate().to_tlvs())
    assert unpack_prop(Prop.LAST_STATUS, reply.value) == Status.PROP_NOT_FOUND
    p.set(Prop.THREAD_ACTIVE_DATASET, dataset_to_props(Dataset.generate(rng=random.Random(3))))
    p.set(Prop.NET_IF_UP, True)
    p.set(Prop.NET_STACK_UP, True)
    p.wait_pushed(Prop.NET_ROLE, lambda r: r == NetRole.LEADER)
    assert control(sock, {"cmd": "node_add", "name": "plug", "kind": "mtd"})["kind"] == "mtd"
    deadline = time.monotonic() + 10
    while True:
        nodes = {n["name"]: n for n in control(sock, {"cmd": "state"})["nodes"]}
        if nodes["lamp"]["role"] == "router" and all(n["attached"] for n in nodes.values()):
            break
        assert time.monotonic() < deadline, nodes
        time.sleep(0.1)
    assert {name: (n["kind"], n["role"]) for name, n in nodes.items()} == {
        "lamp": ("ftd", "router"), "sensor": ("mtd", "child"), "door": ("mtd", "child"), "plug": ("mtd", "child")
    }
    assert nodes["lamp"]["eui64"] == "0011223344556677" and nodes["door"]["eui64"] == "0011223344556688"
    assert nodes["lamp"]["rloc16"] & 0x3FF == 0 and nodes["lamp"]["rloc"].endswith(f":{nodes['lamp']['rloc16']:x}")


def test_faults_and_resets(sim, tmp_path):
    sock = str(tmp_path / "ctl.sock")
    p = sim("--control", sock, "--mle-interval", "0")
    p.wait_for(is_status(Status.RESET_POWER_ON))
    # Unsolicited reset on command and on SIGUSR1.
    assert control(sock, {"cmd": "reset"}) == {"ok": True}
    p.wait_for(is_status(Status.RESET_POWER_ON))
    os.kill(p.proc.pid, signal.SIGUSR1)
    p.wait_for(is_status(Status.RESET_POWER_ON))
    # Corrupted frame: bad FCS, dropped by the host's decoder; the next one is fine.
    assert control(sock, {"cmd": "corrupt", "count": 1})["ok"]
    bad_before = p.decoder.counters.bad_fcs
    p.send(SpinelFrame(0, 5, Command.PROP_VALUE_GET, Prop.PROTOCOL_VERSION))
    with pytest.raises(TimeoutError):
        p.wait_for(lambda f: f.tid == 5, timeout=1.0)
    assert p.decoder.counters.bad_fcs == bad_before + 1
    assert p.get(Prop.PROTOCOL_VERSION) == (4, 3)
    # Dropped frames never arrive.
    assert control(sock, {"cmd": "drop", "count": 2})["ok"]
    p.send(SpinelFrame(0, 6, Command.PROP_VALUE_GET, Prop.INTERFACE_TYPE))
    p.send(SpinelFrame(0, 7, Command.PROP_VALUE_GET, Prop.INTERFACE_TYPE))
    with pytest.raises(TimeoutError):
        p.wait_for(lambda f: f.tid in (6, 7), timeout=1.0)
    assert p.get(Prop.INTERFACE_TYPE) == 3
    # Stall: the answer comes, but only after the stall.
    assert control(sock, {"cmd": "stall", "seconds": 1.0})["ok"]
    p.send(SpinelFrame(0, 9, Command.PROP_VALUE_GET, Prop.INTERFACE_TYPE))
    with pytest.raises(TimeoutError):
        p.wait_for(lambda f: f.tid == 9, timeout=0.6)
    p.wait_for(lambda f: f.tid == 9, timeout=3)
    # Bad commands are refused, state is reported.
    assert control(sock, {"cmd": "bogus"})["ok"] is False
    state = control(sock, {"cmd": "state"})
    assert state["role"] == "disabled" and state["counters"]["corrupted"] == 1
    # die: the process exits.
    assert control(sock, {"cmd": "die"})["ok"]
    assert p.proc.wait(5) != 0
    assert not os.path.exists(sock)


def test_state_file_keeps_the_network(sim, tmp_path):
    state = str(tmp_path / "flash.json")
    p = sim("--state", state, "--mle-interval", "0", "--leader-delay", "0.1")
    p.wait_for(is_status(Status.RESET_POWER_ON))
    ds = Dataset.generate(rng=random.Random(2))
    p.set(Prop.THREAD_ACTIVE_DATASET_TLVS, ds.to_tlvs())
    eui = p.get(Prop.HWADDR)
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.wait(5)
    q = sim("--state", state, "--mle-interval", "0", "--leader-delay", "0.1")
    q.wait_for(is_status(Status.RESET_POWER_ON))
    assert q.get(Prop.THREAD_ACTIVE_DATASET_TLVS) == ds.to_tlvs()
    assert q.get(Prop.HWADDR) == eui
    q.set(Prop.NET_IF_UP, True)
    q.set(Prop.NET_STACK_UP, True)
    q.wait_pushed(Prop.NET_ROLE, lambda r: r == NetRole.LEADER)


def test_hdlc_garbage_is_ignored(sim):
    p = sim("--mle-interval", "0")
    p.wait_for(is_status(Status.RESET_POWER_ON))
    os.write(p.master, b"\x7e\x01\x02\x03\x7e" + b"noise" + hdlc.encode(b"\x00\x01"))
    assert p.get(Prop.INTERFACE_TYPE) == 3
