"""gatewayctl's ``thread enable``/``disable``, ``dataset set`` and ``factory-reset`` (the operations the REST
API shares) on a Thread component driven by the in-process NCP simulator with a fake clock: no namespaces,
no TUN device."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gatewayd.config.loader import parse
from gatewayd.control import ControlServer
from gatewayd.ctl import CtlError, request
from gatewayd.thread.network import ThreadNetwork
from ncp.meshcop import Dataset
from ncp.spinel import Prop
from tests.simclient import SimClient

pytestmark = pytest.mark.timeout(60)
ROOT, USER = 0, 1000


async def running(tmp_path: Path, extra: str = "", generation: str = "2025"
                  ) -> tuple[ThreadNetwork, SimClient, ControlServer]:
    """A Thread component up as leader on the simulated NCP (of OpenThread ``generation``), its commands on a
    control server."""
    config = parse(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n[dns64]\nenabled = false\n{extra}')
    client = SimClient(generation=generation)
    thread = ThreadNetwork(config, SimpleNamespace(client=client, running=True))  # type: ignore[arg-type]
    thread._client = client  # what start() does, less the TUN device and the monitor
    thread.dataset = thread._load_or_create_dataset()
    client.add_event_handler(thread._on_event)
    await thread._bring_up()
    client.advance(2.0)
    assert thread.role_name() == "leader"
    server = ControlServer(str(tmp_path / "control.sock"))
    for command in thread.commands():
        server.register(command)
    return thread, client, server


async def ctl(server: ControlServer, uid: int, *words: str) -> Any:
    answer = await server.handle({"command": list(words)}, uid)
    if not answer["ok"]:
        raise CtlError(answer["error"])
    return answer["result"]


async def test_disable_set_a_dataset_enable_through_the_control_socket(tmp_path: Path):
    thread, client, server = await running(tmp_path)
    new = Dataset.generate(name="cli-net", channel=21, rng=random.Random(11))
    secrets = (new.to_tlvs().hex(), new.network_key.hex(), new.pskc.hex())
    await server.start()
    try:
        path = server.path

        async def gatewayctl(*words: str) -> Any:  # what gatewayctl sends, over the real socket
            return await asyncio.to_thread(request, path, list(words))

        with pytest.raises(CtlError, match="Thread is enabled: disable it first"):
            await ctl(server, ROOT, "dataset", "set", new.to_tlvs().hex())
        with pytest.raises(CtlError, match="thread disable needs root"):
            await ctl(server, USER, "thread", "disable")
        with pytest.raises(CtlError, match="dataset set needs root"):
            await ctl(server, USER, "dataset", "set", new.to_tlvs().hex())

        assert await ctl(server, ROOT, "thread", "disable") == {"thread": "disabled"}
        client.advance(1.0)
        assert thread.role_name() == "disabled" and not await client.get(Prop.NET_STACK_UP)
        shown = await ctl(server, ROOT, "dataset", "set", new.to_tlvs().hex())
        assert shown == {"network_name": "cli-net", "channel": 21, "pan_id": f"0x{new.pan_id:04x}"}
        assert not any(s in str(shown).lower() for s in secrets), "the secrets are never echoed"
        assert thread.active_dataset() == new and client.core.dataset.network_key == new.network_key
        assert (tmp_path / "state" / "dataset.hex").read_text().strip() == new.hex(), "kept for a restart"
        assert thread.role_name() == "disabled", "a new dataset does not enable Thread"

        if os.geteuid() == 0:  # the socket's peer is this process: root-only commands need a root test run
            assert await gatewayctl("thread", "enable") == {"thread": "enabled"}
        else:
            with pytest.raises(CtlError, match="thread enable needs root"):
                await gatewayctl("thread", "enable")
            assert await ctl(server, ROOT, "thread", "enable") == {"thread": "enabled"}
        client.advance(2.0)
        assert thread.role_name() == "leader"
        state = await gatewayctl("state")
        assert (state["network_name"], state["channel"]) == ("cli-net", 21)
        assert await ctl(server, ROOT, "dataset", "active", "-x", "--show-secrets") == new.to_tlvs().hex()
    finally:
        await server.stop()


async def test_dataset_set_refuses_what_is_not_a_complete_dataset_without_echoing_it(tmp_path: Path):
    thread, _, server = await running(tmp_path)
    await ctl(server, ROOT, "thread", "disable")
    before = thread.active_dataset()
    with pytest.raises(CtlError, match="usage: dataset set HEX"):
        await ctl(server, ROOT, "dataset", "set")
    key = "00112233445566778899aabbccddeeff"
    with pytest.raises(CtlError, match="not a dataset as hex TLVs") as bad:
        await ctl(server, ROOT, "dataset", "set", key + "zz")
    assert key not in str(bad.value)
    partial = Dataset(network_name="partial", channel=15, network_key=bytes.fromhex(key))
    with pytest.raises(CtlError, match="not a complete active dataset") as incomplete:
        await ctl(server, ROOT, "dataset", "set", partial.to_tlvs().hex())
    assert key not in str(incomplete.value)
    assert thread.active_dataset() == before


async def test_factory_reset_forgets_the_network_and_an_ncp_reset_keeps_thread_off(tmp_path: Path, caplog):
    thread, client, server = await running(tmp_path)
    with pytest.raises(CtlError, match="factory-reset needs root"):
        await ctl(server, USER, "factory-reset")
    assert await ctl(server, ROOT, "factory-reset") == {"dataset": None, "thread": "disabled"}
    client.advance(1.0)
    assert thread.active_dataset() is None and thread.role_name() == "disabled"
    assert not (tmp_path / "state" / "dataset.hex").exists()
    with pytest.raises(CtlError, match="no active dataset yet"):
        await ctl(server, USER, "dataset", "active")
    with pytest.raises(CtlError, match="no active dataset: set one first"):
        await ctl(server, ROOT, "thread", "enable")
    assert thread.status_line() == "no active dataset: Thread off"

    # an NCP reset before a dataset is set: recovery leaves Thread off and says why (it used to assert)
    with caplog.at_level(logging.WARNING, logger="gatewayd.thread"):
        client.reset()
        assert thread._recovery is not None
        await thread._recovery
    assert "no active dataset after NCP reset" in caplog.text
    client.advance(5.0)
    assert thread.role_name() == "disabled" and not thread.attached
    assert not await client.get(Prop.NET_STACK_UP)

    fresh = Dataset.generate(name="after-reset", rng=random.Random(12))
    await ctl(server, ROOT, "dataset", "set", fresh.to_tlvs().hex())
    await ctl(server, ROOT, "thread", "enable")
    client.advance(2.0)
    assert thread.role_name() == "leader" and (await ctl(server, USER, "state"))["network_name"] == "after-reset"


async def test_a_configured_dataset_cannot_be_replaced_or_forgotten(tmp_path: Path):
    configured = Dataset.generate(name="fixed", rng=random.Random(13))
    thread, _, server = await running(tmp_path, f'[thread]\ndataset = "{configured.hex()}"\n')
    await ctl(server, ROOT, "thread", "disable")
    other = Dataset.generate(rng=random.Random(14))
    for words in (("dataset", "set", other.to_tlvs().hex()), ("factory-reset",)):
        with pytest.raises(CtlError, match=r"\[thread\] dataset in the configuration fixes"):
            await ctl(server, ROOT, *words)
    assert thread.active_dataset() == configured
