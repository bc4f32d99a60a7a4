"""The pending dataset and the channel change (gatewayctl ``dataset pending``, ``channel change``; the REST API
shares them) on a Thread component driven by the in-process NCP simulator of both OpenThread generations."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from gatewayd.control import CommandError
from gatewayd.ctl import CtlError
from gatewayd.secrets import MASK
from gatewayd.thread.network import ThreadNetwork
from ncp.meshcop import Dataset, Timestamp
from ncp.spinel import NetRole, Prop
from tests.thread.test_thread_commands import ROOT, USER, ctl, running

pytestmark = pytest.mark.timeout(60)
GENERATIONS = ["2025", "2023"]


async def settle() -> None:
    """Let the tasks the pushes spawned (reading the NCP's new active dataset) run."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_channel_change_moves_the_network_and_keeps_the_role(tmp_path: Path, generation: str):
    thread, client, server = await running(tmp_path, generation=generation)
    before = thread.active_dataset()
    assert before is not None and before.channel == 15
    assert await ctl(server, USER, "dataset", "pending") is None

    with pytest.raises(CtlError, match="channel change needs root"):
        await ctl(server, USER, "channel", "change", "20")
    shown = await ctl(server, ROOT, "channel", "change", "20", "--delay", "3000")
    assert shown["channel"] == 15 and shown["new_channel"] == 20 and shown["delay_ms"] == 3000
    assert shown["active_timestamp"] == before.active_timestamp.seconds + 1

    client.advance(1.0)
    pending = await ctl(server, USER, "dataset", "pending")
    assert pending["channel"] == 20 and pending["network_key"] == MASK and pending["pskc"] == MASK
    assert 1000 < pending["delay_ms"] <= 2000, "the NCP counts the delay down"
    assert pending["network_name"] == before.network_name and pending["pan_id"] == f"0x{before.pan_id:04x}"
    hexed = await ctl(server, ROOT, "dataset", "pending", "-x", "--show-secrets")
    assert Dataset.from_hex(hexed).as_active.with_(active_timestamp=before.active_timestamp, channel=15) == before
    with pytest.raises(CtlError, match="contains the network key"):
        await ctl(server, ROOT, "dataset", "pending", "-x")
    state = await ctl(server, USER, "state")
    assert state["channel"] == 15, "nothing changes before the delay passes"
    assert state["pending_channel"] == 20 and 0 < state["pending_in_s"] <= 3.0, "the change in flight is shown"

    client.advance(2.5)
    await settle()
    assert client.core.dataset.channel == 20 and client.core.stack.role == NetRole.LEADER
    assert thread.role_name() == "leader" and thread.status()["channel"] == 20
    state = await ctl(server, USER, "state")
    assert state["channel"] == 20 and "pending_channel" not in state and "pending_in_s" not in state
    assert thread.status_line().startswith("leader ch 20")
    assert await ctl(server, USER, "dataset", "pending") is None
    kept = Dataset.from_hex((tmp_path / "state" / "dataset.hex").read_text())
    assert kept.channel == 20 and kept.active_timestamp.seconds == before.active_timestamp.seconds + 1

    # after an NCP reset the network comes up on the new channel, not the old one
    client.core.reset(client.now)
    client.core.flash.dataset = before  # even an NCP that lost what it stored
    await thread._bring_up()
    client.advance(2.0)
    assert client.core.dataset.channel == 20 and thread.role_name() == "leader"


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_bad_channel_change_requests_are_refused(tmp_path: Path, generation: str):
    thread, client, server = await running(tmp_path, generation=generation)
    for words, error in [
        (("10",), "channel 10: 11 to 26"), (("27",), "channel 27: 11 to 26"),
        (("fifteen",), "usage: channel change"), ((), "usage: channel change"),
        (("20", "--delay"), "--delay needs a value"), (("20", "--delay", "soon"), "usage: channel change"),
        (("20", "--delay", "-5"), "delay -5 ms: 0 to"), (("20", "--delay", str(73 * 3600 * 1000)), "0 to 259200000"),
        (("15",), "on channel 15 already"),
    ]:
        with pytest.raises(CtlError, match=error):
            await ctl(server, ROOT, "channel", "change", *words)
    assert await ctl(server, USER, "dataset", "pending") is None

    await ctl(server, ROOT, "channel", "change", "21", "--delay", "60000")
    with pytest.raises(CtlError, match="a pending dataset is in place"):
        await ctl(server, ROOT, "channel", "change", "22")
    assert (await ctl(server, USER, "state"))["pending_channel"] == 21, "the refused one is not shown"
    assert await ctl(server, ROOT, "dataset", "pending", "clear") == {"pending_dataset": None}
    assert "pending_channel" not in await ctl(server, USER, "state"), "a cleared change is not announced"
    assert await ctl(server, USER, "dataset", "pending") is None
    client.advance(61.0)
    await settle()
    assert client.core.dataset.channel == 15 and thread.status()["channel"] == 15


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_pending_datasets_the_ncp_would_never_take_are_refused(tmp_path: Path, generation: str):
    thread, _, _ = await running(tmp_path, generation=generation)
    active = thread.active_dataset()
    newer = Timestamp(active.active_timestamp.seconds + 1)
    with pytest.raises(CommandError, match="needs a delay timer"):
        await thread.set_pending_dataset(active.with_(channel=20, active_timestamp=newer))
    with pytest.raises(CommandError, match="active timestamp must be newer"):
        await thread.set_pending_dataset(active.with_(channel=20, delay_timer=1000))
    with pytest.raises(CommandError, match="not a complete dataset"):
        await thread.set_pending_dataset(Dataset(channel=20, active_timestamp=newer, delay_timer=1000))
    with pytest.raises(CommandError, match="not in the dataset's channel mask"):
        await thread.set_pending_dataset(active.with_(channel=20, channel_mask={0: 1 << 15}, active_timestamp=newer,
                                                      delay_timer=1000))
    done = await thread.set_pending_dataset(active.with_(channel=20, active_timestamp=newer, delay_timer=5000,
                                                         pending_timestamp=Timestamp(40)))
    assert done.pending_timestamp == Timestamp(40)
    with pytest.raises(CommandError, match="pending timestamp must be newer"):
        await thread.set_pending_dataset(done.with_(pending_timestamp=Timestamp(40)))
    assert (await thread.pending_dataset()).channel == 20


async def test_a_configured_dataset_takes_no_pending_dataset(tmp_path: Path):
    configured = Dataset.generate(name="fixed", rng=random.Random(13))
    _, _, server = await running(tmp_path, f'[thread]\ndataset = "{configured.hex()}"\n')
    with pytest.raises(CtlError, match=r"\[thread\] dataset in the configuration fixes"):
        await ctl(server, ROOT, "channel", "change", "20", "--delay", "1000")


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_a_restarted_daemon_keeps_the_channel_the_ncp_moved_to(tmp_path: Path, generation: str):
    """The NCP took the pending dataset while the daemon was not watching: the daemon's next bring-up keeps the
    NCP's later dataset of the same network instead of handing it the old channel again."""
    thread, client, _ = await running(tmp_path, generation=generation)
    active = thread.active_dataset()
    client.handlers.clear()  # the daemon is gone
    await client.set(Prop.THREAD_PENDING_DATASET, [])  # nothing in place
    pending = active.with_(channel=24, active_timestamp=Timestamp(active.active_timestamp.seconds + 5),
                           pending_timestamp=Timestamp(9), delay_timer=1000)
    client.core.meshcop.set_pending(pending)
    client.advance(2.0)
    assert client.core.dataset.channel == 24

    config = thread.config
    again = ThreadNetwork(config, SimpleNamespace(client=client, running=True))  # type: ignore[arg-type]
    again._client = client
    again.dataset = again._load_or_create_dataset()
    assert again.dataset.channel == 15, "state_dir still holds the old channel"
    await again._bring_up()
    assert again.active_dataset().channel == 24 and client.core.dataset.channel == 24
    assert Dataset.from_hex((tmp_path / "state" / "dataset.hex").read_text()).channel == 24
