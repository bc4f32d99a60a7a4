"""``gatewayctl dataset set -`` and ``--file PATH``: the dataset (it holds the network key) read by gatewayctl
from stdin or a file, never on the command line; the argument form keeps working."""

from __future__ import annotations

import asyncio
import io
import os
import random
import sys
from pathlib import Path

import pytest

from gatewayd.ctl import CtlError, read_secret_argument
from ncp.meshcop import Dataset
from tests.thread.test_thread_commands import ROOT, ctl, running

DATASET = Dataset.generate(name="from-file", channel=24, rng=random.Random(21))


def test_dash_reads_stdin_and_file_reads_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    text = DATASET.hex()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text[:40] + "\n  " + text[40:] + "\n"))
    assert read_secret_argument(["dataset", "set", "-"]) == ["dataset", "set", text]
    path = tmp_path / "dataset.hex"
    path.write_text(text + "\n")
    assert read_secret_argument(["dataset", "set", "--file", str(path)]) == ["dataset", "set", text]
    assert read_secret_argument(["dataset", "set", text]) == ["dataset", "set", text], "the argument form"
    assert read_secret_argument(["dataset", "active", "-x"]) == ["dataset", "active", "-x"], "other commands"
    assert read_secret_argument(["nat64", "set", "-"]) == ["nat64", "set", "-"]


def test_unreadable_or_empty_input_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(CtlError, match=r"cannot read .*missing\.hex"):
        read_secret_argument(["dataset", "set", "--file", str(tmp_path / "missing.hex")])
    monkeypatch.setattr(sys, "stdin", io.StringIO(" \n"))
    with pytest.raises(CtlError, match="dataset set: nothing in stdin"):
        read_secret_argument(["dataset", "set", "-"])


@pytest.mark.root
@pytest.mark.timeout(60)
async def test_gatewayctl_sets_the_dataset_from_stdin_and_from_a_file(tmp_path: Path):
    """The real gatewayctl process, its peer uid root, on a Thread component over the simulated NCP."""
    thread, _, server = await running(tmp_path)
    await ctl(server, ROOT, "thread", "disable")
    await server.start()

    async def gatewayctl(*words: str, stdin: bytes = b"") -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gatewayd.ctl", "-s", server.path, *words, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": "."})
        out, err = await proc.communicate(stdin)
        return proc.returncode or 0, out.decode(), err.decode()

    try:
        code, out, err = await gatewayctl("dataset", "set", "-", stdin=DATASET.hex().encode() + b"\n")
        assert code == 0, err
        assert "from-file" in out and DATASET.network_key.hex() not in out
        assert thread.active_dataset() == DATASET

        other = Dataset.generate(name="second", rng=random.Random(22))
        path = tmp_path / "second.hex"
        path.write_text(other.hex())
        code, out, err = await gatewayctl("dataset", "set", "--file", str(path))
        assert code == 0 and "second" in out, err
        assert thread.active_dataset() == other

        code, _, err = await gatewayctl("dataset", "set", "--file", str(tmp_path / "nope.hex"))
        assert code == 1 and "cannot read" in err and thread.active_dataset() == other
        code, out, _ = await gatewayctl("dataset", "pending")
        assert code == 0 and out.strip() == "(none)"
    finally:
        await server.stop()
