"""Recording the HDLC byte stream between host and NCP, and reading recordings back.

A recording is what a real NCP actually sent, kept as test data so that machines without the NCP still
check the driver against real encodings (tests/ncp/test_replay.py).  One JSON object per line:
``{"t": seconds since the recording started, "dir": "host" | "ncp", "hex": bytes}``, one line per chunk
as the link carried it.  Recordings hold everything on the wire, the network key included: the file is
created owner-only, and only recordings of throwaway test networks belong in a repository.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import hdlc
from .spinel import SpinelError, SpinelFrame

__all__ = ["Chunk", "Recorder", "frames", "load"]

Direction = Literal["host", "ncp"]


@dataclass(frozen=True, slots=True)
class Chunk:
    t: float
    dir: Direction
    data: bytes


class Recorder:
    """Appends chunks to a recording file as they cross the link."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "w", buffering=1)
        self._t0 = time.monotonic()

    def note(self, direction: Direction, data: bytes) -> None:
        t = round(time.monotonic() - self._t0, 4)
        self._file.write(json.dumps({"t": t, "dir": direction, "hex": data.hex()}) + "\n")

    def close(self) -> None:
        self._file.close()


def load(path: str | os.PathLike[str]) -> list[Chunk]:
    """The chunks of a recording; ValueError names the line that is not one."""
    chunks = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["dir"] not in ("host", "ncp"):
                raise ValueError(f"dir {row['dir']!r}")
            chunks.append(Chunk(float(row["t"]), row["dir"], bytes.fromhex(row["hex"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a recording line ({exc})") from exc
    return chunks


def frames(chunks: list[Chunk], direction: Direction) -> Iterator[SpinelFrame]:
    """The Spinel frames one side sent, in order (bad HDLC is dropped as the client drops it)."""
    decoder = hdlc.HdlcDecoder()
    for chunk in chunks:
        if chunk.dir != direction:
            continue
        for payload in decoder.feed(chunk.data):
            try:
                yield SpinelFrame.decode(payload)
            except SpinelError:
                continue
