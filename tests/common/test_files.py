"""write_private: what a reader of a state file sees, and what a failed write leaves behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from common.files import write_private


def test_replaces_the_file_with_mode_0600(tmp_path: Path):
    path = tmp_path / "dataset.hex"
    path.write_text("old\n")
    path.chmod(0o644)
    write_private(path, "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.hex"]


def test_a_left_over_temporary_file_does_not_lend_its_mode(tmp_path: Path):
    path = tmp_path / "state.json"
    (tmp_path / ".state.json.tmp").write_text("half")
    (tmp_path / ".state.json.tmp").chmod(0o666)
    write_private(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "{}"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "taken"
    path.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        write_private(path, "x")
    assert path.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
