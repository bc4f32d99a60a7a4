"""State files that hold secrets or must survive a crash mid-write (datasets, LwM2M registrations)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, data: str) -> None:
    """Atomically replace ``path`` with mode 0600 ``data``: a reader sees the old or the new file, never a
    half-written secret. The temporary file sits beside it (``.<name>.tmp``, one per file, as every caller
    writes from the event loop) and is removed when the write fails. Not :mod:`tempfile`: it brings
    shutil with bz2 and lzma, ~0.5 MB that an idle daemon would carry for this one call."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # a left-over temporary file keeps its mode through O_TRUNC
            view = memoryview(data.encode())
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
