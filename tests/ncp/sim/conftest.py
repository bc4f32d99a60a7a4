"""Shared fixture: simulator processes on a pty, stopped after the test."""

import pytest

from .simproc import SimProcess


@pytest.fixture
def sim(tmp_path):
    """``sim(*args)`` starts ``python -m ncp.sim`` with ``args``, each with its own log in ``tmp_path``."""
    procs = []

    def start(*args):
        p = SimProcess(*args, log=tmp_path / f"sim{len(procs)}.log")
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
